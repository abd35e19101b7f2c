//! Camera model for analysis: the conversion of raw pixel values (ADU, "counts") to
//! photons (photoelectrons), in the terms a camera's data sheet uses.
//!
//! photons = (ADU − offset) · e⁻/ADU / EM gain. An EM camera multiplies the shot-noise
//! variance by the excess-noise factor F² ≈ 2; the fitter accounts for it by fitting
//! "effective photons" (photons / F², whose variance equals their mean, as in SMAP and
//! ThunderSTORM's EMCCD mode) and scaling the photon and background estimates back.

use crate::{invalid, Result};

/// How raw pixel values become photons.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Camera {
    /// Baseline (dark level) in ADU, added by the camera to every pixel.
    pub offset_adu: f64,
    /// Photoelectrons per ADU (the camera's conversion factor, "sensitivity").
    pub electrons_per_adu: f64,
    /// Electron-multiplying gain of an EMCCD; `None` for sCMOS / CCD (no EM gain).
    pub em_gain: Option<f64>,
}

impl Default for Camera {
    /// ThunderSTORM's defaults: offset 414 ADU, 3.6 e⁻/ADU, no EM gain.
    fn default() -> Self {
        Camera {
            offset_adu: 414.0,
            electrons_per_adu: 3.6,
            em_gain: None,
        }
    }
}

impl Camera {
    /// Fails with a readable message when a setting is impossible.
    pub fn validate(&self) -> Result<()> {
        if !self.offset_adu.is_finite() || self.offset_adu < 0.0 {
            return invalid!(
                "camera offset must be 0 ADU or more, not {}",
                self.offset_adu
            );
        }
        if !(self.electrons_per_adu.is_finite() && self.electrons_per_adu > 0.0) {
            return invalid!(
                "camera conversion must be a positive number of photoelectrons per ADU, not {}",
                self.electrons_per_adu
            );
        }
        if let Some(g) = self.em_gain {
            if !(g.is_finite() && g >= 1.0) {
                return invalid!("EM gain must be 1 or more (or off), not {g}");
            }
        }
        Ok(())
    }

    /// Photons per ADU above the offset.
    pub fn photons_per_adu(&self) -> f64 {
        self.electrons_per_adu / self.em_gain.unwrap_or(1.0)
    }

    /// Excess-noise factor F² of the gain register: 2 with EM gain, 1 without.
    pub fn excess_noise(&self) -> f64 {
        if self.em_gain.is_some() {
            2.0
        } else {
            1.0
        }
    }

    /// Photons in a pixel of `adu`.
    #[inline]
    pub fn to_photons(&self, adu: f32) -> f32 {
        ((adu as f64 - self.offset_adu) * self.photons_per_adu()) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_adu_to_photons() {
        let emccd = Camera {
            offset_adu: 100.0,
            electrons_per_adu: 45.0,
            em_gain: Some(300.0),
        };
        // 400 ADU above the offset × 45 e⁻/ADU / 300 = 60 photons.
        assert!((emccd.to_photons(500.0) - 60.0).abs() < 1e-4);
        assert_eq!(emccd.excess_noise(), 2.0);
        let scmos = Camera {
            offset_adu: 100.0,
            electrons_per_adu: 0.5,
            em_gain: None,
        };
        assert!((scmos.to_photons(300.0) - 100.0).abs() < 1e-4);
        assert_eq!(scmos.excess_noise(), 1.0);
        assert!(Camera {
            em_gain: Some(0.5),
            ..emccd
        }
        .validate()
        .is_err());
        assert!(Camera {
            electrons_per_adu: 0.0,
            ..emccd
        }
        .validate()
        .is_err());
    }
}
