//! CUDA plumbing for the GPU paths that sit beside their algorithms (`deconv::rl_cuda`:
//! Richardson–Lucy with cuFFT and NVRTC kernels; `sim::wiener_cuda`: 2D SIM Wiener
//! reconstruction likewise; `smlm::fit_cuda`: MLE spot fitting, one thread per spot): opening
//! a GPU, its memory, NVRTC modules, kernel launches. The neural networks run on candle's CUDA
//! device (`nn::run_on_device`), whose kernels nvcc compiles when the crate is built. Nothing
//! here knows an algorithm.
//!
//! Linking: candle makes cudarc link the CUDA 13 libraries (libcuda.so.1, libcudart.so.13,
//! libcublas(Lt).so.13, libcurand.so.10, libnvrtc.so.13) at build time ("dynamic-linking";
//! cudarc's run-time "dynamic-loading" cannot be combined with it), so the CUDA build of the
//! library only loads where they are (the plugin's NativeLoader checks before loading it).
//! cuFFT (libcufft.so.12) is still opened at run time (`cufft`). NVRTC compiles the kernels at
//! run time for the GPU present. A GPU that cannot be used (no device, driver too old, out of
//! memory…) is an error with a reason, upon which the caller runs on the CPU.

/// Launches kernel `$k` over `$n` elements with a grid stride ([`launch_config`]) and the
/// given argument variables (device pointers as u64 from [`ptr`], sizes as i64/i32, scalars as
/// f32), which must match its C signature in order and type.
macro_rules! launch {
    ($gpu:expr, $k:expr, $n:expr; $($arg:ident),*) => {{
        use cudarc::driver::PushKernelArg;
        let mut b = $gpu.stream.launch_builder(&$k);
        $( b.arg(&$arg); )*
        // SAFETY: the arguments match the kernel's parameters (see the .cu file) and every
        // pointer is a live buffer of at least the length the kernel indexes.
        unsafe { b.launch($crate::gpu::launch_config($n)) }
            .map(|_| ())
            .map_err(|e| $crate::gpu::gpu_error(concat!("kernel launch: ", stringify!($k)), e))
    }};
}

/// Declares `struct Kernels` with one `CudaFunction` field per kernel name, its
/// `Kernels::load(gpu)` (compiling `$source`, named `$what` in messages, with NVRTC and loading
/// every kernel) and `KERNEL_NAMES`, for the NVRTC test.
macro_rules! kernels {
    ($what:literal, $source:expr; $($name:ident),+ $(,)?) => {
        /// The kernels of one .cu source, loaded on one GPU.
        struct Kernels {
            $($name: cudarc::driver::CudaFunction,)+
        }

        impl Kernels {
            fn load(gpu: &$crate::gpu::Gpu) -> $crate::Result<Kernels> {
                let module = $crate::gpu::Module::load(gpu, $what, $source)?;
                Ok(Kernels {
                    $($name: module.kernel(stringify!($name))?,)+
                })
            }
        }

        /// Every kernel [`Kernels::load`] loads.
        #[cfg(test)]
        const KERNEL_NAMES: &[&str] = &[$(stringify!($name)),+];
    };
}

pub(crate) use {kernels, launch};

use crate::device::{CudaGpu, CudaStatus};
use crate::{Error, Result};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DevicePtr, LaunchConfig,
};
use cudarc::nvrtc::{CompileOptions, Ptx};
use std::sync::{Arc, Mutex};

/// PTX of the kernels `source` (named `name` in messages) for compute capability `cc`,
/// compiled with NVRTC once per process (that takes a few 100 ms). Needs no GPU.
pub(crate) fn compile_ptx(name: &'static str, source: &'static str, cc: (i32, i32)) -> Result<Ptx> {
    type Cache = Vec<((&'static str, (i32, i32)), Ptx)>;
    static CACHE: Mutex<Cache> = Mutex::new(Vec::new());
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, p)) = cache.iter().find(|(k, _)| *k == (name, cc)) {
        return Ok(p.clone());
    }
    let opts = CompileOptions {
        options: vec![format!("--gpu-architecture=compute_{}{}", cc.0, cc.1)],
        ..Default::default()
    };
    let ptx = std::panic::catch_unwind(|| cudarc::nvrtc::compile_ptx_with_opts(source, opts))
        .map_err(|_| Error::Device("NVRTC could not be used".into()))?
        .map_err(|e| gpu_error(&format!("compiling the {name} kernels with NVRTC"), e))?;
    cache.push(((name, cc), ptx.clone()));
    Ok(ptx)
}

/// Kernels compiled for one GPU and loaded on it.
pub(crate) struct Module(Arc<CudaModule>);

impl Module {
    /// Compiles the kernels `source` (named `what` in messages) for `gpu` (cached per process,
    /// [`compile_ptx`]) and loads them.
    pub(crate) fn load(gpu: &Gpu, what: &'static str, source: &'static str) -> Result<Module> {
        gpu.ctx
            .load_module(compile_ptx(what, source, gpu.compute_capability)?)
            .map(Module)
            .map_err(|e| gpu_error(&format!("loading the {what} kernels"), e))
    }

    /// The kernel `name`.
    pub(crate) fn kernel(&self, name: &str) -> Result<CudaFunction> {
        self.0
            .load_function(name)
            .map_err(|e| gpu_error(&format!("kernel {name}"), e))
    }
}

/// Tests: `source` compiled by NVRTC for sm_80 (no GPU needed; the CUDA build links
/// libnvrtc.so.13), checked to target it and to define every kernel in `entries`.
#[cfg(test)]
pub(crate) fn assert_compiles_for_sm80(what: &'static str, source: &'static str, entries: &[&str]) {
    let ptx = compile_ptx(what, source, (8, 0)).unwrap().to_src();
    assert!(
        ptx.contains(".target sm_80"),
        "{}",
        &ptx[..ptx.len().min(400)]
    );
    for name in entries {
        assert!(ptx.contains(&format!(".entry {name}(")), "no kernel {name}");
    }
}

/// Threads per block of the element-wise kernels (RL, SIM).
const THREADS: u32 = 256;
/// Upper bound of blocks per launch (the kernels loop with a grid stride).
const MAX_BLOCKS: usize = 16_384;

/// Launch configuration of a grid-stride kernel over `n` elements.
pub(crate) fn launch_config(n: usize) -> LaunchConfig {
    let blocks = n.div_ceil(THREADS as usize).clamp(1, MAX_BLOCKS) as u32;
    LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Device pointer of a buffer, for a kernel argument (null for none).
pub(crate) fn ptr<T>(gpu: &Gpu, s: Option<&CudaSlice<T>>) -> u64 {
    // Event tracking is off (one stream), so the guard returned with the pointer does nothing.
    s.map_or(0, |s| s.device_ptr(&gpu.stream).0)
}

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
        // The driver is linked (the process would not have started without libcuda.so.1); a
        // panic of cudarc is still an error here, not a crash.
        std::panic::catch_unwind(|| {
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

    /// Fails with the reason unless `needed` bytes of GPU memory are free for `what` ("this
    /// deconvolution").
    pub(crate) fn check_free_memory(&self, needed: usize, what: &str) -> Result<()> {
        let (free, _) = self.memory()?;
        if needed > free {
            return Err(Error::Device(format!(
                "{what} needs about {} MiB of GPU memory but {} MiB are free",
                needed >> 20,
                free >> 20
            )));
        }
        Ok(())
    }

    /// The device, as results report it.
    pub fn device(&self) -> crate::device::Device {
        crate::device::Device::Cuda {
            ordinal: self.ordinal,
            name: self.name.clone(),
        }
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

/// What the NVIDIA driver reports: its version and the GPUs, or why it cannot be used.
pub fn probe() -> std::result::Result<CudaStatus, String> {
    use cudarc::driver::{result as drv, sys};
    // The CUDA build links libcuda.so.1 (the NVIDIA driver, or Debian's libcuda1 stub on a
    // machine without a GPU, whose cuInit fails); any panic of cudarc is a message, not a crash.
    let probe = std::panic::catch_unwind(|| -> std::result::Result<CudaStatus, String> {
        let err = |what: &str, e: drv::DriverError| format!("{what} failed: {e:?}");
        drv::init().map_err(|e| err("cuInit", e))?;
        let mut version = 0;
        unsafe { sys::cuDriverGetVersion(&mut version) }
            .result()
            .map_err(|e| err("cuDriverGetVersion", e))?;
        let n = drv::device::get_count().map_err(|e| err("cuDeviceGetCount", e))?;
        let mut gpus = Vec::new();
        for i in 0..n {
            let dev = drv::device::get(i).map_err(|e| err("cuDeviceGet", e))?;
            let attr = |a| unsafe { drv::device::get_attribute(dev, a) }.unwrap_or(0);
            gpus.push(CudaGpu {
                ordinal: i as usize,
                name: drv::device::get_name(dev).unwrap_or_else(|_| "unknown GPU".into()),
                memory_mib: unsafe { drv::device::total_mem(dev) }.unwrap_or(0) >> 20,
                compute_capability: (
                    attr(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR),
                    attr(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR),
                ),
            });
        }
        Ok(CudaStatus {
            driver_version: version,
            gpus,
        })
    });
    probe.unwrap_or_else(|_| Err("the NVIDIA driver library could not be used".into()))
}
