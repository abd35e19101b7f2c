//! Neural networks in candle: layers, a configurable 2D/3D U-Net, a generic training loop
//! (Adam, ReduceLROnPlateau, validation, best weights kept), 8-fold augmentation, tiled
//! prediction of any image size, normalisation, and model files
//! (`model.safetensors` + `model.json`).
//!
//! Nothing here knows about a particular method: Noise2Void and CARE
//! ([`crate::denoise`]) and Deep-STORM build on these pieces.
//!
//! Tensors are f32, channels-first: (batch, channel, [z,] y, x). The CPU kernels behind the
//! layers are in [`cpu`].

pub mod augment;
pub mod cpu;
pub mod layers;
pub mod model_file;
pub mod normalize;
pub mod tiling;
pub mod train;
pub mod unet;

pub use model_file::{load_model, save_model, Model, ModelInfo};
pub use normalize::Normalization;
pub use train::{train, EpochStats, Objective, TrainOptions, TrainReport};
pub use unet::{UNet, UNetConfig};

// The kernels' paths before they moved into `cpu`.
pub use cpu::{batch_norm as batch_norm_cpu, conv as conv_cpu, pool as pool_cpu};

use crate::Error;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Uniform};

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::Internal(format!("neural network: {e}"))
    }
}

/// While a guard from [`reuse_freed_memory`] lives, glibc's `malloc` keeps freed memory
/// for reuse instead of handing it back to the system at once. Networks allocate and free
/// tensors of tens of megabytes at every layer; by default glibc maps each one afresh
/// (above its mmap threshold) and trims the heap as soon as its top is free, so every layer
/// pays page faults and the kernel's zeroing of every page (about 10 % of a training step,
/// 20 % of a large forward pass). Guards nest; when the last one goes, glibc's thresholds go
/// back to their default values (glibc's automatic raising of the mmap threshold stays off,
/// as after any `mallopt`) and the heap is trimmed. A no-op elsewhere than Linux with
/// glibc.
pub struct FreedMemoryReuse(());

static REUSE_GUARDS: std::sync::Mutex<usize> = std::sync::Mutex::new(0);

/// See [`FreedMemoryReuse`].
pub fn reuse_freed_memory() -> FreedMemoryReuse {
    let mut n = REUSE_GUARDS.lock().unwrap_or_else(|e| e.into_inner());
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if *n == 0 {
        // SAFETY: mallopt only changes allocator parameters. 32 MiB is the largest mmap
        // threshold glibc accepts on 64-bit systems.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        }
    }
    *n += 1;
    FreedMemoryReuse(())
}

impl Drop for FreedMemoryReuse {
    fn drop(&mut self) {
        let mut n = REUSE_GUARDS.lock().unwrap_or_else(|e| e.into_inner());
        *n -= 1;
        // The per-thread scratch buffers of the Winograd convolution (a few MB per thread)
        // go back too: the thread pool outlives the training or prediction (in Fiji, the
        // whole session). Only pool threads run the convolution's chunks.
        #[cfg(target_arch = "x86_64")]
        if *n == 0 {
            rayon::broadcast(|_| cpu::release_scratch());
        }
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        if *n == 0 {
            // SAFETY: back to glibc's default thresholds, then free memory is returned.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
                libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 10);
                libc::malloc_trim(0);
            }
        }
    }
}

thread_local! {
    /// The device of this thread's current network job and its name for the log (see
    /// [`DeviceScope`]); the CPU outside of a job.
    static CURRENT: std::cell::RefCell<(Device, String)> =
        std::cell::RefCell::new((Device::Cpu, cpu_name()));
}

/// The device networks of the current job run on: what [`run_on_device`] chose for this
/// thread, else the CPU. Tensors and networks of the job are created on it.
pub fn device() -> Device {
    CURRENT.with(|c| c.borrow().0.clone())
}

/// Human-readable name of [`device()`], for logs: "CPU (4 threads)" or "CUDA:0 (NVIDIA H100)".
pub fn device_name() -> String {
    CURRENT.with(|c| c.borrow().1.clone())
}

/// [`device_name()`] of the CPU.
pub fn cpu_name() -> String {
    format!(
        "CPU ({} threads)",
        candle_core::utils::get_num_threads().max(1)
    )
}

/// While it lives, [`device()`] on this thread is the device it was made with; dropping it
/// restores the previous one.
pub struct DeviceScope {
    previous: Option<(Device, String)>,
}

impl DeviceScope {
    pub fn enter(device: Device, name: String) -> DeviceScope {
        let previous = CURRENT.with(|c| c.replace((device, name)));
        DeviceScope {
            previous: Some(previous),
        }
    }

    /// Networks on the CPU.
    pub fn cpu() -> DeviceScope {
        DeviceScope::enter(Device::Cpu, cpu_name())
    }
}

impl Drop for DeviceScope {
    fn drop(&mut self) {
        if let Some(p) = self.previous.take() {
            CURRENT.with(|c| *c.borrow_mut() = p);
        }
    }
}

/// candle's device for GPU `ordinal`, made once per process (each one has its own stream and
/// loads candle's kernels on first use). Err: why it cannot be used (in the CPU build: candle
/// was built without CUDA).
fn cuda_device(ordinal: usize) -> std::result::Result<Device, String> {
    static DEVICES: std::sync::Mutex<Vec<(usize, Device)>> = std::sync::Mutex::new(Vec::new());
    let mut devices = DEVICES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, d)) = devices.iter().find(|(n, _)| *n == ordinal) {
        return Ok(d.clone());
    }
    let d = std::panic::catch_unwind(|| Device::new_cuda(ordinal))
        .map_err(|_| "candle's CUDA device panicked on start".to_string())?
        .map_err(|e| format!("candle could not open the GPU: {e}"))?;
    devices.push((ordinal, d.clone()));
    Ok(d)
}

/// The device for a network job asked to run on `request` and its name: a GPU (candle's CUDA
/// device) when the request allows it and one is usable, else the CPU; when a GPU was wanted
/// but cannot be used, the reason is logged as a warning.
pub fn select_device(
    request: crate::device::DeviceRequest,
    progress: &mut dyn crate::progress::Progress,
) -> (Device, String) {
    let (gpu, reason) = crate::device::select_gpu(request, &crate::device::cuda_status());
    if let Some(reason) = reason {
        progress.log(&format!("Warning: {reason}"));
    }
    match gpu.map(|g| (cuda_device(g.ordinal), g)) {
        Some((Ok(d), g)) => (d, format!("CUDA:{} ({})", g.ordinal, g.name)),
        Some((Err(why), g)) => {
            progress.log(&format!(
                "Warning: CUDA:{} cannot run networks ({why}); running on the CPU",
                g.ordinal
            ));
            (Device::Cpu, cpu_name())
        }
        None => (Device::Cpu, cpu_name()),
    }
}

/// Whether a network job that failed with `e` on a GPU is run again on the CPU: any failure
/// but a cancel or an input the job cannot take (those would fail on the CPU the same way).
pub fn worth_retrying_on_cpu(e: &Error) -> bool {
    !matches!(
        e,
        Error::Cancelled | Error::InvalidInput(_) | Error::File { .. }
    )
}

/// Runs a network job on the device `request` selects (see [`select_device`]): `job` creates
/// its tensors and networks on [`device()`] and names it with [`device_name()`]. On a GPU, a
/// failure of the job (a CUDA error such as running out of GPU memory, or a panic in candle's
/// CUDA code) is logged as a warning with its reason and the whole job runs again on the CPU.
/// Returns the job's result and the name of the device that produced it.
pub fn run_on_device<T>(
    request: crate::device::DeviceRequest,
    progress: &mut dyn crate::progress::Progress,
    mut job: impl FnMut(&mut dyn crate::progress::Progress) -> crate::Result<T>,
) -> crate::Result<(T, String)> {
    let (dev, name) = select_device(request, progress);
    if dev.is_cpu() {
        let _scope = DeviceScope::cpu();
        return Ok((job(progress)?, cpu_name()));
    }
    let result = {
        let _scope = DeviceScope::enter(dev, name.clone());
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut *progress)))
            .unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("no message");
                Err(Error::Device(format!("panic in the GPU code: {what}")))
            })
    };
    match result {
        Err(e) if worth_retrying_on_cpu(&e) => {
            progress.log(&format!(
                "Warning: the network failed on {name} ({e}); running it again on the CPU"
            ));
            let _scope = DeviceScope::cpu();
            Ok((job(progress)?, cpu_name()))
        }
        r => r.map(|t| (t, name)),
    }
}

/// A copy of the network variables `vars` on `device`, and the network that `build` makes
/// from a variable builder of the copy (every variable it creates must be in `vars`).
pub fn vars_on<N>(
    vars: &VarMap,
    device: &Device,
    build: impl FnOnce(candle_nn::VarBuilder) -> candle_core::Result<N>,
) -> crate::Result<(VarMap, N)> {
    let copy = VarMap::new();
    let net = build(candle_nn::VarBuilder::from_varmap(
        &copy,
        DType::F32,
        device,
    ))?;
    {
        let from = vars.data().lock().expect("var map lock");
        let to = copy.data().lock().expect("var map lock");
        for (name, var) in to.iter() {
            match from.get(name) {
                Some(v) => var.set(&v.as_tensor().to_device(device)?)?,
                None => {
                    return Err(Error::Internal(format!(
                        "network variable '{name}' has no value to copy"
                    )))
                }
            }
        }
    }
    Ok((copy, net))
}

/// Re-initialises every parameter of `vars` from `seed` (candle's CPU random generator
/// cannot be seeded): tensors named `*.weight` of rank ≥ 2 and `*.bias` of convolutions get
/// uniform values in ±1/√fan-in (PyTorch's default for convolutions, so also CAREamics'; He-
/// normal weights, 2.45× larger, trained N2V 2.5 dB worse after the same steps and diverged
/// at lr 2e-3 in the tests' configuration), batch-norm parameters and running statistics
/// keep their constant initial values. Names are visited in sorted
/// order, so the same seed gives the same network.
pub fn seeded_init(vars: &VarMap, seed: u64) -> crate::Result<()> {
    let data = vars.data().lock().expect("var map lock");
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Fan-in of each weight, to size the bias of the same layer.
    let mut fan_in = std::collections::HashMap::new();
    for name in &names {
        let var = &data[*name];
        if name.ends_with(".weight") && var.rank() >= 2 {
            let dims = var.dims();
            fan_in.insert(
                name.trim_end_matches(".weight").to_string(),
                dims[1..].iter().product::<usize>(),
            );
        }
    }
    for name in names {
        let var = &data[name];
        let n = var.elem_count();
        let prefix = name
            .trim_end_matches(".weight")
            .trim_end_matches(".bias")
            .to_string();
        let values: Vec<f32> = if name.ends_with(".weight") && var.rank() >= 2 {
            // PyTorch's default for convolutions (He-uniform with a = √5): U(±1/√fan-in).
            let bound = 1.0 / (fan_in[&prefix] as f32).sqrt();
            let uniform = Uniform::new_inclusive(-bound, bound);
            (0..n).map(|_| uniform.sample(&mut rng)).collect()
        } else if name.ends_with(".bias") && fan_in.contains_key(&prefix) {
            let bound = 1.0 / (fan_in[&prefix] as f32).sqrt();
            let uniform = Uniform::new_inclusive(-bound, bound);
            (0..n).map(|_| uniform.sample(&mut rng)).collect()
        } else {
            continue;
        };
        var.set(&Tensor::from_vec(values, var.shape(), var.device())?)?;
    }
    Ok(())
}

/// A copy of every parameter's current value (to keep the best weights while training).
pub fn snapshot(vars: &VarMap) -> crate::Result<Vec<(String, Tensor)>> {
    let data = vars.data().lock().expect("var map lock");
    data.iter()
        .map(|(k, v)| Ok((k.clone(), v.as_tensor().copy()?)))
        .collect()
}

/// Sets every parameter to the values of a [`snapshot`].
pub fn restore(vars: &VarMap, values: &[(String, Tensor)]) -> crate::Result<()> {
    let data = vars.data().lock().expect("var map lock");
    for (k, t) in values {
        if let Some(v) = data.get(k) {
            v.set(t)?;
        }
    }
    Ok(())
}

/// The device the variables of `vars` live on (the CPU for an empty map).
pub fn vars_device(vars: &VarMap) -> Device {
    vars.all_vars()
        .first()
        .map_or(Device::Cpu, |v| v.device().clone())
}

/// Whether the variables of `vars` live on `device` (true for an empty map).
pub fn vars_are_on(vars: &VarMap, device: &Device) -> bool {
    vars.all_vars()
        .first()
        .is_none_or(|v| v.device().same_device(device))
}

/// A fresh variable map and a network built on it (on [`device()`]), randomly initialised
/// from `seed`.
pub fn new_unet(config: &UNetConfig, seed: u64) -> crate::Result<(VarMap, UNet)> {
    let vars = VarMap::new();
    let vb = candle_nn::VarBuilder::from_varmap(&vars, DType::F32, &device());
    let net = UNet::new(config, vb).map_err(|e| Error::InvalidInput(e.to_string()))?;
    seeded_init(&vars, seed)?;
    Ok((vars, net))
}
