//! Deep-STORM model folders (`model.safetensors` + `model.json`): loading with every size
//! checked, saving, the model compiled into the library, and the density maps of a batch of
//! frames (input normalisation: ADU → photons, minus the frame's median, over `input_scale`).

use super::net::{new_net, DeepStormConfig, DeepStormNet};
use super::training::TrainingSettings;
use crate::nn::model_file::{self, read_json, save_folder, FORMAT, FORMAT_VERSION};
use crate::nn::TrainReport;
use crate::smlm::Camera;
use crate::{invalid, Error, Result};
use candle_core::{ModuleT, Tensor};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Largest normalised frame value the network is given (normalised frames are a few units).
const MAX_NORMALISED: f32 = 1e6;

/// `method` of a Deep-STORM model folder.
pub const METHOD: &str = "deepstorm";

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
            return Err(bad(format!(
                "bad input scale {} (photons per network input unit: a finite number > 0)",
                info.input_scale
            )));
        }
        if !(info.threshold.is_finite() && info.threshold > 0.0) {
            return Err(bad(format!(
                "bad detection threshold {} (a fraction of one molecule's peak: a finite number \
                 > 0)",
                info.threshold
            )));
        }
        crate::nn::model_file::check_parameters(info.architecture.parameter_count()).map_err(
            |e| match e {
                Error::InvalidInput(m) => bad(format!("bad architecture: {m}")),
                e => e,
            },
        )?;
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
        // Memory of one frame on the fine grid, an upper bound: at the top level the widest
        // convolution's input, its im2col matrix (k² values per input channel) and the
        // convolution, batch-norm and ReLU outputs; a quarter of the same one level down
        // (f32). A batch that does not fit is split; a single frame that does not fit is
        // refused.
        let arch = &self.info.architecture;
        let k2 = (arch.kernel_size * arch.kernel_size) as u64;
        let [f0, f1, f2] = arch.filters.map(|f| f as u64);
        let per_pixel = k2 * f1 + f1 + 4 * f0 + (k2 * f2 + f2 + 4 * f1) / 4 + 8;
        let per_frame = (pw * up) as u64 * (ph * up) as u64 * per_pixel * 4;
        if n > 1 && crate::memory::check_fits(per_frame.checked_mul(n as u64)).is_err() {
            let half = n / 2;
            let mut maps = self.predict_maps(&frames[..half * plane], w, h, camera)?;
            maps.extend(self.predict_maps(&frames[half * plane..], w, h, camera)?);
            return Ok(maps);
        }
        crate::memory::check_fits(Some(per_frame))?;
        // Normalised frames, zero-padded at the right and bottom (the background is 0 after
        // normalisation).
        let mut input = vec![0.0f32; n * pw * ph];
        let mut norm = vec![0.0f32; plane];
        for (k, f) in frames.chunks(plane).enumerate() {
            let top = f.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            if camera.to_photons(top).is_nan() || camera.to_photons(top) <= 0.0 {
                return invalid!(
                    "every pixel of a frame is at or below the camera offset ({} ADU; the \
                     brightest is {top}): these are not raw camera counts, or the offset is wrong",
                    camera.offset_adu
                );
            }
            normalise_frame(f, camera, self.info.input_scale, &mut norm);
            // The network saw frames of a few units after normalisation; values far beyond
            // (frames scaled by mistake, a wrong camera setting) give maps that mean nothing.
            let reach = norm.iter().fold(0f32, |m, v| m.max(v.abs()));
            if reach.is_nan() || reach > MAX_NORMALISED {
                return invalid!(
                    "frame values ({} to {} ADU) are far outside what this model was trained on \
                     ({:.0} photons per unit): check the camera settings (offset, gain) and that \
                     the stack holds raw camera counts",
                    f.iter().copied().fold(f32::INFINITY, f32::min),
                    f.iter().copied().fold(f32::NEG_INFINITY, f32::max),
                    self.info.input_scale
                );
            }
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
        if !maps.iter().all(|v| v.is_finite()) {
            return invalid!(
                "the network gave values that are not numbers on these frames: the model file \
                 or the frames are not what Deep-STORM expects"
            );
        }
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
