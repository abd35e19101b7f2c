//! JNI entry points of the denoising commands (`java/…/fluorecon/NativeNn.java`): train
//! Noise2Void / CARE, one-click Noise2Void, restore with a model folder. Options arrive as
//! JSON (the serde form of [`N2vOptions`] / [`CareOptions`]; missing fields take their
//! defaults). Each epoch's losses go to the listener's `epoch(int, int, double, double,
//! double)` method when it has one (the loss plot), besides the usual progress and log.

use super::convert::{device_request, options, required_string, string, volume, write_floats};
use super::guard;
use super::progress::{JavaProgress, TrainingProgress};
use crate::denoise::care::{train_care, CareOptions};
use crate::denoise::n2v::{denoise_n2v_each, train_n2v, N2vOptions};
use crate::denoise::{check_uncertainty, finish_training, restore, RestoreOptions};
use crate::nn::load_model;
use crate::nn::tiling::TileOptions;
use crate::progress::Progress;
use crate::Error;
use jni::objects::{JClass, JFloatArray, JObject, JString};
use jni::sys::{jboolean, jfloat, jfloatArray, jint, jstring, JNI_TRUE};
use jni::JNIEnv;
use std::path::PathBuf;

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
            (nx, ny, nz),
            [voxel_x_nm, voxel_y_nm, voxel_z_nm],
            "the image",
        )?;
        let mut opts: N2vOptions = options(env, &options_json, "Noise2Void")?;
        opts.train.device = device_request(env, &device)?;
        let dir = string(env, &model_dir)?.map(PathBuf::from);
        let mut progress = TrainingProgress::new(&mut *env, &listener);
        let mut on_epoch = progress.epochs();
        let out = if denoise == JNI_TRUE {
            let restore_opts = RestoreOptions {
                device: opts.train.device,
                ..Default::default()
            };
            let (mut restored, _) = denoise_n2v_each(
                &[&v],
                &opts,
                &restore_opts,
                dir.as_deref(),
                &mut progress,
                &mut on_epoch,
            )?;
            let denoised = restored.pop().expect("one image").image.data;
            denoised.into_raw_vec_and_offset().0
        } else {
            let model = train_n2v(&[&v], &opts, &mut progress, &mut on_epoch)?;
            finish_training(&model, dir.as_deref(), &mut progress)?;
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
        let lo = volume(env, &low, (nx, ny, nz), voxel, "the low-quality image")?;
        let hi = volume(env, &high, (nx, ny, nz), voxel, "the high-quality image")?;
        let mut opts: CareOptions = options(env, &options_json, "CARE")?;
        opts.train.device = device_request(env, &device)?;
        let dir = required_string(env, &model_dir, "choose a folder for the model")?;
        let mut progress = TrainingProgress::new(&mut *env, &listener);
        let mut on_epoch = progress.epochs();
        let model = train_care(&[(&lo, &hi)], &opts, &mut progress, &mut on_epoch)?;
        finish_training(&model, Some(&PathBuf::from(dir)), &mut progress)
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
            (nx, ny, nz),
            [voxel_x_nm, voxel_y_nm, voxel_z_nm],
            "the image",
        )?;
        let dir = required_string(env, &model_dir, "choose a model folder")?;
        let model = load_model(&PathBuf::from(&dir))?;
        if uncertainty == JNI_TRUE {
            check_uncertainty(&model)?;
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
        let dir = required_string(env, &model_dir, "choose a model folder")?;
        let info = crate::nn::model_file::read_info(&PathBuf::from(dir))?;
        let text = serde_json::to_string_pretty(&info)
            .map_err(|e| Error::Internal(format!("model description: {e}")))?;
        Ok(env.new_string(text)?.into_raw())
    })
}
