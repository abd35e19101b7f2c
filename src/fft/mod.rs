//! FFTs on RustFFT, plans made once and reused, lines in parallel: real-to-complex 2D/3D
//! transforms and the OTF convolution of deconvolution and simulation ([`real3`]), and the
//! complex 2D transform of SIM and drift correction ([`complex2`]).

mod complex2;
mod real3;

pub use complex2::Fft2;
pub use real3::*;
