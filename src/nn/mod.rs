//! Neural networks in candle: layers, a configurable 2D/3D U-Net, a generic training loop
//! (Adam, ReduceLROnPlateau, validation, best weights kept), 8-fold augmentation, tiled
//! prediction of any image size, normalisation, and model files
//! (`model.safetensors` + `model.json`).
//!
//! Nothing here knows about a particular method: Noise2Void and CARE (the `denoise`
//! module) and Deep-STORM (in `smlm`) build on these pieces.
//!
//! Tensors are f32, channels-first: (batch, channel, [z,] y, x). The CPU kernels behind the
//! layers are in [`cpu`]; [`device()`] is the device of the current job.

pub mod augment;
pub mod cpu;
mod device;
mod error;
mod gpu_ops;
pub mod layers;
pub mod model_file;
pub mod normalize;
pub mod tiling;
pub mod train;
pub mod unet;
mod vars;

pub use cpu::{reuse_freed_memory, FreedMemoryReuse};
pub use device::{cpu_name, device, device_name, run_on_device, select_device, DeviceScope};
pub use model_file::{load_model, save_model, Model, ModelInfo};
pub use normalize::Normalization;
pub use train::{train, EpochStats, Objective, TrainOptions, TrainReport};
pub use unet::{UNet, UNetConfig};
pub use vars::{new_unet, restore, seeded_init, snapshot, vars_are_on, vars_device, vars_on};

// The kernels' paths before they moved into `cpu`.
pub use cpu::{batch_norm as batch_norm_cpu, conv as conv_cpu, pool as pool_cpu};
