//! From a density map to localizations: the Gaussian blur of the loss, local maxima with
//! sub-pixel positions (log-parabola through the 3 × 3 peak), photons and background by a
//! linear least-squares fit of the frame with the PSF at the found positions, and the
//! precision of Mortensen et al. 2010.

use crate::smlm::fit::pixel_integrals;

/// Integral of one molecule in the density map (the paper's scale factor of 100).
pub const SPIKE: f32 = 100.0;

/// σ of the Gaussian of the loss and of peak finding, fine pixels.
pub const BLUR_SIGMA: f64 = 1.0;

/// Normalised 1D Gaussian of σ `sigma` (fine pixels), radius ⌈3σ⌉.
pub fn gaussian_kernel(sigma: f64) -> Vec<f32> {
    let r = (3.0 * sigma).ceil() as isize;
    let k: Vec<f64> = (-r..=r)
        .map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp())
        .collect();
    let s: f64 = k.iter().sum();
    k.iter().map(|v| (v / s) as f32).collect()
}

/// The peak of one molecule ([`SPIKE`] in one fine pixel) after the blur.
pub(super) fn single_peak(kernel: &[f32]) -> f32 {
    let c = kernel[kernel.len() / 2];
    SPIKE * c * c
}

/// Separable convolution of a `w`×`h` image with `kernel` (zero outside).
pub fn blur(img: &[f32], w: usize, h: usize, kernel: &[f32]) -> Vec<f32> {
    let r = kernel.len() as isize / 2;
    let mut tmp = vec![0.0f32; w * h];
    for y in 0..h {
        let row = &img[y * w..(y + 1) * w];
        for x in 0..w {
            let mut s = 0.0;
            for (k, &c) in kernel.iter().enumerate() {
                let xi = x as isize + k as isize - r;
                if xi >= 0 && (xi as usize) < w {
                    s += c * row[xi as usize];
                }
            }
            tmp[y * w + x] = s;
        }
    }
    let mut out = vec![0.0f32; w * h];
    for y in 0..h {
        for (k, &c) in kernel.iter().enumerate() {
            let yi = y as isize + k as isize - r;
            if yi < 0 || yi as usize >= h {
                continue;
            }
            let src = &tmp[yi as usize * w..(yi as usize + 1) * w];
            for (o, &v) in out[y * w..(y + 1) * w].iter_mut().zip(src) {
                *o += c * v;
            }
        }
    }
    out
}

/// Local maxima (3×3) of the blurred positive part of `map` above `threshold`, with
/// sub-pixel positions (fine pixels, the centre of pixel i at i + ½) from a log-parabola
/// through the peak and its neighbours along x and y.
pub fn find_peaks(
    map: &[f32],
    w: usize,
    h: usize,
    kernel: &[f32],
    threshold: f32,
) -> Vec<(f64, f64)> {
    let positive: Vec<f32> = map.iter().map(|v| v.max(0.0)).collect();
    let s = blur(&positive, w, h, kernel);
    let at = |x: usize, y: usize| s[y * w + x];
    let mut peaks = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let v = at(x, y);
            if v <= threshold {
                continue;
            }
            // Strictly greater than the neighbours before it, ≥ those after (one peak on
            // a plateau).
            let mut is_max = true;
            'n: for dy in -1isize..=1 {
                for dx in -1isize..=1 {
                    if dx == 0 && dy == 0 {
                        continue;
                    }
                    let (nx, ny) = (x as isize + dx, y as isize + dy);
                    if nx < 0 || ny < 0 || nx as usize >= w || ny as usize >= h {
                        continue;
                    }
                    let n = at(nx as usize, ny as usize);
                    let before = dy < 0 || (dy == 0 && dx < 0);
                    if n > v || (before && n == v) {
                        is_max = false;
                        break 'n;
                    }
                }
            }
            if !is_max {
                continue;
            }
            let offset = |a: f32, b: f32, c: f32| -> f64 {
                // Vertex of the parabola through (−1, ln a), (0, ln b), (1, ln c).
                if a <= 0.0 || c <= 0.0 {
                    return 0.0;
                }
                let (la, lb, lc) = ((a as f64).ln(), (b as f64).ln(), (c as f64).ln());
                let d = la - 2.0 * lb + lc;
                if d < 0.0 {
                    (0.5 * (la - lc) / d).clamp(-0.5, 0.5)
                } else {
                    0.0
                }
            };
            let dx = if x > 0 && x + 1 < w {
                offset(at(x - 1, y), v, at(x + 1, y))
            } else {
                0.0
            };
            let dy = if y > 0 && y + 1 < h {
                offset(at(x, y - 1), v, at(x, y + 1))
            } else {
                0.0
            };
            peaks.push((x as f64 + 0.5 + dx, y as f64 + 0.5 + dy));
        }
    }
    peaks
}

/// Photons of each molecule and a common background fitted by linear least squares.
#[derive(Debug, Clone, PartialEq)]
pub struct AmplitudeFit {
    pub photons: Vec<f64>,
    /// Photons per pixel.
    pub background: f64,
    /// Standard deviation of the residuals, photons per pixel.
    pub residual_std: f64,
}

/// Fits `photons` (a `w`×`h` frame in photons) as background + Σₖ Nₖ·PSF(xₖ, yₖ) with the
/// integrated-Gaussian PSF of σ `sigma_px` at the given positions (pixels), by linear least
/// squares over the whole frame; negative photon counts are set to 0.
pub fn fit_amplitudes(
    photons: &[f64],
    w: usize,
    h: usize,
    positions: &[(f64, f64)],
    sigma_px: f64,
) -> AmplitudeFit {
    let k = positions.len();
    let n = k + 1; // unknowns: photons of each molecule, background
    let r = (4.0 * sigma_px).ceil() as isize + 1;
    // Each molecule's PSF on its window: (x0, y0, size_x, size_y, values).
    let mut ex = vec![0.0; w];
    let mut ey = vec![0.0; h];
    let (mut t1, mut t2) = (vec![0.0; w.max(h)], vec![0.0; w.max(h)]);
    let mut windows = Vec::with_capacity(k);
    for &(x, y) in positions {
        pixel_integrals(x, sigma_px, &mut ex, &mut t1[..w], &mut t2[..w]);
        pixel_integrals(y, sigma_px, &mut ey, &mut t1[..h], &mut t2[..h]);
        let x0 = (x.floor() as isize - r).clamp(0, w as isize) as usize;
        let x1 = (x.floor() as isize + r + 1).clamp(0, w as isize) as usize;
        let y0 = (y.floor() as isize - r).clamp(0, h as isize) as usize;
        let y1 = (y.floor() as isize + r + 1).clamp(0, h as isize) as usize;
        let mut v = Vec::with_capacity((x1 - x0) * (y1 - y0));
        for &eyj in &ey[y0..y1] {
            for &exi in &ex[x0..x1] {
                v.push(exi * eyj);
            }
        }
        windows.push((x0, x1, y0, y1, v));
    }
    // Normal equations AᵀA p = Aᵀb; the background column is all ones.
    let mut ata = vec![0.0; n * n];
    let mut atb = vec![0.0; n];
    let total: f64 = photons.iter().sum();
    ata[k * n + k] = (w * h) as f64;
    atb[k] = total;
    for (a, (x0, x1, y0, y1, va)) in windows.iter().enumerate() {
        let wa = x1 - x0;
        let mut sum_a = 0.0;
        let mut dot_b = 0.0;
        let mut sq = 0.0;
        for (j, y) in (*y0..*y1).enumerate() {
            for (i, x) in (*x0..*x1).enumerate() {
                let v = va[j * wa + i];
                sum_a += v;
                sq += v * v;
                dot_b += v * photons[y * w + x];
            }
        }
        ata[a * n + a] = sq;
        ata[a * n + k] = sum_a;
        ata[k * n + a] = sum_a;
        atb[a] = dot_b;
        for (b, (bx0, bx1, by0, by1, vb)) in windows.iter().enumerate().skip(a + 1) {
            let (ox0, ox1) = ((*x0).max(*bx0), (*x1).min(*bx1));
            let (oy0, oy1) = ((*y0).max(*by0), (*y1).min(*by1));
            if ox0 >= ox1 || oy0 >= oy1 {
                continue;
            }
            let wb = bx1 - bx0;
            let mut d = 0.0;
            for y in oy0..oy1 {
                for x in ox0..ox1 {
                    d += va[(y - y0) * wa + x - x0] * vb[(y - by0) * wb + x - bx0];
                }
            }
            ata[a * n + b] = d;
            ata[b * n + a] = d;
        }
    }
    let p = solve_spd(ata, atb, n);
    let mut fitted: Vec<f64> = p[..k].iter().map(|v| v.max(0.0)).collect();
    let background = p[k];
    // Residual spread of the model.
    let mut model = vec![background; w * h];
    for ((x0, x1, y0, y1, v), &nk) in windows.iter().zip(&fitted) {
        let wa = x1 - x0;
        for (j, y) in (*y0..*y1).enumerate() {
            for (i, x) in (*x0..*x1).enumerate() {
                model[y * w + x] += nk * v[j * wa + i];
            }
        }
    }
    let ss: f64 = model
        .iter()
        .zip(photons)
        .map(|(m, d)| (d - m) * (d - m))
        .sum();
    let residual_std = (ss / (w * h) as f64).sqrt();
    for v in fitted.iter_mut() {
        if !v.is_finite() {
            *v = 0.0;
        }
    }
    AmplitudeFit {
        photons: fitted,
        background,
        residual_std,
    }
}

/// Solves the symmetric positive (semi-)definite system `a`·x = `b` (n×n, row-major) by
/// Cholesky with a tiny ridge, so that a singular system (two molecules at one place) still
/// gives finite numbers.
fn solve_spd(mut a: Vec<f64>, mut b: Vec<f64>, n: usize) -> Vec<f64> {
    let ridge = 1e-9 * (0..n).map(|i| a[i * n + i]).fold(0.0, f64::max).max(1e-300);
    for i in 0..n {
        a[i * n + i] += ridge;
    }
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        let d = d.max(ridge).sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / d;
        }
    }
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= a[i * n + k] * b[k];
        }
        b[i] = s / a[i * n + i];
    }
    for i in (0..n).rev() {
        let mut s = b[i];
        for k in i + 1..n {
            s -= a[k * n + i] * b[k];
        }
        b[i] = s / a[i * n + i];
    }
    b
}

/// Localization precision along one axis (pixels) of a molecule of `photons` on a
/// background of `background` photons per pixel with a PSF of σ `sigma_px` (Mortensen et al.
/// 2010, Poisson MLE), multiplied by √F² for an EM camera's excess noise.
pub fn mortensen_px(photons: f64, background: f64, sigma_px: f64, excess_noise: f64) -> f64 {
    if photons <= 0.0 {
        return f64::NAN;
    }
    let sa2 = sigma_px * sigma_px + 1.0 / 12.0;
    let b = background.max(0.0);
    let tau = 2.0 * std::f64::consts::PI * sa2 * b / photons;
    let var = sa2 / photons * (1.0 + 4.0 * tau + (2.0 * tau / (1.0 + 4.0 * tau)).sqrt());
    (var * excess_noise).sqrt()
}
