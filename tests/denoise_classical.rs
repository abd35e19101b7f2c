//! Classical denoising against ground truth: the Poisson–Gaussian noise estimated from one
//! image (known camera parameters, two image generators: the beads-and-filaments phantom
//! and a textured cell-like image with camera offset and clipping), from a dark/flat pair,
//! and GAT + BM3D against the clean image (PSNR). Seeded; small images, so it runs in
//! seconds.

use fluorecon::denoise::classical::{denoise_classical, ClassicalOptions};
use fluorecon::denoise::noise_model::{
    estimate_noise, from_dark_flat, NoiseEstimateOptions, NoiseModel,
};
use fluorecon::metrics::psnr;
use fluorecon::progress::NoProgress;
use fluorecon::psf::Psf;
use fluorecon::synthetic::{widefield, WidefieldOptions};
use fluorecon::{Volume, VoxelSize};
use ndarray::Array3;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Poisson};

/// A camera image of `photons` (expected photons per pixel): gain · Poisson + offset +
/// N(0, read²), optionally clipped at `full_well` ADU; seeded.
fn camera(
    photons: &Array3<f32>,
    gain: f64,
    offset: f64,
    read: f64,
    full_well: Option<f64>,
    seed: u64,
) -> Array3<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let g = Normal::new(0.0, read).unwrap();
    photons.mapv(|l| {
        let p = if l > 0.0 {
            Poisson::new(l as f64).unwrap().sample(&mut rng)
        } else {
            0.0
        };
        let z = gain * p + offset + g.sample(&mut rng);
        full_well.map_or(z, |w| z.min(w)) as f32
    })
}

/// The beads-and-filaments phantom seen through a widefield microscope (Gaussian PSF of
/// 1.5 pixels σ, the simulator's haze), scaled to `peak` photons above `background`.
fn widefield_photons(
    shape: (usize, usize, usize),
    peak: f32,
    background: f32,
    seed: u64,
) -> Array3<f32> {
    let psf = Psf::gaussian_voxels((1, 13, 13), (1.0, 1.5));
    let opts = WidefieldOptions {
        peak_photons: 1.0,
        background: 0.0,
        seed,
    };
    let b = widefield(shape, &psf, &opts).unwrap().blurred;
    let max = b.iter().cloned().fold(f32::MIN_POSITIVE, f32::max);
    b.mapv(|v| v / max * peak + background)
}

/// A different generator: cells as smooth blobs with textured interiors, on an uneven
/// background (out-of-focus haze), `peak` photons at most.
fn textured_photons(ny: usize, nx: usize, peak: f32, seed: u64) -> Array3<f32> {
    use rand::Rng;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let cells: Vec<(f32, f32, f32, f32)> = (0..12)
        .map(|_| {
            (
                rng.gen_range(0.0..ny as f32),
                rng.gen_range(0.0..nx as f32),
                rng.gen_range(10.0..30.0),
                rng.gen_range(0.4..1.0),
            )
        })
        .collect();
    Array3::from_shape_fn((1, ny, nx), |(_, y, x)| {
        let (y, x) = (y as f32, x as f32);
        let haze = 0.08 + 0.06 * (x / nx as f32) + 0.04 * (y / 40.0).sin().powi(2);
        let mut v = haze;
        for &(cy, cx, r, a) in &cells {
            let d2 = ((y - cy).powi(2) + (x - cx).powi(2)) / (r * r);
            let texture = 0.7 + 0.3 * ((x / 3.1 + y / 4.3).sin() * (y / 2.7 - x / 5.9).cos());
            v += a * (-d2 * d2).exp() * texture;
        }
        v * peak / 1.6
    })
}

fn volume(data: Array3<f32>) -> Volume {
    Volume::new(
        data,
        VoxelSize {
            z: 0.3,
            y: 0.1,
            x: 0.1,
        },
    )
}

fn rel(est: f64, truth: f64) -> f64 {
    (est - truth).abs() / truth.abs()
}

/// Gain and read noise (offset 0: variance at zero = read²) within 10 % on both generators,
/// three cameras each, two seeds.
#[test]
fn noise_estimate_recovers_the_camera_within_10_percent() {
    for seed in [1, 2] {
        for (gain, read) in [(1.0, 1.5), (2.5, 6.0), (0.5, 0.8)] {
            for (name, photons) in [
                (
                    "widefield",
                    widefield_photons((1, 384, 384), 60.0, 8.0, seed),
                ),
                ("textured", textured_photons(384, 384, 80.0, seed)),
            ] {
                let z = camera(&photons, gain, 0.0, read, None, 100 + seed);
                let e = estimate_noise(&volume(z), &NoiseEstimateOptions::default()).unwrap();
                let m = e.model;
                let read_est = m.variance_at_zero.max(0.0).sqrt();
                println!(
                    "{name} seed {seed}: gain {gain} → {:.3}, read {read} → {read_est:.3} \
                     ({} levels, {} blocks)",
                    m.gain,
                    e.levels.len(),
                    e.blocks
                );
                assert!(
                    rel(m.gain, gain) < 0.10,
                    "{name}: gain {} vs {gain}",
                    m.gain
                );
                assert!(
                    rel(read_est, read) < 0.10,
                    "{name}: read {read_est} vs {read}"
                );
            }
        }
    }
}

/// With a camera offset the variance at zero is read² − gain · offset (here negative), and
/// saturated pixels (clipped at the full well) are left out.
#[test]
fn noise_estimate_with_offset_and_clipping() {
    let photons = textured_photons(256, 256, 120.0, 5);
    let (gain, offset, read) = (2.0, 100.0, 4.0);
    let truth = NoiseModel::from_camera(gain, offset, read).unwrap();
    let z = camera(&photons, gain, offset, read, Some(220.0), 6);
    let clipped = z.iter().filter(|&&v| v == 220.0).count() as f64 / z.len() as f64;
    assert!(
        clipped > 0.01,
        "the test image should be clipped ({clipped})"
    );
    let e = estimate_noise(&volume(z), &NoiseEstimateOptions::default()).unwrap();
    println!("{:?} (truth {truth:?}), {clipped:.3} clipped", e.model);
    assert!(e.clipped);
    assert!(rel(e.model.gain, gain) < 0.10, "{:?}", e.model);
    // The variance predicted at a mid-level grey (150 ADU) is right within 10 %.
    assert!(rel(e.model.variance(150.0), truth.variance(150.0)) < 0.10);
}

#[test]
fn dark_and_flat_frames_give_gain_offset_and_read_noise() {
    let (gain, offset, read) = (1.8, 400.0, 3.0);
    let dark = camera(&Array3::zeros((1, 128, 128)), gain, offset, read, None, 11);
    // A flat with slow shading (±20 %): the detail variance ignores it.
    let flat_photons = Array3::from_shape_fn((1, 128, 128), |(_, y, x)| {
        300.0 * (1.0 + 0.2 * ((x + y) as f32 / 90.0).sin())
    });
    let flat = camera(&flat_photons, gain, offset, read, None, 12);
    let (m, off, r) = from_dark_flat(&volume(dark), &volume(flat)).unwrap();
    assert!(rel(m.gain, gain) < 0.05, "{m:?}");
    assert!((off - offset).abs() < 0.1, "{off}");
    assert!(rel(r, read) < 0.05, "{r}");
    // Swapped frames are refused with a message.
    let dark2 = camera(&Array3::zeros((1, 64, 64)), gain, offset, read, None, 13);
    let flat2 = camera(
        &flat_photons.slice(ndarray::s![.., ..64, ..64]).to_owned(),
        gain,
        offset,
        read,
        None,
        14,
    );
    let e = from_dark_flat(&volume(flat2), &volume(dark2)).unwrap_err();
    assert!(e.to_string().contains("brighter"), "{e}");
}

/// GAT + BM3D with the estimated noise against the clean image, at 10, 30 and 100 photons
/// peak on the phantom (gain 2 ADU/photon, read noise 3 ADU). Bounds: measured gains minus
/// about 1 dB (seeds 3/4: +13.9, +12.1, +9.7 dB when written).
#[test]
fn gat_bm3d_denoises_poisson_gaussian_images() {
    let (gain, read) = (2.0, 3.0);
    for (peak, min_gain_db) in [(10.0, 12.5), (30.0, 11.0), (100.0, 8.0)] {
        let photons = widefield_photons((1, 192, 192), peak, 2.0, 3);
        let truth = photons.mapv(|v| v * gain as f32);
        let z = camera(&photons, gain, 0.0, read, None, 4);
        let input = volume(z.clone());
        let d = denoise_classical(&input, &ClassicalOptions::default(), &mut NoProgress).unwrap();
        let (before, after) = (psnr(&z, &truth, 0), psnr(&d.image.data, &truth, 0));
        println!(
            "peak {peak}: noisy {before:.2} dB → {after:.2} dB, {:?}",
            d.noise
        );
        assert!(d.estimated);
        assert!(
            after - before > min_gain_db,
            "peak {peak}: {before} → {after}"
        );
        assert_eq!(d.image.voxel, input.voxel);
        assert_eq!(input.data, z, "the input is not changed");
        // Unbiased: the mean intensity is kept within 1 %.
        let (m0, m1) = (truth.mean().unwrap(), d.image.data.mean().unwrap());
        assert!(rel(m1 as f64, m0 as f64) < 0.01, "mean {m1} vs {m0}");
    }
}

/// A stack is denoised plane by plane with one noise model: each plane equals the 2D
/// result of that plane with the same model.
#[test]
fn stack_plane_by_plane_with_one_model() {
    let photons = widefield_photons((3, 64, 72), 40.0, 5.0, 8);
    let z = camera(&photons, 1.0, 0.0, 2.0, None, 9);
    let model = NoiseModel::from_camera(1.0, 0.0, 2.0).unwrap();
    let opts = ClassicalOptions {
        noise: Some(model),
        ..Default::default()
    };
    let d = denoise_classical(&volume(z.clone()), &opts, &mut NoProgress).unwrap();
    assert!(!d.estimated);
    assert_eq!(d.image.shape(), (3, 64, 72));
    let plane = z.slice(ndarray::s![1..2, .., ..]).to_owned();
    let one = denoise_classical(&volume(plane), &opts, &mut NoProgress).unwrap();
    assert_eq!(
        d.image.data.slice(ndarray::s![1..2, .., ..]),
        one.image.data
    );
}

#[test]
fn bad_input_gives_a_clear_error() {
    let mut z = Array3::from_elem((1, 32, 32), 10.0f32);
    let e = estimate_noise(&volume(z.clone()), &NoiseEstimateOptions::default()).unwrap_err();
    assert!(e.to_string().contains("constant"), "{e}");
    z[[0, 3, 4]] = f32::NAN;
    let e =
        denoise_classical(&volume(z), &ClassicalOptions::default(), &mut NoProgress).unwrap_err();
    assert!(e.to_string().contains("not numbers"), "{e}");
    let tiny = Array3::from_elem((1, 6, 40), 1.0f32);
    let e = denoise_classical(&volume(tiny), &ClassicalOptions::default(), &mut NoProgress)
        .unwrap_err();
    assert!(e.to_string().contains("at least 8×8"), "{e}");
    let bad = ClassicalOptions {
        noise: Some(NoiseModel {
            gain: -1.0,
            variance_at_zero: 1.0,
        }),
        ..Default::default()
    };
    let z = Array3::from_elem((1, 16, 16), 1.0f32);
    let e = denoise_classical(&volume(z), &bad, &mut NoProgress).unwrap_err();
    assert!(e.to_string().contains("positive gain"), "{e}");
    assert!(NoiseModel::from_camera(0.0, 0.0, 1.0).is_err());
}
