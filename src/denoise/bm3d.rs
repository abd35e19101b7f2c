//! BM3D: block matching and 3D collaborative filtering of additive white Gaussian noise
//! (Dabov, Foi, Katkovnik & Egiazarian, IEEE TIP 2007), for one plane at a time.
//!
//! Two passes over reference blocks of 8×8 pixels every 3 pixels (and at the last row and
//! column), each searching a 39×39 window for similar blocks:
//! 1. **Hard thresholding**: up to 16 blocks of the noisy image whose mean squared
//!    difference to the reference is below `tau_match_ht · σ²` are stacked into a group
//!    (the largest power of two of them), transformed by an orthonormal 2D DCT per block and
//!    a Haar transform across the blocks, coefficients below `lambda_3d · σ` set to zero,
//!    transformed back. Weight of the group: 1 / (σ² · retained coefficients).
//! 2. **Wiener filtering**: matching on the basic estimate of pass 1 (up to 32 blocks,
//!    threshold `tau_match_wiener · σ²`); the noisy group is shrunk by the empirical Wiener
//!    gain |B|² / (|B|² + mu2 · σ²) of the basic estimate's group B. Weight 1 / (σ² · ‖W‖²).
//!
//! Every filtered block is added back with its weight times an 8×8 Kaiser window (β = 2);
//! the estimate is the weighted mean. λ₃D = 2.7 and mu2 = 1 are the paper's. The paper's
//! matching thresholds (τ 3000 and 400 on a 0–255 scale, whatever σ) are written here in
//! units of σ², so the filter does not depend on the image's intensity scale: 16 σ² and 8 σ²,
//! the paper's values at σ ≈ 14 and 7 (chosen on simulated widefield images at 10–100
//! photons: the paper's values at σ = 25, 4.8 σ² and 0.64 σ², lose 0.3 dB at 100 photons and
//! gain nothing at 10–30; the group size caps do the selecting). The DCT replaces the paper's
//! biorthogonal 1.5 wavelet in pass 1 (the paper lists both).
//!
//! Bands of reference rows run in parallel (rayon), each into its own accumulator; between
//! waves of bands the progress is reported and Esc / Ctrl-C honoured.

use crate::progress::{check_cancel, Progress};
use crate::{invalid, Result};
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

/// Block side, pixels.
const N: usize = 8;
/// Pixels per block.
const NN: usize = N * N;

/// Parameters of [`bm3d_plane`]; the defaults are the paper's normal profile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bm3dOptions {
    /// Noise standard deviation, in the image's units (1 after a variance-stabilising
    /// transform).
    pub sigma: f32,
    /// Hard threshold, in units of σ.
    pub lambda_3d: f32,
    /// Wiener gain regularisation: |B|² / (|B|² + mu2 · σ²).
    pub mu2: f32,
    /// Step between reference blocks, pixels.
    pub step: usize,
    /// Side of the search window, pixels (odd).
    pub search: usize,
    /// Blocks per group at most, pass 1 and pass 2 (powers of two).
    pub max_group_ht: usize,
    pub max_group_wiener: usize,
    /// Matching thresholds on the mean squared block difference, in units of σ²: of the noisy
    /// blocks in pass 1, of the basic estimate's blocks in pass 2.
    pub tau_match_ht: f32,
    pub tau_match_wiener: f32,
    /// Kaiser window parameter of the aggregation.
    pub kaiser_beta: f64,
}

impl Default for Bm3dOptions {
    fn default() -> Self {
        Bm3dOptions {
            sigma: 1.0,
            lambda_3d: 2.7,
            mu2: 1.0,
            step: 3,
            search: 39,
            max_group_ht: 16,
            max_group_wiener: 32,
            tau_match_ht: 16.0,
            tau_match_wiener: 8.0,
            kaiser_beta: 2.0,
        }
    }
}

impl Bm3dOptions {
    fn validate(&self) -> Result<()> {
        if !(self.sigma > 0.0 && self.sigma.is_finite()) {
            return invalid!("the noise level must be positive, not {}", self.sigma);
        }
        let pow2 = |n: usize| n.is_power_of_two() && n <= 64;
        if !(pow2(self.max_group_ht) && pow2(self.max_group_wiener)) {
            return invalid!("BM3D group sizes must be powers of two up to 64");
        }
        if self.step == 0 || self.step > N || self.search < 1 || self.search > 127 {
            return invalid!(
                "BM3D needs a step of 1–{N} pixels and a search window of 1–127 pixels"
            );
        }
        if !(self.lambda_3d >= 0.0 && self.mu2 >= 0.0) {
            return invalid!("BM3D thresholds must be non-negative");
        }
        Ok(())
    }
}

/// Which of the two passes runs.
#[derive(Clone, Copy, PartialEq)]
enum Pass {
    HardThreshold,
    Wiener,
}

/// The orthonormal DCT-II matrix of size 8 (`C[k][n]`) and the aggregation window.
struct Transforms {
    dct: [[f32; N]; N],
    kaiser: [f32; NN],
}

impl Transforms {
    fn new(beta: f64) -> Transforms {
        let mut dct = [[0f32; N]; N];
        for (k, row) in dct.iter_mut().enumerate() {
            let a = if k == 0 {
                (1.0 / N as f64).sqrt()
            } else {
                (2.0 / N as f64).sqrt()
            };
            for (n, v) in row.iter_mut().enumerate() {
                *v = (a
                    * (std::f64::consts::PI * (2 * n + 1) as f64 * k as f64 / (2 * N) as f64).cos())
                    as f32;
            }
        }
        let w1: Vec<f64> = (0..N)
            .map(|n| {
                let t = 2.0 * n as f64 / (N - 1) as f64 - 1.0;
                bessel_i0(beta * (1.0 - t * t).sqrt()) / bessel_i0(beta)
            })
            .collect();
        let mut kaiser = [0f32; NN];
        for i in 0..N {
            for j in 0..N {
                kaiser[i * N + j] = (w1[i] * w1[j]) as f32;
            }
        }
        Transforms { dct, kaiser }
    }

    /// In place: C · B · Cᵀ.
    fn dct2(&self, b: &mut [f32]) {
        let c = &self.dct;
        let mut t = [0f32; NN];
        for i in 0..N {
            for k in 0..N {
                t[i * N + k] = (0..N).map(|n| b[i * N + n] * c[k][n]).sum();
            }
        }
        for k in 0..N {
            for l in 0..N {
                b[k * N + l] = (0..N).map(|i| c[k][i] * t[i * N + l]).sum();
            }
        }
    }

    /// In place: Cᵀ · B · C.
    fn idct2(&self, b: &mut [f32]) {
        let c = &self.dct;
        let mut t = [0f32; NN];
        for k in 0..N {
            for n in 0..N {
                t[k * N + n] = (0..N).map(|l| b[k * N + l] * c[l][n]).sum();
            }
        }
        for i in 0..N {
            for n in 0..N {
                b[i * N + n] = (0..N).map(|k| c[k][i] * t[k * N + n]).sum();
            }
        }
    }
}

/// Modified Bessel function of the first kind, order 0 (power series).
fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term) = (1.0, 1.0);
    for k in 1..50 {
        term *= (x / (2.0 * k as f64)).powi(2);
        sum += term;
        if term < 1e-17 * sum {
            break;
        }
    }
    sum
}

/// Orthonormal Haar transform across the `n` blocks of a group (n a power of two), applied
/// to all 64 coefficient positions at once; `tmp` holds n · 64 values.
fn haar_forward(g: &mut [f32], n: usize, tmp: &mut [f32]) {
    let s = std::f32::consts::FRAC_1_SQRT_2;
    let mut len = n;
    while len > 1 {
        let h = len / 2;
        for i in 0..h {
            for p in 0..NN {
                let (a, b) = (g[2 * i * NN + p], g[(2 * i + 1) * NN + p]);
                tmp[i * NN + p] = (a + b) * s;
                tmp[(h + i) * NN + p] = (a - b) * s;
            }
        }
        g[..len * NN].copy_from_slice(&tmp[..len * NN]);
        len = h;
    }
}

/// Inverse of [`haar_forward`].
fn haar_inverse(g: &mut [f32], n: usize, tmp: &mut [f32]) {
    let s = std::f32::consts::FRAC_1_SQRT_2;
    let mut len = 2;
    while len <= n {
        let h = len / 2;
        for i in 0..h {
            for p in 0..NN {
                let (a, d) = (g[i * NN + p], g[(h + i) * NN + p]);
                tmp[2 * i * NN + p] = (a + d) * s;
                tmp[(2 * i + 1) * NN + p] = (a - d) * s;
            }
        }
        g[..len * NN].copy_from_slice(&tmp[..len * NN]);
        len *= 2;
    }
}

/// Reference positions along an axis of `len` pixels: every `step`, and the last one.
fn positions(len: usize, step: usize) -> Vec<usize> {
    let last = len - N;
    let mut p: Vec<usize> = (0..=last).step_by(step).collect();
    if *p.last().expect("len ≥ N") != last {
        p.push(last);
    }
    p
}

/// One image plane, row-major.
struct Plane<'a> {
    px: &'a [f32],
    ny: usize,
    nx: usize,
}

impl Plane<'_> {
    /// Sum of squared differences between the blocks at (r, c) and (y, x).
    #[inline]
    fn ssd(&self, r: usize, c: usize, y: usize, x: usize) -> f32 {
        let mut s = 0f32;
        for i in 0..N {
            let a: &[f32; N] = self.px[(r + i) * self.nx + c..][..N].try_into().unwrap();
            let b: &[f32; N] = self.px[(y + i) * self.nx + x..][..N].try_into().unwrap();
            for j in 0..N {
                let d = a[j] - b[j];
                s += d * d;
            }
        }
        s
    }

    /// Copies the block at (y, x) into `out` (64 values).
    fn block(&self, y: usize, x: usize, out: &mut [f32]) {
        for i in 0..N {
            out[i * N..(i + 1) * N].copy_from_slice(&self.px[(y + i) * self.nx + x..][..N]);
        }
    }

    /// Up to `max` blocks in the search window around (r, c) with an SSD below `tau`,
    /// best first (the reference itself is one), cut to a power of two.
    fn matches(&self, r: usize, c: usize, half: usize, tau: f32, max: usize) -> Vec<(u32, u32)> {
        let (y0, y1) = (r.saturating_sub(half), (r + half).min(self.ny - N));
        let (x0, x1) = (c.saturating_sub(half), (c + half).min(self.nx - N));
        let mut found: Vec<(f32, u32, u32)> = Vec::with_capacity(64);
        for y in y0..=y1 {
            for x in x0..=x1 {
                let d = if y == r && x == c {
                    -1.0
                } else {
                    self.ssd(r, c, y, x)
                };
                if d < tau {
                    found.push((d, y as u32, x as u32));
                }
            }
        }
        if found.len() > max {
            found.select_nth_unstable_by(max - 1, |a, b| a.0.total_cmp(&b.0));
            found.truncate(max);
        }
        found.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        let n = 1usize << (usize::BITS - 1 - found.len().leading_zeros());
        found.truncate(n);
        found.into_iter().map(|(_, y, x)| (y, x)).collect()
    }
}

/// Weighted sums of one band of rows `[row0, row0 + rows)`.
struct Accumulator {
    row0: usize,
    num: Vec<f32>,
    den: Vec<f32>,
}

/// One pass over the reference rows `refs_y` (all reference columns), accumulated.
fn filter_band(
    pass: Pass,
    noisy: &Plane,
    basic: Option<&Plane>,
    refs_y: &[usize],
    refs_x: &[usize],
    o: &Bm3dOptions,
    t: &Transforms,
) -> Accumulator {
    let (ny, nx) = (noisy.ny, noisy.nx);
    let half = o.search / 2;
    let row0 = refs_y[0].saturating_sub(half);
    let row1 = (refs_y[refs_y.len() - 1] + half + N).min(ny);
    let mut acc = Accumulator {
        row0,
        num: vec![0.0; (row1 - row0) * nx],
        den: vec![0.0; (row1 - row0) * nx],
    };
    let sigma2 = o.sigma * o.sigma;
    let (max, tau, matcher) = match pass {
        Pass::HardThreshold => (o.max_group_ht, o.tau_match_ht, noisy),
        Pass::Wiener => (
            o.max_group_wiener,
            o.tau_match_wiener,
            basic.expect("basic"),
        ),
    };
    let tau = tau * sigma2 * NN as f32;
    let gmax = max * NN;
    let (mut g, mut gb, mut tmp) = (vec![0f32; gmax], vec![0f32; gmax], vec![0f32; gmax]);
    let thr = o.lambda_3d * o.sigma;
    for &r in refs_y {
        for &c in refs_x {
            let m = matcher.matches(r, c, half, tau, max);
            let n = m.len();
            for (k, &(y, x)) in m.iter().enumerate() {
                let b = &mut g[k * NN..(k + 1) * NN];
                noisy.block(y as usize, x as usize, b);
                t.dct2(b);
            }
            haar_forward(&mut g, n, &mut tmp);
            let weight = match pass {
                Pass::HardThreshold => {
                    let mut kept = 0usize;
                    for v in g[..n * NN].iter_mut() {
                        if v.abs() < thr {
                            *v = 0.0;
                        } else {
                            kept += 1;
                        }
                    }
                    1.0 / kept.max(1) as f32
                }
                Pass::Wiener => {
                    let basic = basic.expect("basic");
                    for (k, &(y, x)) in m.iter().enumerate() {
                        let b = &mut gb[k * NN..(k + 1) * NN];
                        basic.block(y as usize, x as usize, b);
                        t.dct2(b);
                    }
                    haar_forward(&mut gb, n, &mut tmp);
                    let mut w2 = 0f32;
                    for (v, &b) in g[..n * NN].iter_mut().zip(&gb[..n * NN]) {
                        let w = b * b / (b * b + o.mu2 * sigma2);
                        *v *= w;
                        w2 += w * w;
                    }
                    1.0 / w2.max(1e-6)
                }
            };
            haar_inverse(&mut g, n, &mut tmp);
            for (k, &(y, x)) in m.iter().enumerate() {
                let b = &mut g[k * NN..(k + 1) * NN];
                t.idct2(b);
                let (y, x) = (y as usize - row0, x as usize);
                for i in 0..N {
                    let at = (y + i) * nx + x;
                    for j in 0..N {
                        let w = weight * t.kaiser[i * N + j];
                        acc.num[at + j] += w * b[i * N + j];
                        acc.den[at + j] += w;
                    }
                }
            }
        }
    }
    acc
}

/// One full pass: bands of reference rows in parallel, accumulated into the estimate.
#[allow(clippy::too_many_arguments)]
fn run_pass(
    pass: Pass,
    noisy: &Plane,
    basic: Option<&Plane>,
    o: &Bm3dOptions,
    t: &Transforms,
    progress: &mut dyn Progress,
    done: f32,
    span: f32,
) -> Result<Vec<f32>> {
    let (ny, nx) = (noisy.ny, noisy.nx);
    let refs_y = positions(ny, o.step);
    let refs_x = positions(nx, o.step);
    let bands: Vec<&[usize]> = refs_y.chunks(2).collect();
    let wave = (rayon::current_num_threads() * 2).max(2);
    let (mut num, mut den) = (vec![0f32; ny * nx], vec![0f32; ny * nx]);
    for (w, group) in bands.chunks(wave).enumerate() {
        check_cancel(progress)?;
        let accs: Vec<Accumulator> = group
            .par_iter()
            .map(|rows| filter_band(pass, noisy, basic, rows, &refs_x, o, t))
            .collect();
        for a in accs {
            let at = a.row0 * nx;
            for (d, s) in num[at..at + a.num.len()].iter_mut().zip(&a.num) {
                *d += s;
            }
            for (d, s) in den[at..at + a.den.len()].iter_mut().zip(&a.den) {
                *d += s;
            }
        }
        let f = ((w + 1) * wave).min(bands.len()) as f32 / bands.len() as f32;
        progress.fraction(done + span * f);
    }
    // Every pixel is covered: reference blocks tile the plane up to its last row/column.
    Ok(num
        .iter()
        .zip(&den)
        .zip(noisy.px)
        .map(|((&s, &w), &z)| if w > 0.0 { s / w } else { z })
        .collect())
}

/// BM3D of one plane of noise std `options.sigma` (both passes). Progress fractions run
/// from 0 to 1; the plane must be at least 8×8 pixels.
pub fn bm3d_plane(
    noisy: ArrayView2<f32>,
    options: &Bm3dOptions,
    progress: &mut dyn Progress,
) -> Result<Array2<f32>> {
    options.validate()?;
    let (ny, nx) = noisy.dim();
    if ny < N || nx < N {
        return invalid!("BM3D needs planes of at least {N}×{N} pixels; this one is {nx}×{ny}");
    }
    let owned = noisy.as_standard_layout();
    let px = owned.as_slice().expect("standard layout");
    let plane = Plane { px, ny, nx };
    let t = Transforms::new(options.kaiser_beta);
    progress.status("BM3D: hard thresholding");
    let basic = run_pass(
        Pass::HardThreshold,
        &plane,
        None,
        options,
        &t,
        progress,
        0.0,
        0.5,
    )?;
    let basic_plane = Plane { px: &basic, ny, nx };
    progress.status("BM3D: Wiener filtering");
    let out = run_pass(
        Pass::Wiener,
        &plane,
        Some(&basic_plane),
        options,
        &t,
        progress,
        0.5,
        0.5,
    )?;
    Ok(Array2::from_shape_vec((ny, nx), out).expect("same size"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The DCT and Haar transforms are orthonormal: inverse ∘ forward = identity and the
    /// energy is kept (float64 sums of seeded random blocks).
    #[test]
    fn transforms_are_orthonormal() {
        let t = Transforms::new(2.0);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let n = 8;
        let orig: Vec<f32> = (0..n * NN).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let mut g = orig.clone();
        let mut tmp = vec![0f32; n * NN];
        for b in g.chunks_mut(NN) {
            t.dct2(b);
        }
        haar_forward(&mut g, n, &mut tmp);
        let e0: f64 = orig.iter().map(|&v| (v as f64).powi(2)).sum();
        let e1: f64 = g.iter().map(|&v| (v as f64).powi(2)).sum();
        assert!((e0 - e1).abs() < 1e-4 * e0, "{e0} {e1}");
        haar_inverse(&mut g, n, &mut tmp);
        for b in g.chunks_mut(NN) {
            t.idct2(b);
        }
        let err = g
            .iter()
            .zip(&orig)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(err < 1e-5, "{err}");
        // The DC coefficient of a constant block is 8 × the value.
        let mut c = [0.5f32; NN];
        t.dct2(&mut c);
        assert!((c[0] - 4.0).abs() < 1e-5 && c[1..].iter().all(|v| v.abs() < 1e-5));
    }

    #[test]
    fn kaiser_window_matches_its_definition() {
        // I0(0) = 1, I0(2) = 2.2795853 (tables); the window's ends are 1 / I0(β).
        assert!((bessel_i0(2.0) - 2.279_585_302_3).abs() < 1e-9);
        let t = Transforms::new(2.0);
        let end = (1.0 / 2.279_585_302_3f64) as f32;
        assert!((t.kaiser[0] - end * end).abs() < 1e-6);
    }

    /// Pure noise around a smooth ramp: BM3D removes most of it (RMSE against the truth
    /// drops below a third of σ) and keeps the ramp (no bias).
    #[test]
    fn removes_white_noise_from_a_smooth_image() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (ny, nx) = (64, 80);
        let truth = Array2::from_shape_fn((ny, nx), |(y, x)| {
            10.0 + 0.1 * x as f32 + 3.0 * ((y as f32) / 9.0).sin()
        });
        let normal = rand_distr::Normal::new(0.0f32, 1.0).unwrap();
        let noisy = truth.mapv(|v| v + rand_distr::Distribution::sample(&normal, &mut rng));
        let out = bm3d_plane(noisy.view(), &Bm3dOptions::default(), &mut NoProgress).unwrap();
        let rmse = ((&out - &truth).mapv(|d| (d as f64).powi(2)).mean().unwrap()).sqrt();
        let bias = (&out - &truth).mapv(|d| d as f64).mean().unwrap();
        assert!(rmse < 0.3, "RMSE {rmse}");
        assert!(bias.abs() < 0.05, "bias {bias}");
    }

    #[test]
    fn small_planes_and_bad_options_are_refused() {
        let small = Array2::<f32>::zeros((7, 20));
        let e = bm3d_plane(small.view(), &Bm3dOptions::default(), &mut NoProgress);
        assert!(e.unwrap_err().to_string().contains("at least 8×8"));
        let o = Bm3dOptions {
            max_group_ht: 12,
            ..Default::default()
        };
        let ok = Array2::<f32>::zeros((16, 16));
        assert!(bm3d_plane(ok.view(), &o, &mut NoProgress).is_err());
    }
}
