//! TIFF reading and writing, ImageJ-compatible.
//!
//! Reads 8-, 16- and 32-bit grayscale TIFFs (unsigned, signed or float; uncompressed, LZW,
//! Deflate or PackBits; single- or multi-page), ImageJ hyperstack metadata included: the
//! `ImageDescription` gives channels / slices / frames, unit and z spacing, X/YResolution the
//! pixel size. Writes 32-bit float hyperstacks the way ImageJ does (pixel data of all planes
//! contiguous after the first IFD), so that ImageJ, Fiji and tifffile open them with the right
//! dimensions and calibration.

use super::tiff_read::{read_inner, read_planes};
use crate::progress::{NoProgress, Progress};
use crate::{Error, Result};
use std::path::Path;

pub use super::hyperstack::Hyperstack;

/// Reads an 8-, 16- or 32-bit (multi-page) TIFF, ImageJ hyperstack metadata included.
///
/// Without ImageJ metadata the pages form one z-stack (1 channel, 1 frame). Calibration in
/// µm or nm becomes µm with unit "micron"; other units are kept as they are; an uncalibrated
/// file has unit "pixel" and voxel size 1.
pub fn read_tiff(path: &Path) -> Result<Hyperstack> {
    // The decoder must never bring the program down, whatever the file holds.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read_inner(path))).unwrap_or_else(
        |_| {
            Err(file_error(
                path,
                "the TIFF decoder failed on this file: it is probably corrupt".into(),
            ))
        },
    )
}

/// Receives one plane (x fastest), its width and height.
pub type PlaneSink<'a> = dyn FnMut(&[f32], usize, usize) -> Result<()> + 'a;

/// Reads a TIFF plane by plane without keeping the planes: `on_plane` receives each plane
/// (x fastest), its width and height, in file order (ImageJ order: channel fastest, then
/// slice, then frame). Returns the dimensions and calibration with empty `data`. For stacks
/// too long to hold in memory (localization microscopy).
pub fn read_tiff_planes(path: &Path, on_plane: &mut PlaneSink) -> Result<Hyperstack> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read_planes(path, on_plane)))
        .unwrap_or_else(|_| {
            Err(file_error(
                path,
                "the TIFF decoder failed on this file: it is probably corrupt".into(),
            ))
        })
}

/// Writes a 32-bit float ImageJ hyperstack TIFF with its calibration.
pub fn write_tiff(path: &Path, stack: &Hyperstack) -> Result<()> {
    super::tiff_write::write_hyperstack(path, stack, &mut NoProgress)
}

/// [`write_tiff`] reporting progress per plane; returns [`Error::Cancelled`] (and writes
/// nothing) when `progress` says so.
pub fn write_tiff_with_progress(
    path: &Path,
    stack: &Hyperstack,
    progress: &mut dyn Progress,
) -> Result<()> {
    super::tiff_write::write_hyperstack(path, stack, progress)
}

pub(crate) fn file_error(path: &Path, message: String) -> Error {
    Error::file(path, message)
}

#[cfg(test)]
#[path = "tiff_tests.rs"]
mod tests;
