//! Options and results of a SIM reconstruction, with the checks of the options.

use super::{AngleParams, FrameOrder, Otf};
use crate::device::{Device, DeviceRequest};
use crate::{invalid, Error, Result, Volume};

/// Options of [`reconstruct()`](fn@super::reconstruct). Defaults follow fairSIM.
#[derive(Debug, Clone, PartialEq)]
pub struct SimOptions {
    /// Pattern directions (default 3).
    pub angles: usize,
    /// Equidistant phases per direction, ≥ 3 (default 3).
    pub phases: usize,
    /// Frame order of the stack within one time point (default PAZ).
    pub order: FrameOrder,
    /// Time points in the stack (default 1). Time is the slowest index whatever the order:
    /// each time point is a block of z × angles × phases frames.
    pub time_points: usize,
    /// Estimate the pattern on every plane (z and time) rather than once, on the middle plane
    /// of the first time point (default false). A plane whose estimate shows no stripes uses
    /// the reference estimate, with a warning.
    pub estimate_per_plane: bool,
    /// Wiener parameter w; 0 (the default) chooses it from the noise of the raw data
    /// ([`super::noise`]).
    pub wiener: f64,
    /// Apodisation cutoff, multiple of the widefield cutoff; 0 (the default) puts it at the
    /// real SIM support, k_c + |k₀|.
    pub apodization_cutoff: f64,
    /// Apodisation exponent ("bend", default 0.9).
    pub apodization_bend: f64,
    /// OTF attenuation a of the model OTF (default 0.3).
    pub otf_attenuation: f64,
    /// Zero-order attenuation strength s in 1 − s·exp(−k²/(2σ²)) applied to every band's OTF
    /// around its own zero frequency against out-of-focus light (default 0.95, fairSIM's
    /// range 0.9–0.99; 0 = off).
    pub zero_order_strength: f64,
    /// Full width at half maximum of the zero-order attenuation, cycles/µm (default 1.2, as
    /// fairSIM).
    pub zero_order_fwhm_per_um: f64,
    /// An OTF measured from a bead ([`Otf::from_psf`]) used instead of the model OTF.
    pub measured_otf: Option<Otf>,
    /// Camera background subtracted from every pixel before processing, in the stack's units
    /// (default 0); negative results are clipped to 0.
    pub background: f32,
    /// Width of the cosine edge taper, raw pixels (default 12; 0 = none).
    pub taper_px: usize,
    /// Modulation used when an estimate is outside 0.4–1.1 (default 0.7).
    pub default_modulation: f64,
    /// Where the Wiener filter runs (default auto: the GPU when there is a usable one).
    pub device: DeviceRequest,
    /// Reconstruct even when the pattern estimate of a direction failed (no stripes, an
    /// implausible |k₀|, or a k₀ that disagrees with the other directions) or the stack has
    /// saturated pixels, with a warning (default false: such a stack is an error, so that a
    /// macro or a script stops rather than writing an image with artefacts).
    pub allow_failed_estimate: bool,
    /// Replace hot (cosmic-ray) pixels before the estimate and the reconstruction (default
    /// true; see [`super::outliers`]).
    pub replace_hot_pixels: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            angles: 3,
            phases: 3,
            order: FrameOrder::Paz,
            time_points: 1,
            estimate_per_plane: false,
            wiener: 0.0,
            apodization_cutoff: 0.0,
            apodization_bend: 0.9,
            otf_attenuation: 0.3,
            zero_order_strength: 0.95,
            zero_order_fwhm_per_um: 1.2,
            measured_otf: None,
            background: 0.0,
            taper_px: 12,
            default_modulation: 0.7,
            device: DeviceRequest::Auto,
            allow_failed_estimate: false,
            replace_hot_pixels: true,
        }
    }
}

/// Output of [`reconstruct()`](fn@super::reconstruct); images are (time_points·nz, 2ny, 2nx), time slowest, with half
/// the raw pixel size.
#[derive(Debug, Clone)]
pub struct SimResult {
    /// The SIM reconstruction.
    pub sim: Volume,
    /// The mean of all frames of each plane, Fourier-interpolated to the 2× grid.
    pub widefield: Volume,
    /// The widefield image Wiener-filtered with the same w (for comparison).
    pub wiener_widefield: Volume,
    /// z planes per time point.
    pub planes: usize,
    /// Pattern parameters per direction, estimated on the reference plane (the middle plane
    /// of the first time point).
    pub params: Vec<AngleParams>,
    /// The parameters used for each output plane (all equal to `params` unless
    /// [`SimOptions::estimate_per_plane`]).
    pub plane_params: Vec<Vec<AngleParams>>,
    /// Warnings for the log (low modulation, implausible k₀, uneven angles…; why the GPU was
    /// not used when `cuda` was asked for, or why it failed). With `auto`, the lack of a usable
    /// GPU is only logged.
    pub warnings: Vec<String>,
    /// The device that reconstructed the planes (the CPU when a GPU failed on the way).
    pub device: Device,
    /// The Wiener parameter used (the option, or the automatic choice).
    pub wiener_used: f64,
}

impl SimResult {
    /// "CUDA device 0 (NVIDIA H100)" or "the CPU (16 threads)", for the log.
    pub fn device_text(&self) -> String {
        self.device.ran_on()
    }
}

pub(super) fn validate_options(opts: &SimOptions) -> Result<()> {
    if opts.time_points == 0 {
        return invalid!("the number of time points must be at least 1");
    }
    if opts.angles == 0 || opts.phases < 3 {
        return invalid!(
            "SIM needs at least 1 angle and 3 phases per angle (got {} angles, {} phases)",
            opts.angles,
            opts.phases
        );
    }
    let checks = [
        (
            opts.wiener >= 0.0 && opts.wiener.is_finite(),
            "the Wiener parameter must be positive (or 0: automatic)",
        ),
        (
            opts.apodization_cutoff >= 0.0 && opts.apodization_cutoff.is_finite(),
            "the apodisation cutoff must be positive (or 0: at the SIM support)",
        ),
        (
            (0.0..1.0).contains(&opts.zero_order_strength),
            "the zero-order attenuation must be in [0, 1)",
        ),
        (
            opts.zero_order_fwhm_per_um > 0.0 && opts.zero_order_fwhm_per_um.is_finite(),
            "the zero-order attenuation width must be positive",
        ),
        (
            opts.apodization_bend > 0.0,
            "the apodisation bend must be positive",
        ),
        (
            opts.otf_attenuation > 0.0 && opts.otf_attenuation <= 1.0,
            "the OTF attenuation must be in (0, 1]",
        ),
        (
            opts.default_modulation > 0.0 && opts.default_modulation <= 1.0,
            "the default modulation must be in (0, 1]",
        ),
        (
            opts.background.is_finite(),
            "the background must be a number",
        ),
    ];
    match checks.iter().find(|(ok, _)| !ok) {
        Some((_, msg)) => Err(Error::InvalidInput((*msg).into())),
        None => Ok(()),
    }
}
