//! Ideal widefield OTF of a circular pupil (incoherent imaging), with the empirical
//! attenuation aᵛ that fairSIM (Müller et al. 2016) applies to match real objectives:
//!
//! OTF(k) = (2/π)(acos v − v√(1 − v²)) · aᵛ,  v = |k| / k_c,  k_c = 2·NA/λ (cycles/µm),
//!
//! and zero for v ≥ 1. Frequencies are in cycles/µm throughout; on an FFT grid of n pixels
//! of size p µm, index i (FFT order) has frequency [`freq`]`(i, n, p)` = i/(n·p) (or
//! (i − n)/(n·p) in the negative half).

use crate::fft::Complex32;
use crate::image::{check_finite, check_min_size};
use crate::{invalid, Result, Volume};
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
                "the pixel size must be given in nm, more than 1 and less than 10000 (got {})",
                self.pixel_size_nm
            );
        }
        Ok(())
    }
}

/// Radial samples of an [`Otf`] over [0, k_c]: `TABLE_STEPS + 2` values, linear interpolation
/// in between (the last two are 0, so the interpolation reaches 0 at the cutoff).
const TABLE_STEPS: usize = 4096;

/// A rotationally symmetric widefield OTF, normalised to 1 at k = 0 and 0 beyond the cutoff:
/// the attenuated ideal OTF ([`Otf::new`]) or the OTF of a measured PSF ([`Otf::from_psf`]).
/// Stored as a radial table (acos and powf per pixel would dominate the reconstruction
/// time); the table error is below 1e-5.
#[derive(Debug, Clone, PartialEq)]
pub struct Otf {
    /// Cutoff frequency k_c, cycles/µm.
    pub cutoff_per_um: f64,
    /// Attenuation a of aᵛ (1 = the ideal OTF; fairSIM's default is about 0.3); `None` for an
    /// OTF measured from a PSF.
    pub attenuation: Option<f64>,
    table: Vec<f64>,
}

impl Otf {
    /// The widefield OTF of `optics` with attenuation `attenuation`.
    pub fn new(optics: &SimOptics, attenuation: f64) -> Self {
        Self::ideal(optics.cutoff_per_um(), attenuation)
    }

    /// The ideal OTF of cutoff `cutoff_per_um` with attenuation `attenuation`.
    pub fn ideal(cutoff_per_um: f64, attenuation: f64) -> Self {
        let table = (0..=TABLE_STEPS + 1)
            .map(|i| {
                let v = i as f64 / TABLE_STEPS as f64;
                if v >= 1.0 {
                    0.0
                } else {
                    2.0 / PI * (v.acos() - v * (1.0 - v * v).sqrt()) * attenuation.powf(v)
                }
            })
            .collect();
        Otf {
            cutoff_per_um,
            attenuation: Some(attenuation),
            table,
        }
    }

    /// The OTF of a measured PSF: an image of one sub-resolution bead, sampled with the raw
    /// SIM pixel size (a z-stack contributes its brightest plane). The background (median of
    /// the border pixels) is removed, the modulus of its Fourier transform is averaged over
    /// rings, the noise floor beyond the cutoff of `optics` is subtracted, and the profile is
    /// normalised to 1 at k = 0 and set to 0 beyond the cutoff.
    pub fn from_psf(psf: &Volume, optics: &SimOptics) -> Result<Self> {
        optics.validate()?;
        check_finite(&psf.data, "the PSF")?;
        check_min_size(&psf.data, "the PSF", 16)?;
        let plane = psf
            .data
            .outer_iter()
            .max_by(|a, b| {
                let m = |p: &ndarray::ArrayView2<f32>| p.iter().fold(f32::MIN, |m, &v| m.max(v));
                m(a).total_cmp(&m(b))
            })
            .expect("at least one plane");
        let (ny, nx) = plane.dim();
        let mut border: Vec<f32> = plane
            .indexed_iter()
            .filter(|((y, x), _)| *y == 0 || *x == 0 || *y == ny - 1 || *x == nx - 1)
            .map(|(_, &v)| v)
            .collect();
        border.sort_by(f32::total_cmp);
        let background = border[border.len() / 2];
        let mut spec: Vec<Complex32> = plane
            .iter()
            .map(|&v| Complex32::new((v - background).max(0.0), 0.0))
            .collect();
        if spec.iter().all(|v| v.re == 0.0) {
            return invalid!("the PSF is empty: no pixel is above its background");
        }
        crate::fft::Fft2::new(ny, nx).forward(&mut spec);
        let dc = spec[0].re as f64;

        // Ring averages of |OTF| in steps of the coarser frequency spacing.
        let p = optics.pixel_size_um();
        let dk = 1.0 / (ny.min(nx) as f64 * p);
        let kc = optics.cutoff_per_um();
        let rings = (freq(nx / 2, nx, p).hypot(freq(ny / 2, ny, p)) / dk) as usize + 2;
        let (mut sum, mut count) = (vec![0f64; rings], vec![0usize; rings]);
        let (mut noise, mut noise_n) = (0f64, 0usize);
        for j in 0..ny {
            for i in 0..nx {
                let k = freq(i, nx, p).hypot(freq(j, ny, p));
                let m = spec[j * nx + i].norm() as f64 / dc;
                let r = (k / dk).round() as usize;
                sum[r] += m;
                count[r] += 1;
                if k > 1.1 * kc {
                    noise += m;
                    noise_n += 1;
                }
            }
        }
        let floor = if noise_n > 0 {
            noise / noise_n as f64
        } else {
            0.0
        };
        let profile: Vec<f64> = sum
            .iter()
            .zip(&count)
            .map(|(&s, &c)| if c > 0 { s / c as f64 } else { 0.0 })
            .collect();
        let at = |k: f64| -> f64 {
            let t = k / dk;
            let i = (t as usize).min(rings - 2);
            let f = (t - i as f64).min(1.0);
            profile[i] * (1.0 - f) + profile[i + 1] * f
        };
        let norm = at(0.0) - floor;
        let table = (0..=TABLE_STEPS + 1)
            .map(|i| {
                let v = i as f64 / TABLE_STEPS as f64;
                if v >= 1.0 {
                    0.0
                } else {
                    ((at(v * kc) - floor) / norm).clamp(0.0, 1.0)
                }
            })
            .collect();
        Ok(Otf {
            cutoff_per_um: kc,
            attenuation: None,
            table,
        })
    }

    /// This OTF times the zero-order attenuation 1 − `strength`·exp(−k²/(2σ²)), σ =
    /// `sigma_per_um` cycles/µm (fairSIM's OTF attenuation against out-of-focus light).
    pub fn with_zero_order_attenuation(mut self, strength: f64, sigma_per_um: f64) -> Self {
        let kc = self.cutoff_per_um;
        for (i, v) in self.table.iter_mut().enumerate() {
            let k = i as f64 / TABLE_STEPS as f64 * kc;
            *v *= 1.0 - strength * (-(k * k) / (2.0 * sigma_per_um * sigma_per_um)).exp();
        }
        self
    }

    /// This OTF raised to the power `e` (tabulated, so a grid costs no powf per pixel).
    pub fn powf(mut self, e: f64) -> Self {
        for v in self.table.iter_mut() {
            *v = v.powf(e);
        }
        self
    }

    /// OTF at spatial frequency `k` (cycles/µm, any sign), 1 at k = 0.
    pub fn value(&self, k: f64) -> f64 {
        let t = k.abs() / self.cutoff_per_um * TABLE_STEPS as f64;
        if t >= TABLE_STEPS as f64 {
            return 0.0;
        }
        let i = t as usize;
        let f = t - i as f64;
        self.table[i] * (1.0 - f) + self.table[i + 1] * f
    }

    /// OTF at (kx, ky), cycles/µm.
    pub fn at(&self, kx: f64, ky: f64) -> f64 {
        self.value(kx.hypot(ky))
    }

    /// The OTF centred at `centre` (kx, ky in cycles/µm), i.e. OTF(k − centre), sampled on
    /// the FFT grid of an (ny, nx) image of `pixel_um` µm pixels; row-major, FFT order.
    pub fn grid(&self, ny: usize, nx: usize, pixel_um: f64, centre: [f64; 2]) -> Vec<f32> {
        // In table steps: t = |k − centre| · STEPS / k_c, f32 (a table step is 2.4e-4 k_c).
        let scale = TABLE_STEPS as f64 / self.cutoff_per_um;
        let table: Vec<f32> = self.table.iter().map(|&v| v as f32).collect();
        let fx2: Vec<f32> = (0..nx)
            .map(|i| (((freq(i, nx, pixel_um) - centre[0]) * scale) as f32).powi(2))
            .collect();
        let last = TABLE_STEPS as f32;
        let mut out = crate::image::work_buffer(ny * nx);
        out.par_chunks_mut(nx).enumerate().for_each(|(j, row)| {
            let fy2 = (((freq(j, ny, pixel_um) - centre[1]) * scale) as f32).powi(2);
            for (v, &f2) in row.iter_mut().zip(&fx2) {
                let t = (f2 + fy2).sqrt();
                *v = if t >= last {
                    0.0
                } else {
                    let i = t as usize;
                    let f = t - i as f32;
                    table[i] * (1.0 - f) + table[i + 1] * f
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
    Otf::ideal(cutoff_per_um, 1.0)
        .powf(bend)
        .grid(ny, nx, pixel_um, [0.0, 0.0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ideal_otf_values() {
        let otf = Otf::ideal(4.0, 1.0);
        assert!((otf.value(0.0) - 1.0).abs() < 1e-12);
        assert_eq!(otf.value(4.0), 0.0);
        assert_eq!(otf.value(5.0), 0.0);
        // v = 0.5: (2/π)(π/3 − 0.5·√0.75) = 0.391002.
        assert!((otf.value(2.0) - 0.391002).abs() < 1e-5);
        assert!((otf.value(-2.0) - otf.value(2.0)).abs() < 1e-15);
        assert!((otf.value(1.0) - 0.685_05).abs() < 1e-4);
        let att = Otf::ideal(4.0, 0.3);
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
