//! NVIDIA GPU code paths (the `cuda` feature). Nothing here needs CUDA at build time: the
//! driver (libcuda.so.1), NVRTC (libnvrtc.so.13, compiles the kernels at run time for the GPU
//! present) and cuFFT (libcufft.so.12) are opened when first used, and any of them missing is
//! an error with a reason, upon which the caller runs on the CPU.
//!
//! The neural networks (candle) still run on the CPU in the CUDA build: candle's own `cuda`
//! feature compiles its kernels with nvcc at build time (a CUDA toolkit on every build
//! machine, ~9 minutes more CI), links cuBLAS/cuRAND at start-up, and makes cudarc forget
//! `-lcufft` (build.rs must add it). Enabling it means: `candle-core/cuda` and
//! `candle-nn/cuda` in the `cuda` feature, `nn::device()` returning `Device::new_cuda(n)`
//! from the request, the CPU-only convolution fast path in `nn::layers` skipped on the GPU,
//! and `make native-cuda` run where `../shared/cuda-toolchain.sh` has installed nvcc.

pub mod cufft;
pub mod rl;

use crate::{Error, Result};
use cudarc::driver::{CudaContext, CudaStream};
use std::sync::Arc;

/// A CUDA failure as the crate's error (the caller logs it and runs on the CPU).
pub(crate) fn gpu_error(what: &str, e: impl std::fmt::Debug) -> Error {
    Error::Device(format!("{what}: {e:?}"))
}

/// A context and stream on one GPU, with its name for the log.
pub struct Gpu {
    pub ordinal: usize,
    pub name: String,
    /// Compute capability (major, minor).
    pub compute_capability: (i32, i32),
    pub(crate) ctx: Arc<CudaContext>,
    pub(crate) stream: Arc<CudaStream>,
}

impl Gpu {
    /// Opens GPU `ordinal` (the driver's primary context). Every buffer is used on one stream,
    /// so cudarc's cross-stream event tracking is switched off.
    pub fn open(ordinal: usize) -> Result<Gpu> {
        // cudarc panics when a library it loads lazily is missing: a panic is an error here.
        std::panic::catch_unwind(|| {
            if !unsafe { cudarc::driver::sys::is_culib_present() } {
                return Err(Error::Device(
                    "no NVIDIA driver: libcuda.so.1 could not be opened".into(),
                ));
            }
            let ctx = CudaContext::new(ordinal).map_err(|e| gpu_error("opening the GPU", e))?;
            // SAFETY: nothing has been allocated on this context by this code yet, and all of
            // its work is queued on the one stream below.
            unsafe { ctx.disable_event_tracking() };
            let stream = ctx.default_stream();
            Ok(Gpu {
                ordinal,
                name: ctx.name().unwrap_or_else(|_| "unknown GPU".into()),
                compute_capability: ctx.compute_capability().unwrap_or((0, 0)),
                ctx,
                stream,
            })
        })
        .unwrap_or_else(|_| {
            Err(Error::Device(
                "the CUDA driver library could not be used".into(),
            ))
        })
    }

    /// (free, total) GPU memory, bytes.
    pub fn memory(&self) -> Result<(usize, usize)> {
        self.ctx
            .bind_to_thread()
            .map_err(|e| gpu_error("binding the GPU", e))?;
        cudarc::driver::result::mem_get_info().map_err(|e| gpu_error("cuMemGetInfo", e))
    }

    /// Device-to-device copy bandwidth, bytes/s: the best of a few copies of `bytes` (read +
    /// written, so 2·bytes move per copy). The floor that memory-bound kernels can approach.
    pub fn copy_bandwidth(&self, bytes: usize) -> Result<f64> {
        let n = bytes / 4;
        let src = self
            .stream
            .alloc_zeros::<f32>(n)
            .map_err(|e| gpu_error("allocating", e))?;
        let mut dst = self
            .stream
            .alloc_zeros::<f32>(n)
            .map_err(|e| gpu_error("allocating", e))?;
        let mut best = f64::INFINITY;
        for _ in 0..5 {
            self.sync()?;
            let t = std::time::Instant::now();
            self.stream
                .memcpy_dtod(&src, &mut dst)
                .map_err(|e| gpu_error("cuMemcpyDtoD", e))?;
            self.sync()?;
            best = best.min(t.elapsed().as_secs_f64());
        }
        Ok(2.0 * (n * 4) as f64 / best)
    }

    pub(crate) fn sync(&self) -> Result<()> {
        self.stream
            .synchronize()
            .map_err(|e| gpu_error("cuStreamSynchronize", e))
    }
}
