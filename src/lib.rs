//! # Fluorecon
//!
//! Fluorescence image reconstruction: Richardson–Lucy deconvolution (more to come: denoising,
//! SIM, localization). Plain Rust over `ndarray`; the Fiji plugin reaches it through
//! `jni` and the command line through `src/bin/fluorecon.rs`. Every capability
//! is one function taking a [`Volume`], options and a [`Progress`].
//!
//! Conventions: arrays are (z, y, x) with x fastest; voxel sizes in µm; PSF model lengths
//! in nm; intensities f32.

pub mod deconv;
pub mod denoise;
pub mod device;
mod error;
pub mod fft;
pub mod image;
pub mod io;
pub mod nn;
pub mod progress;
pub mod psf;
pub mod sim;
pub mod simulate;

#[doc(hidden)]
pub mod jni;
#[doc(hidden)]
pub mod jni_nn;

pub use error::{Error, Result};
pub use image::{Volume, VoxelSize};
pub use progress::{NoProgress, Progress};

/// Library version (Cargo package version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Version, build features and devices found, one "key: value" per line (for
/// `About Fluorecon…` and `fluorecon info`).
pub fn info_text() -> String {
    let mut s = format!(
        "Fluorecon: {VERSION}\nBuild features: {}\n",
        device::build_features().join(", ")
    );
    for d in device::devices_found() {
        s.push_str(&format!("Device: {d}\n"));
    }
    s
}
