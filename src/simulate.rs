//! Simulated widefield data with known ground truth, for tests, benchmarks and sample data.
//! (Stub: being written.)

use crate::psf::Psf;
use crate::Result;
use ndarray::Array3;

/// A simulated acquisition.
#[derive(Debug, Clone)]
pub struct Simulated {
    /// Ground-truth object (photons per voxel before blur), shape of the image.
    pub truth: Array3<f32>,
    /// Truth blurred by the PSF, background added, no noise.
    pub blurred: Array3<f32>,
    /// `blurred` with Poisson (shot) noise, what the camera records (photons).
    pub noisy: Array3<f32>,
}

/// Parameters of [`widefield`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimOptions {
    /// Peak photon count of the brightest structures in the truth.
    pub peak_photons: f32,
    /// Uniform background, photons per voxel.
    pub background: f32,
    /// Seed of the phantom and the noise.
    pub seed: u64,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            peak_photons: 1000.0,
            background: 10.0,
            seed: 1,
        }
    }
}

/// Simulates beads and filaments of `shape` (nz, ny, nx) imaged through `psf` with shot noise.
/// The object extends beyond the field of view (as in a real sample), so the edges are
/// blurred with light from outside.
pub fn widefield(_shape: (usize, usize, usize), _psf: &Psf, _opts: &SimOptions) -> Result<Simulated> {
    todo!()
}
