//! Simulated SMLM acquisitions with ground truth: microtubule-like filaments labelled with
//! blinking emitters, an integrated-Gaussian PSF and an EMCCD or sCMOS camera.
//!
//! Filaments are persistent random walks (persistence length ~ a few µm, as microtubules at
//! this scale). Each emitter blinks as a two-state Markov chain whose on-fraction gives the
//! requested mean number of active emitters per frame; an active emitter emits a photon
//! count drawn around the mean. Camera: photons → Poisson(QE·photons) electrons → EM gain
//! (Gamma(n, gain), excess noise factor 2) → Gaussian read noise → e⁻/ADU → + baseline →
//! rounded ADU. The presets follow the SMLM Challenge 2016 2D sets (MT0.N1.LD / MT0.N1.HD):
//! 64×64 frames of 100 nm pixels, EMCCD QE 0.9, EM gain 300, read noise 74.4 e⁻, baseline
//! 100 ADU, 45 e⁻/ADU. The structure, photon counts and densities are ours (~1 and ~20
//! active emitters per frame, 2000 photons, 20 photons/pixel background, PSF σ 120 nm), not
//! the challenge's exact values.

use super::fit::pixel_integrals;
use crate::{invalid, Result};
use ndarray::Array3;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma, Normal, Poisson};

/// The simulated camera.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum SimCamera {
    /// Electron-multiplying CCD.
    Emccd {
        quantum_efficiency: f64,
        em_gain: f64,
        /// Read noise, e⁻ rms (before EM gain is irrelevant here: after the register).
        read_noise_e: f64,
        baseline_adu: f64,
        electrons_per_adu: f64,
    },
    /// sCMOS: no gain register; each pixel has its own read noise (drawn once per stack
    /// around `read_noise_e`).
    Scmos {
        quantum_efficiency: f64,
        read_noise_e: f64,
        baseline_adu: f64,
        electrons_per_adu: f64,
    },
}

impl SimCamera {
    /// The SMLM Challenge 2016 EMCCD.
    pub fn challenge_emccd() -> Self {
        SimCamera::Emccd {
            quantum_efficiency: 0.9,
            em_gain: 300.0,
            read_noise_e: 74.4,
            baseline_adu: 100.0,
            electrons_per_adu: 45.0,
        }
    }

    /// The analysis camera settings matching this simulated camera.
    pub fn analysis_camera(&self) -> super::Camera {
        match *self {
            SimCamera::Emccd {
                em_gain,
                baseline_adu,
                electrons_per_adu,
                ..
            } => super::Camera {
                offset_adu: baseline_adu,
                electrons_per_adu,
                em_gain: Some(em_gain),
            },
            SimCamera::Scmos {
                baseline_adu,
                electrons_per_adu,
                ..
            } => super::Camera {
                offset_adu: baseline_adu,
                electrons_per_adu,
                em_gain: None,
            },
        }
    }

    /// One pixel's camera reading, ADU (rounded, ≥ 0), for an expected `mu` photons reaching
    /// it: Poisson(QE·mu) photoelectrons, EM gain (Gamma) and read noise, e⁻/ADU, baseline.
    /// `pixel_read_noise_e` replaces the sCMOS read noise for this pixel when given.
    pub fn sample_adu(&self, mu: f64, pixel_read_noise_e: Option<f64>, rng: &mut impl Rng) -> f32 {
        let lambda = self.quantum_efficiency() * mu;
        let electrons = if lambda > 0.0 {
            Poisson::new(lambda).expect("positive mean").sample(rng)
        } else {
            0.0
        };
        let adu = match *self {
            SimCamera::Emccd {
                em_gain,
                read_noise_e,
                baseline_adu,
                electrons_per_adu,
                ..
            } => {
                let amplified = if electrons > 0.0 {
                    Gamma::new(electrons, em_gain)
                        .expect("positive shape")
                        .sample(rng)
                } else {
                    0.0
                };
                let e = amplified + read_noise_e * rng.sample::<f64, _>(rand_distr::StandardNormal);
                baseline_adu + e / electrons_per_adu
            }
            SimCamera::Scmos {
                read_noise_e,
                baseline_adu,
                electrons_per_adu,
                ..
            } => {
                let noise = pixel_read_noise_e.unwrap_or(read_noise_e);
                let e = electrons + noise * rng.sample::<f64, _>(rand_distr::StandardNormal);
                baseline_adu + e / electrons_per_adu
            }
        };
        adu.round().max(0.0) as f32
    }

    /// Detected fraction of the photons reaching the pixel (0–1).
    pub fn quantum_efficiency(&self) -> f64 {
        match *self {
            SimCamera::Emccd {
                quantum_efficiency, ..
            }
            | SimCamera::Scmos {
                quantum_efficiency, ..
            } => quantum_efficiency,
        }
    }
}

/// Parameters of [`simulate_smlm`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SmlmSimOptions {
    /// Frame width and height, pixels.
    pub width: usize,
    pub height: usize,
    pub frames: usize,
    /// Pixel size in the sample, nm.
    pub pixel_nm: f64,
    /// PSF standard deviation, nm.
    pub psf_sigma_nm: f64,
    /// Number of filaments and labelled emitters on them.
    pub filaments: usize,
    pub emitters: usize,
    /// Mean number of emitters on in a frame.
    pub active_per_frame: f64,
    /// Mean number of consecutive frames an emitter stays on.
    pub mean_on_frames: f64,
    /// Mean photons emitted by an active emitter in one frame (before QE).
    pub photons: f64,
    /// Background, photons per pixel per frame (before QE).
    pub background: f64,
    pub camera: SimCamera,
    pub seed: u64,
}

impl SmlmSimOptions {
    /// Like the SMLM Challenge 2016 low-density 2D set: a few well-separated emitters per
    /// frame.
    pub fn low_density(frames: usize) -> Self {
        SmlmSimOptions {
            width: 64,
            height: 64,
            frames,
            pixel_nm: 100.0,
            psf_sigma_nm: 120.0,
            filaments: 10,
            emitters: 3000,
            active_per_frame: 1.0,
            mean_on_frames: 1.5,
            photons: 2000.0,
            background: 20.0,
            camera: SimCamera::challenge_emccd(),
            seed: 1,
        }
    }

    /// Like the SMLM Challenge 2016 high-density 2D set: overlapping emitters.
    pub fn high_density(frames: usize) -> Self {
        SmlmSimOptions {
            active_per_frame: 20.0,
            ..SmlmSimOptions::low_density(frames)
        }
    }
}

/// One emitter seen in one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrueEmitter {
    /// Frame number, from 1.
    pub frame: u32,
    /// Emitter index (the same molecule blinks in several frames).
    pub id: u32,
    /// Position, nm from the image's top-left corner.
    pub x_nm: f64,
    pub y_nm: f64,
    /// Photons emitted in this frame (before QE).
    pub photons: f64,
}

/// A simulated stack in ADU and its ground truth.
#[derive(Debug, Clone)]
pub struct SmlmSimulation {
    /// Raw camera frames, ADU, shape (frames, height, width).
    pub frames: Array3<f32>,
    pub truth: Vec<TrueEmitter>,
}

/// Emitter positions along persistent random walks inside a `w`×`h` nm field.
fn filament_positions(rng: &mut ChaCha8Rng, o: &SmlmSimOptions) -> Vec<(f64, f64)> {
    let (w, h) = (o.width as f64 * o.pixel_nm, o.height as f64 * o.pixel_nm);
    let step: f64 = 10.0; // nm
    let persistence: f64 = 3000.0; // nm
    let turn = Normal::new(0.0, (2.0 * step / persistence).sqrt()).expect("finite σ");
    let mut paths: Vec<Vec<(f64, f64)>> = Vec::new();
    for _ in 0..o.filaments.max(1) {
        let (x, y) = (rng.gen_range(0.0..w), rng.gen_range(0.0..h));
        let angle: f64 = rng.gen_range(0.0..std::f64::consts::TAU);
        // Walk both ways from the seed point until the filament leaves the field.
        let mut path = vec![(x, y)];
        for dir in [1.0, -1.0] {
            let (mut px, mut py, mut a) = (x, y, angle);
            for _ in 0..5000 {
                a += turn.sample(rng);
                px += dir * step * a.cos();
                py += dir * step * a.sin();
                if !(0.0..w).contains(&px) || !(0.0..h).contains(&py) {
                    break;
                }
                path.push((px, py));
            }
        }
        paths.push(path);
    }
    let all: Vec<(f64, f64)> = paths.into_iter().flatten().collect();
    // Labels: random points along the filaments, ±12.5 nm (microtubule radius + linker).
    let jitter = Normal::new(0.0, 12.5).expect("finite σ");
    (0..o.emitters)
        .map(|_| {
            let (x, y) = all[rng.gen_range(0..all.len())];
            let xe = (x + jitter.sample(rng)).clamp(0.0, w - 1e-3);
            let ye = (y + jitter.sample(rng)).clamp(0.0, h - 1e-3);
            (xe, ye)
        })
        .collect()
}

/// Work space of [`SpotScratch::add_spot`].
#[derive(Debug, Default)]
pub struct SpotScratch {
    ex: Vec<f64>,
    ey: Vec<f64>,
    t1: Vec<f64>,
    t2: Vec<f64>,
}

impl SpotScratch {
    /// Adds `photons` spread by an integrated-Gaussian PSF of σ `sigma_px` centred at
    /// `(x, y)` (pixels, the centre of pixel (i, j) at (i + ½, j + ½)) to the row-major
    /// image `expected` of size `(w, h)`. Only the pixels within ±5σ are touched.
    pub fn add_spot(
        &mut self,
        expected: &mut [f64],
        (w, h): (usize, usize),
        (x, y): (f64, f64),
        sigma_px: f64,
        photons: f64,
    ) {
        let n = w.max(h);
        for v in [&mut self.ex, &mut self.ey, &mut self.t1, &mut self.t2] {
            v.resize(n, 0.0);
        }
        pixel_integrals(
            x,
            sigma_px,
            &mut self.ex[..w],
            &mut self.t1[..w],
            &mut self.t2[..w],
        );
        pixel_integrals(
            y,
            sigma_px,
            &mut self.ey[..h],
            &mut self.t1[..h],
            &mut self.t2[..h],
        );
        let r = (5.0 * sigma_px).ceil() as isize + 1;
        let (cx, cy) = (x.floor() as isize, y.floor() as isize);
        for j in (cy - r).max(0)..(cy + r + 1).min(h as isize) {
            let row = &mut expected[j as usize * w..(j as usize + 1) * w];
            let ey = self.ey[j as usize];
            for i in (cx - r).max(0)..(cx + r + 1).min(w as isize) {
                row[i as usize] += photons * self.ex[i as usize] * ey;
            }
        }
    }
}

/// Simulates a blinking-emitter acquisition. Deterministic for a given seed.
pub fn simulate_smlm(o: &SmlmSimOptions) -> Result<SmlmSimulation> {
    if o.width < 8 || o.height < 8 || o.frames == 0 {
        return invalid!(
            "cannot simulate {} frames of {}×{} pixels (at least 1 frame of 8×8)",
            o.frames,
            o.width,
            o.height
        );
    }
    if !(o.pixel_nm > 0.0 && o.psf_sigma_nm > 0.0 && o.photons > 0.0 && o.background >= 0.0) {
        return invalid!("pixel size, PSF σ and photons must be positive, background ≥ 0");
    }
    if o.emitters == 0 || !(o.active_per_frame > 0.0 && o.active_per_frame < o.emitters as f64) {
        return invalid!(
            "active emitters per frame ({}) must be between 0 and the number of emitters ({})",
            o.active_per_frame,
            o.emitters
        );
    }
    // The stack (f32) and its noise-free copy.
    crate::synthetic::check_volume((o.frames, o.height, o.width), 2)?;
    let mut rng = ChaCha8Rng::seed_from_u64(o.seed);
    let positions = filament_positions(&mut rng, o);
    // Two-state blinking: off→on k_on, on→off k_off = 1/mean_on; on-fraction f.
    let f = o.active_per_frame / o.emitters as f64;
    let k_off = (1.0 / o.mean_on_frames.max(1.0)).min(1.0);
    let k_on = (f * k_off / (1.0 - f)).min(1.0);
    let mut on: Vec<bool> = (0..o.emitters).map(|_| rng.gen_bool(f)).collect();
    let photon_spread = Normal::new(1.0, 0.2).expect("finite σ");

    let (w, h) = (o.width, o.height);
    let sigma_px = o.psf_sigma_nm / o.pixel_nm;
    let scmos_noise: Vec<f64> = match o.camera {
        SimCamera::Scmos { read_noise_e, .. } => (0..w * h)
            .map(|_| read_noise_e * (0.5 + rng.gen::<f64>()))
            .collect(),
        SimCamera::Emccd { .. } => Vec::new(),
    };
    let mut frames = Array3::<f32>::zeros((o.frames, h, w));
    let mut truth = Vec::new();
    let mut expected = vec![0.0f64; w * h];
    let mut scratch = SpotScratch::default();
    for t in 0..o.frames {
        expected.fill(o.background);
        for (k, state) in on.iter_mut().enumerate() {
            if t > 0 {
                let flip = if *state { k_off } else { k_on };
                if rng.gen_bool(flip) {
                    *state = !*state;
                }
            }
            if !*state {
                continue;
            }
            let (x_nm, y_nm) = positions[k];
            let photons = o.photons * f64::max(photon_spread.sample(&mut rng), 0.2);
            truth.push(TrueEmitter {
                frame: t as u32 + 1,
                id: k as u32,
                x_nm,
                y_nm,
                photons,
            });
            scratch.add_spot(
                &mut expected,
                (w, h),
                (x_nm / o.pixel_nm, y_nm / o.pixel_nm),
                sigma_px,
                photons,
            );
        }
        let mut plane = frames.index_axis_mut(ndarray::Axis(0), t);
        for (p, (out, &mu)) in plane.iter_mut().zip(&expected).enumerate() {
            let read_noise = scmos_noise.get(p).copied();
            *out = o.camera.sample_adu(mu, read_noise, &mut rng);
        }
    }
    Ok(SmlmSimulation { frames, truth })
}

/// Writes the ground truth as CSV: frame, emitter id, x [nm], y [nm], photons.
pub fn write_truth_csv(w: &mut impl std::io::Write, truth: &[TrueEmitter]) -> std::io::Result<()> {
    writeln!(
        w,
        "\"frame\",\"id\",\"x [nm]\",\"y [nm]\",\"intensity [photon]\""
    )?;
    for t in truth {
        writeln!(
            w,
            "{},{},{:.2},{:.2},{:.1}",
            t.frame, t.id, t.x_nm, t.y_nm, t.photons
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_density_preset_matches_the_challenge_camera() {
        let o = SmlmSimOptions {
            emitters: 500,
            ..SmlmSimOptions::low_density(200)
        };
        let sim = simulate_smlm(&o).unwrap();
        assert_eq!(sim.frames.dim(), (200, 64, 64));
        let per_frame = sim.truth.len() as f64 / 200.0;
        assert!(
            (per_frame - 1.0).abs() < 0.4,
            "{per_frame} emitters per frame"
        );
        // Background level: 20 photons · QE 0.9 · 300 / 45 e⁻/ADU = 120 ADU above 100.
        let mut values: Vec<f32> = sim.frames.iter().copied().collect();
        values.sort_by(f32::total_cmp);
        let median = values[values.len() / 2] as f64;
        assert!((median - 220.0).abs() < 20.0, "median {median} ADU");
        // Same seed, same data.
        let again = simulate_smlm(&o).unwrap();
        assert_eq!(again.frames, sim.frames);
        assert!(sim
            .truth
            .iter()
            .all(|t| t.x_nm >= 0.0 && t.x_nm < 6400.0 && t.y_nm >= 0.0 && t.y_nm < 6400.0));
    }

    #[test]
    fn scmos_background_is_poisson_plus_read_noise() {
        let o = SmlmSimOptions {
            camera: SimCamera::Scmos {
                quantum_efficiency: 1.0,
                read_noise_e: 1.0,
                baseline_adu: 100.0,
                electrons_per_adu: 0.5,
            },
            active_per_frame: 0.001,
            frames: 20,
            ..SmlmSimOptions::low_density(20)
        };
        let sim = simulate_smlm(&o).unwrap();
        let n = sim.frames.len() as f64;
        let mean = sim.frames.iter().map(|&v| v as f64).sum::<f64>() / n;
        // 20 photons / 0.5 e⁻/ADU = 40 ADU above the baseline.
        assert!((mean - 140.0).abs() < 1.0, "mean {mean}");
    }
}
