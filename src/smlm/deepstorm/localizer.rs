//! Deep-STORM over a stack: frames pushed in batches through the network (on a GPU when
//! asked and possible, falling back to the CPU), the density maps summed into the
//! super-resolved image, and each map's peaks turned into localizations.

use super::model::DeepStormModel;
use super::peaks::{
    find_peaks, fit_amplitudes, gaussian_kernel, mortensen_px, single_peak, BLUR_SIGMA, SPIKE,
};
use crate::device::{run_on_gpu, OnGpu};
use crate::progress::{check_cancel, Progress};
use crate::smlm::{Camera, Localization};
use crate::{invalid, Result};
use rayon::prelude::*;
use std::sync::Arc;

/// Settings of a Deep-STORM run over a stack.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeepStormOptions {
    pub camera: Camera,
    /// Camera pixel size in the sample, nm.
    pub pixel_nm: f64,
    /// Detection threshold, fraction of one isolated molecule's blurred peak; `None` takes
    /// the model's.
    pub threshold: Option<f64>,
    /// Frames passed through the network at once.
    pub batch: usize,
    /// Where the network runs, once [`DeepStormLocalizer::choose_device`] is called.
    pub device: crate::device::DeviceRequest,
}

impl Default for DeepStormOptions {
    fn default() -> Self {
        DeepStormOptions {
            camera: Camera::default(),
            pixel_nm: 100.0,
            threshold: None,
            batch: 8,
            device: crate::device::DeviceRequest::Auto,
        }
    }
}

/// What a run over a stack gives: localizations (ThunderSTORM's quantities) and the
/// super-resolved image, the sum of all frames' density maps.
#[derive(Debug, Clone)]
pub struct DeepStormResult {
    pub localizations: Vec<Localization>,
    /// Row-major, `density_width` × `density_height`: molecules per fine pixel summed over
    /// frames.
    pub density: Vec<f32>,
    pub density_width: usize,
    pub density_height: usize,
    /// Fine pixel size, nm.
    pub density_pixel_nm: f64,
}

/// Processes frames pushed in any number at a time (`n`·`h`·`w` ADU values, x fastest),
/// keeping only the summed density map and the localizations.
pub struct DeepStormLocalizer {
    model: Arc<DeepStormModel>,
    /// A copy of the model on a GPU and the GPU's name, when the network runs there.
    gpu: Option<(DeepStormModel, String)>,
    opts: DeepStormOptions,
    width: usize,
    height: usize,
    frames_done: u32,
    density: Vec<f32>,
    localizations: Vec<Localization>,
    blur: Vec<f32>,
    threshold_value: f32,
}

impl DeepStormLocalizer {
    pub fn new(
        model: Arc<DeepStormModel>,
        width: usize,
        height: usize,
        opts: &DeepStormOptions,
    ) -> Result<Self> {
        opts.camera.validate()?;
        if width < 4 || height < 4 {
            return invalid!(
                "Deep-STORM needs frames of at least 4×4 pixels, not {width}×{height}"
            );
        }
        if !(opts.pixel_nm.is_finite() && opts.pixel_nm > 0.0) {
            return invalid!(
                "pixel size must be a positive number of nm, not {}",
                opts.pixel_nm
            );
        }
        let threshold = opts.threshold.unwrap_or(model.info.threshold);
        if !(threshold.is_finite() && threshold > 0.0) {
            return invalid!("the detection threshold must be positive, not {threshold}");
        }
        let up = model.info.architecture.upsampling;
        let blur = gaussian_kernel(BLUR_SIGMA);
        let threshold_value = threshold as f32 * single_peak(&blur);
        Ok(DeepStormLocalizer {
            model,
            gpu: None,
            opts: DeepStormOptions {
                batch: opts.batch.max(1),
                ..*opts
            },
            width,
            height,
            frames_done: 0,
            density: vec![0.0; width * up * height * up],
            localizations: Vec::new(),
            blur,
            threshold_value,
        })
    }

    /// Runs the network on the device that the options' `device` and the machine allow
    /// ([`crate::nn::select_device`]: why a wanted GPU is not used is logged) from now on.
    /// Returns the name of the device the network runs on.
    pub fn choose_device(&mut self, progress: &mut dyn Progress) -> String {
        let (device, name) = crate::nn::select_device(self.opts.device, progress);
        self.run_on(&device, &name, progress)
    }

    /// Runs the network on `device` (from [`crate::nn::select_device`], named `name` in the
    /// log) from now on: the weights are copied there. When that fails the reason is logged and
    /// the network stays on the CPU. Returns the name of the device the network runs on.
    pub fn run_on(
        &mut self,
        device: &candle_core::Device,
        name: &str,
        progress: &mut dyn Progress,
    ) -> String {
        self.gpu = None;
        if device.is_cpu() {
            return crate::nn::cpu_name();
        }
        match self.model.on_device(device) {
            Ok(m) => {
                self.gpu = Some((m, name.to_string()));
                name.to_string()
            }
            Err(e) => {
                progress.log(&format!(
                    "Warning: the Deep-STORM network could not be put on {name} ({e}); running \
                     on the CPU"
                ));
                crate::nn::cpu_name()
            }
        }
    }

    /// The density maps of `batch` on the GPU when the network runs there, else on the CPU; a
    /// GPU failure is logged and the network runs on the CPU from then on.
    fn predict_maps(&mut self, batch: &[f32], progress: &mut dyn Progress) -> Result<Vec<f32>> {
        let (w, h, camera) = (self.width, self.height, &self.opts.camera);
        let on_gpu = run_on_gpu(
            &mut self.gpu,
            "the Deep-STORM network",
            |(_, name)| name.clone(),
            progress,
            |(model, _), _| model.predict_maps(batch, w, h, camera),
        )?;
        if let OnGpu::Done(maps) = on_gpu {
            return Ok(maps);
        }
        self.model.predict_maps(batch, w, h, camera)
    }

    /// Warnings about data the model was not trained for (pixel size, PSF, camera).
    pub fn warnings(&self) -> Vec<String> {
        let t = &self.model.info.training;
        let mut w = Vec::new();
        let ratio = self.opts.pixel_nm / t.pixel_nm;
        if !(0.9..=1.1).contains(&ratio) {
            w.push(format!(
                "the model was trained for {:.0} nm pixels, the data has {:.0} nm: retrain it \
                 (fluorecon deepstorm train --pixel-nm {:.0}) for good results",
                t.pixel_nm, self.opts.pixel_nm, self.opts.pixel_nm
            ));
        }
        let trained_em = matches!(t.camera, crate::smlm::synthetic::SimCamera::Emccd { .. });
        if trained_em != self.opts.camera.em_gain.is_some() {
            w.push(format!(
                "the model was trained for {} camera and the settings describe {}: its noise \
                 differs; consider retraining",
                if trained_em { "an EMCCD" } else { "an sCMOS" },
                if trained_em {
                    "one without EM gain"
                } else {
                    "an EMCCD"
                }
            ));
        }
        w
    }

    /// Runs the network on `frames` (a whole number of frames) and localizes.
    pub fn push(&mut self, frames: &[f32], progress: &mut dyn Progress) -> Result<()> {
        let (w, h) = (self.width, self.height);
        let plane = w * h;
        if frames.len() % plane != 0 {
            return invalid!(
                "{} pixel values are not a whole number of {w}×{h} frames",
                frames.len()
            );
        }
        for (k, f) in frames.chunks(plane).enumerate() {
            if let Some(p) = f.iter().position(|v| !v.is_finite()) {
                return invalid!(
                    "frame {} has a pixel that is not a number at x={}, y={}; replace NaNs \
                     first (Process › Math › Remove NaNs…)",
                    self.frames_done as usize + k + 1,
                    p % w,
                    p / w
                );
            }
        }
        let up = self.model.info.architecture.upsampling;
        let (fw, fh) = (w * up, h * up);
        for batch in frames.chunks(plane * self.opts.batch) {
            check_cancel(progress)?;
            let n = batch.len() / plane;
            let maps = self.predict_maps(batch, progress)?;
            let first = self.frames_done;
            let found: Vec<Vec<Localization>> = batch
                .par_chunks(plane)
                .zip(maps.par_chunks(fw * fh))
                .enumerate()
                .map(|(k, (adu, map))| self.localize_map(map, adu, first + k as u32 + 1))
                .collect();
            for locs in found {
                self.localizations.extend(locs);
            }
            for map in maps.chunks(fw * fh) {
                for (d, &v) in self.density.iter_mut().zip(map) {
                    *d += v.max(0.0) / SPIKE;
                }
            }
            self.frames_done += n as u32;
        }
        Ok(())
    }

    /// Fine pixels per camera pixel of the density map.
    pub fn upsampling(&self) -> usize {
        self.model.info.architecture.upsampling
    }

    /// Frames processed so far.
    pub fn frames(&self) -> usize {
        self.frames_done as usize
    }

    pub fn finish(self) -> DeepStormResult {
        let up = self.model.info.architecture.upsampling;
        DeepStormResult {
            localizations: self.localizations,
            density: self.density,
            density_width: self.width * up,
            density_height: self.height * up,
            density_pixel_nm: self.opts.pixel_nm / up as f64,
        }
    }

    /// Localizations of one frame from its density map (`w·up` × `h·up`) and raw frame.
    fn localize_map(&self, map: &[f32], adu: &[f32], frame: u32) -> Vec<Localization> {
        let up = self.model.info.architecture.upsampling;
        let (fw, fh) = (self.width * up, self.height * up);
        let peaks = find_peaks(map, fw, fh, &self.blur, self.threshold_value);
        let sigma_px = self.model.info.training.psf_sigma_nm / self.opts.pixel_nm;
        // Peak positions in camera pixels (the centre of pixel i at i + ½).
        let positions: Vec<(f64, f64)> = peaks
            .iter()
            .map(|&(x, y)| (x / up as f64, y / up as f64))
            .collect();
        let photons: Vec<f64> = adu
            .iter()
            .map(|&v| self.opts.camera.to_photons(v) as f64)
            .collect();
        let fit = fit_amplitudes(&photons, self.width, self.height, &positions, sigma_px);
        let f2 = self.opts.camera.excess_noise();
        let px = self.opts.pixel_nm;
        // A peak for which the amplitude fit finds no photons has no uncertainty (it would be
        // NaN in the CSV, which no reader takes): the raw frame does not support it.
        positions
            .iter()
            .zip(&fit.photons)
            .filter(|(_, &n)| n.is_finite() && n > 0.0)
            .map(|(&(x, y), &n)| Localization {
                frame,
                x_nm: (x * px) as f32,
                y_nm: (y * px) as f32,
                sigma_nm: (sigma_px * px) as f32,
                photons: n as f32,
                background: fit.background as f32,
                bkgstd: fit.residual_std as f32,
                uncertainty_nm: (mortensen_px(n, fit.background, sigma_px, f2) * px) as f32,
            })
            .collect()
    }
}

/// Runs Deep-STORM over a whole stack in memory (`n`·`h`·`w` ADU values).
pub fn deepstorm_stack(
    model: Arc<DeepStormModel>,
    frames: &[f32],
    width: usize,
    height: usize,
    opts: &DeepStormOptions,
    progress: &mut dyn Progress,
) -> Result<DeepStormResult> {
    let plane = width * height;
    if plane == 0 || frames.is_empty() {
        return invalid!("the stack is empty: Deep-STORM needs at least one frame");
    }
    let mut runner = DeepStormLocalizer::new(model, width, height, opts)?;
    for w in runner.warnings() {
        progress.log(&format!("Warning: {w}"));
    }
    let n = frames.len() / plane;
    let chunk = opts.batch.max(1) * 4;
    for (k, part) in frames.chunks(plane * chunk).enumerate() {
        runner.push(part, progress)?;
        progress.fraction(((k + 1) * chunk).min(n) as f32 / n as f32);
    }
    Ok(runner.finish())
}
