//! JNI entry points of localization microscopy (`java/…/fluorecon/NativeSmlm.java`).
//!
//! A localization crosses the bridge as 8 floats: frame (from 1), x [nm], y [nm], sigma [nm],
//! intensity [photon], offset [photon], bkgstd [photon], uncertainty [nm]. A stack is
//! localized through a handle, frames pushed a chunk at a time, so that Java never copies a
//! whole (virtual) stack at once.

use super::convert::{
    device_request, read_localizations, required_string, write_floats, write_localizations,
};
use super::guard;
use super::handles::{free_handle, into_handle, push_frames, take_handle, FrameStream};
use super::progress::JavaProgress;
use crate::progress::Progress;
use crate::smlm::drift::{estimate_drift, DriftOptions};
use crate::smlm::render::{render, RenderMode, RenderOptions};
use crate::smlm::results::{read_csv_file, write_csv_file};
use crate::smlm::{Camera, FitMethod, LocalizeOptions, Localizer};
use crate::{Error, Result};
use jni::objects::{JClass, JFloatArray, JObject, JString};
use jni::sys::{jboolean, jdouble, jfloatArray, jint, jlong, JNI_TRUE};
use jni::JNIEnv;
use std::path::PathBuf;

fn path(env: &mut JNIEnv, s: &JString) -> Result<PathBuf> {
    Ok(PathBuf::from(required_string(env, s, "no file given")?))
}

/// `long localizerNew(…)`: a localizer for frames of nx×ny pixels.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "system" fn Java_fluorecon_NativeSmlm_localizerNew<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    nx: jint,
    ny: jint,
    pixel_nm: jdouble,
    offset_adu: jdouble,
    electrons_per_adu: jdouble,
    em_gain: jdouble,
    threshold: jdouble,
    mle: jboolean,
    sigma_nm: jdouble,
    fit_radius: jint,
    sigma_tolerance: jdouble,
    device: JString<'l>,
) -> jlong {
    guard(&mut env, |env| {
        if nx <= 0 || ny <= 0 {
            return Err(Error::InvalidInput(format!(
                "the frames are empty ({nx}×{ny} pixels)"
            )));
        }
        let mut opts = LocalizeOptions {
            camera: Camera {
                offset_adu,
                electrons_per_adu,
                em_gain: (em_gain != 0.0).then_some(em_gain),
            },
            pixel_nm,
            threshold,
            sigma_tolerance: (sigma_tolerance != 0.0).then_some(sigma_tolerance),
            device: device_request(env, &device)?,
            ..LocalizeOptions::default()
        };
        opts.fit.method = if mle == JNI_TRUE {
            FitMethod::Mle
        } else {
            FitMethod::LeastSquares
        };
        opts.fit.radius = fit_radius.max(0) as usize;
        opts.fit.initial_sigma_px = sigma_nm / pixel_nm;
        let loc = Localizer::new(nx as usize, ny as usize, &opts)?;
        Ok(into_handle(loc))
    })
}

impl FrameStream for Localizer {
    const WHAT: &'static str = "the localizer";
    fn push(&mut self, frames: &[f32], progress: &mut dyn Progress) -> Result<()> {
        Localizer::push(self, frames, progress)
    }
}

/// `void localizerPush(long handle, float[] frames, ProgressListener listener)`.
#[no_mangle]
pub extern "system" fn Java_fluorecon_NativeSmlm_localizerPush<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    frames: JFloatArray<'l>,
    listener: JObject<'l>,
) {
    push_frames::<Localizer>(&mut env, handle, &frames, &listener)
}

/// `float[] localizerFinish(long handle, ProgressListener listener)`: frees the localizer.
#[no_mangle]
pub extern "system" fn Java_fluorecon_NativeSmlm_localizerFinish<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    listener: JObject<'l>,
) -> jfloatArray {
    guard(&mut env, |env| {
        let loc = take_handle::<Localizer>(handle, Localizer::WHAT)?;
        let mut progress = JavaProgress {
            env,
            listener: &listener,
        };
        let locs = loc.finish(&mut progress)?;
        write_localizations(env, &locs)
    })
}

/// `void localizerFree(long handle)`: drops an unfinished localizer (cancel, error).
#[no_mangle]
pub extern "system" fn Java_fluorecon_NativeSmlm_localizerFree<'l>(
    _env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) {
    free_handle::<Localizer>(handle, Localizer::WHAT)
}

/// `float[] render(float[] locs, int widthPx, int heightPx, double cameraPixelNm,
/// double magnification, boolean histogram)`: rows × columns of the rendered image.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "system" fn Java_fluorecon_NativeSmlm_render<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    locs: JFloatArray<'l>,
    width_px: jint,
    height_px: jint,
    camera_pixel_nm: jdouble,
    magnification: jdouble,
    histogram: jboolean,
) -> jfloatArray {
    guard(&mut env, |env| {
        let locs = read_localizations(env, &locs)?;
        let opts = RenderOptions {
            width_px: width_px.max(0) as usize,
            height_px: height_px.max(0) as usize,
            camera_pixel_nm,
            magnification,
            mode: if histogram == JNI_TRUE {
                RenderMode::Histogram
            } else {
                RenderMode::Gaussian
            },
            ..RenderOptions::default()
        };
        let img = render(&locs, &opts)?;
        write_floats(env, img.as_slice().expect("standard layout"))
    })
}

/// `float[] correctDrift(float[] locs, int framesPerBlock, ProgressListener listener)`.
#[no_mangle]
pub extern "system" fn Java_fluorecon_NativeSmlm_correctDrift<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    locs: JFloatArray<'l>,
    frames_per_block: jint,
    listener: JObject<'l>,
) -> jfloatArray {
    guard(&mut env, |env| {
        let mut locs = read_localizations(env, &locs)?;
        let opts = DriftOptions {
            frames_per_block: frames_per_block.max(0) as u32,
            ..DriftOptions::default()
        };
        let drift = {
            let mut progress = JavaProgress {
                env,
                listener: &listener,
            };
            estimate_drift(&locs, &opts, &mut progress)?
        };
        drift.correct(&mut locs);
        write_localizations(env, &locs)
    })
}

/// `float[] readCsv(String path)`: a ThunderSTORM CSV.
#[no_mangle]
pub extern "system" fn Java_fluorecon_NativeSmlm_readCsv<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    file: JString<'l>,
) -> jfloatArray {
    guard(&mut env, |env| {
        let locs = read_csv_file(&path(env, &file)?)?;
        write_localizations(env, &locs)
    })
}

/// `void writeCsv(String path, float[] locs)`: ThunderSTORM CSV, written atomically.
#[no_mangle]
pub extern "system" fn Java_fluorecon_NativeSmlm_writeCsv<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    file: JString<'l>,
    locs: JFloatArray<'l>,
) {
    guard(&mut env, |env| {
        let file = path(env, &file)?;
        let locs = read_localizations(env, &locs)?;
        write_csv_file(&file, &locs)
    })
}
