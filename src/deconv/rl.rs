//! Richardson–Lucy deconvolution (stub: being written).

use crate::device::{Device, DeviceRequest};
use crate::progress::Progress;
use crate::psf::Psf;
use crate::{Result, Volume};

/// How the image edges are modelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Boundary {
    /// Bertero & Boccacci: the object extends beyond the field of view; no edge ringing.
    #[default]
    NonCirculant,
    /// Periodic (FFT-native) boundaries, as most tools do.
    Circulant,
}

/// Options of [`richardson_lucy`].
#[derive(Debug, Clone, PartialEq)]
pub struct RlOptions {
    /// Maximum number of iterations (≥ 1).
    pub iterations: usize,
    /// Total-variation regularisation λ (Dey et al. 2006); 0 = plain RL. Typical 0.001–0.01.
    pub tv_lambda: f32,
    /// Biggs–Andrews vector extrapolation.
    pub acceleration: bool,
    pub boundary: Boundary,
    /// Stop early when RMS(x_k − x_{k−1}) / RMS(x_{k−1}) falls below this; 0 = never.
    pub tolerance: f32,
    pub device: DeviceRequest,
}

impl Default for RlOptions {
    fn default() -> Self {
        RlOptions {
            iterations: 40,
            tv_lambda: 0.0,
            acceleration: false,
            boundary: Boundary::NonCirculant,
            tolerance: 0.0,
            device: DeviceRequest::Auto,
        }
    }
}

/// Result of [`richardson_lucy`].
#[derive(Debug, Clone)]
pub struct Deconvolved {
    /// Same shape and voxel size as the input.
    pub volume: Volume,
    /// Iterations actually run (fewer than asked when the tolerance was reached).
    pub iterations: usize,
    pub device: Device,
    /// Things the user should know (PSF cropped, device fallback…).
    pub warnings: Vec<String>,
}

/// Richardson–Lucy deconvolution of `image` by `psf`.
pub fn richardson_lucy(
    _image: &Volume,
    _psf: &Psf,
    _opts: &RlOptions,
    _progress: &mut dyn Progress,
) -> Result<Deconvolved> {
    todo!()
}
