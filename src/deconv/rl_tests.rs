//! Richardson–Lucy against a slow, obviously-correct float64 reference (direct convolution
//! sums, no FFT), and the guards on bad input.

use super::*;
use crate::progress::NoProgress;
use crate::VoxelSize;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

type Shape = (usize, usize, usize);

/// Direct float64 RL. The object lives on the field of view extended by the kernel's
/// half-size c on each side (non-circulant) or on the field of view with wrap-around
/// (circulant). Returns the estimate over the field of view.
fn reference_rl(
    y: &[f64],
    m: Shape,
    h: &[f64],
    p: Shape,
    iterations: usize,
    circulant: bool,
) -> Vec<f64> {
    let c = (p.0 / 2, p.1 / 2, p.2 / 2);
    // Object domain: index o ↔ image coordinate o − c (non-circulant), o (circulant).
    let d = if circulant {
        m
    } else {
        (m.0 + 2 * c.0, m.1 + 2 * c.1, m.2 + 2 * c.2)
    };
    let off = if circulant { (0, 0, 0) } else { c };
    let idx = |s: Shape, z: usize, y: usize, x: usize| (z * s.1 + y) * s.2 + x;
    // Object voxel seen by image voxel v through kernel tap u: o = v − (u − c) (+ offset).
    let object_of = |v: (usize, usize, usize), u: (usize, usize, usize)| -> (usize, usize, usize) {
        let f = |v: usize, u: usize, c: usize, off: usize, n: usize| -> usize {
            let o = v as isize - u as isize + c as isize + off as isize;
            o.rem_euclid(n as isize) as usize
        };
        (
            f(v.0, u.0, c.0, off.0, d.0),
            f(v.1, u.1, c.1, off.1, d.1),
            f(v.2, u.2, c.2, off.2, d.2),
        )
    };
    let taps: Vec<(Shape, f64)> = (0..p.0)
        .flat_map(|a| (0..p.1).flat_map(move |b| (0..p.2).map(move |e| (a, b, e))))
        .map(|u| (u, h[idx(p, u.0, u.1, u.2)]))
        .collect();
    let pixels: Vec<Shape> = (0..m.0)
        .flat_map(|a| (0..m.1).flat_map(move |b| (0..m.2).map(move |e| (a, b, e))))
        .collect();
    let mean = y.iter().sum::<f64>() / y.len() as f64;
    let nd = d.0 * d.1 * d.2;
    let mut normal = vec![0.0; nd];
    for &v in &pixels {
        for &(u, w) in &taps {
            let o = object_of(v, u);
            normal[idx(d, o.0, o.1, o.2)] += w;
        }
    }
    let mut x = vec![mean; nd];
    for _ in 0..iterations {
        let mut corr = vec![0.0; nd];
        for &v in &pixels {
            let hx: f64 = taps
                .iter()
                .map(|&(u, w)| {
                    let o = object_of(v, u);
                    w * x[idx(d, o.0, o.1, o.2)]
                })
                .sum();
            let ratio = y[idx(m, v.0, v.1, v.2)] / hx;
            for &(u, w) in &taps {
                let o = object_of(v, u);
                corr[idx(d, o.0, o.1, o.2)] += w * ratio;
            }
        }
        for i in 0..nd {
            x[i] *= corr[i] / normal[i];
        }
    }
    pixels
        .iter()
        .map(|&(a, b, e)| x[idx(d, a + off.0, b + off.1, e + off.2)])
        .collect()
}

fn random_problem(m: Shape, p: Shape, seed: u64) -> (Volume, Psf) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let img: Vec<f32> = (0..m.0 * m.1 * m.2)
        .map(|_| rng.gen_range(1.0..100.0))
        .collect();
    // An asymmetric, non-separable kernel catches flipped or shifted adjoints.
    let mut k: Vec<f32> = (0..p.0 * p.1 * p.2)
        .map(|_| rng.gen_range(0.05..1.0))
        .collect();
    let s: f32 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= s);
    let vol = Volume::from_vec(img, m, VoxelSize::default()).unwrap();
    let psf = Psf {
        data: Array3::from_shape_vec(p, k).unwrap(),
    };
    (vol, psf)
}

fn check_against_reference(m: Shape, p: Shape, boundary: Boundary, iterations: usize) {
    let (vol, psf) = random_problem(m, p, 3);
    let opts = RlOptions {
        iterations,
        boundary,
        ..Default::default()
    };
    let got = richardson_lucy(&vol, &psf, &opts, &mut NoProgress).unwrap();
    let y: Vec<f64> = vol.data.iter().map(|&v| v as f64).collect();
    let h: Vec<f64> = psf.data.iter().map(|&v| v as f64).collect();
    let want = reference_rl(&y, m, &h, p, iterations, boundary == Boundary::Circulant);
    let num: f64 = got
        .volume
        .data
        .iter()
        .zip(&want)
        .map(|(&a, &b)| (a as f64 - b).powi(2))
        .sum();
    let den: f64 = want.iter().map(|b| b * b).sum();
    let rel = (num / den).sqrt();
    assert!(
        rel < 2e-5,
        "{boundary:?} {m:?}⊛{p:?}: relative RMS error {rel:e}"
    );
    assert_eq!(got.volume.shape(), m);
    assert_eq!(got.iterations, iterations);
}

#[test]
fn non_circulant_2d_matches_float64_reference() {
    check_against_reference((1, 20, 23), (1, 5, 7), Boundary::NonCirculant, 10);
}

#[test]
fn circulant_2d_matches_float64_reference() {
    check_against_reference((1, 20, 23), (1, 5, 7), Boundary::Circulant, 10);
}

#[test]
fn non_circulant_3d_matches_float64_reference() {
    check_against_reference((6, 10, 12), (3, 5, 5), Boundary::NonCirculant, 8);
}

#[test]
fn circulant_3d_matches_float64_reference() {
    check_against_reference((6, 10, 12), (3, 5, 5), Boundary::Circulant, 8);
}

#[test]
fn stack_with_2d_psf_equals_plane_by_plane() {
    let (vol, psf) = random_problem((3, 16, 18), (1, 5, 5), 9);
    let opts = RlOptions {
        iterations: 6,
        ..Default::default()
    };
    let all = richardson_lucy(&vol, &psf, &opts, &mut NoProgress).unwrap();
    for z in 0..3 {
        let plane = Volume::new(vol.data.slice(s![z..z + 1, .., ..]).to_owned(), vol.voxel);
        let one = richardson_lucy(&plane, &psf, &opts, &mut NoProgress).unwrap();
        let diff = (&one.volume.data - &all.volume.data.slice(s![z..z + 1, .., ..]))
            .iter()
            .fold(0f32, |a, &b| a.max(b.abs()));
        assert!(diff < 1e-4, "plane {z}: {diff}");
    }
}

#[test]
fn tolerance_stops_early() {
    let (vol, psf) = random_problem((1, 24, 24), (1, 5, 5), 4);
    let opts = RlOptions {
        iterations: 500,
        tolerance: 1e-3,
        ..Default::default()
    };
    let got = richardson_lucy(&vol, &psf, &opts, &mut NoProgress).unwrap();
    assert!(
        got.iterations > 1 && got.iterations < 500,
        "{}",
        got.iterations
    );
}

struct CancelAfter(usize);
impl Progress for CancelAfter {
    fn cancelled(&mut self) -> bool {
        if self.0 == 0 {
            return true;
        }
        self.0 -= 1;
        false
    }
}

#[test]
fn cancel_mid_run_returns_cancelled_and_leaves_input() {
    let (vol, psf) = random_problem((4, 20, 20), (3, 5, 5), 5);
    let before = vol.clone();
    let r = richardson_lucy(&vol, &psf, &RlOptions::default(), &mut CancelAfter(5));
    assert!(matches!(r, Err(Error::Cancelled)));
    assert_eq!(vol, before);
}

fn err_text(vol: &Volume, psf: &Psf, opts: &RlOptions) -> String {
    match richardson_lucy(vol, psf, opts, &mut NoProgress) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("expected an error"),
    }
}

#[test]
fn bad_inputs_give_clear_messages() {
    let (vol, psf) = random_problem((1, 16, 16), (1, 5, 5), 1);
    let opts = RlOptions::default();

    let mut nan = vol.clone();
    nan.data[[0, 3, 4]] = f32::NAN;
    let before = nan.clone();
    let msg = err_text(&nan, &psf, &opts);
    assert!(
        msg.contains("not numbers") && msg.contains("x=4, y=3"),
        "{msg}"
    );
    assert_eq!(nan.data[[0, 3, 5]], before.data[[0, 3, 5]]);

    let one = Volume::from_vec(vec![5.0], (1, 1, 1), VoxelSize::default()).unwrap();
    assert!(err_text(&one, &psf, &opts).contains("only 1×1 pixels"));

    let empty = Volume::from_vec(vec![], (0, 0, 0), VoxelSize::default()).unwrap();
    assert!(err_text(&empty, &psf, &opts).contains("empty"));

    let zero_psf = Psf {
        data: Array3::zeros((1, 5, 5)),
    };
    assert!(err_text(&vol, &zero_psf, &opts).contains("positive sum"));

    let zero_it = RlOptions {
        iterations: 0,
        ..Default::default()
    };
    assert!(err_text(&vol, &psf, &zero_it).contains("at least 1"));

    let black = Volume::from_vec(vec![0.0; 256], (1, 16, 16), VoxelSize::default()).unwrap();
    assert!(err_text(&black, &psf, &opts).contains("no positive pixel"));
}

#[test]
fn psf_larger_than_image_is_cropped_with_a_warning() {
    let (vol, _) = random_problem((1, 12, 12), (1, 1, 1), 2);
    let (_, big) = random_problem((1, 1, 1), (1, 41, 41), 2);
    for boundary in [Boundary::NonCirculant, Boundary::Circulant] {
        let opts = RlOptions {
            iterations: 3,
            boundary,
            ..Default::default()
        };
        let got = richardson_lucy(&vol, &big, &opts, &mut NoProgress).unwrap();
        assert_eq!(got.volume.shape(), (1, 12, 12));
        assert!(got.volume.data.iter().all(|v| v.is_finite() && *v >= 0.0));
        assert!(
            got.warnings.iter().any(|w| w.contains("cropped")),
            "{boundary:?}: {:?}",
            got.warnings
        );
    }
}

#[test]
fn too_large_for_memory_is_refused_before_allocating() {
    // 2048 × 2048 × 256 voxels padded for a PSF: about 40 GiB of work buffers.
    let grid = (320, 2160, 2160);
    let err = check_memory_against(grid, &RlOptions::default(), Some(8 << 30)).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("not enough memory") && msg.contains("8192 MiB"),
        "{msg}"
    );
    assert!(check_memory_against((64, 320, 320), &RlOptions::default(), Some(8 << 30)).is_ok());
}

/// Richardson–Lucy is linear in the image's scale: images near f32's limits (a constant
/// 3e38, or subnormal 1e-42) once deconvolved to all zeros; they give the scaled result of
/// the same image at ordinary values.
#[test]
fn extreme_scales_give_the_scaled_result() {
    let (vol, psf) = random_problem((1, 16, 16), (1, 5, 5), 11);
    let opts = RlOptions {
        iterations: 5,
        ..Default::default()
    };
    let plain = richardson_lucy(&vol, &psf, &opts, &mut NoProgress).unwrap();
    let peak = plain.volume.data.iter().fold(0f32, |m, &v| m.max(v)) as f64;
    for scale in [1e30, 1e-40] {
        let scaled = Volume::new(vol.data.mapv(|v| (v as f64 * scale) as f32), vol.voxel);
        let got = richardson_lucy(&scaled, &psf, &opts, &mut NoProgress).unwrap();
        for (a, b) in got.volume.data.iter().zip(plain.volume.data.iter()) {
            let back = *a as f64 / scale;
            assert!(
                (back - *b as f64).abs() <= 1e-3 * peak,
                "scale {scale:e}: {back} vs {b}"
            );
        }
    }
    for value in [3e38f32, 1e-42] {
        let flat = Volume::from_vec(vec![value; 256], (1, 16, 16), VoxelSize::default()).unwrap();
        let got = richardson_lucy(&flat, &psf, &opts, &mut NoProgress).unwrap();
        for &v in got.volume.data.iter() {
            assert!(
                ((v as f64) / (value as f64) - 1.0).abs() < 1e-2,
                "constant {value:e} became {v:e}"
            );
        }
    }
}
