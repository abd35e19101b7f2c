//! Richardson–Lucy on the GPU: cuFFT for the convolutions, NVRTC-compiled kernels
//! (`rl_kernels.cu`) for the ratio, the update, the TV term and the Biggs–Andrews step. Same
//! model and arithmetic as the CPU path (`deconv::rl`), in f32 with f64 reductions; the
//! volume stays on the GPU from the first iteration to the last.

use super::rl::{converged, start_iteration, RlProblem};
use super::RlOptions;
use crate::gpu::cufft::{Direction, Plan};
use crate::gpu::{gpu_error, kernels, launch, ptr, Gpu};
use crate::progress::Progress;
use crate::{Error, Result};
use cudarc::driver::CudaSlice;

/// Kernel source, compiled at run time for the GPU present.
const KERNELS: &str = include_str!("rl_kernels.cu");

kernels!("RL", KERNELS; fov_mask, complex_multiply, init_estimate, ratio, tv_denominator,
    rl_update, accel_dots, accel_step);

/// What one run needs on the GPU, for a grid, a field of view of `fov` voxels and the options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    /// GPU memory, bytes: the real volumes, the observed image, the spectrum, the OTF and a
    /// cuFFT workspace per plan (estimated as one spectrum each).
    pub memory: usize,
    /// Bytes one iteration reads and writes at the least: each FFT reads its input and writes
    /// its output once, the OTF products read the spectrum and the OTF and write the spectrum,
    /// the ratio reads Hx and the image and writes the ratio, the update reads the correlation,
    /// the estimate and the divisors and writes the estimate, TV reads the estimate
    /// (neighbours from cache) and writes its term, acceleration reads 3 and writes 3 volumes
    /// (and reads 3 for its dot products). The bandwidth floor of an iteration is this ÷ the
    /// GPU's copy bandwidth.
    pub bytes_per_iteration: usize,
}

pub fn footprint(
    grid: (usize, usize, usize),
    fov: usize,
    opts: &RlOptions,
    non_circulant: bool,
) -> Footprint {
    let tv = opts.tv_lambda > 0.0;
    let r = 4 * grid.0 * grid.1 * grid.2; // one real volume, bytes
    let s = 8 * grid.0 * grid.1 * (grid.2 / 2 + 1); // one half spectrum, bytes
    let volumes =
        3 + usize::from(non_circulant) + usize::from(tv) + 2 * usize::from(opts.acceleration);
    let ffts = 4 * (r + s);
    let products = 2 * 3 * s;
    let ratio = 2 * r + 4 * fov;
    let update = (3 + usize::from(non_circulant) + usize::from(tv)) * r;
    let tv_term = if tv { 2 * r } else { 0 };
    let accel = if opts.acceleration { 9 * r } else { 0 };
    Footprint {
        memory: volumes * r + 4 * fov + 4 * s,
        bytes_per_iteration: ffts + products + ratio + update + tv_term + accel,
    }
}

/// Runs RL on `gpu`. Returns the estimate on the whole grid (x fastest) and the iterations
/// run. Cancel is checked every iteration; any CUDA failure is an [`Error::Device`].
pub(crate) fn deconvolve(
    gpu: &Gpu,
    p: &RlProblem,
    opts: &RlOptions,
    progress: &mut dyn Progress,
) -> Result<(Vec<f32>, usize)> {
    gpu.ctx
        .bind_to_thread()
        .map_err(|e| gpu_error("binding the GPU", e))?;
    let grid = p.grid;
    let (m0, m1, m2) = p.observed.dim();
    let n = grid.0 * grid.1 * grid.2;
    let needed = footprint(grid, m0 * m1 * m2, opts, p.non_circulant).memory;
    gpu.check_free_memory(needed, "this deconvolution")?;
    let k = Kernels::load(gpu)?;
    let stream = &gpu.stream;
    let alloc = |len: usize| {
        stream
            .alloc_zeros::<f32>(len)
            .map_err(|e| gpu_error("allocating GPU memory", e))
    };
    let fwd = Plan::new(grid, Direction::RealToComplex, stream).map_err(Error::Device)?;
    let inv = Plan::new(grid, Direction::ComplexToReal, stream).map_err(Error::Device)?;
    let spectrum_len = grid.0 * grid.1 * (grid.2 / 2 + 1);
    let mut spec = alloc(2 * spectrum_len)?;

    // OTF of the kernel, scaled by 1/n so that the inverse transforms come out normalised.
    let mut wrapped = crate::fft::wrap_kernel(p.kernel, grid);
    let scale = 1.0 / n as f32;
    wrapped.iter_mut().for_each(|v| *v *= scale);
    let mut x = stream
        .clone_htod(&wrapped)
        .map_err(|e| gpu_error("copying the PSF to the GPU", e))?;
    drop(wrapped);
    let mut otf = alloc(2 * spectrum_len)?;
    fwd.forward(stream, &x, &mut otf).map_err(Error::Device)?;
    let observed = p.observed.as_standard_layout();
    let observed = stream
        .clone_htod(observed.as_slice().expect("standard layout"))
        .map_err(|e| gpu_error("copying the image to the GPU", e))?;
    let mut ratio = alloc(n)?;
    let mut corr = alloc(n)?;

    let (n_i, spec_i) = (n as i64, spectrum_len as i64);
    let (g1, g2) = (grid.1 as i32, grid.2 as i32);
    let (m0, m1, m2) = (m0 as i32, m1 as i32, m2 as i32);
    let otf_p = ptr(gpu, Some(&otf));
    let spec_p = ptr(gpu, Some(&spec));
    let multiply = |conjugate: i32| launch!(gpu, k.complex_multiply, spectrum_len; spec_p, otf_p, spec_i, conjugate);

    // normal = Hᵀ(field-of-view mask), then the starting estimate.
    let normal = if p.non_circulant {
        let mut normal = alloc(n)?;
        let ratio_p = ptr(gpu, Some(&ratio));
        launch!(gpu, k.fov_mask, n; ratio_p, n_i, g1, g2, m0, m1, m2)?;
        fwd.forward(stream, &ratio, &mut spec)
            .map_err(Error::Device)?;
        multiply(1)?;
        inv.inverse(stream, &mut spec, &mut normal)
            .map_err(Error::Device)?;
        Some(normal)
    } else {
        None
    };
    let (normal_p, x_p) = (ptr(gpu, normal.as_ref()), ptr(gpu, Some(&x)));
    let (mean, floor) = (p.mean, p.normal_floor);
    launch!(gpu, k.init_estimate, n; normal_p, x_p, n_i, mean, floor)?;
    let mut tv = if opts.tv_lambda > 0.0 {
        Some(alloc(n)?)
    } else {
        None
    };
    // Biggs–Andrews state: previous estimate, previous step.
    let mut accel = if opts.acceleration {
        let prev = stream
            .clone_dtod(&x)
            .map_err(|e| gpu_error("copying on the GPU", e))?;
        Some((prev, alloc(n)?, false))
    } else {
        None
    };
    // Two f64 sums each: the relative change, and the Biggs–Andrews dot products.
    let alloc_sums = || {
        stream
            .alloc_zeros::<f64>(2)
            .map_err(|e| gpu_error("allocating GPU memory", e))
    };
    let (mut sums, mut dots) = (alloc_sums()?, alloc_sums()?);
    let read_sums = |sums: &CudaSlice<f64>| -> Result<(f64, f64)> {
        let v = stream
            .clone_dtoh(sums)
            .map_err(|e| gpu_error("reading a sum from the GPU", e))?;
        Ok((v[0], v[1]))
    };

    let measure_change = opts.tolerance > 0.0;
    let mut done = 0;
    for it in 0..opts.iterations {
        start_iteration(it, opts, " (GPU)", progress)?;
        // ratio = y / Hx
        fwd.forward(stream, &x, &mut spec).map_err(Error::Device)?;
        multiply(0)?;
        inv.inverse(stream, &mut spec, &mut ratio)
            .map_err(Error::Device)?;
        let (ratio_p, obs_p) = (ptr(gpu, Some(&ratio)), ptr(gpu, Some(&observed)));
        let eps = p.eps;
        launch!(gpu, k.ratio, n; ratio_p, obs_p, n_i, g1, g2, m0, m1, m2, eps)?;
        let x_p = ptr(gpu, Some(&x));
        if let Some(t) = tv.as_mut() {
            let t_p = ptr(gpu, Some(&*t));
            let (nz, ny, nx) = (grid.0 as i32, g1, g2);
            let (lambda, za, min_d) = (opts.tv_lambda, p.z_aspect, p.min_tv_denominator);
            launch!(gpu, k.tv_denominator, n; x_p, t_p, nz, ny, nx, lambda, za, min_d)?;
        }
        // corr = Hᵀ ratio, then the update written over it
        fwd.forward(stream, &ratio, &mut spec)
            .map_err(Error::Device)?;
        multiply(1)?;
        inv.inverse(stream, &mut spec, &mut corr)
            .map_err(Error::Device)?;
        let sums_p = if measure_change {
            stream
                .memset_zeros(&mut sums)
                .map_err(|e| gpu_error("cuMemsetD8", e))?;
            ptr(gpu, Some(&sums))
        } else {
            0
        };
        let (corr_p, tv_p) = (ptr(gpu, Some(&corr)), ptr(gpu, tv.as_ref()));
        launch!(gpu, k.rl_update, n; corr_p, x_p, normal_p, tv_p, n_i, sums_p)?;
        std::mem::swap(&mut x, &mut corr); // x = new estimate, corr = estimate before
        if let Some((prev, g_prev, have_g)) = accel.as_mut() {
            let (x_p, yk_p) = (ptr(gpu, Some(&x)), ptr(gpu, Some(&corr)));
            let (prev_p, g_p) = (ptr(gpu, Some(&*prev)), ptr(gpu, Some(&*g_prev)));
            let mut alpha = 0f32;
            if *have_g {
                stream
                    .memset_zeros(&mut dots)
                    .map_err(|e| gpu_error("cuMemsetD8", e))?;
                let dots_p = ptr(gpu, Some(&dots));
                launch!(gpu, k.accel_dots, n; x_p, yk_p, g_p, n_i, dots_p)?;
                let (num, den) = read_sums(&dots)?;
                if den > 0.0 {
                    alpha = (num / den).clamp(0.0, 1.0) as f32;
                }
            }
            launch!(gpu, k.accel_step, n; x_p, yk_p, prev_p, g_p, n_i, alpha)?;
            *have_g = true;
        }
        done = it + 1;
        let change = if measure_change {
            let (d2, n2) = read_sums(&sums)?;
            (d2 / n2.max(f64::MIN_POSITIVE)).sqrt()
        } else {
            gpu.sync()?; // progress follows the GPU, and a failure surfaces in this iteration
            f64::INFINITY
        };
        if converged(done, change, opts, progress) {
            break;
        }
    }
    let estimate = match &accel {
        Some((prev, _, _)) => prev,
        None => &x,
    };
    let out = stream
        .clone_dtoh(estimate)
        .map_err(|e| gpu_error("copying the result from the GPU", e))?;
    Ok((out, done))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NVRTC needs no GPU (the CUDA build links libnvrtc.so.13): the kernels must compile for
    /// sm_80 and every one the engine loads must be in the PTX.
    #[test]
    fn kernels_compile_with_nvrtc() {
        crate::gpu::assert_compiles_for_sm80("RL", KERNELS, KERNEL_NAMES);
    }

    /// The memory estimate and the bandwidth floor's byte count, for the benchmark's grid.
    #[test]
    fn memory_and_traffic_estimates() {
        let grid = (96, 544, 544);
        let n = 96 * 544 * 544;
        let spectrum_floats = 2 * 96 * 544 * 273;
        let fov = 64 * 512 * 512;
        let plain = RlOptions::default();
        let plain_fp = footprint(grid, fov, &plain, true);
        assert_eq!(plain_fp.memory, 4 * (4 * n + fov + 4 * spectrum_floats));
        // 4 FFTs (real + spectrum each), 2 OTF products (3 spectra each), ratio (2 volumes +
        // the image), update (x, correction, normal read; x written).
        let s = 4 * spectrum_floats;
        let r = 4 * n;
        assert_eq!(
            plain_fp.bytes_per_iteration,
            4 * (r + s) + 6 * s + 2 * r + 4 * fov + 4 * r
        );
        let all = RlOptions {
            tv_lambda: 0.01,
            acceleration: true,
            ..plain
        };
        assert_eq!(
            footprint(grid, fov, &all, true).bytes_per_iteration - plain_fp.bytes_per_iteration,
            r + 2 * r + 9 * r
        );
        // ≈ 2.3 GB per plain iteration on this grid (28.4 M voxels: ~82 bytes per voxel).
        assert_eq!(plain_fp.bytes_per_iteration / 1_000_000, 2_344);
    }
}
