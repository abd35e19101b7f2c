//! Deconvolution: the Richardson–Lucy family (RL, RL-TV, Biggs–Andrews acceleration,
//! circulant and non-circulant boundaries).

mod biggs_andrews;
mod rl;
#[cfg(feature = "cuda")]
pub mod rl_cuda;
/// Without the `cuda` feature there is no GPU to deconvolve on ([`crate::gpu::Gpu`] has no
/// values), so the GPU branch of `rl` is never taken.
#[cfg(not(feature = "cuda"))]
mod rl_cuda {
    pub(crate) fn deconvolve(
        gpu: &crate::gpu::Gpu,
        _: &super::rl::RlProblem,
        _: &super::RlOptions,
        _: &mut dyn crate::Progress,
    ) -> crate::Result<(Vec<f32>, usize)> {
        match *gpu {}
    }
}
mod rl_tiled;
mod tv;

pub use rl::{fft_grid, richardson_lucy, Boundary, Deconvolved, RlOptions, MIN_IMAGE_SIZE};
