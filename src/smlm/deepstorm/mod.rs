//! Deep-STORM (Nehme, Weiss, Michaeli & Shechtman, Optica 2018): a convolutional network
//! that turns one camera frame of blinking molecules into a density map on a grid `upsampling`
//! times finer, in which every molecule is a compact spot of integral [`SPIKE`]. Dense
//! frames whose spots overlap, where fitting one Gaussian per spot fails, are its use.
//!
//! ```text
//!  frame ─ ×up (nearest) ─ enc.0 ─ pool ─ enc.1 ─ pool ─ enc.2 ─ pool ─ middle
//!                                                                           │
//!  density ─ head (1×1, linear) ─ dec.2 ─ up ─ dec.1 ─ up ─ dec.0 ─ up ────┘
//! ```
//!
//! Every block is a 3×3 convolution, batch norm and ReLU; there are no skip connections.
//! The paper's sizes are `filters` 32-64-128, a 512-channel middle and 8× upsampling;
//! [`DeepStormConfig`] makes them settings, and the model shipped in `models/` uses smaller
//! ones that train on a laptop CPU (its model card says which).
//!
//! Input normalisation: ADU → photons with the camera settings, minus the frame's median (the
//! background), divided by the model's `input_scale` (photons). Localizations are the local
//! maxima of the density map blurred by the loss's Gaussian (σ = 1 fine pixel) above a
//! threshold, with sub-pixel positions from a Gaussian (log-parabola) fit of the 3 × 3 peak;
//! their photons and background come from a linear least-squares fit of the frame with the
//! PSF at the found positions, their uncertainty from those photons (Mortensen et al. 2010).
//!
//! Training ([`training`]) is on simulated frames, as in the paper: random emitters on the
//! fine grid, the camera's noise, loss = MSE(G ⊛ prediction, G ⊛ truth) + λ·L1(prediction).

pub mod training;

use super::fit::pixel_integrals;
use super::{Camera, Localization};
use crate::nn::layers::{max_pool, upsample, Conv, ConvBlock};
use crate::nn::model_file::{self, read_json, save_folder, FORMAT, FORMAT_VERSION};
use crate::nn::{device, seeded_init, TrainReport};
use crate::progress::{check_cancel, Progress};
use crate::{invalid, Error, Result};
use candle_core::{DType, Module, ModuleT, Tensor};
use candle_nn::{VarBuilder, VarMap};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

pub use training::{train_deepstorm, TrainingSettings};

/// Integral of one molecule in the density map (the paper's scale factor of 100).
pub const SPIKE: f32 = 100.0;

/// σ of the Gaussian of the loss and of peak finding, fine pixels.
pub const BLUR_SIGMA: f64 = 1.0;

/// `method` of a Deep-STORM model folder.
pub const METHOD: &str = "deepstorm";

/// Architecture, stored in `model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeepStormConfig {
    /// Fine-grid pixels per camera pixel along x and y.
    pub upsampling: usize,
    /// Channels of the three encoder levels (the decoder mirrors them).
    pub filters: [usize; 3],
    /// Channels of the middle block.
    pub bottleneck: usize,
    /// Side of the (odd) convolution kernels, fine pixels.
    pub kernel_size: usize,
}

impl Default for DeepStormConfig {
    /// The paper's network.
    fn default() -> Self {
        DeepStormConfig {
            upsampling: 8,
            filters: [32, 64, 128],
            bottleneck: 512,
            kernel_size: 3,
        }
    }
}

impl DeepStormConfig {
    pub fn validate(&self) -> Result<()> {
        if !(1..=16).contains(&self.upsampling) {
            return invalid!("upsampling must be 1–16, not {}", self.upsampling);
        }
        if self.filters.contains(&0) || self.bottleneck == 0 {
            return invalid!("every level needs at least one filter");
        }
        if self.kernel_size % 2 == 0 {
            return invalid!("kernel size must be odd, not {}", self.kernel_size);
        }
        Ok(())
    }

    /// Camera pixels frames are padded to a multiple of, so that the fine grid is a multiple
    /// of 8 (three poolings).
    pub fn frame_multiple(&self) -> usize {
        8 / gcd(8, self.upsampling)
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The network. Parameters: `enc.{0,1,2}.*`, `middle.*`, `dec.{0,1,2}.*`, `head.*`.
#[derive(Debug, Clone)]
pub struct DeepStormNet {
    config: DeepStormConfig,
    enc: Vec<ConvBlock>,
    middle: ConvBlock,
    dec: Vec<ConvBlock>,
    head: Conv,
}

impl DeepStormNet {
    pub fn new(config: &DeepStormConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let k = config.kernel_size;
        let block = |cin, cout, vb| ConvBlock::new(cin, cout, k, 2, 1, true, vb);
        let f = config.filters;
        let enc = vec![
            block(1, f[0], vb.pp("enc.0"))?,
            block(f[0], f[1], vb.pp("enc.1"))?,
            block(f[1], f[2], vb.pp("enc.2"))?,
        ];
        let middle = block(f[2], config.bottleneck, vb.pp("middle"))?;
        // dec.l brings the level below back to level l's width.
        let dec = vec![
            block(f[1], f[0], vb.pp("dec.0"))?,
            block(f[2], f[1], vb.pp("dec.1"))?,
            block(config.bottleneck, f[2], vb.pp("dec.2"))?,
        ];
        let head = Conv::new(f[0], 1, 1, 2, vb.pp("head"))?;
        Ok(DeepStormNet {
            config: config.clone(),
            enc,
            middle,
            dec,
            head,
        })
    }

    pub fn config(&self) -> &DeepStormConfig {
        &self.config
    }
}

impl ModuleT for DeepStormNet {
    /// Normalised frames (n, 1, h, w), h and w multiples of
    /// [`DeepStormConfig::frame_multiple`] → density maps (n, 1, h·up, w·up).
    fn forward_t(&self, frames: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let (_, c, h, w) = frames.dims4()?;
        let up = self.config.upsampling;
        let m = self.config.frame_multiple();
        if c != 1 || h % m != 0 || w % m != 0 {
            candle_core::bail!(
                "Deep-STORM takes (n, 1, h, w) frames with h and w multiples of {m}, got {:?}",
                frames.dims()
            );
        }
        let mut x = frames.upsample_nearest2d(h * up, w * up)?;
        for block in &self.enc {
            x = max_pool(&block.forward_t(&x, train)?, 2)?;
        }
        x = self.middle.forward_t(&x, train)?;
        for block in self.dec.iter().rev() {
            x = block.forward_t(&upsample(&x, 2)?, train)?;
        }
        self.head.forward(&x)
    }
}

/// A fresh, randomly initialised network and its variables.
pub fn new_net(config: &DeepStormConfig, seed: u64) -> Result<(VarMap, DeepStormNet)> {
    config.validate()?;
    let vars = VarMap::new();
    let vb = VarBuilder::from_varmap(&vars, DType::F32, &device());
    let net = DeepStormNet::new(config, vb).map_err(|e| Error::InvalidInput(e.to_string()))?;
    seeded_init(&vars, seed)?;
    Ok((vars, net))
}

/// `model.json` of a Deep-STORM model folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeepStormInfo {
    pub format: String,
    pub format_version: u32,
    pub fluorecon_version: String,
    /// Always [`METHOD`].
    pub method: String,
    pub name: String,
    pub architecture: DeepStormConfig,
    /// Photons per unit of the network's input (see the module documentation).
    pub input_scale: f64,
    /// Default detection threshold, as a fraction of the blurred peak of one isolated
    /// molecule (chosen after training for the best Jaccard on simulated frames).
    pub threshold: f64,
    /// What the network was trained for and how: pixel size, PSF, camera, photons,
    /// background, densities, schedule.
    pub training: TrainingSettings,
    pub history: TrainReport,
    /// Scores of the threshold calibration (free text for the model card).
    pub data: String,
}

/// A loaded Deep-STORM model.
pub struct DeepStormModel {
    pub info: DeepStormInfo,
    pub vars: VarMap,
    pub net: DeepStormNet,
}

impl std::fmt::Debug for DeepStormModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeepStormModel")
            .field("info", &self.info)
            .finish()
    }
}

impl DeepStormModel {
    /// The model with its weights on `device` (models are kept on the CPU between jobs).
    pub fn into_device(self, device: &candle_core::Device) -> Result<DeepStormModel> {
        if crate::nn::vars_are_on(&self.vars, device) {
            return Ok(self);
        }
        let config = &self.info.architecture;
        let (vars, net) =
            crate::nn::vars_on(&self.vars, device, |vb| DeepStormNet::new(config, vb))?;
        Ok(DeepStormModel {
            info: self.info,
            vars,
            net,
        })
    }

    /// A copy of the model on `device` (the weights are copied; the description is shared).
    pub fn on_device(&self, device: &candle_core::Device) -> Result<DeepStormModel> {
        let config = &self.info.architecture;
        let (vars, net) =
            crate::nn::vars_on(&self.vars, device, |vb| DeepStormNet::new(config, vb))?;
        Ok(DeepStormModel {
            info: self.info.clone(),
            vars,
            net,
        })
    }

    /// Writes the model folder `dir` (`model.safetensors` + `model.json`).
    pub fn save(&self, dir: &Path) -> Result<()> {
        save_folder(dir, &self.vars, &self.info)
    }

    /// Loads a model folder written by [`DeepStormModel::save`]; says what is wrong with a
    /// folder that holds another kind of model or weights that do not fit.
    pub fn load(dir: &Path) -> Result<DeepStormModel> {
        let (path, json) = read_json(dir)?;
        Self::from_parts(&path, json, |vars| model_file::load_weights(dir, vars))
    }

    /// Checks the description `json` (read from `path`) and fills the weights with `load`.
    fn from_parts(
        path: &Path,
        json: serde_json::Value,
        load: impl FnOnce(&VarMap) -> Result<()>,
    ) -> Result<DeepStormModel> {
        let bad = |m: String| Error::File {
            path: path.display().to_string(),
            message: m,
        };
        let method = json.get("method").and_then(|m| m.as_str()).unwrap_or("");
        if method != METHOD {
            return Err(bad(format!(
                "this is a '{method}' model, not a Deep-STORM model (use it with Restore with \
                 model...)"
            )));
        }
        let info: DeepStormInfo = serde_json::from_value(json)
            .map_err(|e| bad(format!("not a valid Deep-STORM model description: {e}")))?;
        info.architecture
            .validate()
            .map_err(|e| bad(format!("bad architecture: {e}")))?;
        if !(info.input_scale.is_finite() && info.input_scale > 0.0) {
            return Err(bad(format!("bad input scale {}", info.input_scale)));
        }
        let (vars, net) = new_net(&info.architecture, 0)?;
        load(&vars)?;
        Ok(DeepStormModel { info, vars, net })
    }

    /// The density maps of `frames` (`n`·`h`·`w` ADU values, x fastest), each `w·up` ×
    /// `h·up`, in one pass through the network (the caller chooses the batch size).
    pub fn predict_maps(
        &self,
        frames: &[f32],
        w: usize,
        h: usize,
        camera: &Camera,
    ) -> Result<Vec<f32>> {
        let plane = w * h;
        let n = frames.len() / plane.max(1);
        if n == 0 || n * plane != frames.len() {
            return invalid!(
                "{} values are not a whole number of {w}×{h} frames",
                frames.len()
            );
        }
        let up = self.info.architecture.upsampling;
        let m = self.info.architecture.frame_multiple();
        let (pw, ph) = (w.div_ceil(m) * m, h.div_ceil(m) * m);
        // Normalised frames, zero-padded at the right and bottom (the background is 0 after
        // normalisation).
        let mut input = vec![0.0f32; n * pw * ph];
        let mut norm = vec![0.0f32; plane];
        for (k, f) in frames.chunks(plane).enumerate() {
            normalise_frame(f, camera, self.info.input_scale, &mut norm);
            for y in 0..h {
                let dst = k * pw * ph + y * pw;
                input[dst..dst + w].copy_from_slice(&norm[y * w..(y + 1) * w]);
            }
        }
        let x = Tensor::from_vec(input, (n, 1, ph, pw), &crate::nn::vars_device(&self.vars))?;
        let maps = self
            .net
            .forward_t(&x, false)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let (fw, fh, pfw, pfh) = (w * up, h * up, pw * up, ph * up);
        let mut out = Vec::with_capacity(n * fw * fh);
        for map in maps.chunks(pfw * pfh) {
            for y in 0..fh {
                out.extend_from_slice(&map[y * pfw..y * pfw + fw]);
            }
        }
        Ok(out)
    }

    /// Name of the model compiled into the library (`models/deepstorm-2d-emccd-100nm`).
    pub const BUNDLED: &'static str = "deepstorm-2d-emccd-100nm";

    /// The model shipped with Fluorecon (EMCCD as in the SMLM Challenge 2016, 100 nm pixels,
    /// PSF σ 120 nm; its model card is `models/deepstorm-2d-emccd-100nm/README.md`).
    pub fn bundled() -> Result<DeepStormModel> {
        #[cfg(bundled_deepstorm)]
        {
            let json: &str = include_str!("../../../models/deepstorm-2d-emccd-100nm/model.json");
            let weights: &[u8] =
                include_bytes!("../../../models/deepstorm-2d-emccd-100nm/model.safetensors");
            Self::from_bytes(json, weights)
        }
        #[cfg(not(bundled_deepstorm))]
        {
            Err(Error::InvalidInput(
                "this build has no bundled Deep-STORM model; give a model folder".into(),
            ))
        }
    }

    /// A model from the contents of `model.json` and `model.safetensors`.
    pub fn from_bytes(json: &str, weights: &[u8]) -> Result<DeepStormModel> {
        let path = Path::new(Self::BUNDLED);
        let json: serde_json::Value = serde_json::from_str(json).map_err(|e| Error::File {
            path: path.join(model_file::INFO_FILE).display().to_string(),
            message: format!("not a valid model description: {e}"),
        })?;
        Self::from_parts(&path.join(model_file::INFO_FILE), json, |vars| {
            model_file::load_weights_from_bytes(weights, &path.join(model_file::WEIGHTS_FILE), vars)
        })
    }

    /// A new, untrained model.
    pub fn untrained(
        name: &str,
        config: &DeepStormConfig,
        settings: &TrainingSettings,
    ) -> Result<Self> {
        let (vars, net) = new_net(config, settings.schedule.seed)?;
        Ok(DeepStormModel {
            info: DeepStormInfo {
                format: FORMAT.into(),
                format_version: FORMAT_VERSION,
                fluorecon_version: crate::VERSION.into(),
                method: METHOD.into(),
                name: name.into(),
                architecture: config.clone(),
                input_scale: settings.input_scale(),
                threshold: 0.3,
                training: settings.clone(),
                history: TrainReport::default(),
                data: String::new(),
            },
            vars,
            net,
        })
    }
}

/// The network input of one frame: photons minus the frame's median, divided by `scale`.
pub fn normalise_frame(adu: &[f32], camera: &Camera, scale: f64, out: &mut [f32]) {
    let mut sorted: Vec<f32> = adu.iter().map(|&v| camera.to_photons(v)).collect();
    for (o, &p) in out.iter_mut().zip(&sorted) {
        *o = p;
    }
    let mid = sorted.len() / 2;
    let median = *sorted.select_nth_unstable_by(mid, f32::total_cmp).1;
    let inv = (1.0 / scale) as f32;
    for o in out.iter_mut() {
        *o = (*o - median) * inv;
    }
}

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
}

impl Default for DeepStormOptions {
    fn default() -> Self {
        DeepStormOptions {
            camera: Camera::default(),
            pixel_nm: 100.0,
            threshold: None,
            batch: 8,
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
        if let Some((model, name)) = &self.gpu {
            match model.predict_maps(batch, w, h, camera) {
                Ok(maps) => return Ok(maps),
                Err(e) if crate::nn::worth_retrying_on_cpu(&e) => {
                    progress.log(&format!(
                        "Warning: the Deep-STORM network failed on {name} ({e}); running it on \
                         the CPU from now on"
                    ));
                    self.gpu = None;
                }
                Err(e) => return Err(e),
            }
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
        let trained_em = matches!(t.camera, super::synthetic::SimCamera::Emccd { .. });
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
        positions
            .iter()
            .zip(&fit.photons)
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

/// Normalised 1D Gaussian of σ `sigma` (fine pixels), radius ⌈3σ⌉.
pub fn gaussian_kernel(sigma: f64) -> Vec<f32> {
    let r = (3.0 * sigma).ceil() as isize;
    let k: Vec<f64> = (-r..=r)
        .map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp())
        .collect();
    let s: f64 = k.iter().sum();
    k.iter().map(|v| (v / s) as f32).collect()
}

/// The peak of one molecule ([`SPIKE`] in one fine pixel) after the blur.
fn single_peak(kernel: &[f32]) -> f32 {
    let c = kernel[kernel.len() / 2];
    SPIKE * c * c
}

/// Separable convolution of a `w`×`h` image with `kernel` (zero outside).
pub fn blur(img: &[f32], w: usize, h: usize, kernel: &[f32]) -> Vec<f32> {
    let r = kernel.len() as isize / 2;
    let mut tmp = vec![0.0f32; w * h];
    for y in 0..h {
        let row = &img[y * w..(y + 1) * w];
        for x in 0..w {
            let mut s = 0.0;
            for (k, &c) in kernel.iter().enumerate() {
                let xi = x as isize + k as isize - r;
                if xi >= 0 && (xi as usize) < w {
                    s += c * row[xi as usize];
                }
            }
            tmp[y * w + x] = s;
        }
    }
    let mut out = vec![0.0f32; w * h];
    for y in 0..h {
        for (k, &c) in kernel.iter().enumerate() {
            let yi = y as isize + k as isize - r;
            if yi < 0 || yi as usize >= h {
                continue;
            }
            let src = &tmp[yi as usize * w..(yi as usize + 1) * w];
            for (o, &v) in out[y * w..(y + 1) * w].iter_mut().zip(src) {
                *o += c * v;
            }
        }
    }
    out
}

/// Local maxima (3×3) of the blurred positive part of `map` above `threshold`, with
/// sub-pixel positions (fine pixels, the centre of pixel i at i + ½) from a log-parabola
/// through the peak and its neighbours along x and y.
pub fn find_peaks(
    map: &[f32],
    w: usize,
    h: usize,
    kernel: &[f32],
    threshold: f32,
) -> Vec<(f64, f64)> {
    let positive: Vec<f32> = map.iter().map(|v| v.max(0.0)).collect();
    let s = blur(&positive, w, h, kernel);
    let at = |x: usize, y: usize| s[y * w + x];
    let mut peaks = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let v = at(x, y);
            if v <= threshold {
                continue;
            }
            // Strictly greater than the neighbours before it, ≥ those after (one peak on
            // a plateau).
            let mut is_max = true;
            'n: for dy in -1isize..=1 {
                for dx in -1isize..=1 {
                    if dx == 0 && dy == 0 {
                        continue;
                    }
                    let (nx, ny) = (x as isize + dx, y as isize + dy);
                    if nx < 0 || ny < 0 || nx as usize >= w || ny as usize >= h {
                        continue;
                    }
                    let n = at(nx as usize, ny as usize);
                    let before = dy < 0 || (dy == 0 && dx < 0);
                    if n > v || (before && n == v) {
                        is_max = false;
                        break 'n;
                    }
                }
            }
            if !is_max {
                continue;
            }
            let offset = |a: f32, b: f32, c: f32| -> f64 {
                // Vertex of the parabola through (−1, ln a), (0, ln b), (1, ln c).
                if a <= 0.0 || c <= 0.0 {
                    return 0.0;
                }
                let (la, lb, lc) = ((a as f64).ln(), (b as f64).ln(), (c as f64).ln());
                let d = la - 2.0 * lb + lc;
                if d < 0.0 {
                    (0.5 * (la - lc) / d).clamp(-0.5, 0.5)
                } else {
                    0.0
                }
            };
            let dx = if x > 0 && x + 1 < w {
                offset(at(x - 1, y), v, at(x + 1, y))
            } else {
                0.0
            };
            let dy = if y > 0 && y + 1 < h {
                offset(at(x, y - 1), v, at(x, y + 1))
            } else {
                0.0
            };
            peaks.push((x as f64 + 0.5 + dx, y as f64 + 0.5 + dy));
        }
    }
    peaks
}

/// Photons of each molecule and a common background fitted by linear least squares.
#[derive(Debug, Clone, PartialEq)]
pub struct AmplitudeFit {
    pub photons: Vec<f64>,
    /// Photons per pixel.
    pub background: f64,
    /// Standard deviation of the residuals, photons per pixel.
    pub residual_std: f64,
}

/// Fits `photons` (a `w`×`h` frame in photons) as background + Σₖ Nₖ·PSF(xₖ, yₖ) with the
/// integrated-Gaussian PSF of σ `sigma_px` at the given positions (pixels), by linear least
/// squares over the whole frame; negative photon counts are set to 0.
pub fn fit_amplitudes(
    photons: &[f64],
    w: usize,
    h: usize,
    positions: &[(f64, f64)],
    sigma_px: f64,
) -> AmplitudeFit {
    let k = positions.len();
    let n = k + 1; // unknowns: photons of each molecule, background
    let r = (4.0 * sigma_px).ceil() as isize + 1;
    // Each molecule's PSF on its window: (x0, y0, size_x, size_y, values).
    let mut ex = vec![0.0; w];
    let mut ey = vec![0.0; h];
    let (mut t1, mut t2) = (vec![0.0; w.max(h)], vec![0.0; w.max(h)]);
    let mut windows = Vec::with_capacity(k);
    for &(x, y) in positions {
        pixel_integrals(x, sigma_px, &mut ex, &mut t1[..w], &mut t2[..w]);
        pixel_integrals(y, sigma_px, &mut ey, &mut t1[..h], &mut t2[..h]);
        let x0 = (x.floor() as isize - r).clamp(0, w as isize) as usize;
        let x1 = (x.floor() as isize + r + 1).clamp(0, w as isize) as usize;
        let y0 = (y.floor() as isize - r).clamp(0, h as isize) as usize;
        let y1 = (y.floor() as isize + r + 1).clamp(0, h as isize) as usize;
        let mut v = Vec::with_capacity((x1 - x0) * (y1 - y0));
        for &eyj in &ey[y0..y1] {
            for &exi in &ex[x0..x1] {
                v.push(exi * eyj);
            }
        }
        windows.push((x0, x1, y0, y1, v));
    }
    // Normal equations AᵀA p = Aᵀb; the background column is all ones.
    let mut ata = vec![0.0; n * n];
    let mut atb = vec![0.0; n];
    let total: f64 = photons.iter().sum();
    ata[k * n + k] = (w * h) as f64;
    atb[k] = total;
    for (a, (x0, x1, y0, y1, va)) in windows.iter().enumerate() {
        let wa = x1 - x0;
        let mut sum_a = 0.0;
        let mut dot_b = 0.0;
        let mut sq = 0.0;
        for (j, y) in (*y0..*y1).enumerate() {
            for (i, x) in (*x0..*x1).enumerate() {
                let v = va[j * wa + i];
                sum_a += v;
                sq += v * v;
                dot_b += v * photons[y * w + x];
            }
        }
        ata[a * n + a] = sq;
        ata[a * n + k] = sum_a;
        ata[k * n + a] = sum_a;
        atb[a] = dot_b;
        for (b, (bx0, bx1, by0, by1, vb)) in windows.iter().enumerate().skip(a + 1) {
            let (ox0, ox1) = ((*x0).max(*bx0), (*x1).min(*bx1));
            let (oy0, oy1) = ((*y0).max(*by0), (*y1).min(*by1));
            if ox0 >= ox1 || oy0 >= oy1 {
                continue;
            }
            let wb = bx1 - bx0;
            let mut d = 0.0;
            for y in oy0..oy1 {
                for x in ox0..ox1 {
                    d += va[(y - y0) * wa + x - x0] * vb[(y - by0) * wb + x - bx0];
                }
            }
            ata[a * n + b] = d;
            ata[b * n + a] = d;
        }
    }
    let p = solve_spd(ata, atb, n);
    let mut fitted: Vec<f64> = p[..k].iter().map(|v| v.max(0.0)).collect();
    let background = p[k];
    // Residual spread of the model.
    let mut model = vec![background; w * h];
    for ((x0, x1, y0, y1, v), &nk) in windows.iter().zip(&fitted) {
        let wa = x1 - x0;
        for (j, y) in (*y0..*y1).enumerate() {
            for (i, x) in (*x0..*x1).enumerate() {
                model[y * w + x] += nk * v[j * wa + i];
            }
        }
    }
    let ss: f64 = model
        .iter()
        .zip(photons)
        .map(|(m, d)| (d - m) * (d - m))
        .sum();
    let residual_std = (ss / (w * h) as f64).sqrt();
    for v in fitted.iter_mut() {
        if !v.is_finite() {
            *v = 0.0;
        }
    }
    AmplitudeFit {
        photons: fitted,
        background,
        residual_std,
    }
}

/// Solves the symmetric positive (semi-)definite system `a`·x = `b` (n×n, row-major) by
/// Cholesky with a tiny ridge, so that a singular system (two molecules at one place) still
/// gives finite numbers.
fn solve_spd(mut a: Vec<f64>, mut b: Vec<f64>, n: usize) -> Vec<f64> {
    let ridge = 1e-9 * (0..n).map(|i| a[i * n + i]).fold(0.0, f64::max).max(1e-300);
    for i in 0..n {
        a[i * n + i] += ridge;
    }
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        let d = d.max(ridge).sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / d;
        }
    }
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= a[i * n + k] * b[k];
        }
        b[i] = s / a[i * n + i];
    }
    for i in (0..n).rev() {
        let mut s = b[i];
        for k in i + 1..n {
            s -= a[k * n + i] * b[k];
        }
        b[i] = s / a[i * n + i];
    }
    b
}

/// Localization precision along one axis (pixels) of a molecule of `photons` on a
/// background of `background` photons per pixel with a PSF of σ `sigma_px` (Mortensen et al.
/// 2010, Poisson MLE), multiplied by √F² for an EM camera's excess noise.
pub fn mortensen_px(photons: f64, background: f64, sigma_px: f64, excess_noise: f64) -> f64 {
    if photons <= 0.0 {
        return f64::NAN;
    }
    let sa2 = sigma_px * sigma_px + 1.0 / 12.0;
    let b = background.max(0.0);
    let tau = 2.0 * std::f64::consts::PI * sa2 * b / photons;
    let var = sa2 / photons * (1.0 + 4.0 * tau + (2.0 * tau / (1.0 + 4.0 * tau)).sqrt());
    (var * excess_noise).sqrt()
}

#[cfg(test)]
mod tests;
