//! The Poisson–Gaussian noise of a camera image, estimated from the image itself (after Foi,
//! Trimeche, Katkovnik & Egiazarian, "Practical Poissonian-Gaussian noise modeling and fitting
//! for single-image raw-data", IEEE TIP 2008) or from a dark and a flat frame.
//!
//! Model: a pixel of mean `y` (ADU) has variance `var(y) = gain · y + variance_at_zero`. With
//! `z = gain · photons + offset + read noise` (read noise of std σ ADU), `variance_at_zero` =
//! σ² − gain · offset. A single image determines only `gain` and `variance_at_zero`; the
//! offset and σ separately need a dark frame ([`from_dark_flat`]).
//!
//! The single-image estimate:
//! 1. The finest Haar wavelet level of every plane, at the four phases of the 2×2 grid: per
//!    2×2 block the approximation (mean of the four pixels) and the diagonal detail
//!    `(x00 − x01 − x10 + x11) / 2`, whose variance is the pixel variance wherever the signal
//!    is locally linear.
//! 2. Smooth places only: the 8 neighbouring approximations must fit a plane to within
//!    the noise expected there (curvature and edges are rejected; gradients are not,
//!    the diagonal detail ignores them). Blocks touching a clipped (saturated or zero-floor)
//!    value are left out.
//! 3. Level sets: the smooth blocks sorted by the mean of their 8 neighbours (32 pixels) and
//!    cut into groups of equal size; per group the mean of the blocks' own approximations
//!    and the variance of their details (outliers beyond 6 robust standard deviations
//!    trimmed). Sorting by the neighbours keeps the ends free of regression to the mean.
//! 4. A weighted least-squares fit of `var = gain · mean + variance_at_zero` (weights
//!    n / (2 var²), the inverse variance of a sample variance), groups that disagree by more
//!    than 4 of their standard errors dropped; steps 2–4 repeated with the fitted model.

use crate::{invalid, Result, Volume};
use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

/// Poisson–Gaussian noise: `var(y) = gain · y + variance_at_zero` for a pixel of mean `y`
/// (all in the image's units, ADU).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoiseModel {
    /// ADU per detected photon (the Poisson part's scale), > 0.
    pub gain: f64,
    /// Variance at mean 0, ADU²: read noise σ² − gain · offset (negative when the camera
    /// offset is large against the read noise).
    pub variance_at_zero: f64,
}

impl NoiseModel {
    /// The model of a camera with `gain` ADU/photon, `offset` ADU and Gaussian read noise of
    /// `read_noise` ADU std.
    pub fn from_camera(gain: f64, offset: f64, read_noise: f64) -> Result<NoiseModel> {
        if !(gain > 0.0 && gain.is_finite()) {
            return invalid!("the gain must be a positive number of ADU per photon, not {gain}");
        }
        if !(read_noise >= 0.0 && read_noise.is_finite() && offset.is_finite()) {
            return invalid!(
                "the read noise must be ≥ 0 ADU and the offset a number (read noise {read_noise}, \
                 offset {offset})"
            );
        }
        Ok(NoiseModel {
            gain,
            variance_at_zero: read_noise * read_noise - gain * offset,
        })
    }

    /// Variance of a pixel of mean `y`, ADU².
    pub fn variance(&self, y: f64) -> f64 {
        self.gain * y + self.variance_at_zero
    }

    /// Fails unless the model can stabilise an image (positive, finite gain).
    pub fn check(&self) -> Result<()> {
        if !(self.gain > 0.0 && self.gain.is_finite() && self.variance_at_zero.is_finite()) {
            return invalid!(
                "the noise model needs a positive gain and a finite variance at zero (gain {}, \
                 variance at zero {})",
                self.gain,
                self.variance_at_zero
            );
        }
        Ok(())
    }

    /// One line for the log.
    pub fn describe(&self) -> String {
        let b = self.variance_at_zero;
        let read = if b >= 0.0 {
            format!("read noise {:.3} ADU if the offset is 0", b.sqrt())
        } else {
            format!(
                "an offset of at least {:.3} ADU (no read noise)",
                -b / self.gain
            )
        };
        format!(
            "Poisson–Gaussian noise: variance = {:.4} · mean {} {:.4} ADU² (gain {:.4} ADU/photon; \
             {read})",
            self.gain,
            if b < 0.0 { "−" } else { "+" },
            b.abs(),
            self.gain
        )
    }
}

/// Options of [`estimate_noise`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoiseEstimateOptions {
    /// Level sets (groups of blocks of similar mean) at most.
    pub max_levels: usize,
    /// 2×2 blocks used at most (32 bytes each, twice); fewer grid phases, then planes
    /// sampled evenly beyond that (big images and stacks).
    pub max_blocks: usize,
}

impl Default for NoiseEstimateOptions {
    fn default() -> Self {
        NoiseEstimateOptions {
            max_levels: 60,
            max_blocks: 1_000_000,
        }
    }
}

/// An estimated model with the evidence behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct NoiseEstimate {
    pub model: NoiseModel,
    /// The level sets kept in the fit.
    pub levels: Vec<Level>,
    /// 2×2 blocks judged smooth and used.
    pub blocks: usize,
    /// Whether clipped values were found (and left out).
    pub clipped: bool,
}

/// One level set: blocks of similar mean.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level {
    /// Mean of the blocks, ADU.
    pub mean: f64,
    /// Variance of their diagonal details, ADU².
    pub variance: f64,
    pub blocks: usize,
}

/// One 2×2 block: its mean (approximation), squared diagonal detail, and from its 8
/// neighbouring blocks the local level (`key`, 32 pixels) and the plane-fit residual variance
/// of their approximations (`roughness`).
#[derive(Clone, Copy)]
struct Block {
    key: f64,
    mean: f64,
    detail2: f64,
    roughness: f64,
}

/// Estimates the Poisson–Gaussian noise of `image` (a plane or a stack; every plane's
/// blocks are pooled). See the module documentation.
pub fn estimate_noise(image: &Volume, options: &NoiseEstimateOptions) -> Result<NoiseEstimate> {
    let (nz, ny, nx) = image.shape();
    if nx < 16 || ny < 16 || nz == 0 {
        return invalid!(
            "the image is {nx}×{ny} pixels; estimating its noise needs at least 16×16"
        );
    }
    crate::image::check_finite(&image.data, "the image")?;
    let (lo, hi) = image
        .data
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    if hi <= lo {
        return invalid!("the image is constant ({lo}): it has no noise to measure");
    }
    let n = image.data.len();
    let at = |v: f32| image.data.iter().filter(|&&x| x == v).count();
    // A clipped level holds a share of the pixels that noise alone would never pile up.
    let clip_share = (n / 200).max(8);
    let clip_lo = (at(lo) >= clip_share).then_some(lo);
    let clip_hi = (at(hi) >= clip_share).then_some(hi);
    let blocks_per_plane = (ny / 2) * (nx / 2);
    // The four phases of the 2×2 grid give four times the details (correlated, yet a
    // tighter estimate than one phase); big images use fewer phases, then fewer planes.
    let phases = (options.max_blocks / (nz * blocks_per_plane).max(1)).clamp(1, 4);
    let plane_step = (phases * nz * blocks_per_plane)
        .div_ceil(options.max_blocks)
        .max(1);
    let mut blocks = Vec::new();
    for z in (0..nz).step_by(plane_step) {
        let plane = image.data.index_axis(ndarray::Axis(0), z);
        for &(oy, ox) in &[(0, 0), (1, 1), (0, 1), (1, 0)][..phases] {
            plane_blocks(
                plane.slice(ndarray::s![oy.., ox..]),
                clip_lo,
                clip_hi,
                &mut blocks,
            );
        }
    }
    if blocks.len() < 200 {
        return invalid!(
            "too few unclipped pixels ({} blocks) to estimate the noise; give the noise \
             parameters instead",
            blocks.len()
        );
    }
    // First pass: every block (robust group variances); then only the smooth ones.
    let mut model: Option<NoiseModel> = None;
    let mut last = None;
    for _ in 0..4 {
        let smooth: Vec<Block> = match model {
            None => blocks.clone(),
            Some(m) => {
                // Var of the approximation = var / 4; the plane-fit residual of 9 values
                // (5 degrees of freedom) exceeds 2.2× its expectation in 5 % of smooth places.
                let kept: Vec<Block> = blocks
                    .iter()
                    .filter(|b| b.roughness <= 2.2 * m.variance(b.key).max(1e-12) / 4.0)
                    .copied()
                    .collect();
                if kept.len() < 200 {
                    break;
                }
                kept
            }
        };
        let levels = level_sets(smooth, options.max_levels, model.is_none());
        let levels = drop_near_clip(levels, clip_lo, clip_hi, model);
        let Some((fit, used)) = fit_affine(&levels) else {
            break;
        };
        let count = used.iter().map(|l| l.blocks).sum();
        model = Some(fit);
        last = Some((fit, used, count));
    }
    let Some((mut fit, levels, count)) = last else {
        return invalid!(
            "the noise could not be estimated from this image (too little smooth area); give \
             the noise parameters instead"
        );
    };
    let top = levels.iter().map(|l| l.variance).fold(0.0, f64::max);
    if fit.gain <= 0.0 {
        if top <= 0.0 {
            return invalid!("no noise was found in the image; it needs no denoising");
        }
        // Signal-independent noise: a tiny gain keeps the stabilisation an affine map.
        fit.gain = 1e-3 * fit.variance_at_zero.max(top * 1e-6).sqrt();
    }
    Ok(NoiseEstimate {
        model: fit,
        levels,
        blocks: count,
        clipped: clip_lo.is_some() || clip_hi.is_some(),
    })
}

/// Appends the blocks of one plane whose 3×3 neighbourhood of 2×2 blocks holds no clipped
/// value.
fn plane_blocks(
    plane: ArrayView2<f32>,
    clip_lo: Option<f32>,
    clip_hi: Option<f32>,
    out: &mut Vec<Block>,
) {
    let (ny, nx) = plane.dim();
    let (by, bx) = (ny / 2, nx / 2);
    let mut approx = vec![0f64; by * bx];
    let mut detail = vec![0f64; by * bx];
    let mut clipped = vec![false; by * bx];
    for i in 0..by {
        for j in 0..bx {
            let p = [
                plane[[2 * i, 2 * j]],
                plane[[2 * i, 2 * j + 1]],
                plane[[2 * i + 1, 2 * j]],
                plane[[2 * i + 1, 2 * j + 1]],
            ];
            let k = i * bx + j;
            clipped[k] = p.iter().any(|&v| Some(v) == clip_lo || Some(v) == clip_hi);
            let q = p.map(|v| v as f64);
            approx[k] = (q[0] + q[1] + q[2] + q[3]) / 4.0;
            detail[k] = (q[0] - q[1] - q[2] + q[3]) / 2.0;
        }
    }
    // Binning key and smoothness come from the 8 neighbours, the level and the detail from
    // the centre block: disjoint pixels, so selecting and sorting by the neighbours does not
    // bias the centre's mean or variance (no regression to the mean at the ends).
    for i in 1..by.saturating_sub(1) {
        for j in 1..bx.saturating_sub(1) {
            let mut any_clipped = false;
            // Least-squares plane a + b·u + c·v over the 8 neighbours, u, v ∈ {−1, 0, 1}.
            let (mut s, mut su, mut sv) = (0.0, 0.0, 0.0);
            let mut vals = [(0f64, 0f64, 0f64); 8];
            let mut m = 0;
            for du in -1..=1isize {
                for dv in -1..=1isize {
                    let k = (i as isize + du) as usize * bx + (j as isize + dv) as usize;
                    any_clipped |= clipped[k];
                    if du == 0 && dv == 0 {
                        continue;
                    }
                    let a = approx[k];
                    vals[m] = (du as f64, dv as f64, a);
                    m += 1;
                    s += a;
                    su += du as f64 * a;
                    sv += dv as f64 * a;
                }
            }
            if any_clipped {
                continue;
            }
            let (key, gu, gv) = (s / 8.0, su / 6.0, sv / 6.0);
            let rss: f64 = vals
                .iter()
                .map(|&(u, v, a)| (a - key - gu * u - gv * v).powi(2))
                .sum();
            let k = i * bx + j;
            out.push(Block {
                key,
                mean: approx[k],
                detail2: detail[k] * detail[k],
                roughness: rss / 5.0,
            });
        }
    }
}

/// Groups of equal size by mean: (mean, trimmed detail variance, blocks).
fn level_sets(mut blocks: Vec<Block>, max_levels: usize, robust: bool) -> Vec<Level> {
    blocks.sort_by(|a, b| a.key.total_cmp(&b.key));
    let levels = (blocks.len() / 1200).clamp(4, max_levels.max(4));
    let size = blocks.len() / levels;
    let mut out = Vec::with_capacity(levels);
    for g in blocks.chunks(size.max(1)) {
        if g.len() < size / 2 {
            continue; // the remainder
        }
        let mean = g.iter().map(|b| b.mean).sum::<f64>() / g.len() as f64;
        let mut d2: Vec<f64> = g.iter().map(|b| b.detail2).collect();
        d2.sort_by(f64::total_cmp);
        // Median of d² = (0.6745 σ)² for Gaussian details.
        let robust_var = d2[d2.len() / 2] / 0.4549;
        let var = if robust {
            robust_var
        } else {
            let limit = 36.0 * robust_var;
            let kept: Vec<f64> = d2
                .iter()
                .copied()
                .filter(|&v| robust_var <= 0.0 || v <= limit)
                .collect();
            kept.iter().sum::<f64>() / kept.len().max(1) as f64
        };
        out.push(Level {
            mean,
            variance: var,
            blocks: g.len(),
        });
    }
    out
}

/// Drops level sets within 3 standard deviations of a clipped level (their variance is cut).
fn drop_near_clip(
    levels: Vec<Level>,
    clip_lo: Option<f32>,
    clip_hi: Option<f32>,
    model: Option<NoiseModel>,
) -> Vec<Level> {
    levels
        .into_iter()
        .filter(|l| {
            let sd = model
                .map_or(l.variance, |m| m.variance(l.mean))
                .max(0.0)
                .sqrt();
            clip_lo.is_none_or(|c| l.mean - 3.0 * sd > c as f64)
                && clip_hi.is_none_or(|c| l.mean + 3.0 * sd < c as f64)
        })
        .collect()
}

/// Weighted least squares of var = a · mean + b; groups more than 4 standard errors off the
/// fit are dropped once. Returns the model and the groups used.
fn fit_affine(levels: &[Level]) -> Option<(NoiseModel, Vec<Level>)> {
    let mut used: Vec<Level> = levels.to_vec();
    let mut model = None;
    for round in 0..2 {
        if used.len() < 2 {
            return None;
        }
        let mut pred: Vec<f64> = used.iter().map(|l| l.variance.max(1e-12)).collect();
        let mut m = NoiseModel {
            gain: 0.0,
            variance_at_zero: 0.0,
        };
        for _ in 0..4 {
            let (mut sw, mut sx, mut sy, mut sxx, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for (l, p) in used.iter().zip(&pred) {
                let w = l.blocks as f64 / (2.0 * p * p);
                sw += w;
                sx += w * l.mean;
                sy += w * l.variance;
                sxx += w * l.mean * l.mean;
                sxy += w * l.mean * l.variance;
            }
            let det = sw * sxx - sx * sx;
            if det.abs() <= f64::MIN_POSITIVE || !det.is_finite() {
                return None;
            }
            m.gain = (sw * sxy - sx * sy) / det;
            m.variance_at_zero = (sy - m.gain * sx) / sw;
            // Floor: a fit can dip below zero between groups; the weights must stay finite.
            let floor = used.iter().map(|l| l.variance).fold(0.0, f64::max) * 1e-3;
            pred = used.iter().map(|l| m.variance(l.mean).max(floor)).collect();
        }
        model = Some(m);
        if round == 0 {
            let before = used.len();
            let kept: Vec<_> = used
                .iter()
                .zip(&pred)
                .filter(|(l, p)| {
                    (l.variance - **p).abs() <= 4.0 * **p * (2.0 / l.blocks as f64).sqrt()
                })
                .map(|(l, _)| *l)
                .collect();
            if kept.len() == before || kept.len() < 2 {
                break;
            }
            used = kept;
        }
    }
    model.map(|m| (m, used))
}

/// The model from a dark frame (no light: the offset and the read noise) and a flat frame
/// (evenly lit; slow shading does not matter): gain = (flat variance − read variance) /
/// (flat mean − offset). Variances are those of the diagonal Haar details (fixed slow
/// patterns cancel). Returns the model, the offset and the read noise (ADU).
pub fn from_dark_flat(dark: &Volume, flat: &Volume) -> Result<(NoiseModel, f64, f64)> {
    let detail_stats = |v: &Volume, what: &str| -> Result<(f64, f64)> {
        let (nz, ny, nx) = v.shape();
        if nx < 2 || ny < 2 || nz == 0 {
            return invalid!("the {what} frame is too small ({nx}×{ny} pixels)");
        }
        v.check_finite(&format!("the {what} frame"))?;
        let (mut s, mut d2, mut n) = (0.0f64, 0.0f64, 0usize);
        for plane in v.data.outer_iter() {
            for i in 0..ny / 2 {
                for j in 0..nx / 2 {
                    let q = [
                        plane[[2 * i, 2 * j]] as f64,
                        plane[[2 * i, 2 * j + 1]] as f64,
                        plane[[2 * i + 1, 2 * j]] as f64,
                        plane[[2 * i + 1, 2 * j + 1]] as f64,
                    ];
                    s += q.iter().sum::<f64>() / 4.0;
                    let d = (q[0] - q[1] - q[2] + q[3]) / 2.0;
                    d2 += d * d;
                    n += 1;
                }
            }
        }
        Ok((s / n as f64, d2 / n as f64))
    };
    let (offset, read_var) = detail_stats(dark, "dark")?;
    let (mean, var) = detail_stats(flat, "flat")?;
    if !(mean > offset && var > read_var) {
        return invalid!(
            "the flat frame (mean {mean:.2}, variance {var:.2}) must be brighter and noisier than \
             the dark frame (mean {offset:.2}, variance {read_var:.2})"
        );
    }
    let gain = (var - read_var) / (mean - offset);
    let read = read_var.sqrt();
    Ok((NoiseModel::from_camera(gain, offset, read)?, offset, read))
}
