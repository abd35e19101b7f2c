//! TIFF reading and writing, ImageJ-compatible (stub: being written).

use crate::{Result, Volume, VoxelSize};
use std::path::Path;

/// An ImageJ hyperstack: `channels × slices × frames` planes of `width × height` pixels.
/// Pixels are f32, planes in ImageJ's order (channel fastest, then slice (z), then frame (t)).
#[derive(Debug, Clone, PartialEq)]
pub struct Hyperstack {
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    pub slices: usize,
    pub frames: usize,
    /// All pixels, plane after plane, x fastest.
    pub data: Vec<f32>,
    /// Voxel size in `unit`s (µm when the file says micron).
    pub voxel: VoxelSize,
    /// Length unit of `voxel` ("micron", "nm", "pixel"…).
    pub unit: String,
    /// Bits per sample of the source file (8, 16 or 32).
    pub bit_depth: u8,
}

impl Hyperstack {
    /// The z-stack of channel `c`, frame `t` (0-based).
    pub fn volume(&self, _c: usize, _t: usize) -> Volume {
        todo!()
    }
    /// Replaces the z-stack of channel `c`, frame `t` (0-based).
    pub fn set_volume(&mut self, _c: usize, _t: usize, _v: &Volume) -> Result<()> {
        todo!()
    }
}

/// Reads an 8-, 16- or 32-bit (multi-page) TIFF, ImageJ hyperstack metadata included.
pub fn read_tiff(_path: &Path) -> Result<Hyperstack> {
    todo!()
}

/// Writes a 32-bit float ImageJ hyperstack TIFF with its calibration.
pub fn write_tiff(_path: &Path, _stack: &Hyperstack) -> Result<()> {
    todo!()
}
