//! An ImageJ hyperstack in memory: channels × slices (z) × frames (t) planes with their
//! calibration, as the TIFF reader gives it and the writer takes it, and its per-channel,
//! per-time-point volumes for the methods (which work on one (z, y, x) volume at a time).

use crate::{invalid, Result, Volume, VoxelSize};
use ndarray::{s, Array3};

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
    /// Bits per sample of the source file (8, 16, 32, or 64 for double-precision files).
    pub bit_depth: u8,
    /// Time between frames in seconds (ImageJ's `finterval`), when known.
    pub frame_interval: Option<f64>,
}

impl Hyperstack {
    /// A hyperstack of the given size filled with zeros (32-bit).
    pub fn zeros(
        width: usize,
        height: usize,
        channels: usize,
        slices: usize,
        frames: usize,
        voxel: VoxelSize,
        unit: &str,
    ) -> Hyperstack {
        Hyperstack {
            width,
            height,
            channels,
            slices,
            frames,
            data: crate::image::work_buffer(width * height * channels * slices * frames),
            voxel,
            unit: unit.to_string(),
            bit_depth: 32,
            frame_interval: None,
        }
    }

    /// A one-channel, one-frame hyperstack holding `v`, calibrated in µm.
    pub fn from_volume(v: &Volume) -> Hyperstack {
        let (nz, ny, nx) = v.shape();
        Hyperstack {
            width: nx,
            height: ny,
            channels: 1,
            slices: nz,
            frames: 1,
            data: v.data.iter().copied().collect(),
            voxel: v.voxel,
            unit: "micron".into(),
            bit_depth: 32,
            frame_interval: None,
        }
    }

    /// Pixels per plane.
    pub fn plane_len(&self) -> usize {
        self.width * self.height
    }

    /// Number of planes (channels × slices × frames).
    pub fn planes(&self) -> usize {
        self.channels * self.slices * self.frames
    }

    /// Index of plane (c, z, t) in ImageJ order, 0-based.
    pub fn plane_index(&self, c: usize, z: usize, t: usize) -> usize {
        c + self.channels * (z + self.slices * t)
    }

    /// Shape of one z-stack, (nz, ny, nx).
    pub fn stack_shape(&self) -> (usize, usize, usize) {
        (self.slices, self.height, self.width)
    }

    /// True when the voxel size is in µm (the unit the library's algorithms expect).
    pub fn is_calibrated_in_microns(&self) -> bool {
        self.unit == "micron"
    }

    /// The z-stack of channel `c`, frame `t` (0-based), with the hyperstack's voxel size.
    ///
    /// # Panics
    /// When `c` or `t` is out of range.
    pub fn volume(&self, c: usize, t: usize) -> Volume {
        assert!(
            c < self.channels && t < self.frames,
            "channel {c} / frame {t} out of range ({} channels, {} frames)",
            self.channels,
            self.frames
        );
        let n = self.plane_len();
        let mut buf = Vec::with_capacity(n * self.slices);
        for z in 0..self.slices {
            let i = self.plane_index(c, z, t) * n;
            buf.extend_from_slice(&self.data[i..i + n]);
        }
        let data = Array3::from_shape_vec(self.stack_shape(), buf).expect("sizes match");
        Volume::new(data, self.voxel)
    }

    /// Replaces the z-stack of channel `c`, frame `t` (0-based); the hyperstack takes the
    /// volume's voxel size.
    pub fn set_volume(&mut self, c: usize, t: usize, v: &Volume) -> Result<()> {
        if c >= self.channels || t >= self.frames {
            return invalid!(
                "channel {} / frame {} does not exist: the image has {} channel(s) and {} frame(s)",
                c + 1,
                t + 1,
                self.channels,
                self.frames
            );
        }
        if v.shape() != self.stack_shape() {
            let (nz, ny, nx) = v.shape();
            return invalid!(
                "a {nx}×{ny}×{nz} (x×y×z) volume does not fit a {}×{}×{} hyperstack",
                self.width,
                self.height,
                self.slices
            );
        }
        let n = self.plane_len();
        for z in 0..self.slices {
            let i = self.plane_index(c, z, t) * n;
            let dst = &mut self.data[i..i + n];
            for (d, s) in dst.iter_mut().zip(v.data.slice(s![z, .., ..]).iter()) {
                *d = *s;
            }
        }
        self.voxel = v.voxel;
        Ok(())
    }

    /// Fails unless `data` holds exactly `width × height × planes` values.
    pub fn check(&self) -> Result<()> {
        let n = self.plane_len() * self.planes();
        if n == 0 {
            return invalid!(
                "empty image ({}×{} pixels, {} channel(s), {} slice(s), {} frame(s))",
                self.width,
                self.height,
                self.channels,
                self.slices,
                self.frames
            );
        }
        if self.data.len() != n {
            return invalid!(
                "hyperstack has {} values but {}×{}×{}×{}×{} (x×y×c×z×t) needs {n}",
                self.data.len(),
                self.width,
                self.height,
                self.channels,
                self.slices,
                self.frames
            );
        }
        Ok(())
    }
}
