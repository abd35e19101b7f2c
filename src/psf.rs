//! Point-spread functions: models (Gaussian, Born & Wolf) and measured PSFs.
//! (API stub: being written.)

use crate::{Result, VoxelSize};
use ndarray::Array3;

/// A PSF ready for deconvolution: odd size along every axis, peak voxel at the centre
/// (index n/2), non-negative, sum 1. Shape (nz, ny, nx); nz = 1 for a 2D PSF.
#[derive(Debug, Clone, PartialEq)]
pub struct Psf {
    pub data: Array3<f32>,
}

/// PSF model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsfModel {
    /// Gaussian approximation of the widefield PSF (Zhang et al. 2007).
    Gaussian,
    /// Scalar Born & Wolf defocus model.
    BornWolf,
}

/// Optical parameters of a PSF model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PsfParams {
    pub model: PsfModel,
    /// Numerical aperture of the objective.
    pub na: f64,
    /// Emission wavelength, nm.
    pub wavelength_nm: f64,
    /// Refractive index of the immersion medium (1.518 oil, 1.33 water, 1.0 air).
    pub immersion_index: f64,
    /// Lateral pixel size in the sample, nm.
    pub pixel_size_nm: f64,
    /// Plane spacing, nm (ignored for 2D PSFs).
    pub z_step_nm: f64,
}

impl Psf {
    /// A model PSF of the given (odd) shape.
    pub fn generate(_params: &PsfParams, _shape: (usize, usize, usize)) -> Result<Psf> {
        todo!()
    }
    /// A model PSF sized for an image of `image_shape`.
    pub fn for_image(_params: &PsfParams, _image_shape: (usize, usize, usize)) -> Result<Psf> {
        todo!()
    }
    /// Prepares a measured PSF (bead image).
    pub fn from_measured(_data: &Array3<f32>) -> Result<Psf> {
        todo!()
    }
    /// (nz, ny, nx).
    pub fn shape(&self) -> (usize, usize, usize) {
        self.data.dim()
    }
    /// Voxel size of a model PSF, µm.
    pub fn voxel_size(params: &PsfParams) -> VoxelSize {
        VoxelSize {
            z: params.z_step_nm / 1000.0,
            y: params.pixel_size_nm / 1000.0,
            x: params.pixel_size_nm / 1000.0,
        }
    }
}
