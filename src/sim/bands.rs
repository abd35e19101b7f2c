//! Band separation and band shifting for 2D SIM with one harmonic (Gustafsson 2000).
//!
//! A frame taken at pattern phase φ_p is D_p = B₀ + e^{iφ_p}·B₊₁ + e^{−iφ_p}·B₋₁, where band
//! B_b carries the object spectrum shifted by b·k₀ (times m/2 for b = ±1). With N ≥ 3 phases
//! the bands are the least-squares solution, the pseudo-inverse (MᴴM)⁻¹Mᴴ of the N×3 phase
//! matrix M = [1, e^{iφ_p}, e^{−iφ_p}] applied frame by frame. Separation is linear, so it is
//! done on the real-space frames and the bands stay complex images.

use crate::fft::Complex32;
use rayon::prelude::*;
use rustfft::num_complex::Complex64;
use std::f64::consts::PI;

/// Bands 0 and +1 of one pattern direction, complex real-space images (ny·nx, row-major).
/// (Band −1 of real frames is the complex conjugate of band +1.)
pub struct Bands {
    pub zero: Vec<Complex32>,
    pub plus: Vec<Complex32>,
}

/// Separates `frames` (one per phase, real, same size) taken at pattern phases `phases_rad`.
/// Panics unless there are at least 3 frames, one per phase.
pub fn separate(frames: &[&[f32]], phases_rad: &[f64]) -> Bands {
    assert!(frames.len() >= 3 && frames.len() == phases_rad.len());
    separate_weighted(frames, &separation_weights(phases_rad))
}

/// The weights of bands 0 and +1 for frames taken at pattern phases `phases_rad`, one per
/// frame: band b = Σ_p weights[b][p]·frame_p (rows of the pseudo-inverse, in f32).
pub fn separation_weights(phases_rad: &[f64]) -> [Vec<Complex32>; 2] {
    let w = pseudo_inverse(phases_rad);
    let weights = |b: usize| -> Vec<Complex32> {
        w[b].iter()
            .map(|c| Complex32::new(c.re as f32, c.im as f32))
            .collect()
    };
    [weights(0), weights(1)]
}

/// Bands 0 and +1 of `frames` (one per weight) with [`separation_weights`].
pub fn separate_weighted(frames: &[&[f32]], [w0, w1]: &[Vec<Complex32>; 2]) -> Bands {
    assert!(frames.len() == w0.len() && frames.len() == w1.len());
    let n = frames[0].len();
    let (mut zero, mut plus) = (vec![Complex32::default(); n], vec![Complex32::default(); n]);
    const CHUNK: usize = 4096;
    zero.par_chunks_mut(CHUNK)
        .zip(plus.par_chunks_mut(CHUNK))
        .enumerate()
        .for_each(|(c, (z, p))| {
            let start = c * CHUNK;
            for (f, (&a, &b)) in frames.iter().zip(w0.iter().zip(w1)) {
                let f = &f[start..start + z.len()];
                for ((zv, pv), &v) in z.iter_mut().zip(p.iter_mut()).zip(f) {
                    *zv += a * v;
                    *pv += b * v;
                }
            }
        });
    Bands { zero, plus }
}

/// Rows of (MᴴM)⁻¹Mᴴ for bands (0, +1, −1): 3 rows of N weights.
fn pseudo_inverse(phases_rad: &[f64]) -> [Vec<Complex64>; 3] {
    let m: Vec<[Complex64; 3]> = phases_rad
        .iter()
        .map(|&p| {
            let e = Complex64::from_polar(1.0, p);
            [Complex64::new(1.0, 0.0), e, e.conj()]
        })
        .collect();
    // Normal matrix A = MᴴM (3×3 Hermitian), inverted by Gauss–Jordan with pivoting.
    let mut a = [[Complex64::default(); 6]; 3];
    for r in 0..3 {
        for c in 0..3 {
            a[r][c] = m.iter().map(|row| row[r].conj() * row[c]).sum();
        }
        a[r][3 + r] = Complex64::new(1.0, 0.0);
    }
    for col in 0..3 {
        let piv = (col..3)
            .max_by(|&i, &j| a[i][col].norm().total_cmp(&a[j][col].norm()))
            .expect("three rows");
        a.swap(col, piv);
        let d = a[col][col];
        assert!(d.norm() > 1e-9, "SIM phases do not separate the bands");
        for v in a[col].iter_mut() {
            *v /= d;
        }
        for r in 0..3 {
            if r != col {
                let f = a[r][col];
                let pivot_row = a[col];
                for (v, &q) in a[r].iter_mut().zip(&pivot_row) {
                    *v -= f * q;
                }
            }
        }
    }
    let row = |b: usize| -> Vec<Complex64> {
        m.iter()
            .map(|mp| (0..3).map(|c| a[b][3 + c] * mp[c].conj()).sum())
            .collect()
    };
    [row(0), row(1), row(2)]
}

/// Equidistant phases φ₀ + 2πp/N, p = 0..N.
pub fn equidistant_phases(n: usize, offset_rad: f64) -> Vec<f64> {
    (0..n)
        .map(|p| offset_rad + 2.0 * PI * p as f64 / n as f64)
        .collect()
}

/// Multiplies a complex (ny, nx) image by the phase ramp e^{−2πi(kx·x + ky·y)}, with (kx, ky)
/// in cycles per pixel: this shifts its spectrum by −k (sub-pixel shifts included).
pub fn shift_spectrum_down(img: &mut [Complex32], nx: usize, k_per_px: [f64; 2]) {
    let ex: Vec<Complex64> = (0..nx)
        .map(|x| Complex64::from_polar(1.0, -2.0 * PI * k_per_px[0] * x as f64))
        .collect();
    img.par_chunks_mut(nx).enumerate().for_each(|(y, row)| {
        let ey = Complex64::from_polar(1.0, -2.0 * PI * k_per_px[1] * y as f64);
        for (v, e) in row.iter_mut().zip(&ex) {
            let c = ey * e;
            *v *= Complex32::new(c.re as f32, c.im as f32);
        }
    });
}

/// Copies a spectrum of (ny, nx) into the centre-frequency part of an (fy, fx) spectrum
/// (zero padding, FFT order; fy ≥ ny, fx ≥ nx), multiplied by `scale`.
pub fn zero_pad(
    spec: &[Complex32],
    (ny, nx): (usize, usize),
    (fy, fx): (usize, usize),
    scale: f32,
) -> Vec<Complex32> {
    let mut out = crate::image::work_buffer(fy * fx);
    let map = padded_index;
    for j in 0..ny {
        let fj = map(j, ny, fy);
        for i in 0..nx {
            out[fj * fx + map(i, nx, fx)] = spec[j * nx + i] * scale;
        }
    }
    out
}

/// Index on an axis of `f` values (FFT order) of index `i` on an axis of `n` ≤ `f` values: the
/// same signed frequency.
fn padded_index(i: usize, n: usize, f: usize) -> usize {
    let s = super::otf::signed_index(i, n);
    if s < 0 {
        (f as isize + s) as usize
    } else {
        s as usize
    }
}

/// The low-frequency (ny, nx) part of an (fy, fx) spectrum (FFT order), times `scale`: the
/// inverse of [`zero_pad`] (Nyquist terms of even sizes are taken from the positive side).
pub fn crop_spectrum(
    spec: &[Complex32],
    (fy, fx): (usize, usize),
    (ny, nx): (usize, usize),
    scale: f32,
) -> Vec<Complex32> {
    let map = padded_index;
    let mut out = vec![Complex32::default(); ny * nx];
    for j in 0..ny {
        let fj = map(j, ny, fy);
        for i in 0..nx {
            out[j * nx + i] = spec[fj * fx + map(i, nx, fx)] * scale;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separation_recovers_bands() {
        // Pixel values of three bands; frames built from them at 5 unequal phases.
        let (b0, b1) = (Complex32::new(2.0, 0.0), Complex32::new(0.3, -0.4));
        let phases = [0.1, 1.3, 2.2, 3.9, 5.0];
        let frames: Vec<Vec<f32>> = phases
            .iter()
            .map(|&p: &f64| {
                let e = Complex32::new(p.cos() as f32, p.sin() as f32);
                vec![(b0 + e * b1 + e.conj() * b1.conj()).re]
            })
            .collect();
        let refs: Vec<&[f32]> = frames.iter().map(|f| f.as_slice()).collect();
        let bands = separate(&refs, &phases);
        assert!((bands.zero[0] - b0).norm() < 1e-5);
        assert!((bands.plus[0] - b1).norm() < 1e-5);
    }

    #[test]
    fn ramp_shifts_spectrum() {
        let (ny, nx) = (8, 8);
        let mut img = vec![Complex32::new(1.0, 0.0); ny * nx];
        shift_spectrum_down(&mut img, nx, [3.0 / 8.0, -2.0 / 8.0]);
        let fft = crate::fft::Fft2::new(ny, nx);
        fft.forward(&mut img);
        // The DC peak moves to (kx, ky) = (−3, +2).
        let peak = img
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.norm().total_cmp(&b.1.norm()))
            .unwrap()
            .0;
        assert_eq!(peak, 2 * nx + (nx - 3));
    }
}
