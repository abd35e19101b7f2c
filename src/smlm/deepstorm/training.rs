//! Deep-STORM training on simulated frames (Nehme et al. 2018): random molecules, the
//! camera's noise, and as target their positions as spikes of [`SPIKE`] on the fine grid
//! (bilinearly shared between the four nearest fine pixels, so that positions finer than a
//! fine pixel are learnt too). Loss = MSE(G ⊛ prediction, G ⊛ target) + λ·mean|prediction|,
//! G a normalised Gaussian of σ = 1 fine pixel.
//!
//! Patches are drawn fresh for every step (no patch is seen twice); half of them place the
//! molecules uniformly, half along a random line (the close pairs of filaments). Molecules
//! within 3σ outside the patch add light but are not in the target, as at a frame's edge.
//! After training, the detection threshold is chosen for the best Jaccard index on simulated
//! filament stacks at low and high density (SMLM Challenge 2016 protocol).

use super::{
    find_peaks, gaussian_kernel, normalise_frame, single_peak, DeepStormConfig, DeepStormModel,
    BLUR_SIGMA, SPIKE,
};
use crate::nn::layers::conv2d_same;
use crate::nn::{device, train, Objective, TrainOptions};
use crate::progress::{Progress, SubProgress};
use crate::smlm::metrics::assess;
use crate::smlm::synthetic::{simulate_smlm, SimCamera, SmlmSimOptions, SpotScratch};
use crate::{invalid, Result};
use candle_core::{ModuleT, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Poisson};
use serde::{Deserialize, Serialize};

/// What the network is trained for, and the schedule; stored in `model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainingSettings {
    /// Camera pixel size in the sample, nm.
    pub pixel_nm: f64,
    /// PSF standard deviation, nm.
    pub psf_sigma_nm: f64,
    pub camera: SimCamera,
    /// Photons per molecule per frame (before QE), drawn log-uniformly in this range.
    pub photons: [f64; 2],
    /// Background, photons per pixel per frame, drawn uniformly.
    pub background: [f64; 2],
    /// Molecules per µm² in a patch, drawn uniformly.
    pub density: [f64; 2],
    /// Side of a training patch, camera pixels.
    pub patch_px: usize,
    pub batch_size: usize,
    /// λ of the L1 sparsity term.
    pub l1_weight: f64,
    /// Patches held out for the validation loss.
    pub validation_patches: usize,
    pub schedule: TrainOptions,
}

impl Default for TrainingSettings {
    /// The SMLM Challenge 2016 2D camera and optics (EMCCD, 100 nm pixels), PSF σ 120 nm.
    fn default() -> Self {
        TrainingSettings {
            pixel_nm: 100.0,
            psf_sigma_nm: 120.0,
            camera: SimCamera::challenge_emccd(),
            photons: [600.0, 6000.0],
            background: [5.0, 50.0],
            density: [0.0, 4.0],
            patch_px: 16,
            batch_size: 16,
            l1_weight: 1.0,
            validation_patches: 128,
            schedule: TrainOptions {
                epochs: 40,
                steps_per_epoch: 50,
                learning_rate: 1e-3,
                lr_factor: 0.5,
                lr_patience: 5,
                min_lr: 1e-5,
                seed: 1,
                ..TrainOptions::default()
            },
        }
    }
}

impl TrainingSettings {
    pub fn validate(&self, config: &DeepStormConfig) -> Result<()> {
        config.validate()?;
        self.schedule.validate()?;
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !positive(self.pixel_nm) || !positive(self.psf_sigma_nm) {
            return invalid!("pixel size and PSF σ must be positive numbers of nm");
        }
        let qe = self.camera.quantum_efficiency();
        if !(qe > 0.0 && qe <= 1.0) {
            return invalid!(
                "the camera's quantum efficiency must be more than 0 and at most 1, not {qe}"
            );
        }
        if !(positive(self.photons[0]) && self.photons[1] >= self.photons[0]) {
            return invalid!("the photon range must be positive and increasing");
        }
        if !(self.background[0] >= 0.0 && self.background[1] >= self.background[0]) {
            return invalid!("the background range must be ≥ 0 and increasing");
        }
        if !(self.density[0] >= 0.0 && self.density[1] >= self.density[0] && self.density[1] > 0.0)
        {
            return invalid!("the density range must be ≥ 0, increasing, and not all 0");
        }
        let m = config.frame_multiple();
        if self.patch_px < 8 || self.patch_px % m != 0 {
            return invalid!(
                "training patches must be at least 8 pixels and a multiple of {m}, not {}",
                self.patch_px
            );
        }
        if self.batch_size == 0 || self.validation_patches == 0 {
            return invalid!("batch size and validation patches must be at least 1");
        }
        Ok(())
    }

    /// PSF σ in camera pixels.
    pub fn sigma_px(&self) -> f64 {
        self.psf_sigma_nm / self.pixel_nm
    }

    /// Photons per unit of network input: the peak pixel of a molecule of the geometric mean
    /// photon count.
    pub fn input_scale(&self) -> f64 {
        let s = self.sigma_px();
        (self.photons[0] * self.photons[1]).sqrt() / (2.0 * std::f64::consts::PI * s * s)
    }

    /// One training patch: the normalised input (`patch_px`²) and the target density
    /// (`patch_px·up`²).
    pub fn simulate_patch(&self, up: usize, rng: &mut ChaCha8Rng) -> (Vec<f32>, Vec<f32>) {
        let p = self.patch_px;
        let s = self.sigma_px();
        let margin = 3.0 * s;
        let side = p as f64 + 2.0 * margin;
        let area_um2 = (side * self.pixel_nm / 1000.0).powi(2);
        let density = rng.gen_range(self.density[0]..=self.density[1]);
        let count = if density * area_um2 > 0.0 {
            Poisson::new(density * area_um2)
                .expect("positive mean")
                .sample(rng) as usize
        } else {
            0
        };
        let mut positions = Vec::with_capacity(count);
        if rng.gen_bool(0.5) {
            for _ in 0..count {
                positions.push((
                    rng.gen_range(-margin..p as f64 + margin),
                    rng.gen_range(-margin..p as f64 + margin),
                ));
            }
        } else {
            // Along a line through the patch, ±25 nm across it.
            let (cx, cy) = (rng.gen_range(0.0..p as f64), rng.gen_range(0.0..p as f64));
            let angle: f64 = rng.gen_range(0.0..std::f64::consts::PI);
            let across = Normal::new(0.0, 25.0 / self.pixel_nm).expect("finite σ");
            for _ in 0..count {
                let t = rng.gen_range(-side / 2.0..side / 2.0);
                let a = across.sample(rng);
                positions.push((
                    cx + t * angle.cos() - a * angle.sin(),
                    cy + t * angle.sin() + a * angle.cos(),
                ));
            }
        }
        let background = rng.gen_range(self.background[0]..=self.background[1]);
        let ln = (self.photons[0].ln(), self.photons[1].ln());
        let mut expected = vec![background; p * p];
        let mut scratch = SpotScratch::default();
        for &(x, y) in &positions {
            let photons = if ln.1 > ln.0 {
                rng.gen_range(ln.0..ln.1).exp()
            } else {
                self.photons[0]
            };
            scratch.add_spot(&mut expected, (p, p), (x, y), s, photons);
        }
        let adu: Vec<f32> = expected
            .iter()
            .map(|&mu| self.camera.sample_adu(mu, None, rng))
            .collect();
        let mut input = vec![0.0f32; p * p];
        normalise_frame(
            &adu,
            &self.camera.analysis_camera(),
            self.input_scale(),
            &mut input,
        );
        let f = p * up;
        let mut target = vec![0.0f32; f * f];
        for &(x, y) in &positions {
            if !(0.0..p as f64).contains(&x) || !(0.0..p as f64).contains(&y) {
                continue;
            }
            splat_at(&mut target, f, x * up as f64 - 0.5, y * up as f64 - 0.5);
        }
        (input, target)
    }
}

/// Adds [`SPIKE`] at fine-grid position (u, v) (pixel centres at integers) shared bilinearly
/// between the four nearest pixels (clipped at the border, where the share is kept whole).
pub(super) fn splat_at(target: &mut [f32], f: usize, u: f64, v: f64) {
    let (i0, j0) = (u.floor(), v.floor());
    let (fx, fy) = (u - i0, v - j0);
    for (dj, wy) in [(0, 1.0 - fy), (1, fy)] {
        for (di, wx) in [(0, 1.0 - fx), (1, fx)] {
            let i = (i0 as isize + di).clamp(0, f as isize - 1) as usize;
            let j = (j0 as isize + dj).clamp(0, f as isize - 1) as usize;
            target[j * f + i] += SPIKE * (wx * wy) as f32;
        }
    }
}

/// A batch of patches as (n, 1, p, p) inputs and (n, 1, p·up, p·up) targets.
fn batch(
    settings: &TrainingSettings,
    up: usize,
    n: usize,
    rng: &mut ChaCha8Rng,
) -> Result<(Tensor, Tensor)> {
    let p = settings.patch_px;
    let mut xs = Vec::with_capacity(n * p * p);
    let mut ys = Vec::with_capacity(n * p * p * up * up);
    for _ in 0..n {
        let (x, y) = settings.simulate_patch(up, rng);
        xs.extend(x);
        ys.extend(y);
    }
    Ok((
        Tensor::from_vec(xs, (n, 1, p, p), &device())?,
        Tensor::from_vec(ys, (n, 1, p * up, p * up), &device())?,
    ))
}

struct DeepStormObjective<'a> {
    model: &'a DeepStormModel,
    settings: &'a TrainingSettings,
    /// (1, 1, k, k) Gaussian of the loss.
    kernel: Tensor,
    validation: Vec<(Tensor, Tensor)>,
}

impl DeepStormObjective<'_> {
    fn loss(&self, x: &Tensor, target: &Tensor, train: bool) -> Result<Tensor> {
        let pred = self.model.net.forward_t(x, train)?;
        let pad = self.kernel.dim(2)? / 2;
        let blurred = conv2d_same(&pred, &self.kernel, pad)?;
        let blurred_target = conv2d_same(target, &self.kernel, pad)?;
        let mse = (blurred - blurred_target)?.sqr()?.mean_all()?;
        let l1 = pred.abs()?.mean_all()?;
        Ok((mse + (l1 * self.settings.l1_weight)?)?)
    }
}

impl Objective for DeepStormObjective<'_> {
    fn training_loss(&mut self, rng: &mut ChaCha8Rng) -> Result<Tensor> {
        let up = self.model.info.architecture.upsampling;
        let (x, y) = batch(self.settings, up, self.settings.batch_size, rng)?;
        self.loss(&x, &y, true)
    }

    fn validation_loss(&mut self) -> Result<f64> {
        let mut sum = 0.0;
        let mut n = 0;
        for (x, y) in &self.validation {
            let k = x.dim(0)?;
            sum += self.loss(x, y, false)?.to_scalar::<f32>()? as f64 * k as f64;
            n += k;
        }
        Ok(sum / n.max(1) as f64)
    }
}

/// Trains a new Deep-STORM model named `name`, then calibrates its detection threshold.
/// Progress: training is the first 90 %, calibration the rest; every epoch is reported.
pub fn train_deepstorm(
    name: &str,
    config: &DeepStormConfig,
    settings: &TrainingSettings,
    progress: &mut dyn Progress,
) -> Result<DeepStormModel> {
    settings.validate(config)?;
    let (model, _) = crate::nn::run_on_device(settings.schedule.device, progress, |progress| {
        train_deepstorm_here(name, config, settings, progress)
    })?;
    model.into_device(&candle_core::Device::Cpu)
}

/// [`train_deepstorm`] on [`crate::nn::device()`].
fn train_deepstorm_here(
    name: &str,
    config: &DeepStormConfig,
    settings: &TrainingSettings,
    progress: &mut dyn Progress,
) -> Result<DeepStormModel> {
    let mut model = DeepStormModel::untrained(name, config, settings)?;
    let up = config.upsampling;
    let kernel1d = gaussian_kernel(BLUR_SIGMA);
    let k = kernel1d.len();
    let kernel2d: Vec<f32> = (0..k * k)
        .map(|i| kernel1d[i / k] * kernel1d[i % k])
        .collect();
    let kernel = Tensor::from_vec(kernel2d, (1, 1, k, k), &device())?;
    let mut rng = ChaCha8Rng::seed_from_u64(settings.schedule.seed ^ 0xDEE9_5708);
    let mut validation = Vec::new();
    let mut left = settings.validation_patches;
    while left > 0 {
        let n = left.min(32);
        validation.push(batch(settings, up, n, &mut rng)?);
        left -= n;
    }
    let device = crate::nn::device_name();
    progress.log(&format!(
        "Deep-STORM training on {device}: {} epochs × {} steps of {} patches of {}×{} px (×{up}), \
         {} nm pixels, PSF σ {} nm",
        settings.schedule.epochs,
        settings.schedule.steps_per_epoch,
        settings.batch_size,
        settings.patch_px,
        settings.patch_px,
        settings.pixel_nm,
        settings.psf_sigma_nm
    ));
    let report = {
        let mut objective = DeepStormObjective {
            model: &model,
            settings,
            kernel,
            validation,
        };
        let mut part = SubProgress::range(progress, 0.0, 0.9);
        train(&model.vars, &mut objective, &settings.schedule, &mut part)?
    };
    model.info.history = report;
    progress.status("Deep-STORM: choosing the detection threshold");
    let (threshold, summary) = calibrate_threshold(&model, settings)?;
    model.info.threshold = threshold;
    model.info.data = summary;
    progress.log(&format!(
        "detection threshold {threshold:.2}: {}",
        model.info.data
    ));
    progress.fraction(1.0);
    Ok(model)
}

/// Thresholds tried by [`calibrate_threshold`] (fractions of one molecule's blurred peak).
const THRESHOLDS: [f64; 14] = [
    0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8,
];

/// Chooses the threshold with the best mean Jaccard index on two simulated filament stacks of
/// the training camera and optics, at about 2 and 20 molecules per 6.4 × 6.4 µm frame.
/// Returns it and a summary of the scores.
pub fn calibrate_threshold(
    model: &DeepStormModel,
    settings: &TrainingSettings,
) -> Result<(f64, String)> {
    let up = model.info.architecture.upsampling;
    let photons = (settings.photons[0] * settings.photons[1]).sqrt();
    let background = 0.5 * (settings.background[0] + settings.background[1]);
    let mut scores = vec![0.0; THRESHOLDS.len()];
    let mut per_density = Vec::new();
    for (active, seed) in [(2.0, 9001), (20.0, 9002)] {
        let o = SmlmSimOptions {
            pixel_nm: settings.pixel_nm,
            psf_sigma_nm: settings.psf_sigma_nm,
            camera: settings.camera,
            photons,
            background,
            active_per_frame: active,
            seed,
            ..SmlmSimOptions::low_density(24)
        };
        let sim = simulate_smlm(&o)?;
        let (w, h) = (o.width, o.height);
        let maps = model.predict_maps(
            sim.frames.as_slice().expect("standard layout"),
            w,
            h,
            &settings.camera.analysis_camera(),
        )?;
        let truth: Vec<(u32, f64, f64)> = sim
            .truth
            .iter()
            .map(|t| (t.frame, t.x_nm, t.y_nm))
            .collect();
        let kernel = gaussian_kernel(BLUR_SIGMA);
        let (fw, fh) = (w * up, h * up);
        let mut row = Vec::new();
        for (i, &t) in THRESHOLDS.iter().enumerate() {
            let value = t as f32 * single_peak(&kernel);
            let mut found = Vec::new();
            for (k, map) in maps.chunks(fw * fh).enumerate() {
                for (x, y) in find_peaks(map, fw, fh, &kernel, value) {
                    let s = settings.pixel_nm / up as f64;
                    found.push((k as u32 + 1, x * s, y * s));
                }
            }
            let a = assess(&found, &truth, 250.0, None);
            scores[i] += a.jaccard / 2.0;
            row.push((t, a.jaccard, a.rmse_lateral_nm));
        }
        per_density.push((active, row));
    }
    let best = (0..THRESHOLDS.len())
        .max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
        .expect("thresholds");
    let t = THRESHOLDS[best];
    let summary = per_density
        .iter()
        .map(|(active, row)| {
            let (_, j, r) = row[best];
            format!("{active} molecules/frame: Jaccard {j:.3}, RMSE {r:.1} nm")
        })
        .collect::<Vec<_>>()
        .join("; ");
    Ok((
        t,
        format!("simulated 64×64-pixel filament frames, threshold {t}: {summary}"),
    ))
}
