//! Simulated 2D SIM raw data with known pattern parameters (for tests, benchmarks and sample
//! data), following the image formation model of Gustafsson 2000:
//!
//! D_{a,p}(r) = photons · ((s · I_{a,p}) ⊗ PSF)(r) + background, then Poisson noise and
//! optional Gaussian read noise, with the illumination
//! I_{a,p}(r) = 1 + m·cos(2π k₀,a·r + φ_a + 2πp/N).
//!
//! r is in µm measured from the centre of pixel (x, y) = (nx/2, ny/2), k₀ in cycles/µm. The PSF is applied
//! as the model OTF of [`otf`](super::otf) in Fourier space (circular boundary). Frames are in
//! PAZ order: phase fastest, then angle.

use super::bands::{crop_spectrum, zero_pad};
use super::otf::{Otf, SimOptics};
use crate::fft::Complex32;
use crate::fft::Fft2;
use crate::{invalid, Result, Volume, VoxelSize};
use ndarray::{Array2, Array3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Poisson};
use std::f64::consts::PI;

/// Acquisition parameters of [`simulate_sim`].
#[derive(Debug, Clone, PartialEq)]
pub struct SimAcquisition {
    /// Number of pattern directions (default 3).
    pub angles: usize,
    /// Number of equidistant phases per direction (default 3).
    pub phases: usize,
    /// Direction of the first pattern wave vector, degrees from +x towards +y; the others
    /// follow every 180°/angles (default 12°).
    pub angle_offset_deg: f64,
    /// Stripe period, nm; `None` puts k₀ at 0.85 × the widefield cutoff.
    pub line_spacing_nm: Option<f64>,
    /// Modulation depth m, 0–1 (default 0.8).
    pub modulation: f64,
    /// OTF attenuation a (default 0.3), see [`Otf`].
    pub otf_attenuation: f64,
    /// Expected photons per pixel for object value 1 under mean illumination (default 500).
    pub photons: f64,
    /// Uniform background, photons per pixel (default 50).
    pub background: f64,
    /// Gaussian camera read noise, standard deviation in photo-electrons (default 0).
    pub read_noise: f64,
    /// Seed of the pattern phases and of the noise.
    pub seed: u64,
}

impl Default for SimAcquisition {
    fn default() -> Self {
        SimAcquisition {
            angles: 3,
            phases: 3,
            angle_offset_deg: 12.0,
            line_spacing_nm: None,
            modulation: 0.8,
            otf_attenuation: 0.3,
            photons: 500.0,
            background: 50.0,
            read_noise: 0.0,
            seed: 1,
        }
    }
}

/// The true pattern of one direction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PatternTruth {
    /// Direction of k₀, degrees from +x towards +y.
    pub angle_deg: f64,
    /// k₀ in pixels of the Fourier grid: (kx·nx·p, ky·ny·p).
    pub k0_px: [f64; 2],
    /// k₀ in cycles/µm, (kx, ky).
    pub k0_per_um: [f64; 2],
    /// Stripe period, nm.
    pub line_spacing_nm: f64,
    /// Phase φ_a of the first frame of this direction at the centre pixel (nx/2, ny/2),
    /// radians in [0, 2π).
    pub phase_rad: f64,
    /// Modulation depth m.
    pub modulation: f64,
}

/// A simulated SIM acquisition.
#[derive(Debug, Clone)]
pub struct SimData {
    /// Raw frames (angles·phases, ny, nx), PAZ order, photons (plus read noise).
    pub raw: Volume,
    /// Pattern parameters per direction.
    pub truth: Vec<PatternTruth>,
}

/// Simulates SIM frames of `object` (ny, nx; values ≈ 0–1) imaged with `optics`.
pub fn simulate_sim(
    object: &Array2<f32>,
    optics: &SimOptics,
    acq: &SimAcquisition,
) -> Result<SimData> {
    optics.validate()?;
    let (ny, nx) = object.dim();
    if ny < 2 || nx < 2 {
        return invalid!("cannot simulate SIM frames of {nx}×{ny} pixels");
    }
    if acq.angles == 0 || acq.phases < 3 {
        return invalid!("SIM needs at least 1 angle and 3 phases");
    }
    if !(0.0..=1.0).contains(&acq.modulation)
        || acq.photons.is_nan()
        || acq.photons <= 0.0
        || acq.background < 0.0
        || acq.read_noise < 0.0
    {
        return invalid!(
            "modulation must be 0–1, photons positive, background and read noise non-negative"
        );
    }
    let p = optics.pixel_size_um();
    let kc = optics.cutoff_per_um();
    let k0 = match acq.line_spacing_nm {
        Some(d) if d > 0.0 => 1000.0 / d,
        Some(d) => return invalid!("the line spacing must be positive (got {d} nm)"),
        None => 0.85 * kc,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(acq.seed);
    let truth: Vec<PatternTruth> = (0..acq.angles)
        .map(|a| {
            let angle = acq.angle_offset_deg + 180.0 * a as f64 / acq.angles as f64;
            let (s, c) = angle.to_radians().sin_cos();
            let k = [k0 * c, k0 * s];
            PatternTruth {
                angle_deg: angle,
                k0_px: [k[0] * nx as f64 * p, k[1] * ny as f64 * p],
                k0_per_um: k,
                line_spacing_nm: 1000.0 / k0,
                phase_rad: rng.gen_range(0.0..2.0 * PI),
                modulation: acq.modulation,
            }
        })
        .collect();
    // The illuminated object (s · I) holds frequencies up to k_object + k₀, beyond the Nyquist
    // frequency of the raw grid: it is formed on a 2× grid (the object Fourier-interpolated),
    // filtered by the OTF there and only then sampled on the raw grid (a spectrum crop, exact
    // since the OTF cutoff is below the raw Nyquist frequency). On the raw grid alone the
    // high frequencies would alias into the OTF support.
    let (fy, fx) = (2 * ny, 2 * nx);
    let pf = p / 2.0;
    let otf = Otf::new(optics, acq.otf_attenuation).grid(fy, fx, pf, [0.0, 0.0]);
    let (fft, fine) = (Fft2::new(ny, nx), Fft2::new(fy, fx));
    let mut fine_object: Vec<Complex32> = object.iter().map(|&v| Complex32::new(v, 0.0)).collect();
    fft.forward(&mut fine_object);
    let mut fine_object = zero_pad(&fine_object, (ny, nx), (fy, fx), 4.0);
    fine.inverse(&mut fine_object);
    let frames = acq.angles * acq.phases;
    let mut raw = Array3::<f32>::zeros((frames, ny, nx));
    let poisson_or_zero = |lambda: f64, rng: &mut ChaCha8Rng| -> f64 {
        if lambda > 0.0 {
            Poisson::new(lambda)
                .map(|d| d.sample(rng))
                .unwrap_or(lambda)
        } else {
            0.0
        }
    };
    let read = Normal::new(0.0, acq.read_noise.max(1e-12)).expect("positive std");
    for (a, t) in truth.iter().enumerate() {
        for ph in 0..acq.phases {
            let phi = t.phase_rad + 2.0 * PI * ph as f64 / acq.phases as f64;
            let mut buf: Vec<Complex32> = fine_object
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let (x, y) = (i % fx, i / fx);
                    let (dx, dy) = (x as f64 - (fx / 2) as f64, y as f64 - (fy / 2) as f64);
                    let arg = 2.0 * PI * (t.k0_per_um[0] * dx + t.k0_per_um[1] * dy) * pf + phi;
                    Complex32::new(v.re * (1.0 + acq.modulation * arg.cos()) as f32, 0.0)
                })
                .collect();
            fine.forward(&mut buf);
            for (v, &h) in buf.iter_mut().zip(&otf) {
                *v *= h;
            }
            let mut buf = crop_spectrum(&buf, (fy, fx), (ny, nx), 0.25);
            fft.inverse(&mut buf);
            let mut frame = raw.index_axis_mut(ndarray::Axis(0), a * acq.phases + ph);
            for (out, v) in frame.iter_mut().zip(&buf) {
                let lambda = acq.photons * v.re.max(0.0) as f64 + acq.background;
                let mut n = poisson_or_zero(lambda, &mut rng);
                if acq.read_noise > 0.0 {
                    n += read.sample(&mut rng);
                }
                *out = n as f32;
            }
        }
    }
    let voxel = VoxelSize { z: 1.0, y: p, x: p };
    Ok(SimData {
        raw: Volume::new(raw, voxel),
        truth,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_object_shows_the_pattern() {
        // A uniform object: each frame is 1 + m·OTF(k₀)·cos(…) times the photons. The first
        // direction is along x with exactly 20 periods across the 64 × 80 nm field (period
        // 256 nm), so that the circular convolution sees a periodic pattern.
        let optics = SimOptics::default();
        let acq = SimAcquisition {
            photons: 1e6,
            background: 0.0,
            angle_offset_deg: 0.0,
            line_spacing_nm: Some(256.0),
            ..Default::default()
        };
        let obj = Array2::from_elem((64, 64), 1.0f32);
        let data = simulate_sim(&obj, &optics, &acq).unwrap();
        assert_eq!(data.raw.shape(), (9, 64, 64));
        let t = data.truth[0];
        assert!((t.k0_px[0] - 20.0).abs() < 1e-9 && t.k0_px[1].abs() < 1e-9);
        let h = Otf::new(&optics, 0.3).value(1000.0 / 256.0);
        let f = data.raw.data.index_axis(ndarray::Axis(0), 0);
        let (lo, hi) = f
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        let contrast = (hi - lo) as f64 / (hi + lo) as f64;
        // The pattern is not sampled exactly at its extrema, so allow a few per cent.
        assert!(
            (contrast - 0.8 * h).abs() < 0.1 * 0.8 * h + 0.01,
            "{contrast} vs {}",
            0.8 * h
        );
    }
}
