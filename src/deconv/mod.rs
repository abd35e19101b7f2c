//! Deconvolution: the Richardson–Lucy family (RL, RL-TV, Biggs–Andrews acceleration,
//! circulant and non-circulant boundaries).

mod biggs_andrews;
mod rl;
#[cfg(feature = "cuda")]
pub mod rl_cuda;
mod rl_tiled;
mod tv;

#[cfg(feature = "cuda")]
pub(crate) use rl::{converged as rl_converged, start_iteration as rl_start_iteration};
pub use rl::{fft_grid, richardson_lucy, Boundary, Deconvolved, RlOptions, MIN_IMAGE_SIZE};
