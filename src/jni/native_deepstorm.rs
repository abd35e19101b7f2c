//! JNI entry points of Deep-STORM (`java/…/fluorecon/NativeDeepStorm.java`). As for the
//! classical localizer, a stack goes through a handle a chunk of frames at a time; the
//! handle keeps the summed density map and the localizations (8 floats each, see
//! [`super::native_smlm`]).

use super::convert::{options, parsed, string, write_localizations, CameraOptions};
use super::guard;
use super::handles::{free_handle, handle_mut, into_handle, push_frames, take_handle, FrameStream};
use super::progress::JavaProgress;
use crate::device::DeviceRequest;
use crate::progress::Progress;
use crate::smlm::deepstorm::{DeepStormLocalizer, DeepStormModel, DeepStormOptions};
use crate::{Error, Result};
use jni::objects::{JClass, JFloatArray, JObject, JString};
use jni::sys::{jfloatArray, jint, jlong, jstring};
use jni::JNIEnv;
use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;

fn runner<'a>(handle: jlong) -> Result<&'a mut DeepStormLocalizer> {
    handle_mut(handle, <DeepStormLocalizer as FrameStream>::WHAT)
}

/// The model of a folder, or the bundled one for none (null or blank).
fn model_at(dir: Option<&str>) -> Result<DeepStormModel> {
    match dir.map(str::trim).filter(|d| !d.is_empty()) {
        None => DeepStormModel::bundled(),
        Some(dir) => DeepStormModel::load(Path::new(dir)),
    }
}

/// `String deepstormModelInfo(String modelDir)`: one line describing the model (name,
/// what it was trained for, its default threshold), for the log and the dialog.
#[no_mangle]
pub extern "system" fn Java_fluorecon_NativeDeepStorm_modelInfo<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    model_dir: JString<'l>,
) -> jstring {
    guard(&mut env, |env| {
        let m = model_at(string(env, &model_dir)?.as_deref())?;
        let t = &m.info.training;
        let line = format!(
            "Deep-STORM model '{}': {} nm pixels, PSF σ {} nm, {} camera, ×{} upsampling, \
             threshold {}",
            m.info.name,
            t.pixel_nm,
            t.psf_sigma_nm,
            match t.camera {
                crate::smlm::synthetic::SimCamera::Emccd { .. } => "EMCCD",
                crate::smlm::synthetic::SimCamera::Scmos { .. } => "sCMOS",
            },
            m.info.architecture.upsampling,
            m.info.threshold
        );
        Ok(env.new_string(line)?.into_raw())
    })
}

/// The options of `deepstormNew`: [`DeepStormOptions`] field for field, with the model
/// folder and the device.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeepStormCall {
    /// A model folder; null for the model bundled with Fluorecon.
    model_dir: Option<String>,
    /// Camera pixel in the sample, nm.
    pixel_nm: f64,
    camera: CameraOptions,
    /// Detection threshold (fraction of one molecule's peak); 0 (or less) for the model's own.
    threshold: f64,
    #[serde(deserialize_with = "parsed")]
    device: DeviceRequest,
}

/// `long deepstormNew(int nx, int ny, String options, ProgressListener listener)`: a run
/// over frames of nx × ny raw pixels (ADU).
#[no_mangle]
pub extern "system" fn Java_fluorecon_NativeDeepStorm_deepstormNew<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    nx: jint,
    ny: jint,
    options_json: JString<'l>,
    listener: JObject<'l>,
) -> jlong {
    guard(&mut env, |env| {
        let call: DeepStormCall = options(env, &options_json, "Deep-STORM")?;
        if nx <= 0 || ny <= 0 {
            return Err(Error::InvalidInput(format!(
                "the frames are empty ({nx}×{ny} pixels)"
            )));
        }
        let model = Arc::new(model_at(call.model_dir.as_deref())?);
        let opts = DeepStormOptions {
            camera: call.camera.into(),
            pixel_nm: call.pixel_nm,
            threshold: (call.threshold > 0.0).then_some(call.threshold),
            device: call.device,
            ..DeepStormOptions::default()
        };
        let name = model.info.name.clone();
        let mut runner = DeepStormLocalizer::new(model, nx as usize, ny as usize, &opts)?;
        let mut progress = JavaProgress {
            env,
            listener: &listener,
        };
        let device = runner.choose_device(&mut progress);
        progress.log(&format!("Fluorecon Deep-STORM: model '{name}' on {device}"));
        for w in runner.warnings() {
            progress.log(&format!("Fluorecon Deep-STORM warning: {w}"));
        }
        Ok(into_handle(runner))
    })
}

impl FrameStream for DeepStormLocalizer {
    const WHAT: &'static str = "Deep-STORM";
    fn push(&mut self, frames: &[f32], progress: &mut dyn Progress) -> Result<()> {
        DeepStormLocalizer::push(self, frames, progress)
    }
}

/// `void deepstormPush(long handle, float[] frames, ProgressListener listener)`.
#[no_mangle]
pub extern "system" fn Java_fluorecon_NativeDeepStorm_deepstormPush<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    frames: JFloatArray<'l>,
    listener: JObject<'l>,
) {
    push_frames::<DeepStormLocalizer>(&mut env, handle, &frames, &listener)
}

/// `int deepstormUpsampling(long handle)`: fine pixels per camera pixel of the density map.
#[no_mangle]
pub extern "system" fn Java_fluorecon_NativeDeepStorm_deepstormUpsampling<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) -> jint {
    guard(&mut env, |_| Ok(runner(handle)?.upsampling() as jint))
}

/// `float[] deepstormFinish(long handle, float[] density)`: the localizations; fills
/// `density` ((ny·up) rows of (nx·up) values: molecules per fine pixel, summed over the
/// frames) when it is not null; frees the handle.
#[no_mangle]
pub extern "system" fn Java_fluorecon_NativeDeepStorm_deepstormFinish<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    density: JFloatArray<'l>,
) -> jfloatArray {
    guard(&mut env, |env| {
        let r =
            take_handle::<DeepStormLocalizer>(handle, <DeepStormLocalizer as FrameStream>::WHAT)?;
        let result = r.finish();
        if !density.is_null() {
            let len = env.get_array_length(&density)? as usize;
            if len != result.density.len() {
                return Err(Error::Internal(format!(
                    "density buffer of {len} values for a {}×{} map",
                    result.density_width, result.density_height
                )));
            }
            env.set_float_array_region(&density, 0, &result.density)?;
        }
        write_localizations(env, &result.localizations)
    })
}

/// `void deepstormFree(long handle)`: drops an unfinished run (cancel, error).
#[no_mangle]
pub extern "system" fn Java_fluorecon_NativeDeepStorm_deepstormFree<'l>(
    _env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) {
    free_handle::<DeepStormLocalizer>(handle, <DeepStormLocalizer as FrameStream>::WHAT)
}
