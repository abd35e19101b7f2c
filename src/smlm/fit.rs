//! Fitting one spot: an integrated Gaussian PSF plus a flat background,
//!
//! μ(i, j) = b + N · Eₓ(i) · E_y(j),  Eₓ(i) = ½[erf((i + 1 − x)/(√2σ)) − erf((i − x)/(√2σ))],
//!
//! (pixel i covers [i, i + 1) in window pixels), by Levenberg–Marquardt on the Poisson
//! log-likelihood (Laurence & Chromy 2010; Smith et al. 2010; Gpufit's MLE estimator) or on
//! the sum of squares. Parameters x, y (pixels), N (photons), b (photons per pixel) and σ
//! (pixels); analytic derivatives. The Cramér–Rao lower bound comes from the Poisson Fisher
//! information of the same model at the estimate. A fit that leaves the window, goes
//! non-finite, meets a singular system or ends with an implausible σ is rejected (`None`),
//! never a panic.

// Small dense linear algebra on 5 parameters reads best with indices.
#![allow(clippy::needless_range_loop)]

use crate::special::erf;

/// Largest fit window side (pixels) supported.
pub const MAX_WINDOW: usize = 31;

/// Objective of the fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FitMethod {
    /// Maximum likelihood under Poisson noise (the default: reaches the CRLB).
    #[default]
    Mle,
    /// Unweighted least squares (faster to converge on bright spots, less precise on dim ones).
    LeastSquares,
}

/// Settings of the spot fitter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitOptions {
    pub method: FitMethod,
    /// Fit window half-size, pixels: the window is (2r + 1)² pixels around the candidate.
    pub radius: usize,
    /// Starting PSF σ, pixels.
    pub initial_sigma_px: f64,
    /// Fits ending with σ outside this range (pixels) are rejected.
    pub sigma_range_px: (f64, f64),
    /// Levenberg–Marquardt iteration limit.
    pub max_iterations: usize,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            method: FitMethod::Mle,
            radius: 3,
            initial_sigma_px: 1.3,
            sigma_range_px: (0.5, 3.0),
            max_iterations: 30,
        }
    }
}

/// A converged fit, in window coordinates (pixels, origin at the window's top-left corner).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spot {
    pub x: f64,
    pub y: f64,
    /// Photons in the spot.
    pub photons: f64,
    /// Background, photons per pixel.
    pub background: f64,
    /// PSF σ, pixels.
    pub sigma: f64,
    /// CRLB variances of x and y, pixels².
    pub crlb_x: f64,
    pub crlb_y: f64,
    /// Standard deviation of the residuals data − model, photons per pixel.
    pub residual_std: f64,
    /// Iterations used.
    pub iterations: usize,
}

const NP: usize = 5;

/// Integrals of a unit-area 1D Gaussian centred at `x` with σ over pixels [i, i + 1),
/// i = 0..n, and their derivatives with respect to x and σ.
pub fn pixel_integrals(x: f64, sigma: f64, e: &mut [f64], de_dx: &mut [f64], de_ds: &mut [f64]) {
    let n = e.len();
    let s2 = std::f64::consts::SQRT_2 * sigma;
    let norm = 1.0 / ((2.0 * std::f64::consts::PI).sqrt() * sigma);
    let mut u = -x;
    let t = u / s2;
    let mut erf_prev = erf(t);
    let mut g_prev = (-t * t).exp();
    for i in 0..n {
        let u1 = u + 1.0;
        let t1 = u1 / s2;
        let erf1 = erf(t1);
        let g1 = (-t1 * t1).exp();
        e[i] = 0.5 * (erf1 - erf_prev);
        de_dx[i] = -norm * (g1 - g_prev);
        de_ds[i] = -norm / sigma * (u1 * g1 - u * g_prev);
        u = u1;
        erf_prev = erf1;
        g_prev = g1;
    }
}

/// Model, cost, gradient and curvature at θ.
struct Eval {
    cost: f64,
    grad: [f64; NP],
    hess: [[f64; NP]; NP],
}

struct Model {
    w: usize,
    ex: [f64; MAX_WINDOW],
    ey: [f64; MAX_WINDOW],
    dex: [f64; MAX_WINDOW],
    dey: [f64; MAX_WINDOW],
    dsx: [f64; MAX_WINDOW],
    dsy: [f64; MAX_WINDOW],
}

impl Model {
    fn new(w: usize) -> Self {
        Model {
            w,
            ex: [0.0; MAX_WINDOW],
            ey: [0.0; MAX_WINDOW],
            dex: [0.0; MAX_WINDOW],
            dey: [0.0; MAX_WINDOW],
            dsx: [0.0; MAX_WINDOW],
            dsy: [0.0; MAX_WINDOW],
        }
    }

    fn set(&mut self, th: &[f64; NP]) {
        let w = self.w;
        pixel_integrals(
            th[0],
            th[4],
            &mut self.ex[..w],
            &mut self.dex[..w],
            &mut self.dsx[..w],
        );
        pixel_integrals(
            th[1],
            th[4],
            &mut self.ey[..w],
            &mut self.dey[..w],
            &mut self.dsy[..w],
        );
    }

    /// μ and ∂μ/∂θ at pixel (row j, column i).
    #[inline]
    fn at(&self, th: &[f64; NP], j: usize, i: usize) -> (f64, [f64; NP]) {
        let n = th[2];
        let exy = self.ex[i] * self.ey[j];
        let mu = th[3] + n * exy;
        let d = [
            n * self.dex[i] * self.ey[j],
            n * self.ex[i] * self.dey[j],
            exy,
            1.0,
            n * (self.dsx[i] * self.ey[j] + self.ex[i] * self.dsy[j]),
        ];
        (mu, d)
    }

    /// Cost (Poisson deviance or sum of squares), its gradient/2 and the LM curvature.
    fn eval(&mut self, th: &[f64; NP], data: &[f64], used: &[bool], method: FitMethod) -> Eval {
        self.set(th);
        let w = self.w;
        let mut ev = Eval {
            cost: 0.0,
            grad: [0.0; NP],
            hess: [[0.0; NP]; NP],
        };
        for j in 0..w {
            for i in 0..w {
                if !used[j * w + i] {
                    continue;
                }
                let dk = data[j * w + i];
                let (mu, d) = self.at(th, j, i);
                let (w1, w2) = match method {
                    FitMethod::Mle => {
                        let mu = mu.max(1e-12);
                        ev.cost += 2.0 * (mu - dk);
                        if dk > 0.0 {
                            ev.cost -= 2.0 * dk * (mu / dk).ln();
                        }
                        (1.0 - dk / mu, dk / (mu * mu))
                    }
                    FitMethod::LeastSquares => {
                        ev.cost += (mu - dk) * (mu - dk);
                        (mu - dk, 1.0)
                    }
                };
                for a in 0..NP {
                    ev.grad[a] += w1 * d[a];
                    let wd = w2 * d[a];
                    for b in a..NP {
                        ev.hess[a][b] += wd * d[b];
                    }
                }
            }
        }
        for a in 0..NP {
            for b in 0..a {
                ev.hess[a][b] = ev.hess[b][a];
            }
        }
        ev
    }
}

/// Solves A·x = b (5×5) by Gaussian elimination with partial pivoting; `None` when singular.
fn solve(mut a: [[f64; NP]; NP], mut b: [f64; NP]) -> Option<[f64; NP]> {
    for c in 0..NP {
        let p = (c..NP).max_by(|&r, &s| a[r][c].abs().total_cmp(&a[s][c].abs()))?;
        if a[p][c].abs() <= 1e-300 || !a[p][c].is_finite() {
            return None;
        }
        a.swap(c, p);
        b.swap(c, p);
        for r in c + 1..NP {
            let f = a[r][c] / a[c][c];
            for k in c..NP {
                a[r][k] -= f * a[c][k];
            }
            b[r] -= f * b[c];
        }
    }
    let mut x = [0.0; NP];
    for r in (0..NP).rev() {
        let mut s = b[r];
        for k in r + 1..NP {
            s -= a[r][k] * x[k];
        }
        x[r] = s / a[r][r];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// Diagonal of the inverse of a symmetric 5×5 matrix (columns solved one by one).
fn inverse_diagonal(a: &[[f64; NP]; NP]) -> Option<[f64; NP]> {
    let mut diag = [0.0; NP];
    for (k, d) in diag.iter_mut().enumerate() {
        let mut e = [0.0; NP];
        e[k] = 1.0;
        *d = solve(*a, e)?[k];
    }
    Some(diag)
}

/// Fits a `w`×`w` window of photon counts (row-major, x fastest). For the MLE, values
/// below 0 (read noise) count as 0. Returns `None` when the fit fails.
pub fn fit_spot(window: &[f64], w: usize, opts: &FitOptions) -> Option<Spot> {
    fit_spot_masked(window, w, None, opts)
}

/// [`fit_spot`] using only the pixels where `used` is true (e.g. leaving out the side of a
/// neighbouring molecule); `None` uses them all.
pub fn fit_spot_masked(
    window: &[f64],
    w: usize,
    used: Option<&[bool]>,
    opts: &FitOptions,
) -> Option<Spot> {
    if !(3..=MAX_WINDOW).contains(&w) || window.len() != w * w {
        return None;
    }
    let all = [true; MAX_WINDOW * MAX_WINDOW];
    let used = match used {
        Some(u) if u.len() == w * w => u,
        Some(_) => return None,
        None => &all[..w * w],
    };
    if used.iter().filter(|&&u| u).count() < 2 * NP {
        return None;
    }
    let mut buf = [0.0f64; MAX_WINDOW * MAX_WINDOW];
    let data = &mut buf[..w * w];
    for (d, &v) in data.iter_mut().zip(window) {
        if !v.is_finite() {
            return None;
        }
        *d = match opts.method {
            FitMethod::Mle => v.max(0.0),
            FitMethod::LeastSquares => v,
        };
    }
    let data = &*data;
    let mut th = initial_guess(data, used, w, opts.initial_sigma_px);
    let mut model = Model::new(w);
    let mut ev = model.eval(&th, data, used, opts.method);
    let mut lambda = 1e-3;
    let mut iterations = 0;
    while iterations < opts.max_iterations {
        iterations += 1;
        let mut a = ev.hess;
        for (k, row) in a.iter_mut().enumerate() {
            row[k] += lambda * row[k] + 1e-12;
        }
        let step = solve(a, ev.grad.map(|g| -g))?;
        let mut next = th;
        for k in 0..NP {
            next[k] += step[k];
        }
        // Keep the model positive and σ sane; steps out of bounds are halved instead.
        if next[2] <= 0.0 {
            next[2] = th[2] * 0.5;
        }
        if next[3] <= 0.0 {
            next[3] = th[3] * 0.5;
        }
        next[4] = next[4].clamp(th[4] * 0.5, th[4] * 2.0).clamp(0.1, 10.0);
        let ev_next = model.eval(&next, data, used, opts.method);
        if ev_next.cost.is_finite() && ev_next.cost <= ev.cost {
            let change = ev.cost - ev_next.cost;
            th = next;
            ev = ev_next;
            lambda = (lambda * 0.1).max(1e-9);
            let moved = step[0].abs().max(step[1].abs()).max(step[4].abs());
            if change <= 1e-9 * ev.cost.abs().max(1.0) || moved < 1e-6 {
                break;
            }
        } else {
            lambda *= 10.0;
            if lambda > 1e9 {
                break;
            }
        }
    }
    let [x, y, photons, background, sigma] = th;
    let wf = w as f64;
    let plausible = th.iter().all(|v| v.is_finite())
        && (0.0..=wf).contains(&x)
        && (0.0..=wf).contains(&y)
        && photons > 0.0
        && background >= 0.0
        && sigma >= opts.sigma_range_px.0
        && sigma <= opts.sigma_range_px.1;
    if !plausible {
        return None;
    }
    // Poisson Fisher information at the estimate, and the residuals.
    model.set(&th);
    let mut fisher = [[0.0; NP]; NP];
    let (mut r1, mut r2, mut n) = (0.0, 0.0, 0.0);
    for j in 0..w {
        for i in 0..w {
            if !used[j * w + i] {
                continue;
            }
            n += 1.0;
            let (mu, d) = model.at(&th, j, i);
            let r = data[j * w + i] - mu;
            r1 += r;
            r2 += r * r;
            let inv = 1.0 / mu.max(1e-12);
            for a in 0..NP {
                for b in 0..NP {
                    fisher[a][b] += inv * d[a] * d[b];
                }
            }
        }
    }
    let crlb = inverse_diagonal(&fisher)?;
    if !(crlb[0] > 0.0 && crlb[1] > 0.0 && crlb[0].is_finite() && crlb[1].is_finite()) {
        return None;
    }
    let mean = r1 / n;
    Some(Spot {
        x,
        y,
        photons,
        background,
        sigma,
        crlb_x: crlb[0],
        crlb_y: crlb[1],
        residual_std: (r2 / n - mean * mean).max(0.0).sqrt(),
        iterations,
    })
}

/// Start: background from the window's border, position from the centroid of what lies
/// above it, photons from the sum above it.
fn initial_guess(data: &[f64], used: &[bool], w: usize, sigma: f64) -> [f64; NP] {
    let mut border = 0.0;
    let mut count: f64 = 0.0;
    for j in 0..w {
        for i in 0..w {
            if used[j * w + i] && (j == 0 || i == 0 || j == w - 1 || i == w - 1) {
                border += data[j * w + i];
                count += 1.0;
            }
        }
    }
    let b = (border / count.max(1.0)).max(0.01);
    let (mut s, mut sx, mut sy) = (0.0, 0.0, 0.0);
    for j in 0..w {
        for i in 0..w {
            if !used[j * w + i] {
                continue;
            }
            let v = (data[j * w + i] - b).max(0.0);
            s += v;
            sx += v * (i as f64 + 0.5);
            sy += v * (j as f64 + 0.5);
        }
    }
    let c = w as f64 / 2.0;
    let (x, y) = if s > 0.0 { (sx / s, sy / s) } else { (c, c) };
    [x, y, s.max(1.0), b, sigma]
}

/// `count` windows of `w`×`w` photon counts (one after the other, x fastest) for tests and
/// benchmarks of the fitters: one integrated Gaussian spot each, drawn from `seed`, at a
/// random sub-pixel position within ±1 pixel of the centre, with 200–5000 photons, a
/// background of 1–20 photons per pixel and σ 1.0–1.6 pixels, with Poisson noise.
pub fn random_spot_windows(count: usize, w: usize, seed: u64) -> Vec<f64> {
    use rand::{Rng, SeedableRng};
    use rand_distr::{Distribution, Poisson};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let (mut ex, mut ey, mut d1, mut d2) = (vec![0.0; w], vec![0.0; w], vec![0.0; w], vec![0.0; w]);
    let mut out = Vec::with_capacity(count * w * w);
    let c = w as f64 / 2.0;
    for _ in 0..count {
        let sigma = rng.gen_range(1.0..1.6);
        let (x, y) = (c + rng.gen_range(-1.0..1.0), c + rng.gen_range(-1.0..1.0));
        let photons: f64 = rng.gen_range(200.0..5000.0);
        let background: f64 = rng.gen_range(1.0..20.0);
        pixel_integrals(x, sigma, &mut ex, &mut d1, &mut d2);
        pixel_integrals(y, sigma, &mut ey, &mut d1, &mut d2);
        for j in 0..w {
            for i in 0..w {
                let mu = background + photons * ex[i] * ey[j];
                out.push(Poisson::new(mu).expect("positive mean").sample(&mut rng));
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "fit_tests.rs"]
mod tests;
