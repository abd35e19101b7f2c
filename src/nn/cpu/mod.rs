//! The networks' CPU kernels, as candle custom ops with their backward passes: same-padded
//! 2D convolution ([`conv`]: im2col + gemm, and on AVX-512 CPUs the direct 3×3 kernel and
//! Winograd's F(2×2, 3×3)), training-mode batch norm ([`batch_norm`]), 2× max pooling and
//! upsampling ([`pool`]), the ReLU's mask inside backward passes, and the 2D U-Net's whole
//! training pass as one op. The layers of [`crate::nn`] call them for CPU tensors; each is
//! tested against a slow reference (candle's own op, or the float64 definition).
//!
//! Nothing here depends on the rest of [`crate::nn`].

pub mod batch_norm;
pub mod conv;
#[cfg(target_arch = "x86_64")]
mod conv_direct;
mod dispatch;
mod heap;
mod parallel;
pub mod pool;
mod relu_mask;
mod storage;
#[cfg(test)]
pub(crate) mod test_util;
#[cfg(target_arch = "x86_64")]
pub(super) mod unet_train;
#[cfg(target_arch = "x86_64")]
mod winograd;

#[cfg(test)]
pub(crate) use dispatch::with_switches;
pub use dispatch::{dispatch, Dispatch};
pub use heap::{reuse_freed_memory, FreedMemoryReuse};

use parallel::{add_in_order, in_runs, ordered_sum, GRADIENT_RUNS};
use storage::{cpu_slice, with_cpu};
