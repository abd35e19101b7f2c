//! Neural networks in candle: layers, a configurable 2D/3D U-Net, a generic training loop
//! (Adam, ReduceLROnPlateau, validation, best weights kept), 8-fold augmentation, tiled
//! prediction of any image size, normalisation, and model files
//! (`model.safetensors` + `model.json`).
//!
//! Nothing here knows about a particular method: Noise2Void and CARE
//! ([`crate::denoise`]) and Deep-STORM build on these pieces.
//!
//! Tensors are f32, channels-first: (batch, channel, [z,] y, x).

pub mod augment;
pub mod batch_norm_cpu;
pub mod conv_cpu;
#[cfg(target_arch = "x86_64")]
mod conv_direct;
pub mod layers;
pub mod model_file;
pub mod normalize;
pub mod pool_cpu;
pub mod tiling;
pub mod train;
pub mod unet;

pub use model_file::{load_model, save_model, Model, ModelInfo};
pub use normalize::Normalization;
pub use train::{train, EpochStats, Objective, TrainOptions, TrainReport};
pub use unet::{UNet, UNetConfig};

use crate::Error;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Uniform};

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

/// The device networks run on. CPU only for now (CUDA is a later step).
pub fn device() -> Device {
    Device::Cpu
}

/// Human-readable name of [`device()`], for logs.
pub fn device_name() -> String {
    format!(
        "CPU ({} threads)",
        candle_core::utils::get_num_threads().max(1)
    )
}

/// The device for a network job asked to run on `request`: the CPU in this build (candle's
/// CUDA backend is not enabled: it needs nvcc at build time). A CUDA request is logged with
/// the reason. Returns [`device_name()`] for the caller's log line.
pub fn select_device(
    request: crate::device::DeviceRequest,
    progress: &mut dyn crate::progress::Progress,
) -> String {
    crate::device::select_cpu_only_logged(request, progress);
    device_name()
}

/// Re-initialises every parameter of `vars` from `seed` (candle's CPU random generator
/// cannot be seeded): tensors named `*.weight` of rank ≥ 2 get He-normal values
/// (std √(2 / fan-in)), `*.bias` of convolutions uniform ±1/√fan-in, batch-norm parameters
/// and running statistics keep their constant initial values. Names are visited in sorted
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
            let std = (2.0 / fan_in[&prefix] as f64).sqrt() as f32;
            let normal = Normal::new(0.0f32, std).expect("finite std");
            (0..n).map(|_| normal.sample(&mut rng)).collect()
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

/// A fresh variable map and a network built on it, randomly initialised from `seed`.
pub fn new_unet(config: &UNetConfig, seed: u64) -> crate::Result<(VarMap, UNet)> {
    let vars = VarMap::new();
    let vb = candle_nn::VarBuilder::from_varmap(&vars, DType::F32, &device());
    let net = UNet::new(config, vb).map_err(|e| Error::InvalidInput(e.to_string()))?;
    seeded_init(&vars, seed)?;
    Ok((vars, net))
}

/// Helpers of the gradient tests of the custom CPU ops.
#[cfg(test)]
pub(crate) mod test_util {
    use candle_core::{backprop::GradStore, Tensor};

    /// The largest absolute difference between two tensors of one shape.
    pub fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    /// The gradients of Σ y·target with respect to everything `y` depends on: `target` is the
    /// gradient fed into `y`'s backward pass.
    pub fn weighted_grads(y: &Tensor, target: &Tensor) -> GradStore {
        (y * target).unwrap().sum_all().unwrap().backward().unwrap()
    }
}
