//! Ideal widefield OTF of a circular pupil (incoherent imaging), with the empirical
//! attenuation aᵛ that fairSIM (Müller et al. 2016) applies to match real objectives:
//!
//! OTF(k) = (2/π)(acos v − v√(1 − v²)) · aᵛ,  v = |k| / k_c,  k_c = 2·NA/λ (cycles/µm),
//!
//! and zero for v ≥ 1. Frequencies are in cycles/µm throughout; on an FFT grid of n pixels
//! of size p µm, index i (FFT order) has frequency [`freq`]`(i, n, p)` = i/(n·p) (or
//! (i − n)/(n·p) in the negative half).

use crate::{invalid, Result};
use rayon::prelude::*;
use std::f64::consts::PI;

/// Optics of a 2D SIM acquisition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimOptics {
    /// Numerical aperture of the objective.
    pub na: f64,
    /// Emission wavelength, nm.
    pub wavelength_nm: f64,
    /// Camera pixel size in the sample plane, nm.
    pub pixel_size_nm: f64,
}

impl Default for SimOptics {
    /// NA 1.2 water objective, 525 nm emission, 80 nm pixels.
    fn default() -> Self {
        SimOptics {
            na: 1.2,
            wavelength_nm: 525.0,
            pixel_size_nm: 80.0,
        }
    }
}

impl SimOptics {
    /// Widefield cutoff 2·NA/λ, cycles/µm.
    pub fn cutoff_per_um(&self) -> f64 {
        2.0 * self.na / (self.wavelength_nm * 1e-3)
    }

    /// Pixel size, µm.
    pub fn pixel_size_um(&self) -> f64 {
        self.pixel_size_nm * 1e-3
    }

    /// Fails with a readable message on non-physical values.
    pub fn validate(&self) -> Result<()> {
        if !(self.na > 0.0 && self.na < 1.7) {
            return invalid!(
                "the numerical aperture must be between 0 and 1.7 (got {})",
                self.na
            );
        }
        if !(self.wavelength_nm > 100.0 && self.wavelength_nm < 2000.0) {
            return invalid!(
                "the emission wavelength must be given in nm, between 100 and 2000 (got {})",
                self.wavelength_nm
            );
        }
        if !(self.pixel_size_nm > 1.0 && self.pixel_size_nm < 10_000.0) {
            return invalid!(
                "the pixel size must be given in nm, between 1 and 10000 (got {})",
                self.pixel_size_nm
            );
        }
        Ok(())
    }
}

/// The OTF model: cutoff and attenuation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Otf {
    /// Cutoff frequency k_c, cycles/µm.
    pub cutoff_per_um: f64,
    /// Attenuation a of aᵛ (1 = the ideal OTF; fairSIM's default is about 0.3).
    pub attenuation: f64,
}

impl Otf {
    /// The widefield OTF of `optics` with attenuation `attenuation`.
    pub fn new(optics: &SimOptics, attenuation: f64) -> Self {
        Otf {
            cutoff_per_um: optics.cutoff_per_um(),
            attenuation,
        }
    }

    /// OTF at spatial frequency `k` (cycles/µm, any sign), 1 at k = 0.
    pub fn value(&self, k: f64) -> f64 {
        let v = k.abs() / self.cutoff_per_um;
        if v >= 1.0 {
            return 0.0;
        }
        2.0 / PI * (v.acos() - v * (1.0 - v * v).sqrt()) * self.attenuation.powf(v)
    }

    /// OTF at (kx, ky), cycles/µm.
    pub fn at(&self, kx: f64, ky: f64) -> f64 {
        self.value(kx.hypot(ky))
    }

    /// The OTF centred at `centre` (kx, ky in cycles/µm), i.e. OTF(k − centre), sampled on
    /// the FFT grid of an (ny, nx) image of `pixel_um` µm pixels; row-major, FFT order.
    pub fn grid(&self, ny: usize, nx: usize, pixel_um: f64, centre: [f64; 2]) -> Vec<f32> {
        // A radial table with linear interpolation: acos and powf per pixel would dominate
        // the reconstruction time. The table error is below 1e-5.
        const STEPS: usize = 4096;
        let table: Vec<f64> = (0..=STEPS + 1)
            .map(|i| self.value(i as f64 / STEPS as f64 * self.cutoff_per_um))
            .collect();
        let scale = STEPS as f64 / self.cutoff_per_um;
        let fx: Vec<f64> = (0..nx).map(|i| freq(i, nx, pixel_um) - centre[0]).collect();
        let mut out = vec![0f32; ny * nx];
        out.par_chunks_mut(nx).enumerate().for_each(|(j, row)| {
            let ky = freq(j, ny, pixel_um) - centre[1];
            for (v, &kx) in row.iter_mut().zip(&fx) {
                let t = (kx * kx + ky * ky).sqrt() * scale;
                *v = if t >= STEPS as f64 {
                    0.0
                } else {
                    let i = t as usize;
                    let f = t - i as f64;
                    (table[i] * (1.0 - f) + table[i + 1] * f) as f32
                };
            }
        });
        out
    }
}

/// Frequency (cycles/µm) of FFT index `i` on an axis of `n` pixels of `pixel_um` µm:
/// i/(n·p) for i < (n+1)/2, (i − n)/(n·p) otherwise.
pub fn freq(i: usize, n: usize, pixel_um: f64) -> f64 {
    signed_index(i, n) as f64 / (n as f64 * pixel_um)
}

/// FFT index `i` of an axis of `n` as a signed frequency index in [−n/2, n/2).
pub fn signed_index(i: usize, n: usize) -> isize {
    if i < n.div_ceil(2) {
        i as isize
    } else {
        i as isize - n as isize
    }
}

/// Apodisation: the ideal OTF (no attenuation) of cutoff `cutoff_per_um`, raised to `bend`
/// (fairSIM's "apodisation cutoff" and "bend"), on the FFT grid of an (ny, nx) image.
pub fn apodization(ny: usize, nx: usize, pixel_um: f64, cutoff_per_um: f64, bend: f64) -> Vec<f32> {
    let ideal = Otf {
        cutoff_per_um,
        attenuation: 1.0,
    };
    ideal
        .grid(ny, nx, pixel_um, [0.0, 0.0])
        .into_iter()
        .map(|v| (v as f64).powf(bend) as f32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ideal_otf_values() {
        let otf = Otf {
            cutoff_per_um: 4.0,
            attenuation: 1.0,
        };
        assert!((otf.value(0.0) - 1.0).abs() < 1e-12);
        assert_eq!(otf.value(4.0), 0.0);
        assert_eq!(otf.value(5.0), 0.0);
        // v = 0.5: (2/π)(π/3 − 0.5·√0.75) = 0.391002.
        assert!((otf.value(2.0) - 0.391002).abs() < 1e-5);
        assert!((otf.value(-2.0) - otf.value(2.0)).abs() < 1e-15);
        let att = Otf {
            cutoff_per_um: 4.0,
            attenuation: 0.3,
        };
        assert!((att.value(2.0) - 0.391002 * 0.3f64.sqrt()).abs() < 1e-5);
    }

    #[test]
    fn cutoff_and_shifted_grid() {
        let optics = SimOptics::default();
        assert!((optics.cutoff_per_um() - 2.4 / 0.525).abs() < 1e-9);
        let otf = Otf::new(&optics, 0.3);
        let (n, p) = (64, 0.08);
        // Centre on grid point (kx, ky) = (5, −3) pixels: there the value is 1.
        let c = [freq(5, n, p), freq(n - 3, n, p)];
        let g = otf.grid(n, n, p, c);
        assert!((g[(n - 3) * n + 5] - 1.0).abs() < 1e-6);
        assert!((g[(n - 3) * n + 6] as f64 - otf.value(1.0 / (n as f64 * p))).abs() < 1e-5);
        // The tabulated grid matches the formula everywhere.
        for (i, &v) in g.iter().enumerate() {
            let (kx, ky) = (freq(i % n, n, p) - c[0], freq(i / n, n, p) - c[1]);
            assert!((v as f64 - otf.at(kx, ky)).abs() < 1e-5, "{i}");
        }
        assert_eq!(signed_index(32, 64), -32);
        assert_eq!(signed_index(31, 64), 31);
    }
}
