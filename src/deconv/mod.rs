//! Deconvolution: the Richardson–Lucy family (RL, RL-TV, Biggs–Andrews acceleration,
//! circulant and non-circulant boundaries).

mod rl;
mod tv;

pub use rl::{richardson_lucy, Boundary, Deconvolved, RlOptions, MIN_IMAGE_SIZE};
