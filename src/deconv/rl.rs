//! Richardson–Lucy deconvolution (Richardson 1972, Lucy 1974) with
//! - non-circulant boundaries (Bertero & Boccacci 2005): the object is estimated on a domain
//!   larger than the field of view by the PSF's half-size, so structures cut by the image
//!   edge do not ring; the result has exactly the input size;
//! - total-variation regularisation (Dey et al. 2006);
//! - Biggs–Andrews vector extrapolation (Biggs & Andrews 1997).
//!
//! Update: x ← x · Hᵀ[y / (H x)] / Hᵀ1, with H the convolution by the PSF (through its OTF)
//! and Hᵀ its adjoint (through the conjugate OTF).

use super::biggs_andrews::extrapolate;
use super::rl_tiled::{check_memory_against, deconvolve_tiled};
use super::tv::tv_denominator;
use crate::device::{
    cpu_device, gpu_device, open_gpu, run_on_gpu, Device, DeviceRequest, GpuSlot, OnGpu,
};
use crate::fft::{next_fast_even_len, next_fast_len, OtfConvolver};
use crate::image::{check_finite, check_min_size, work_buffer};
use crate::progress::{check_cancel, Progress, SubProgress};
use crate::psf::Psf;
use crate::{invalid, Error, Result, Volume};
use ndarray::{s, Array3, ArrayView3, Axis};
use rayon::prelude::*;

/// How the image edges are modelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Boundary {
    /// Bertero & Boccacci: the object extends beyond the field of view; no edge ringing.
    #[default]
    NonCirculant,
    /// Periodic (FFT-native) boundaries, as most tools do.
    Circulant,
}

impl std::str::FromStr for Boundary {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "non-circulant" | "noncirculant" | "nc" => Ok(Boundary::NonCirculant),
            "circulant" | "periodic" => Ok(Boundary::Circulant),
            other => invalid!("unknown boundary '{other}': use non-circulant or circulant"),
        }
    }
}

/// Options of [`richardson_lucy`].
#[derive(Debug, Clone, PartialEq)]
pub struct RlOptions {
    /// Maximum number of iterations (≥ 1).
    pub iterations: usize,
    /// Total-variation regularisation λ (Dey et al. 2006); 0 = plain RL. Typical 0.001–0.01.
    pub tv_lambda: f32,
    /// Biggs–Andrews vector extrapolation.
    pub acceleration: bool,
    pub boundary: Boundary,
    /// Stop early when RMS(x_k − x_{k−1}) / RMS(x_{k−1}) falls below this; 0 = never.
    pub tolerance: f32,
    pub device: DeviceRequest,
    /// Memory the job may use, bytes; `None` = what this process may still use
    /// ([`crate::memory::available_memory`]). A non-circulant job that needs more is
    /// deconvolved in overlapping lateral tiles.
    pub memory_limit: Option<u64>,
}

impl Default for RlOptions {
    fn default() -> Self {
        RlOptions {
            iterations: 40,
            tv_lambda: 0.0,
            acceleration: false,
            boundary: Boundary::NonCirculant,
            tolerance: 0.0,
            device: DeviceRequest::Auto,
            memory_limit: None,
        }
    }
}

/// Result of [`richardson_lucy`].
#[derive(Debug, Clone)]
pub struct Deconvolved {
    /// Same shape and voxel size as the input.
    pub volume: Volume,
    /// Iterations actually run (fewer than asked when the tolerance was reached; the
    /// largest count over planes when a 3D stack was deconvolved plane by plane).
    pub iterations: usize,
    pub device: Device,
    /// Things the user should know (PSF cropped, device fallback…).
    pub warnings: Vec<String>,
}

/// The smallest image side RL accepts, pixels.
pub const MIN_IMAGE_SIZE: usize = 3;
/// Denominators (the normalisation Hᵀ1) below this are treated as 1: those voxels lie
/// outside the PSF's reach of the field of view and carry no information.
const NORMAL_FLOOR: f32 = 1e-5;

/// Richardson–Lucy deconvolution of `image` by `psf`.
///
/// Negative pixels (e.g. after background subtraction) are treated as 0. A 3D image with a
/// 2D PSF is deconvolved plane by plane; a 2D image with a 3D PSF uses the PSF's central
/// plane. The input is never modified.
pub fn richardson_lucy(
    image: &Volume,
    psf: &Psf,
    opts: &RlOptions,
    progress: &mut dyn Progress,
) -> Result<Deconvolved> {
    validate(image, psf, opts)?;
    // Richardson–Lucy is linear in the image's scale; values near f32's limits (3e38, or
    // subnormal 1e-42) overflow or vanish in its sums and ratios, so such images are
    // deconvolved at peak 1 and scaled back.
    let peak = image.data.iter().fold(0f32, |m, &v| m.max(v)) as f64;
    let rescale = !(1e-6..=1e12).contains(&peak);
    let scaled;
    let image = if rescale {
        scaled = Volume::new(image.data.mapv(|v| (v as f64 / peak) as f32), image.voxel);
        &scaled
    } else {
        image
    };
    let mut warnings = Vec::new();
    let mut gpu = open_gpu(opts.device, &mut warnings);

    let (nz, _, _) = image.shape();
    let mut kernel = psf.data.clone();
    normalise(&mut kernel);
    if nz == 1 && kernel.dim().0 > 1 {
        let c = kernel.dim().0 / 2;
        kernel = kernel.slice(s![c..c + 1, .., ..]).to_owned();
        normalise(&mut kernel);
        warnings.push(
            "the image is 2D but the PSF is 3D: using the PSF's central (in-focus) plane".into(),
        );
    }
    let negatives = image.data.iter().filter(|&&v| v < 0.0).count();
    if negatives > 0 {
        warnings.push(format!(
            "{negatives} negative pixel(s) were treated as 0 (Richardson–Lucy needs non-negative data)"
        ));
    }
    for w in &warnings {
        progress.log(&format!("Warning: {w}"));
    }
    match gpu_device(&gpu) {
        Some(d @ Device::Cuda { .. }) => progress.log(&format!("RL on {}", d.ran_on())),
        _ => progress.log(&format!("Richardson–Lucy on {}", cpu_device())),
    }

    let mut out = Array3::<f32>::zeros(image.data.dim());
    let mut iterations = 0;
    if nz > 1 && kernel.dim().0 == 1 {
        // A 2D PSF couples nothing along z: plane by plane is the same result, cheaper.
        for z in 0..nz {
            let plane = image.data.slice(s![z..z + 1, .., ..]).to_owned();
            let mut part = SubProgress::new(progress, z, nz);
            let (res, its, w) =
                deconvolve_volume(&plane, &kernel, image, opts, &mut gpu, &mut part)?;
            out.slice_mut(s![z..z + 1, .., ..]).assign(&res);
            iterations = iterations.max(its);
            if z == 0 {
                warnings.extend(w);
            }
        }
    } else {
        let (res, its, w) =
            deconvolve_volume(&image.data, &kernel, image, opts, &mut gpu, progress)?;
        out = res;
        iterations = its;
        warnings.extend(w);
    }
    progress.fraction(1.0);
    if rescale {
        out.mapv_inplace(|v| (v as f64 * peak) as f32);
        if !out.iter().all(|v| v.is_finite()) {
            return invalid!(
                "the result exceeds the range of 32-bit images (the image reaches {peak:e}): \
                 scale the image down first (Process › Math › Multiply in Fiji)"
            );
        }
    }
    Ok(Deconvolved {
        volume: Volume::new(out, image.voxel),
        iterations,
        // A GPU that failed on the way was dropped: the CPU finished the job.
        device: gpu_device(&gpu).unwrap_or_else(cpu_device),
        warnings,
    })
}

fn validate(image: &Volume, psf: &Psf, opts: &RlOptions) -> Result<()> {
    check_min_size(&image.data, "the image", MIN_IMAGE_SIZE)?;
    image.check_finite("the image")?;
    if psf.data.is_empty() {
        return invalid!("the PSF is empty");
    }
    check_finite(&psf.data, "the PSF")?;
    let sum: f64 = psf.data.iter().map(|&v| v as f64).sum();
    if sum <= 0.0 || psf.data.iter().any(|&v| v < 0.0) {
        return invalid!(
            "the PSF must be non-negative with a positive sum (it sums to {sum}); \
             is the right image selected as PSF?"
        );
    }
    if psf.data.dim().0 % 2 == 0 || psf.data.dim().1 % 2 == 0 || psf.data.dim().2 % 2 == 0 {
        return invalid!("the PSF must have odd dimensions with its peak at the centre");
    }
    if opts.iterations == 0 {
        return invalid!("the number of iterations must be at least 1");
    }
    if !(opts.tv_lambda.is_finite() && (0.0..1.0).contains(&opts.tv_lambda)) {
        return invalid!(
            "the TV regularisation λ must be between 0 and 1 (typical 0.001–0.01), not {}",
            opts.tv_lambda
        );
    }
    if !(opts.tolerance.is_finite() && opts.tolerance >= 0.0) {
        return invalid!("the stopping tolerance must be 0 (off) or positive");
    }
    if image.data.iter().all(|&v| v <= 0.0) {
        return invalid!("the image has no positive pixel: there is nothing to deconvolve");
    }
    Ok(())
}

fn normalise(a: &mut Array3<f32>) {
    let sum: f64 = a.iter().map(|&v| v as f64).sum();
    if sum > 0.0 {
        a.mapv_inplace(|v| (v as f64 / sum) as f32);
    }
}

/// Crops a centred kernel to at most `max` voxels per axis (kept odd and centred).
fn crop_centred(kernel: &Array3<f32>, max: (usize, usize, usize)) -> Option<Array3<f32>> {
    let (kz, ky, kx) = kernel.dim();
    let fit = |k: usize, m: usize| if k <= m { k } else { m - (1 - m % 2) };
    let (cz, cy, cx) = (fit(kz, max.0), fit(ky, max.1), fit(kx, max.2));
    if (cz, cy, cx) == (kz, ky, kx) {
        return None;
    }
    let (oz, oy, ox) = ((kz - cz) / 2, (ky - cy) / 2, (kx - cx) / 2);
    let mut c = kernel
        .slice(s![oz..oz + cz, oy..oy + cy, ox..ox + cx])
        .to_owned();
    normalise(&mut c);
    Some(c)
}

/// Deconvolves one volume (or plane) with a kernel of matching dimensionality.
/// Returns the estimate, the iterations run and warnings.
pub(super) fn deconvolve_volume(
    data: &Array3<f32>,
    kernel: &Array3<f32>,
    image: &Volume,
    opts: &RlOptions,
    gpu: &mut GpuSlot,
    progress: &mut dyn Progress,
) -> Result<(Array3<f32>, usize, Vec<String>)> {
    let data = data.as_standard_layout();
    let m = data.dim();
    let mut warnings = Vec::new();
    let non_circulant = opts.boundary == Boundary::NonCirculant;
    // Kernel size limit: the image itself (circulant), or 2M−1 (non-circulant: light from
    // farther away cannot reach the field of view).
    let limit = if non_circulant {
        (2 * m.0 - 1, 2 * m.1 - 1, 2 * m.2 - 1)
    } else {
        m
    };
    let cropped = crop_centred(kernel, limit);
    if let Some(c) = &cropped {
        let (a, b) = (kernel.dim(), c.dim());
        let msg = format!(
            "the PSF ({}×{}×{}, x×y×z) is larger than the image allows; cropped to {}×{}×{}",
            a.2, a.1, a.0, b.2, b.1, b.0
        );
        progress.log(&format!("Warning: {msg}"));
        warnings.push(msg);
    }
    let kernel = cropped.as_ref().unwrap_or(kernel);
    let p = kernel.dim();

    let grid = fft_grid(m, p, opts.boundary);
    let budget = opts.memory_limit.or_else(crate::memory::available_memory);
    if let Err(too_big) = check_memory_against(grid, opts, budget) {
        return match (non_circulant, budget) {
            (true, Some(budget)) => deconvolve_tiled(
                data.view(),
                kernel,
                image,
                opts,
                gpu,
                progress,
                budget,
                too_big,
            )
            .map(|(out, its, w)| (out, its, [warnings, w].concat())),
            _ => Err(too_big),
        };
    }
    check_cancel(progress)?;
    progress.status("Richardson–Lucy: preparing");
    let mean = data.iter().map(|&v| v.max(0.0) as f64).sum::<f64>() / data.len() as f64;
    // A ratio y/Hx where Hx is below this is set to 0 (scale-aware divide-by-zero guard).
    let eps = (mean * 1e-6).max(f32::MIN_POSITIVE as f64) as f32;
    // TV anisotropy: z spacing in units of the lateral pixel size.
    let z_aspect = (image.voxel.z / image.voxel.x) as f32;
    let z_aspect = if z_aspect.is_finite() && z_aspect > 0.0 {
        z_aspect
    } else {
        1.0
    };
    if gpu.is_some() {
        let problem = RlProblem {
            observed: data.view(),
            kernel,
            grid,
            non_circulant,
            mean: mean as f32,
            eps,
            z_aspect,
            normal_floor: NORMAL_FLOOR,
            min_tv_denominator: super::tv::MIN_DENOMINATOR,
        };
        let on_gpu = run_on_gpu(
            gpu,
            "RL",
            |g| g.device().ran_on(),
            progress,
            |g, progress| super::rl_cuda::deconvolve(g, &problem, opts, progress),
        )?;
        match on_gpu {
            OnGpu::Done((estimate, done)) => {
                return Ok((crop_estimate(&estimate, grid, m), done, warnings))
            }
            OnGpu::FellBack(w) => warnings.push(w),
            OnGpu::NoGpu => {}
        }
    }

    let n = grid.0 * grid.1 * grid.2;
    let mut conv = OtfConvolver::new(kernel, grid);
    // The field of view sits at the grid's origin. `ratio` first holds its mask, for
    // normal = Hᵀ(mask) (1 everywhere for circulant boundaries); afterwards only its
    // field-of-view rows are ever written, and the rest stays 0.
    let mut ratio = work_buffer(n);
    let normal = if non_circulant {
        ratio
            .par_chunks_mut(grid.2)
            .enumerate()
            .filter(|(r, _)| r / grid.1 < m.0 && r % grid.1 < m.1)
            .for_each(|(_, row)| row[..m.2].fill(1.0));
        let mut normal = work_buffer(n);
        conv.correlate(&ratio, &mut normal);
        Some(normal)
    } else {
        None
    };
    let inside = |i: usize| normal.as_ref().is_none_or(|nm| nm[i] >= NORMAL_FLOOR);
    let mut x: Vec<f32> = (0..n)
        .map(|i| if inside(i) { mean as f32 } else { 0.0 })
        .collect();

    // Past this point `normal` is only a divisor: voxels outside the PSF's reach get 1.
    let normal = normal.map(|mut nm| {
        nm.par_iter_mut().for_each(|v| {
            if *v < NORMAL_FLOOR {
                *v = 1.0
            }
        });
        nm
    });
    let mut corr = work_buffer(n);
    let mut tv = (opts.tv_lambda > 0.0).then(|| vec![1f32; n]);
    // Biggs–Andrews state: previous estimate and previous step g = x_{k+1} − y_k.
    let mut accel = opts.acceleration.then(|| (x.clone(), vec![0f32; n], false));
    let nx = grid.2;
    // Rows (z, y) of the whole grid, and of the field of view at its origin: Hx is needed
    // only there and the ratio is zero elsewhere, so the FFTs skip the other lines.
    let (full, fov) = ((grid.0, grid.1), (m.0, m.1));

    let measure_change = opts.tolerance > 0.0;
    let mut done = 0;
    for it in 0..opts.iterations {
        start_iteration(it, opts, "", progress)?;
        // ratio = y / Hx, computed row by row as the inverse FFT delivers Hx. Rows outside
        // the field of view are never written nor read (they stay 0).
        let ratio_row = |r: usize, row: &mut [f32]| {
            let observed = data.slice(s![r / grid.1, r % grid.1, ..]);
            let observed = observed.as_slice().expect("standard layout");
            for (h, &obs) in row.iter_mut().zip(observed) {
                *h = if *h > eps { obs.max(0.0) / *h } else { 0.0 };
            }
            row[m.2..].fill(0.0);
            (0.0, 0.0)
        };
        conv.apply_then(&x, &mut ratio, false, full, fov, Some(&ratio_row));
        // Half-way through the iteration: keeps Esc / Ctrl-C responsive on large volumes.
        check_cancel(progress)?;
        if let Some(tv) = tv.as_mut() {
            // 1 − λ div(∇x/|∇x|) of the current estimate.
            tv_denominator(&x, grid, opts.tv_lambda, z_aspect, tv);
        }
        // x_new = x · Hᵀ(ratio) / (normal · tv), floored at 0, written over the
        // correlation row by row; returns Σ(x_new − x)² and Σx² for the relative change.
        let update_row = |r: usize, row: &mut [f32]| {
            let range = r * nx..(r + 1) * nx;
            let old = &x[range.clone()];
            let norm = normal.as_ref().map(|nm| &nm[range.clone()]);
            let tv = tv.as_ref().map(|t| &t[range]);
            for (i, c) in row.iter_mut().enumerate() {
                let mut d = norm.map_or(1.0, |nm| nm[i]);
                if let Some(t) = tv {
                    d *= t[i];
                }
                let new = old[i] * *c / d;
                *c = if new.is_finite() && new > 0.0 {
                    new
                } else {
                    0.0
                };
            }
            if !measure_change {
                return (0.0, 0.0);
            }
            row.iter()
                .zip(old)
                .fold((0f64, 0f64), |(d2, n2), (&new, &old)| {
                    let diff = (new - old) as f64;
                    (d2 + diff * diff, n2 + (old as f64) * (old as f64))
                })
        };
        let (diff2, norm2) = conv.apply_then(&ratio, &mut corr, true, fov, full, Some(&update_row));
        std::mem::swap(&mut x, &mut corr); // x = new estimate, corr = estimate before.
        if let Some((prev, g_prev, have_g)) = accel.as_mut() {
            extrapolate(&mut x, &corr, prev, g_prev, have_g);
        }
        done = it + 1;
        let change = (diff2 / norm2.max(f64::MIN_POSITIVE)).sqrt();
        if converged(done, change, opts, progress) {
            break;
        }
    }
    // With acceleration, `x` holds the extrapolated point; the last RL step is in `accel.0`.
    let estimate = match &accel {
        Some((prev, _, _)) => prev,
        None => &x,
    };
    Ok((crop_estimate(estimate, grid, m), done, warnings))
}

/// Before iteration `it` (from 0): stops on cancel, shows "iteration k/n" and `on` (e.g.
/// " (GPU)") in the status line.
pub(crate) fn start_iteration(
    it: usize,
    opts: &RlOptions,
    on: &str,
    progress: &mut dyn Progress,
) -> Result<()> {
    check_cancel(progress)?;
    progress.status(&format!(
        "Richardson–Lucy iteration {}/{}{on}",
        it + 1,
        opts.iterations
    ));
    Ok(())
}

/// After iteration `done`: reports the progress, and returns true (saying so in the log) when
/// the relative change of the estimate fell below the tolerance.
pub(crate) fn converged(
    done: usize,
    change: f64,
    opts: &RlOptions,
    progress: &mut dyn Progress,
) -> bool {
    progress.fraction(done as f32 / opts.iterations as f32);
    let stop = opts.tolerance > 0.0 && change < opts.tolerance as f64;
    if stop {
        progress.log(&format!(
            "Richardson–Lucy converged after {done} iterations (relative change {change:.2e})"
        ));
    }
    stop
}

/// The FFT grid RL uses for an image of shape `m` and a kernel of shape `p` (both (z, y, x)):
/// the image itself for circulant boundaries; for non-circulant ones the image padded by the
/// kernel size − 1 to a fast FFT size (x even).
pub fn fft_grid(
    m: (usize, usize, usize),
    p: (usize, usize, usize),
    boundary: Boundary,
) -> (usize, usize, usize) {
    if boundary == Boundary::Circulant {
        return m;
    }
    let pad = |m: usize, p: usize| if p > 1 { next_fast_len(m + p - 1) } else { m };
    (
        pad(m.0, p.0),
        pad(m.1, p.1),
        if p.2 > 1 {
            next_fast_even_len(m.2 + p.2 - 1)
        } else {
            m.2
        },
    )
}

/// The field of view (at the grid's origin) of an estimate on the whole grid; values that are
/// not finite become 0.
fn crop_estimate(
    estimate: &[f32],
    grid: (usize, usize, usize),
    m: (usize, usize, usize),
) -> Array3<f32> {
    let full = ArrayView3::from_shape(grid, estimate).expect("grid size");
    let out = full
        .slice(s![..m.0, ..m.1, ..m.2])
        .mapv(|v| if v.is_finite() { v } else { 0.0 });
    debug_assert_eq!(out.len_of(Axis(0)), m.0);
    out
}

/// The problem as [`deconvolve_volume`] prepared it, for the GPU path (`rl_cuda`).
#[allow(dead_code)] // read by the GPU path alone, which a build without `cuda` does not have
pub(crate) struct RlProblem<'a> {
    /// The field of view (negative values are read as 0), standard layout.
    pub(crate) observed: ArrayView3<'a, f32>,
    /// The normalised, centred kernel (already cropped to fit `grid`).
    pub(crate) kernel: &'a ndarray::Array3<f32>,
    /// The FFT grid (nz, ny, nx) with the field of view at its origin.
    pub(crate) grid: (usize, usize, usize),
    /// Non-circulant boundaries: divide by Hᵀ(field-of-view mask).
    pub(crate) non_circulant: bool,
    /// Starting value inside the PSF's reach (the mean of the image).
    pub(crate) mean: f32,
    /// Ratios y/Hx with Hx ≤ eps are set to 0.
    pub(crate) eps: f32,
    /// z spacing in lateral pixels (TV anisotropy).
    pub(crate) z_aspect: f32,
    /// Normalisation values below this are out of the PSF's reach (set to 1).
    pub(crate) normal_floor: f32,
    /// Smallest TV denominator.
    pub(crate) min_tv_denominator: f32,
}

#[cfg(test)]
#[path = "rl_tests.rs"]
mod tests;
