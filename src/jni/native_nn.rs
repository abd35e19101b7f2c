//! JNI entry points of the denoising commands (`java/…/fluorecon/NativeNn.java`): train
//! Noise2Void / CARE, one-click Noise2Void, restore with a model folder, classical
//! denoising (GAT + BM3D). Each call takes its
//! options as one JSON object (see [`super::convert`]): the training fields of the dialogs
//! ([`Training`]) map onto [`N2vOptions`] / [`CareOptions`], whose other fields keep the
//! core's defaults. Each epoch's losses go to the listener's `epoch(int, int, double,
//! double, double)` method when it has one (the loss plot), besides the usual progress and
//! log.

use super::convert::{options, parsed, required_string, volume, write_float_arrays, write_floats};
use super::guard;
use super::progress::{JavaProgress, TrainingProgress};
use crate::denoise::care::{train_care, CareOptions};
use crate::denoise::classical::{denoise_classical, ClassicalOptions};
use crate::denoise::n2v::{denoise_n2v_each, train_n2v, N2vOptions};
use crate::denoise::noise_model::NoiseModel;
use crate::denoise::{check_uncertainty, finish_training, restore, RestoreOptions};
use crate::device::DeviceRequest;
use crate::nn::tiling::TileOptions;
use crate::nn::{load_model, TrainOptions, UNetConfig};
use crate::progress::Progress;
use crate::Error;
use jni::objects::{JClass, JFloatArray, JObject, JString};
use jni::sys::{jfloatArray, jint, jobjectArray, jstring};
use jni::JNIEnv;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The training fields of the Noise2Void and CARE dialogs.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Training {
    /// Model name stored in `model.json`.
    name: String,
    epochs: usize,
    steps_per_epoch: usize,
    /// Patches per step.
    batch: usize,
    /// Lateral patch side, pixels.
    patch: usize,
    /// Filters of the first U-Net level.
    filters: usize,
    /// Convolution kernel side.
    kernel: usize,
    learning_rate: f64,
    seed: u64,
}

impl Training {
    /// Sets the fields a dialog chooses; the others keep what `unet` and `train` hold.
    fn apply(
        &self,
        unet: &mut UNetConfig,
        train: &mut TrainOptions,
        device: DeviceRequest,
    ) -> (usize, usize, String) {
        unet.base_filters = self.filters;
        unet.kernel_size = self.kernel;
        train.epochs = self.epochs;
        train.steps_per_epoch = self.steps_per_epoch;
        train.learning_rate = self.learning_rate;
        train.seed = self.seed;
        train.device = device;
        (self.patch, self.batch, self.name.clone())
    }
}

/// The options of `n2v`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct N2vCall {
    /// x, y, z in nm (recorded in the model's description of its training data).
    voxel_nm: [f32; 3],
    training: Training,
    /// Percentage of pixels masked per patch.
    masked_percent: f64,
    /// N2V2: blur pooling, no top skip connection, median replacement.
    n2v2: bool,
    /// Where to save the model; null for nowhere.
    model_dir: Option<String>,
    /// Also denoise the image with the trained model.
    denoise: bool,
    #[serde(deserialize_with = "parsed")]
    device: DeviceRequest,
}

impl N2vCall {
    fn n2v(&self) -> N2vOptions {
        let mut o = N2vOptions::default();
        (o.patch, o.batch, o.name) = self.training.apply(&mut o.unet, &mut o.train, self.device);
        o.masking.masked_percent = self.masked_percent;
        if self.n2v2 {
            o = o.n2v2();
        }
        o
    }
}

/// The options of `careTrain`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CareCall {
    /// x, y, z in nm (recorded in the model's description of its training data).
    voxel_nm: [f32; 3],
    training: Training,
    /// Predict a per-pixel uncertainty too (Laplace mean and scale).
    probabilistic: bool,
    model_dir: String,
    #[serde(deserialize_with = "parsed")]
    device: DeviceRequest,
}

impl CareCall {
    fn care(&self) -> CareOptions {
        let mut o = CareOptions::default();
        (o.patch, o.batch, o.name) = self.training.apply(&mut o.unet, &mut o.train, self.device);
        o.probabilistic = self.probabilistic;
        o
    }
}

/// The options of `restore`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RestoreCall {
    /// x, y, z in nm.
    voxel_nm: [f32; 3],
    model_dir: String,
    /// Return the uncertainty (standard deviation) image too (probabilistic CARE models).
    uncertainty: bool,
    /// Tile side in pixels; 0 (or less) chooses it from memory.
    tile: i32,
    #[serde(deserialize_with = "parsed")]
    device: DeviceRequest,
}

impl RestoreCall {
    fn restore(&self) -> RestoreOptions {
        RestoreOptions {
            tiles: TileOptions {
                tile: (self.tile > 0).then_some(self.tile as usize),
                ..Default::default()
            },
            normalization: None,
            device: self.device,
        }
    }
}

/// `float[] n2v(float[] image, int nx, int ny, int nz, String options, ProgressListener
/// listener)`: trains Noise2Void on one image (plane or stack); saves the model to
/// `model_dir` when given; with `denoise`, returns the denoised image, else an empty array.
#[no_mangle]
pub extern "system" fn Java_fluorecon_NativeNn_n2v<'l>(
    mut env: JNIEnv<'l>,
    _: JClass<'l>,
    image: JFloatArray<'l>,
    nx: jint,
    ny: jint,
    nz: jint,
    options_json: JString<'l>,
    listener: JObject<'l>,
) -> jfloatArray {
    guard(&mut env, |env| {
        let call: N2vCall = options(env, &options_json, "Noise2Void")?;
        let v = volume(env, &image, (nx, ny, nz), call.voxel_nm, "the image")?;
        let opts = call.n2v();
        let dir = call.model_dir.as_deref().map(Path::new);
        let mut progress = TrainingProgress::new(&mut *env, &listener);
        let out = if call.denoise {
            let restore_opts = RestoreOptions {
                device: call.device,
                ..Default::default()
            };
            let (mut restored, _) =
                denoise_n2v_each(&[&v], &opts, &restore_opts, dir, &mut progress)?;
            let denoised = restored.pop().expect("one image").image.data;
            denoised.into_raw_vec_and_offset().0
        } else {
            let model = train_n2v(&[&v], &opts, &mut progress)?;
            finish_training(&model, dir, &mut progress)?;
            Vec::new()
        };
        write_floats(env, &out)
    })
}

/// `void careTrain(float[] low, float[] high, int nx, int ny, int nz, String options,
/// ProgressListener listener)`: trains CARE on one pair of images of equal size and saves
/// the model to `model_dir`.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "system" fn Java_fluorecon_NativeNn_careTrain<'l>(
    mut env: JNIEnv<'l>,
    _: JClass<'l>,
    low: JFloatArray<'l>,
    high: JFloatArray<'l>,
    nx: jint,
    ny: jint,
    nz: jint,
    options_json: JString<'l>,
    listener: JObject<'l>,
) {
    guard(&mut env, |env| {
        let call: CareCall = options(env, &options_json, "CARE")?;
        let lo = volume(
            env,
            &low,
            (nx, ny, nz),
            call.voxel_nm,
            "the low-quality image",
        )?;
        let hi = volume(
            env,
            &high,
            (nx, ny, nz),
            call.voxel_nm,
            "the high-quality image",
        )?;
        if call.model_dir.trim().is_empty() {
            return Err(Error::InvalidInput("choose a folder for the model".into()));
        }
        let opts = call.care();
        let mut progress = TrainingProgress::new(&mut *env, &listener);
        let model = train_care(&[(&lo, &hi)], &opts, &mut progress)?;
        finish_training(&model, Some(Path::new(&call.model_dir)), &mut progress)
    })
}

/// `float[][] restore(float[] image, int nx, int ny, int nz, String options, ProgressListener
/// listener)`: restores one volume with the model folder `model_dir`. Returns `{restored}`, or
/// `{restored, uncertainty}` (the standard deviation per pixel) when `uncertainty` is set
/// (probabilistic CARE models only).
#[no_mangle]
pub extern "system" fn Java_fluorecon_NativeNn_restore<'l>(
    mut env: JNIEnv<'l>,
    _: JClass<'l>,
    image: JFloatArray<'l>,
    nx: jint,
    ny: jint,
    nz: jint,
    options_json: JString<'l>,
    listener: JObject<'l>,
) -> jobjectArray {
    guard(&mut env, |env| {
        let call: RestoreCall = options(env, &options_json, "restore")?;
        let v = volume(env, &image, (nx, ny, nz), call.voxel_nm, "the image")?;
        if call.model_dir.trim().is_empty() {
            return Err(Error::InvalidInput("choose a model folder".into()));
        }
        let model = load_model(Path::new(&call.model_dir))?;
        if call.uncertainty {
            check_uncertainty(&model)?;
        }
        let mut progress = JavaProgress {
            env: &mut *env,
            listener: &listener,
        };
        let r = restore(&model, &v, &call.restore(), &mut progress)?;
        progress.log(&format!(
            "Fluorecon: restored with '{}' ({}) on {}",
            model.info.name, model.info.method, r.device
        ));
        let restored = r.image.data.as_standard_layout();
        let restored = restored.as_slice().expect("standard layout");
        match r.uncertainty.filter(|_| call.uncertainty) {
            Some(sigma) => {
                let sigma = sigma.data.as_standard_layout();
                let sigma = sigma.as_slice().expect("standard layout");
                write_float_arrays(env, &[restored, sigma])
            }
            None => write_float_arrays(env, &[restored]),
        }
    })
}

/// The camera of a `denoiseClassical` call, in ADU.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Camera {
    /// ADU per photon.
    gain: f64,
    offset: f64,
    /// Read noise standard deviation.
    read_noise: f64,
}

/// The options of `denoiseClassical`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassicalCall {
    /// x, y, z in nm.
    voxel_nm: [f32; 3],
    /// The camera; null estimates the noise from the image.
    camera: Option<Camera>,
}

impl ClassicalCall {
    fn classical(&self) -> crate::Result<ClassicalOptions> {
        let noise = match &self.camera {
            Some(c) => Some(NoiseModel::from_camera(c.gain, c.offset, c.read_noise)?),
            None => None,
        };
        Ok(ClassicalOptions {
            noise,
            ..Default::default()
        })
    }
}

/// `float[] denoiseClassical(float[] image, int nx, int ny, int nz, String options,
/// ProgressListener listener)`: GAT + BM3D of one volume (a stack plane by plane) with the
/// given or estimated noise (logged). Returns the denoised volume.
#[no_mangle]
pub extern "system" fn Java_fluorecon_NativeNn_denoiseClassical<'l>(
    mut env: JNIEnv<'l>,
    _: JClass<'l>,
    image: JFloatArray<'l>,
    nx: jint,
    ny: jint,
    nz: jint,
    options_json: JString<'l>,
    listener: JObject<'l>,
) -> jfloatArray {
    guard(&mut env, |env| {
        let call: ClassicalCall = options(env, &options_json, "classical denoising")?;
        let v = volume(env, &image, (nx, ny, nz), call.voxel_nm, "the image")?;
        let opts = call.classical()?;
        let mut progress = JavaProgress {
            env: &mut *env,
            listener: &listener,
        };
        let d = denoise_classical(&v, &opts, &mut progress)?;
        write_floats(env, &d.image.data.into_raw_vec_and_offset().0)
    })
}

/// `String modelInfo(String modelDir)`: the `model.json` of a model folder, pretty-printed
/// (for the log), after checking it.
#[no_mangle]
pub extern "system" fn Java_fluorecon_NativeNn_modelInfo<'l>(
    mut env: JNIEnv<'l>,
    _: JClass<'l>,
    model_dir: JString<'l>,
) -> jstring {
    guard(&mut env, |env| {
        let dir = required_string(env, &model_dir, "choose a model folder")?;
        let info = crate::nn::model_file::read_info(&PathBuf::from(dir))?;
        let text = serde_json::to_string_pretty(&info)
            .map_err(|e| Error::Internal(format!("model description: {e}")))?;
        Ok(env.new_string(text)?.into_raw())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRAINING: &str = r#"{"name":"tiny","epochs":3,"steps_per_epoch":7,"batch":4,"patch":32,
        "filters":8,"kernel":3,"learning_rate":1.0E-4,"seed":5}"#;

    /// The dialog's fields give the options that the plugin's former JSON (the core's serde
    /// form, written out in Java) gave: the same models, the same `model.json`.
    #[test]
    fn dialog_fields_map_onto_the_core_options() {
        for n2v2 in [false, true] {
            let call: N2vCall = serde_json::from_str(&format!(
                r#"{{"voxel_nm":[100,100,200],"training":{TRAINING},"masked_percent":2.0,
                "n2v2":{n2v2},"model_dir":null,"denoise":true,"device":"cpu"}}"#
            ))
            .unwrap();
            let former: N2vOptions = serde_json::from_str(&format!(
                r#"{{"unet":{{"depth":2,"base_filters":8,"kernel_size":3,"batch_norm":true,
                "residual":false,"n2v2":{n2v2}}},"train":{{"epochs":3,"steps_per_epoch":7,"seed":5,
                "learning_rate":1.0E-4}},"patch":32,"batch":4,"name":"tiny",
                "masking":{{"masked_percent":2.0,"radius":5,"median":{n2v2}}}}}"#
            ))
            .unwrap();
            let mut expected = former;
            expected.train.device = DeviceRequest::Cpu;
            assert_eq!(call.n2v(), expected);
        }
        let call: CareCall = serde_json::from_str(&format!(
            r#"{{"voxel_nm":[1,1,1],"training":{TRAINING},"probabilistic":true,
            "model_dir":"/tmp/m","device":"auto"}}"#
        ))
        .unwrap();
        let former: CareOptions = serde_json::from_str(
            r#"{"unet":{"depth":2,"base_filters":8,"kernel_size":3,"batch_norm":false,
            "residual":true},"train":{"epochs":3,"steps_per_epoch":7,"seed":5,
            "learning_rate":1.0E-4},"patch":32,"batch":4,"name":"tiny","probabilistic":true}"#,
        )
        .unwrap();
        assert_eq!(call.care(), former);
    }

    #[test]
    fn classical_options_map_onto_the_core() {
        let call: ClassicalCall =
            serde_json::from_str(r#"{"voxel_nm":[65,65,200],"camera":null}"#).unwrap();
        assert_eq!(call.classical().unwrap(), ClassicalOptions::default());
        let call: ClassicalCall = serde_json::from_str(
            r#"{"voxel_nm":[65,65,200],"camera":{"gain":2.0,"offset":100.0,"read_noise":3.0}}"#,
        )
        .unwrap();
        let noise = call.classical().unwrap().noise.unwrap();
        assert_eq!(noise.gain, 2.0);
        assert_eq!(noise.variance_at_zero, 9.0 - 200.0);
        let bad: ClassicalCall = serde_json::from_str(
            r#"{"voxel_nm":[1,1,1],"camera":{"gain":0,"offset":0,"read_noise":1}}"#,
        )
        .unwrap();
        assert!(bad.classical().unwrap_err().to_string().contains("gain"));
        let e = serde_json::from_str::<ClassicalCall>(r#"{"voxel_nm":[1,1,1],"camra":null}"#)
            .err()
            .unwrap();
        assert!(e.to_string().contains("unknown field `camra`"), "{e}");
    }

    #[test]
    fn a_misspelt_or_missing_field_is_named() {
        let misspelt = TRAINING.replace("\"seed\"", "\"sead\"");
        let e = serde_json::from_str::<Training>(&misspelt).err().unwrap();
        assert!(e.to_string().contains("unknown field `sead`"), "{e}");
        let e = serde_json::from_str::<RestoreCall>(r#"{"voxel_nm":[1,1,1],"model_dir":"m"}"#)
            .err()
            .unwrap();
        assert!(e.to_string().contains("missing field `uncertainty`"), "{e}");
        let e = serde_json::from_str::<RestoreCall>(
            r#"{"voxel_nm":[1,1,1],"model_dir":"m","uncertainty":false,"tile":0,"device":"tpu"}"#,
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("unknown device 'tpu'"), "{e}");
    }
}
