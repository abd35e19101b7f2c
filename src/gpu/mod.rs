//! GPU plumbing (the `cuda` feature): devices, memory, NVRTC kernels and their launches
//! (`cuda`'s items, re-exported here), cuFFT plans (`cufft`), the driver probe. The GPU code
//! of each method sits beside its CPU code (`*_cuda.rs`) and uses these; nothing here imports
//! an algorithm. Without the feature, `stub` offers the same names (a [`Gpu`] type without
//! values, a probe that says why), so that call sites need no `cfg`.

#[cfg(feature = "cuda")]
mod cuda;
#[cfg(feature = "cuda")]
pub mod cufft;
#[cfg(feature = "cuda")]
pub use cuda::*;

#[cfg(not(feature = "cuda"))]
mod stub;
#[cfg(not(feature = "cuda"))]
pub use stub::*;

/// Whether this library was built with the `cuda` feature.
pub const BUILT_WITH_CUDA: bool = cfg!(feature = "cuda");
