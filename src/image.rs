//! The volume type: a (z, y, x) array of f32 intensities with its voxel size.
//!
//! A 2D image is a volume with one plane. Index order is always (z, y, x) with x fastest in
//! memory, the same order as an ImageJ stack's pixels.

use crate::{invalid, Result};
use ndarray::Array3;

/// Physical voxel size in micrometres (ImageJ's usual calibration unit).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VoxelSize {
    /// Plane spacing, µm.
    pub z: f64,
    /// Pixel height, µm.
    pub y: f64,
    /// Pixel width, µm.
    pub x: f64,
}

impl Default for VoxelSize {
    fn default() -> Self {
        VoxelSize {
            z: 1.0,
            y: 1.0,
            x: 1.0,
        }
    }
}

/// A 3D (or, with one plane, 2D) image.
#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    /// Intensities, shape (nz, ny, nx).
    pub data: Array3<f32>,
    pub voxel: VoxelSize,
}

impl Volume {
    pub fn new(data: Array3<f32>, voxel: VoxelSize) -> Self {
        Volume { data, voxel }
    }

    /// Wraps a flat z-major buffer (x fastest), as ImageJ stacks and TIFF pages store it.
    pub fn from_vec(
        data: Vec<f32>,
        shape: (usize, usize, usize),
        voxel: VoxelSize,
    ) -> Result<Self> {
        let n = shape.0 * shape.1 * shape.2;
        if data.len() != n {
            return invalid!(
                "image buffer has {} values but {}×{}×{} (z×y×x) needs {}",
                data.len(),
                shape.0,
                shape.1,
                shape.2,
                n
            );
        }
        let data = Array3::from_shape_vec(shape, data).expect("length checked above");
        Ok(Volume { data, voxel })
    }

    /// (nz, ny, nx).
    pub fn shape(&self) -> (usize, usize, usize) {
        self.data.dim()
    }

    pub fn is_2d(&self) -> bool {
        self.data.dim().0 == 1
    }

    /// Fails with a message naming the first non-finite pixel, if any.
    pub fn check_finite(&self, what: &str) -> Result<()> {
        check_finite(&self.data, what)
    }
}

/// Fails with a message naming the first NaN or infinite value of `data`, if any.
pub fn check_finite(data: &Array3<f32>, what: &str) -> Result<()> {
    if let Some(((z, y, x), v)) = data.indexed_iter().find(|(_, v)| !v.is_finite()) {
        let count = data.iter().filter(|v| !v.is_finite()).count();
        return invalid!(
            "{what} has {count} pixel(s) that are not numbers (first: {v} at x={x}, y={y}, z={z}); \
             replace them first, e.g. with Process › Math › Remove NaNs…"
        );
    }
    Ok(())
}

/// Fails unless the volume has at least `min` pixels along x and y.
pub fn check_min_size(data: &Array3<f32>, what: &str, min: usize) -> Result<()> {
    let (nz, ny, nx) = data.dim();
    if nz == 0 || ny == 0 || nx == 0 {
        return invalid!("{what} is empty ({nx}×{ny}×{nz} pixels)");
    }
    if nx < min || ny < min {
        return invalid!("{what} is only {nx}×{ny} pixels; at least {min}×{min} are needed");
    }
    Ok(())
}

/// A zero-filled buffer of `n` values for volume-sized work arrays. On Linux the kernel is
/// asked to back it with 2 MiB pages: FFT passes along z stride through the whole buffer,
/// and with 4 KiB pages every such step is a TLB miss.
pub fn work_buffer<T: Clone + Default>(n: usize) -> Vec<T> {
    let v = vec![T::default(); n];
    advise_huge_pages(v.as_ptr(), n);
    v
}

/// Asks the kernel (Linux) to back the whole 2 MiB pages among the `n` values at `ptr` with
/// huge pages; best done before they are first written (one page fault per 2 MiB instead
/// of 512). Only changes how memory is backed, never its contents; refusal is harmless.
pub fn advise_huge_pages<T>(ptr: *const T, n: usize) {
    #[cfg(target_os = "linux")]
    {
        let bytes = n * std::mem::size_of::<T>();
        const HUGE: usize = 2 << 20;
        if bytes >= HUGE {
            let start = ptr as usize;
            let aligned = (start + HUGE - 1) & !(HUGE - 1);
            let len = (start + bytes).saturating_sub(aligned) & !(HUGE - 1);
            if len > 0 {
                // SAFETY: the range lies inside the allocation; MADV_HUGEPAGE only changes how
                // the kernel backs the pages, never their contents. Failure is harmless.
                unsafe {
                    libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
                }
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (ptr, n);
}
