//! File formats used by the command line (the Fiji plugin gets its pixels from ImageJ).

pub(crate) mod atomic;
pub mod hyperstack;
mod imagej;
pub mod tiff;
mod tiff_read;
pub(crate) mod tiff_write;
