//! Single-molecule localization microscopy (SMLM: PALM, STORM, PAINT), classical pipeline
//! after ThunderSTORM (Ovesný et al. 2014) with the MLE fitter of Smith et al. 2010 /
//! Gpufit (Przybylski et al. 2017):
//!
//! 1. [`camera`]: ADU → photons (offset in ADU, e⁻ per ADU, EM gain or none).
//! 2. [`detect`]: undecimated B-spline wavelet filter, 8-connected local maxima above a
//!    noise-based threshold (a multiple of std(Wave.F1)).
//! 3. [`fit`]: integrated-Gaussian PSF fitted by Poisson MLE with Levenberg–Marquardt
//!    (least squares as an option); CRLB uncertainties; failed fits are rejected.
//! 4. [`localize`]: the pipeline over a stack, streamed in chunks, parallel over frames.
//! 5. [`results`]: ThunderSTORM-compatible CSV; [`render`]: super-resolved images;
//!    [`drift`]: drift correction by cross-correlation of time blocks; [`metrics`]: the
//!    SMLM Challenge 2016 assessment; [`synthetic`]: blinking emitters on filaments seen by an
//!    EMCCD or sCMOS camera, with ground truth.
//!
//! Conventions: positions in nm from the top-left corner of the image, the centre of pixel
//! (i, j) at ((i + ½)·pixel, (j + ½)·pixel), x along columns; frames numbered from 1 (as
//! ThunderSTORM); photon counts are photoelectrons (the camera's QE is not divided out).

pub mod camera;
pub mod deepstorm;
pub mod detect;
pub mod drift;
pub mod fit;
#[cfg(feature = "cuda")]
pub mod fit_cuda;
/// Without the `cuda` feature there is no GPU to fit on: a [`fit_cuda::SpotFitter`] cannot
/// be made, so the localizer's GPU branch is never taken.
#[cfg(not(feature = "cuda"))]
mod fit_cuda {
    use super::fit::{FitOptions, Spot};
    use crate::{device::Device, Error, Result};

    /// A spot fitter on a GPU: none exists in this build (the type has no values).
    pub enum SpotFitter {}

    impl SpotFitter {
        pub fn new(_ordinal: usize) -> Result<SpotFitter> {
            Err(Error::Device(
                "this library was built without the 'cuda' feature".into(),
            ))
        }
        pub fn device(&self) -> Device {
            match *self {}
        }
        pub fn fit(
            &self,
            _: &[f64],
            _: &[bool],
            _: usize,
            _: &FitOptions,
        ) -> Result<Vec<Option<Spot>>> {
            match *self {}
        }
    }
}
pub mod localize;
pub mod metrics;
pub mod render;
pub mod results;
pub mod synthetic;

pub use camera::Camera;
pub use drift::{estimate_drift, Drift, DriftOptions};
pub use fit::{FitMethod, FitOptions};
pub use localize::{localize_frames, localize_stack, LocalizeOptions, Localizer};
pub use render::{render, RenderMode, RenderOptions};

/// One fitted molecule: 32 bytes, so 10⁸ localizations fit in 3.2 GB.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Localization {
    /// Frame number, from 1.
    pub frame: u32,
    /// Position, nm from the image's top-left corner.
    pub x_nm: f32,
    pub y_nm: f32,
    /// Fitted PSF standard deviation, nm.
    pub sigma_nm: f32,
    /// Photons in the spot (ThunderSTORM's "intensity").
    pub photons: f32,
    /// Background, photons per pixel (ThunderSTORM's "offset").
    pub background: f32,
    /// Standard deviation of the fit residuals in the fit window, photons per pixel
    /// (ThunderSTORM's "bkgstd").
    pub bkgstd: f32,
    /// Localization precision along one axis, nm: √((CRLB_x + CRLB_y)/2), excess noise of an
    /// EM camera included (ThunderSTORM's "uncertainty").
    pub uncertainty_nm: f32,
}
