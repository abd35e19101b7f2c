//! Richardson–Lucy on simulated widefield data with known truth: image quality (PSNR),
//! flux, centring, edges, acceleration and regularisation.

use fluorecon::deconv::{richardson_lucy, Boundary, RlOptions};
use fluorecon::metrics::psnr;
use fluorecon::psf::{Psf, PsfModel, PsfParams};
use fluorecon::synthetic::{widefield, WidefieldOptions};
use fluorecon::{NoProgress, Volume, VoxelSize};
use ndarray::{s, Array3};

fn optics(model: PsfModel) -> PsfParams {
    PsfParams {
        model,
        na: 1.4,
        wavelength_nm: 520.0,
        immersion_index: 1.518,
        pixel_size_nm: 65.0,
        z_step_nm: 200.0,
    }
}

fn voxel() -> VoxelSize {
    VoxelSize {
        z: 0.2,
        y: 0.065,
        x: 0.065,
    }
}

fn rl(image: &Array3<f32>, psf: &Psf, opts: RlOptions) -> Array3<f32> {
    let vol = Volume::new(image.clone(), voxel());
    richardson_lucy(&vol, psf, &opts, &mut NoProgress)
        .unwrap()
        .volume
        .data
}

fn iterations(n: usize) -> RlOptions {
    RlOptions {
        iterations: n,
        ..Default::default()
    }
}

#[test]
fn improves_psnr_2d() {
    let psf = Psf::generate(&optics(PsfModel::BornWolf), (1, 31, 31)).unwrap();
    let sim = widefield((1, 128, 128), &psf, &WidefieldOptions::default()).unwrap();
    let before = psnr(&sim.noisy, &sim.truth, 0);
    let after = psnr(&rl(&sim.noisy, &psf, iterations(30)), &sim.truth, 0);
    println!("2D PSNR: noisy {before:.2} dB, RL {after:.2} dB");
    assert!(after > before + 3.0, "{before:.2} → {after:.2} dB");
}

#[test]
fn improves_psnr_3d() {
    let psf = Psf::generate(&optics(PsfModel::BornWolf), (21, 31, 31)).unwrap();
    let sim = widefield((24, 64, 64), &psf, &WidefieldOptions::default()).unwrap();
    let before = psnr(&sim.noisy, &sim.truth, 0);
    let after = psnr(&rl(&sim.noisy, &psf, iterations(30)), &sim.truth, 0);
    println!("3D PSNR: noisy {before:.2} dB, RL {after:.2} dB");
    assert!(after > before + 3.0, "{before:.2} → {after:.2} dB");
}

#[test]
fn circulant_conserves_flux_exactly_and_non_circulant_inside() {
    let psf = Psf::generate(&optics(PsfModel::BornWolf), (1, 21, 21)).unwrap();
    // Beads in the middle of a dark field: all their light falls inside the image.
    let mut truth = Array3::<f32>::zeros((1, 96, 96));
    for (y, x, a) in [(40, 40, 800.0), (50, 57, 500.0), (45, 48, 300.0)] {
        truth[[0, y, x]] = a;
    }
    truth.mapv_inplace(|v| v + 1.0);
    let sim_psf = psf.clone();
    let blurred = blur_circular(&truth, &sim_psf);
    let flux_in: f64 = blurred.iter().map(|&v| v as f64).sum();
    for boundary in [Boundary::Circulant, Boundary::NonCirculant] {
        let out = rl(
            &blurred,
            &psf,
            RlOptions {
                iterations: 25,
                boundary,
                ..Default::default()
            },
        );
        let flux_out: f64 = out.iter().map(|&v| v as f64).sum();
        let rel = (flux_out - flux_in).abs() / flux_in;
        let bound = if boundary == Boundary::Circulant {
            1e-4
        } else {
            1e-2
        };
        println!("{boundary:?}: flux error {rel:.2e}");
        assert!(rel < bound, "{boundary:?}: flux changed by {rel:.2e}");
    }
}

/// Circular convolution by direct summation (a slow, independent reference).
fn blur_circular(img: &Array3<f32>, psf: &Psf) -> Array3<f32> {
    let (nz, ny, nx) = img.dim();
    let (pz, py, px) = psf.shape();
    let mut out = Array3::<f32>::zeros(img.dim());
    for ((z, y, x), &v) in img.indexed_iter() {
        if v == 0.0 {
            continue;
        }
        for ((a, b, c), &h) in psf.data.indexed_iter() {
            let zz = (z + nz + a - pz / 2) % nz;
            let yy = (y + ny + b - py / 2) % ny;
            let xx = (x + nx + c - px / 2) % nx;
            out[[zz, yy, xx]] += v * h;
        }
    }
    out
}

fn centroid(a: &Array3<f32>) -> [f64; 3] {
    let (mut c, mut total) = ([0.0; 3], 0.0);
    for ((z, y, x), &v) in a.indexed_iter() {
        let v = v as f64;
        c[0] += v * z as f64;
        c[1] += v * y as f64;
        c[2] += v * x as f64;
        total += v;
    }
    c.map(|q| q / total)
}

#[test]
fn centred_bead_stays_centred() {
    for (shape, psf_shape) in [
        ((1, 65, 65), (1, 31, 31)),
        ((1, 64, 64), (1, 31, 31)),
        ((17, 48, 48), (15, 31, 31)),
    ] {
        let psf = Psf::generate(&optics(PsfModel::BornWolf), psf_shape).unwrap();
        let mut truth = Array3::<f32>::zeros(shape);
        let centre = (shape.0 / 2, shape.1 / 2, shape.2 / 2);
        truth[[centre.0, centre.1, centre.2]] = 1000.0;
        let blurred = blur_circular(&truth, &psf);
        for boundary in [Boundary::NonCirculant, Boundary::Circulant] {
            let out = rl(
                &blurred,
                &psf,
                RlOptions {
                    iterations: 40,
                    boundary,
                    ..Default::default()
                },
            );
            let c = centroid(&out);
            let want = [centre.0 as f64, centre.1 as f64, centre.2 as f64];
            for axis in 0..3 {
                assert!(
                    (c[axis] - want[axis]).abs() < 0.01,
                    "{shape:?} {boundary:?}: centroid {c:?}, bead at {want:?}"
                );
            }
            // And the peak is where the bead is.
            let peak =
                out.indexed_iter().fold(
                    ((0, 0, 0), f32::MIN),
                    |m, (i, &v)| if v > m.1 { (i, v) } else { m },
                );
            assert_eq!(peak.0, centre, "{shape:?} {boundary:?}");
        }
    }
}

#[test]
fn non_circulant_rings_less_at_the_edges() {
    let psf = Psf::generate(&optics(PsfModel::BornWolf), (1, 31, 31)).unwrap();
    let sim = widefield(
        (1, 96, 96),
        &psf,
        &WidefieldOptions {
            peak_photons: 2000.0,
            background: 50.0,
            seed: 11,
        },
    )
    .unwrap();
    let band = |a: &Array3<f32>| {
        // RMSE against the truth in the 8-pixel band along the edges.
        let (_, ny, nx) = a.dim();
        let mut se = 0.0;
        let mut n = 0;
        for ((_, y, x), &v) in a.indexed_iter() {
            if y < 8 || x < 8 || y >= ny - 8 || x >= nx - 8 {
                se += ((v - sim.truth[[0, y, x]]) as f64).powi(2);
                n += 1;
            }
        }
        (se / n as f64).sqrt()
    };
    let opts = |boundary| RlOptions {
        iterations: 30,
        boundary,
        ..Default::default()
    };
    let nc = band(&rl(&sim.blurred, &psf, opts(Boundary::NonCirculant)));
    let circ = band(&rl(&sim.blurred, &psf, opts(Boundary::Circulant)));
    println!("edge RMSE: non-circulant {nc:.2}, circulant {circ:.2}");
    assert!(
        nc < 0.7 * circ,
        "non-circulant {nc:.2} vs circulant {circ:.2}"
    );
}

#[test]
fn acceleration_reaches_quality_in_fewer_iterations() {
    let psf = Psf::generate(&optics(PsfModel::BornWolf), (1, 31, 31)).unwrap();
    let sim = widefield((1, 96, 96), &psf, &WidefieldOptions::default()).unwrap();
    let plain = psnr(&rl(&sim.blurred, &psf, iterations(40)), &sim.truth, 0);
    let fast = psnr(
        &rl(
            &sim.blurred,
            &psf,
            RlOptions {
                iterations: 20,
                acceleration: true,
                ..Default::default()
            },
        ),
        &sim.truth,
        0,
    );
    println!("noise-free PSNR: plain 40 it {plain:.2} dB, accelerated 20 it {fast:.2} dB");
    assert!(fast >= plain, "accelerated {fast:.2} < plain {plain:.2}");
}

#[test]
fn tv_regularisation_limits_noise_amplification() {
    let psf = Psf::generate(&optics(PsfModel::BornWolf), (1, 31, 31)).unwrap();
    let sim = widefield(
        (1, 96, 96),
        &psf,
        &WidefieldOptions {
            peak_photons: 100.0,
            background: 5.0,
            seed: 5,
        },
    )
    .unwrap();
    let plain = rl(&sim.noisy, &psf, iterations(150));
    let tv = rl(
        &sim.noisy,
        &psf,
        RlOptions {
            iterations: 150,
            tv_lambda: 0.01,
            ..Default::default()
        },
    );
    let (p, t) = (psnr(&plain, &sim.truth, 0), psnr(&tv, &sim.truth, 0));
    let total_variation = |a: &Array3<f32>| -> f64 {
        let d = &a.slice(s![.., 1.., ..]) - &a.slice(s![.., ..-1, ..]);
        d.iter().map(|v| v.abs() as f64).sum()
    };
    println!("low-light PSNR after 150 it: RL {p:.2} dB, RL-TV {t:.2} dB");
    assert!(t > p, "RL-TV {t:.2} dB not better than RL {p:.2} dB");
    assert!(total_variation(&tv) < total_variation(&plain));
}

#[test]
fn volume_too_large_for_memory_is_tiled_with_the_same_result() {
    let psf = Psf::generate(&optics(PsfModel::BornWolf), (9, 21, 21)).unwrap();
    let sim = widefield((12, 128, 128), &psf, &WidefieldOptions::default()).unwrap();
    let whole = rl(&sim.noisy, &psf, iterations(20));
    // Less than half of the ~18 MiB the whole volume needs: forces tiling.
    let vol = Volume::new(sim.noisy.clone(), voxel());
    let opts = RlOptions {
        iterations: 20,
        memory_limit: Some(8 << 20),
        ..Default::default()
    };
    let tiled = richardson_lucy(&vol, &psf, &opts, &mut NoProgress).unwrap();
    assert!(
        tiled.warnings.iter().any(|w| w.contains("tiles")),
        "{:?}",
        tiled.warnings
    );
    let diff: f64 = (&tiled.volume.data - &whole)
        .iter()
        .map(|&d| (d as f64).powi(2))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = whole
        .iter()
        .map(|&v| (v as f64).powi(2))
        .sum::<f64>()
        .sqrt();
    let (p_whole, p_tiled) = (
        psnr(&whole, &sim.truth, 0),
        psnr(&tiled.volume.data, &sim.truth, 0),
    );
    println!(
        "tiled vs whole: relative difference {:.2e}, PSNR {p_tiled:.2} vs {p_whole:.2} dB",
        diff / norm
    );
    assert!(diff / norm < 5e-3, "relative difference {:.3}", diff / norm);
    assert!(p_tiled > p_whole - 0.2);

    // Circulant boundaries cannot be tiled: a clear refusal instead.
    let circulant = RlOptions {
        boundary: Boundary::Circulant,
        memory_limit: Some(1 << 20),
        ..opts
    };
    let err = richardson_lucy(&vol, &psf, &circulant, &mut NoProgress).unwrap_err();
    assert!(err.to_string().contains("not enough memory"), "{err}");
}
