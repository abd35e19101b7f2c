//! # Fluorecon
//!
//! Fluorescence image reconstruction: Richardson–Lucy deconvolution ([`deconv`]), 2D SIM
//! ([`sim`]), localization microscopy ([`smlm`]), Noise2Void and CARE denoising ([`denoise`]
//! on the U-Net of [`nn`]). Plain Rust over `ndarray`; the Fiji plugin reaches it through
//! `jni` and the command line through `src/bin/fluorecon/` (the map of the code is
//! `docs/ARCHITECTURE.md`). Every capability is one function taking a [`Volume`], options
//! and a [`Progress`].
//!
//! Conventions: arrays are (z, y, x) with x fastest; voxel sizes in µm; PSF model lengths
//! in nm; intensities f32.

pub mod deconv;
pub mod denoise;
pub mod device;
mod error;
pub mod fft;
pub mod gpu;
pub mod image;
pub mod io;
pub mod memory;
pub mod metrics;
pub mod nn;
pub mod parallel;
pub mod progress;
pub mod psf;
pub mod sim;
pub mod smlm;
pub mod special;
pub mod synthetic;

#[doc(hidden)]
pub mod jni;

pub use error::{Error, Result};
pub use image::{Volume, VoxelSize};
pub use progress::{NoProgress, Progress};

/// Library version (Cargo package version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Version, library flavour (cpu or cuda), build features, CUDA driver (or why there is none) and
/// devices found, one "key: value" per line (for `About Fluorecon…` and `fluorecon info`).
pub fn info_text() -> String {
    let lines = device::info_lines(
        device::library_flavour(),
        &device::build_features(),
        rayon::current_num_threads(),
        &device::cuda_status(),
    );
    format!("Fluorecon: {VERSION}\n{}\n", lines.join("\n"))
}
