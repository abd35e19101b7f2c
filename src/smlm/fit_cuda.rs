//! Spot fitting on the GPU: many small fits in parallel, one thread per spot, with the
//! NVRTC-compiled kernel `fit_kernels.cu`, which follows `smlm::fit::fit_spot_masked` line by
//! line in f64 (same model, start, Levenberg–Marquardt iterations, bounds, rejections and
//! CRLB). The localizer uses it when the device is CUDA and falls back to the CPU on any error.

use super::fit::{FitMethod, FitOptions, Spot, MAX_WINDOW};
use crate::gpu::{gpu_error, Gpu};
use crate::{invalid, Result};
use cudarc::driver::{CudaFunction, LaunchConfig, PushKernelArg};

/// Kernel source, compiled at run time for the GPU present.
pub(crate) const KERNELS: &str = include_str!("fit_kernels.cu");
/// Values written per spot (see `fit_kernels.cu`).
const OUT_FIELDS: usize = 9;
/// Threads per block: each thread keeps its window (up to 31² f64) in local memory, so blocks
/// are small.
const THREADS: u32 = 64;

/// The fitting kernel loaded on one GPU.
pub struct SpotFitter {
    gpu: Gpu,
    fit: CudaFunction,
}

impl SpotFitter {
    /// Opens GPU `ordinal` and loads the kernel (compiled with NVRTC for its compute
    /// capability).
    pub fn new(ordinal: usize) -> Result<SpotFitter> {
        let gpu = Gpu::open(ordinal)?;
        let module = gpu
            .ctx
            .load_module(crate::gpu::compile_ptx(
                "spot fitting",
                KERNELS,
                gpu.compute_capability,
            )?)
            .map_err(|e| gpu_error("loading the spot-fitting kernel", e))?;
        let fit = module
            .load_function("fit_spots")
            .map_err(|e| gpu_error("kernel fit_spots", e))?;
        Ok(SpotFitter { gpu, fit })
    }

    /// The device, as the localizer reports it.
    pub fn device(&self) -> crate::device::Device {
        self.gpu.device()
    }

    /// Fits `windows.len() / (w·w)` windows of `w`×`w` photon counts (row-major, x fastest,
    /// one after the other) using the pixels where `used` is true, as
    /// [`crate::smlm::fit::fit_spot_masked`] does each; `None` for a rejected fit.
    pub fn fit(
        &self,
        windows: &[f64],
        used: &[bool],
        w: usize,
        opts: &FitOptions,
    ) -> Result<Vec<Option<Spot>>> {
        if !(3..=MAX_WINDOW).contains(&w) || windows.len() % (w * w) != 0 {
            return invalid!("fit windows must be w×w pixels with 3 ≤ w ≤ {MAX_WINDOW}");
        }
        if used.len() != windows.len() {
            return invalid!("one 'used' flag per window pixel is needed");
        }
        let n = windows.len() / (w * w);
        if n == 0 {
            return Ok(Vec::new());
        }
        let stream = &self.gpu.stream;
        let flags: Vec<u8> = used.iter().map(|&u| u8::from(u)).collect();
        let d_windows = stream
            .clone_htod(windows)
            .map_err(|e| gpu_error("copying the fit windows to the GPU", e))?;
        let d_used = stream
            .clone_htod(&flags)
            .map_err(|e| gpu_error("copying the fit masks to the GPU", e))?;
        let mut d_out = stream
            .alloc_zeros::<f64>(n * OUT_FIELDS)
            .map_err(|e| gpu_error("allocating the fit results", e))?;
        let mut d_status = stream
            .alloc_zeros::<i32>(n)
            .map_err(|e| gpu_error("allocating the fit results", e))?;
        let (n_i, w_i) = (n as i32, w as i32);
        let mle = i32::from(opts.method == FitMethod::Mle);
        let (sigma0, lo, hi) = (
            opts.initial_sigma_px,
            opts.sigma_range_px.0,
            opts.sigma_range_px.1,
        );
        let max_iterations = opts.max_iterations.min(i32::MAX as usize) as i32;
        let mut b = stream.launch_builder(&self.fit);
        b.arg(&d_windows)
            .arg(&d_used)
            .arg(&n_i)
            .arg(&w_i)
            .arg(&mle)
            .arg(&sigma0)
            .arg(&lo)
            .arg(&hi)
            .arg(&max_iterations)
            .arg(&mut d_out)
            .arg(&mut d_status);
        let config = LaunchConfig {
            grid_dim: ((n as u32).div_ceil(THREADS), 1, 1),
            block_dim: (THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: the arguments match fit_spots' parameters in order and type; the buffers hold
        // n·w² windows and flags and n·OUT_FIELDS results, as the kernel indexes them.
        unsafe { b.launch(config) }.map_err(|e| gpu_error("kernel launch: fit_spots", e))?;
        let out = stream
            .clone_dtoh(&d_out)
            .map_err(|e| gpu_error("copying the fits from the GPU", e))?;
        let status = stream
            .clone_dtoh(&d_status)
            .map_err(|e| gpu_error("copying the fits from the GPU", e))?;
        Ok(out
            .chunks(OUT_FIELDS)
            .zip(status)
            .map(|(o, ok)| {
                (ok == 1).then(|| Spot {
                    x: o[0],
                    y: o[1],
                    photons: o[2],
                    background: o[3],
                    sigma: o[4],
                    crlb_x: o[5],
                    crlb_y: o[6],
                    residual_std: o[7],
                    iterations: o[8] as usize,
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    /// NVRTC needs no GPU (the CUDA build links libnvrtc.so.13): the kernel must compile for
    /// sm_80.
    #[test]
    fn kernel_compiles_with_nvrtc() {
        crate::gpu::assert_compiles_for_sm80("spot fitting", super::KERNELS, &["fit_spots"]);
    }
}
