//! GPU plumbing (the `cuda` feature): devices, memory, NVRTC kernels and their launches
//! ([`cuda`]'s items, re-exported here), cuFFT plans ([`cufft`]). The GPU code of each method
//! sits beside its CPU code (`*_cuda.rs`) and uses these; nothing here imports an algorithm.

#[cfg(feature = "cuda")]
mod cuda;
#[cfg(feature = "cuda")]
pub mod cufft;
#[cfg(feature = "cuda")]
pub use cuda::*;
