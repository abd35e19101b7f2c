//! Deconvolution: the Richardson–Lucy family.

mod rl;

pub use rl::{richardson_lucy, Boundary, Deconvolved, RlOptions};
