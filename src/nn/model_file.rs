//! Model folders: `model.safetensors` (the weights, f32) + `model.json` (architecture,
//! normalisation, training parameters and loss history, what the model was trained on,
//! Fluorecon version).
//!
//! Both files are written under temporary names and renamed when complete, the weights
//! first and `model.json` last: a folder with a `model.json` holds a complete model, and an
//! interrupted save never leaves a corrupt one. Loading checks the name and shape of every
//! tensor against the architecture in `model.json` and says which one is wrong.
//!
//! Bounds on `model.json` (checked before anything is built, so that an edited or corrupt
//! file gives an error, never an abort):
//! - U-Net (Noise2Void, CARE): `dims` 2 or 3; `in_channels` and `out_channels` 1–64
//!   ([`super::unet::MAX_CHANNELS`]); `depth` ≤ 6; `base_filters` 1–1024; `kernel_size` odd,
//!   ≤ 15; `convs_per_level` 1–8.
//! - Deep-STORM: `upsampling` 1–16; `filters` 1–1024 each; `bottleneck` 1–4096;
//!   `kernel_size` odd, ≤ 15; `input_scale` finite and > 0.
//! - Either network: at most [`MAX_PARAMETERS`] weights, and three copies of them (weights,
//!   the prediction network's copy, gradients or optimiser state) must fit in the memory
//!   this process may still use ([`crate::memory::available_memory`]).
//! - Normalisation: see [`Normalization::validate`] (a finite mean, |mean| ≤ 1e30, a std
//!   between 1e-6·max(|mean|, 1) and 1e30; percentiles 0 ≤ low < high ≤ 100).
//! - `model.safetensors`: every tensor's name and shape must be the architecture's, every
//!   value a finite number.

use super::train::TrainReport;
use super::{device, new_unet, Normalization, UNet, UNetConfig};
use crate::io::atomic::{write_atomic, TempFile};
use crate::{Error, Result};
use candle_core::{DType, Tensor};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Tag in `model.json` that identifies a Fluorecon model.
pub const FORMAT: &str = "fluorecon-model";
/// Version of the folder layout; loading accepts this and older.
pub const FORMAT_VERSION: u32 = 1;

/// Weights file name inside a model folder.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// Description file name inside a model folder.
pub const INFO_FILE: &str = "model.json";

/// Most weights a network may have (400 MB of f32; the shipped networks have well under 2
/// million).
pub const MAX_PARAMETERS: u128 = 100_000_000;

/// Refuses a network of `count` parameters that is larger than [`MAX_PARAMETERS`] or whose
/// weights (three copies of each) would not fit in memory; called before it is built.
pub fn check_parameters(count: u128) -> Result<()> {
    if count > MAX_PARAMETERS {
        return Err(Error::InvalidInput(format!(
            "the network would have {:.0} million weights, more than the {} million Fluorecon \
             allows: check the architecture (filters, depth, channels, kernel size)",
            count as f64 / 1e6,
            MAX_PARAMETERS / 1_000_000
        )));
    }
    crate::memory::check_fits(u64::try_from(count * 4 * 3).ok())
}

/// Everything about a model except its weights: the content of `model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub format: String,
    pub format_version: u32,
    /// Fluorecon version that wrote the model.
    pub fluorecon_version: String,
    /// What the network does: "n2v", "care", … (each method checks its own).
    pub method: String,
    pub name: String,
    pub architecture: UNetConfig,
    pub normalization: Normalization,
    /// Method-specific training parameters (patch size, masking, loss, schedule…).
    pub training: serde_json::Value,
    pub history: TrainReport,
    /// What the model was trained on (image titles, sizes, pixel size).
    pub data: String,
}

impl ModelInfo {
    pub fn new(
        method: &str,
        name: &str,
        architecture: UNetConfig,
        normalization: Normalization,
    ) -> Self {
        ModelInfo {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            fluorecon_version: crate::VERSION.into(),
            method: method.into(),
            name: name.into(),
            architecture,
            normalization,
            training: serde_json::Value::Null,
            history: TrainReport::default(),
            data: String::new(),
        }
    }
}

/// Writes `vars` and `info` into the folder `dir` (created if needed), replacing a model
/// that is already there.
pub fn save_model(dir: &Path, vars: &VarMap, info: &ModelInfo) -> Result<()> {
    save_folder(dir, vars, info)
}

/// Writes the weights in `vars` and the description `info` (any serialisable type, written as
/// `model.json`) into the folder `dir`: weights first, description last, each under a
/// temporary name renamed when complete.
pub fn save_folder(dir: &Path, vars: &VarMap, info: &impl Serialize) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::file(dir, format!("cannot create the model folder: {e}")))?;
    let tensors: HashMap<String, Tensor> = {
        let data = vars.data().lock().expect("var map lock");
        data.iter()
            .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
            .collect()
    };
    let weights = dir.join(WEIGHTS_FILE);
    let tmp = TempFile::create(&weights)?;
    candle_core::safetensors::save(&tensors, tmp.path())
        .map_err(|e| Error::file(&weights, format!("cannot write the weights: {e}")))?;
    tmp.persist(&weights)?;
    let json = serde_json::to_string_pretty(info)
        .map_err(|e| Error::Internal(format!("model description: {e}")))?;
    write_atomic(&dir.join(INFO_FILE), |f| {
        f.write_all((json + "\n").as_bytes())
    })
}

/// Reads `model.json` of the folder `dir` (or of the folder holding `dir` when it names one
/// of the two files) as JSON, after checking that it is a Fluorecon model this version can
/// read. Returns the path of the file too, for messages.
pub fn read_json(dir: &Path) -> Result<(PathBuf, serde_json::Value)> {
    let path = model_dir(dir).join(INFO_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::file(
            &path,
            format!("cannot read the model description ({e}); a model folder holds model.json and model.safetensors"),
        )
    })?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Error::file(
            &path,
            format!("not a valid Fluorecon model description: {e}"),
        )
    })?;
    let format = json.get("format").and_then(|f| f.as_str()).unwrap_or("");
    if format != FORMAT {
        return Err(Error::file(
            &path,
            format!("not a Fluorecon model (format '{format}')"),
        ));
    }
    let version = json
        .get("format_version")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    if version > FORMAT_VERSION as u64 {
        return Err(Error::file(
            &path,
            format!(
                "model format {version} was written by a newer Fluorecon ({}); this is {} (format {})",
                json.get("fluorecon_version").and_then(|v| v.as_str()).unwrap_or("?"),
                crate::VERSION,
                FORMAT_VERSION
            ),
        ));
    }
    Ok((path, json))
}

/// The `method` of a model folder ("n2v", "care", "deepstorm", …).
pub fn read_method(dir: &Path) -> Result<String> {
    let (_, json) = read_json(dir)?;
    Ok(json
        .get("method")
        .and_then(|m| m.as_str())
        .unwrap_or("")
        .to_string())
}

/// Reads `model.json` of a U-Net model folder (Noise2Void, CARE).
pub fn read_info(dir: &Path) -> Result<ModelInfo> {
    let (path, json) = read_json(dir)?;
    if json.get("method").and_then(|m| m.as_str()) == Some("deepstorm") {
        return Err(Error::file(
            &path,
            "this is a Deep-STORM model: use it with Deep-STORM (Plugins › Fluorecon › \
             Localization › Deep-STORM..., or `fluorecon deepstorm localize`)",
        ));
    }
    let info: ModelInfo = serde_json::from_value(json).map_err(|e| {
        Error::file(
            &path,
            format!("not a valid Fluorecon model description: {e}"),
        )
    })?;
    info.architecture
        .validate()
        .map_err(|e| Error::file(&path, format!("bad architecture: {}", first_line(&e))))?;
    check_parameters(info.architecture.parameter_count()).map_err(|e| match e {
        Error::InvalidInput(m) => Error::file(&path, format!("bad architecture: {m}")),
        e => e,
    })?;
    info.normalization
        .validate()
        .map_err(|e| Error::file(&path, format!("bad normalisation: {e}")))?;
    Ok(info)
}

/// The message of a candle error without the backtrace it carries when RUST_BACKTRACE is
/// set.
pub(crate) fn first_line(e: &impl std::fmt::Display) -> String {
    e.to_string().lines().next().unwrap_or("").to_string()
}

fn model_dir(path: &Path) -> &Path {
    match path.file_name().and_then(|n| n.to_str()) {
        Some(WEIGHTS_FILE) | Some(INFO_FILE) => path.parent().unwrap_or(path),
        _ => path,
    }
}

/// A loaded model: description, variables and the network built on them.
pub struct Model {
    pub info: ModelInfo,
    pub vars: VarMap,
    pub net: UNet,
}

impl Model {
    /// The network on `device`: this model's own when its weights are there, else a copy
    /// (the model keeps its weights where they are).
    pub fn net_on(&self, device: &candle_core::Device) -> Result<UNet> {
        if super::vars_are_on(&self.vars, device) {
            return Ok(self.net.clone());
        }
        let config = &self.info.architecture;
        Ok(super::vars_on(&self.vars, device, |vb| UNet::new(config, vb))?.1)
    }

    /// The network for prediction on `device`: its weights are plain tensors (detached from
    /// the variables), so a forward pass records no graph and frees each activation as soon
    /// as the next layer has used it — a fraction of the memory of [`Model::net_on`], whose
    /// variables keep every activation of a tile alive until its output is dropped.
    pub fn inference_net(&self, device: &candle_core::Device) -> Result<UNet> {
        let tensors = {
            let vars = self.vars.data().lock().expect("var map lock");
            vars.iter()
                .map(|(name, var)| Ok((name.clone(), var.as_tensor().detach().to_device(device)?)))
                .collect::<Result<HashMap<String, Tensor>>>()?
        };
        let vb = candle_nn::VarBuilder::from_tensors(tensors, DType::F32, device);
        Ok(UNet::new(&self.info.architecture, vb)?)
    }

    /// The model with its weights moved to `device` (models are kept on the CPU between jobs).
    pub fn into_device(self, device: &candle_core::Device) -> Result<Model> {
        if super::vars_are_on(&self.vars, device) {
            return Ok(self);
        }
        let config = &self.info.architecture;
        let (vars, net) = super::vars_on(&self.vars, device, |vb| UNet::new(config, vb))?;
        Ok(Model {
            info: self.info,
            vars,
            net,
        })
    }
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("info", &self.info).finish()
    }
}

/// Loads a model folder. Every tensor of the file must be one the architecture has, with
/// the same shape, and every parameter of the architecture must be in the file.
pub fn load_model(dir: &Path) -> Result<Model> {
    let info = read_info(dir)?;
    let (vars, net) = new_unet(&info.architecture, 0)?;
    load_weights(dir, &vars)?;
    Ok(Model { info, vars, net })
}

/// Loads `model.safetensors` of the folder `dir` into `vars`: every tensor of the file must
/// be a variable of `vars` with the same shape, every variable must be in the file, and
/// every value must be a number; otherwise the error names what is wrong.
pub fn load_weights(dir: &Path, vars: &VarMap) -> Result<()> {
    let path = model_dir(dir).join(WEIGHTS_FILE);
    let bytes = std::fs::read(&path)
        .map_err(|e| Error::file(&path, format!("cannot read the weights: {e}")))?;
    load_weights_from_bytes(&bytes, &path, vars)
}

/// [`load_weights`] from the bytes of a `model.safetensors`; `path` names it in messages.
pub fn load_weights_from_bytes(bytes: &[u8], path: &Path, vars: &VarMap) -> Result<()> {
    let path = path.to_path_buf();
    let loaded = candle_core::safetensors::load_buffer(bytes, &device()).map_err(|e| {
        Error::file(
            &path,
            format!("the weights file is corrupt or truncated ({e}); save or copy the model again"),
        )
    })?;
    let loaded: BTreeMap<String, Tensor> = loaded.into_iter().collect();
    let data = vars.data().lock().expect("var map lock");
    let mut problems = Vec::new();
    for (name, var) in data.iter() {
        match loaded.get(name) {
            None => problems.push(format!("tensor '{name}' is missing")),
            Some(t) if t.dims() != var.dims() => problems.push(format!(
                "tensor '{name}' has shape {:?}, the architecture in model.json needs {:?}",
                t.dims(),
                var.dims()
            )),
            Some(_) => {}
        }
    }
    for name in loaded.keys() {
        if !data.contains_key(name) {
            problems.push(format!(
                "tensor '{name}' is not part of the architecture in model.json"
            ));
        }
    }
    if !problems.is_empty() {
        problems.sort();
        let shown = problems.len().min(5);
        return Err(Error::file(
            &path,
            format!(
                "the weights do not match the architecture: {}{}",
                problems[..shown].join("; "),
                if problems.len() > shown {
                    format!(" (and {} more)", problems.len() - shown)
                } else {
                    String::new()
                }
            ),
        ));
    }
    for (name, var) in data.iter() {
        let t = loaded[name].to_dtype(DType::F32)?;
        let finite = t
            .flatten_all()?
            .to_vec1::<f32>()?
            .iter()
            .all(|v| v.is_finite());
        if !finite {
            return Err(Error::file(
                &path,
                format!("tensor '{name}' holds values that are not numbers"),
            ));
        }
        var.set(&t)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::ModuleT;

    fn tiny() -> UNetConfig {
        UNetConfig {
            depth: 1,
            base_filters: 4,
            kernel_size: 3,
            batch_norm: true,
            ..Default::default()
        }
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("fluorecon-model-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn save_load_round_trip_gives_the_same_network() {
        let (vars, net) = new_unet(&tiny(), 7).unwrap();
        let mut info = ModelInfo::new(
            "test",
            "tiny",
            tiny(),
            Normalization::MeanStd {
                mean: 3.0,
                std: 2.0,
            },
        );
        info.data = "nothing".into();
        let dir = temp_dir("roundtrip");
        save_model(&dir, &vars, &info).unwrap();
        let Model {
            info: info2,
            net: net2,
            ..
        } = load_model(&dir).unwrap();
        assert_eq!(info, info2);
        let x = Tensor::randn(0f32, 1.0, (1, 1, 16, 16), &device()).unwrap();
        let a = net.forward_t(&x, false).unwrap();
        let b = net2.forward_t(&x, false).unwrap();
        let diff = (a - &b).unwrap().abs().unwrap().max_all().unwrap();
        assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0);
        // The prediction network (detached weights) gives the same output and records no
        // graph: nothing of the forward pass is kept alive by its output.
        let model = load_model(&dir.join(INFO_FILE)).unwrap();
        let c = model
            .inference_net(&device())
            .unwrap()
            .forward_t(&x, false)
            .unwrap();
        assert!(!c.track_op(), "the prediction network records a graph");
        assert!(b.track_op());
        let diff = (b - c).unwrap().abs().unwrap().max_all().unwrap();
        assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let plain = UNetConfig {
            batch_norm: false,
            ..tiny()
        };
        let (vars, _) = new_unet(&plain, 7).unwrap();
        let info = ModelInfo::new(
            "test",
            "tiny",
            plain,
            Normalization::Percentile {
                low: 2.0,
                high: 99.8,
            },
        );
        let dir = temp_dir("bad");
        save_model(&dir, &vars, &info).unwrap();
        let weights = std::fs::read(dir.join(WEIGHTS_FILE)).unwrap();

        // Truncated weights.
        std::fs::write(dir.join(WEIGHTS_FILE), &weights[..weights.len() / 2]).unwrap();
        let e = load_model(&dir).unwrap_err().to_string();
        assert!(e.contains("corrupt or truncated"), "{e}");
        // Garbage.
        std::fs::write(dir.join(WEIGHTS_FILE), b"not a safetensors file").unwrap();
        assert!(load_model(&dir).is_err());

        // Architecture that does not match the weights: 8 instead of 4 filters.
        std::fs::write(dir.join(WEIGHTS_FILE), &weights).unwrap();
        let mut other = info.clone();
        other.architecture.base_filters = 8;
        std::fs::write(dir.join(INFO_FILE), serde_json::to_string(&other).unwrap()).unwrap();
        let e = load_model(&dir).unwrap_err().to_string();
        assert!(
            e.contains("down.0.conv.0.weight") && e.contains("[4, 1, 3, 3]"),
            "{e}"
        );

        // Batch norm expected but not in the file → missing tensors.
        other.architecture.base_filters = 4;
        other.architecture.batch_norm = true;
        std::fs::write(dir.join(INFO_FILE), serde_json::to_string(&other).unwrap()).unwrap();
        let e = load_model(&dir).unwrap_err().to_string();
        assert!(e.contains("bn.0.bias' is missing"), "{e}");

        // Corrupt description, missing folder.
        std::fs::write(dir.join(INFO_FILE), "{ \"format\": ").unwrap();
        let e = load_model(&dir).unwrap_err().to_string();
        assert!(e.contains("not a valid Fluorecon model description"), "{e}");
        assert!(load_model(&dir.join("nowhere")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// An edited `model.json` (out_channels 1e12, in_channels 1e8, depth 6 with 1024 filters:
    /// aborts that killed the JVM; mean 1e308: an all-Inf output; std 0, negative or 1e-300:
    /// silently "repaired") is refused before anything is built, naming the file.
    #[test]
    fn edited_descriptions_are_refused_before_building() {
        let (vars, _) = new_unet(&tiny(), 7).unwrap();
        let info = ModelInfo::new(
            "n2v",
            "tiny",
            tiny(),
            Normalization::MeanStd {
                mean: 20.0,
                std: 4.0,
            },
        );
        let dir = temp_dir("bounds");
        save_model(&dir, &vars, &info).unwrap();
        let json = serde_json::to_value(&info).unwrap();
        let edits: [(&[(&str, serde_json::Value)], &str); 8] = [
            (
                &[("/architecture/out_channels", 1_000_000_000_000u64.into())],
                "at most 64",
            ),
            (
                &[("/architecture/in_channels", 100_000_000.into())],
                "at most 64",
            ),
            (
                &[
                    ("/architecture/depth", 6.into()),
                    ("/architecture/base_filters", 1024.into()),
                ],
                "million weights",
            ),
            (&[("/architecture/convs_per_level", 1000.into())], "1–8"),
            (&[("/normalization/mean", 1e308.into())], "mean"),
            (&[("/normalization/std", 0.into())], "standard deviation 0"),
            (
                &[("/normalization/std", (-3).into())],
                "standard deviation -3",
            ),
            (
                &[("/normalization/std", 1e-300.into())],
                "standard deviation",
            ),
        ];
        for (changes, says) in edits {
            let mut edited = json.clone();
            for (at, value) in changes {
                *edited.pointer_mut(at).unwrap() = value.clone();
            }
            std::fs::write(dir.join(INFO_FILE), edited.to_string()).unwrap();
            let e = load_model(&dir).unwrap_err();
            assert!(matches!(e, Error::File { .. }), "{e:?}");
            let e = e.to_string();
            assert!(e.contains(INFO_FILE) && e.contains(says), "{says}: {e}");
            assert!(!e.contains('\n'), "a backtrace in the message: {e}");
        }
        assert!(check_parameters(MAX_PARAMETERS + 1).is_err());
        assert!(check_parameters(1000).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
