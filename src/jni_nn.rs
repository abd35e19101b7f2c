//! JNI entry points of the denoising commands (`java/…/fluorecon/NativeNn.java`): train
//! Noise2Void / CARE, one-click Noise2Void, restore with a model folder. Options arrive as
//! JSON (the serde form of [`N2vOptions`] / [`CareOptions`]; missing fields take their
//! defaults). Each epoch's losses go to the listener's `epoch(int, int, double, double,
//! double)` method when it has one (the loss plot), besides the usual progress and log.

use crate::denoise::care::{train_care, CareOptions};
use crate::denoise::n2v::{train_n2v, N2vOptions};
use crate::denoise::{restore, RestoreOptions};
use crate::jni::{device_request, dims, guard, read_floats, write_floats, JavaProgress};
use crate::nn::tiling::TileOptions;
use crate::nn::{load_model, save_model, EpochStats, Model};
use crate::progress::{check_cancel, Progress};
use crate::{Error, Result, Volume, VoxelSize};
use jni::objects::{JClass, JFloatArray, JObject, JString, JValue};
use jni::sys::{jboolean, jfloat, jfloatArray, jint, jstring, JNI_TRUE};
use jni::JNIEnv;
use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

/// Java's progress plus the epochs reported since its last call, delivered to the
/// listener's `epoch` method at the next progress call (the training loop reports an
/// epoch while it holds the progress, so the two cannot both borrow the JNI environment).
struct NnProgress<'a, 'l> {
    java: JavaProgress<'a, 'l>,
    pending: Rc<RefCell<Vec<EpochStats>>>,
}

impl<'a, 'l> NnProgress<'a, 'l> {
    fn new(env: &'a mut JNIEnv<'l>, listener: &'a JObject<'l>) -> Self {
        NnProgress {
            java: JavaProgress { env, listener },
            pending: Rc::new(RefCell::new(Vec::new())),
        }
    }

    /// Delivers the last epoch, logs the outcome and saves `model` into `dir` (when given)
    /// unless the user cancelled meanwhile.
    fn finish_training(&mut self, model: &Model, dir: Option<String>) -> Result<()> {
        self.flush();
        let h = &model.info.history;
        self.log(&format!(
            "{}: best validation loss {:.5} at epoch {}/{}, {:.1} s",
            model.info.method,
            h.best_validation_loss,
            h.best_epoch,
            h.history.len(),
            h.seconds
        ));
        if let Some(dir) = dir {
            check_cancel(self)?;
            save_model(&PathBuf::from(&dir), &model.vars, &model.info)?;
            self.log(&format!("Model saved to {dir}"));
        }
        Ok(())
    }

    fn flush(&mut self) {
        let epochs: Vec<EpochStats> = self.pending.borrow_mut().drain(..).collect();
        if self.java.listener.is_null() {
            return;
        }
        for e in epochs {
            let _ = self.java.env.call_method(
                self.java.listener,
                "epoch",
                "(IIDDD)V",
                &[
                    JValue::Int(e.epoch as i32),
                    JValue::Int(e.epochs as i32),
                    JValue::Double(e.loss),
                    JValue::Double(e.validation_loss),
                    JValue::Double(e.seconds_left),
                ],
            );
            // A listener without `epoch` raises NoSuchMethodError: ignore it.
            if self.java.env.exception_check().unwrap_or(false) {
                let _ = self.java.env.exception_clear();
            }
        }
    }
}

impl Progress for NnProgress<'_, '_> {
    fn fraction(&mut self, f: f32) {
        self.flush();
        self.java.fraction(f)
    }
    fn status(&mut self, m: &str) {
        self.flush();
        self.java.status(m)
    }
    fn log(&mut self, m: &str) {
        self.flush();
        self.java.log(m)
    }
    fn cancelled(&mut self) -> bool {
        self.flush();
        self.java.cancelled()
    }
}

/// A Java string; `None` when null or blank.
fn string(env: &mut JNIEnv, s: &JString) -> Result<Option<String>> {
    if s.is_null() {
        return Ok(None);
    }
    let v: String = env.get_string(s)?.into();
    Ok((!v.trim().is_empty()).then_some(v))
}

fn options<T: serde::de::DeserializeOwned + Default>(
    env: &mut JNIEnv,
    json: &JString,
    what: &str,
) -> Result<T> {
    match string(env, json)? {
        None => Ok(T::default()),
        Some(s) => serde_json::from_str(&s)
            .map_err(|e| Error::InvalidInput(format!("bad {what} options ({e}): {s}"))),
    }
}

#[allow(clippy::too_many_arguments)]
fn volume(
    env: &mut JNIEnv,
    image: &JFloatArray,
    nx: jint,
    ny: jint,
    nz: jint,
    voxel_nm: [jfloat; 3],
    what: &str,
) -> Result<Volume> {
    let shape = dims(nx, ny, nz, what)?;
    let pixels = read_floats(env, image, shape.0 * shape.1 * shape.2, what)?;
    let voxel = VoxelSize {
        x: voxel_nm[0] as f64 / 1000.0,
        y: voxel_nm[1] as f64 / 1000.0,
        z: voxel_nm[2] as f64 / 1000.0,
    };
    Volume::from_vec(pixels, shape, voxel)
}

/// Trains Noise2Void on one image (plane or stack); saves the model to `modelDir` when
/// given; with `denoise`, returns the denoised image, else an empty array.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "system" fn Java_fluorecon_NativeNn_n2v<'l>(
    mut env: JNIEnv<'l>,
    _: JClass<'l>,
    image: JFloatArray<'l>,
    nx: jint,
    ny: jint,
    nz: jint,
    voxel_x_nm: jfloat,
    voxel_y_nm: jfloat,
    voxel_z_nm: jfloat,
    options_json: JString<'l>,
    model_dir: JString<'l>,
    denoise: jboolean,
    device: JString<'l>,
    listener: JObject<'l>,
) -> jfloatArray {
    guard(&mut env, |env| {
        let v = volume(
            env,
            &image,
            nx,
            ny,
            nz,
            [voxel_x_nm, voxel_y_nm, voxel_z_nm],
            "the image",
        )?;
        let mut opts: N2vOptions = options(env, &options_json, "Noise2Void")?;
        opts.train.device = device_request(env, &device)?;
        let dir = string(env, &model_dir)?;
        let mut progress = NnProgress::new(&mut *env, &listener);
        let sink = progress.pending.clone();
        let model = train_n2v(&[&v], &opts, &mut progress, &mut |e| {
            sink.borrow_mut().push(e.clone())
        })?;
        progress.finish_training(&model, dir)?;
        let out = if denoise == JNI_TRUE {
            progress.status("Denoising…");
            let restore_opts = RestoreOptions {
                device: opts.train.device,
                ..Default::default()
            };
            restore(&model, &v, &restore_opts, &mut progress)?
                .image
                .data
                .into_raw_vec_and_offset()
                .0
        } else {
            Vec::new()
        };
        write_floats(env, &out)
    })
}

/// Trains CARE on one pair of images of equal size and saves the model to `modelDir`.
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
    voxel_x_nm: jfloat,
    voxel_y_nm: jfloat,
    voxel_z_nm: jfloat,
    options_json: JString<'l>,
    model_dir: JString<'l>,
    device: JString<'l>,
    listener: JObject<'l>,
) {
    guard(&mut env, |env| {
        let voxel = [voxel_x_nm, voxel_y_nm, voxel_z_nm];
        let lo = volume(env, &low, nx, ny, nz, voxel, "the low-quality image")?;
        let hi = volume(env, &high, nx, ny, nz, voxel, "the high-quality image")?;
        let mut opts: CareOptions = options(env, &options_json, "CARE")?;
        opts.train.device = device_request(env, &device)?;
        let dir = string(env, &model_dir)?
            .ok_or_else(|| Error::InvalidInput("choose a folder for the model".into()))?;
        let mut progress = NnProgress::new(&mut *env, &listener);
        let sink = progress.pending.clone();
        let model = train_care(&[(&lo, &hi)], &opts, &mut progress, &mut |e| {
            sink.borrow_mut().push(e.clone())
        })?;
        progress.finish_training(&model, Some(dir))
    })
}

/// Restores one volume with the model folder `modelDir`. Returns the restored image, followed
/// by the uncertainty (standard deviation) image when `uncertainty` is set (probabilistic
/// CARE models only). `tile` ≤ 0 chooses the tile size from memory.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "system" fn Java_fluorecon_NativeNn_restore<'l>(
    mut env: JNIEnv<'l>,
    _: JClass<'l>,
    image: JFloatArray<'l>,
    nx: jint,
    ny: jint,
    nz: jint,
    voxel_x_nm: jfloat,
    voxel_y_nm: jfloat,
    voxel_z_nm: jfloat,
    model_dir: JString<'l>,
    uncertainty: jboolean,
    tile: jint,
    device: JString<'l>,
    listener: JObject<'l>,
) -> jfloatArray {
    guard(&mut env, |env| {
        let v = volume(
            env,
            &image,
            nx,
            ny,
            nz,
            [voxel_x_nm, voxel_y_nm, voxel_z_nm],
            "the image",
        )?;
        let dir = string(env, &model_dir)?
            .ok_or_else(|| Error::InvalidInput("choose a model folder".into()))?;
        let model = load_model(&PathBuf::from(&dir))?;
        if uncertainty == JNI_TRUE && model.info.method != crate::denoise::METHOD_CARE_PROBABILISTIC
        {
            return Err(Error::InvalidInput(format!(
                "an uncertainty image needs a probabilistic CARE model; '{}' is a {} model",
                model.info.name, model.info.method
            )));
        }
        let opts = RestoreOptions {
            tiles: TileOptions {
                tile: (tile > 0).then_some(tile as usize),
                ..Default::default()
            },
            normalization: None,
            device: device_request(env, &device)?,
        };
        let mut progress = JavaProgress {
            env: &mut *env,
            listener: &listener,
        };
        let r = restore(&model, &v, &opts, &mut progress)?;
        progress.log(&format!(
            "Fluorecon: restored with '{}' ({}) on {}",
            model.info.name, model.info.method, r.device
        ));
        let mut out = r.image.data.into_raw_vec_and_offset().0;
        if uncertainty == JNI_TRUE {
            if let Some(s) = r.uncertainty {
                out.extend(s.data.iter());
            }
        }
        write_floats(env, &out)
    })
}

/// The `model.json` of a model folder, pretty-printed (for the log), after checking it.
#[no_mangle]
pub extern "system" fn Java_fluorecon_NativeNn_modelInfo<'l>(
    mut env: JNIEnv<'l>,
    _: JClass<'l>,
    model_dir: JString<'l>,
) -> jstring {
    guard(&mut env, |env| {
        let dir = string(env, &model_dir)?
            .ok_or_else(|| Error::InvalidInput("choose a model folder".into()))?;
        let info = crate::nn::model_file::read_info(&PathBuf::from(dir))?;
        let text = serde_json::to_string_pretty(&info)
            .map_err(|e| Error::Internal(format!("model description: {e}")))?;
        Ok(env.new_string(text)?.into_raw())
    })
}
