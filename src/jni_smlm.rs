//! JNI entry points of localization microscopy (`java/…/fluorecon/NativeSmlm.java`).
//!
//! A localization crosses the bridge as 8 floats: frame (from 1), x [nm], y [nm], sigma [nm],
//! intensity [photon], offset [photon], bkgstd [photon], uncertainty [nm]. A stack is
//! localized through a handle, frames pushed a chunk at a time, so that Java never copies a
//! whole (virtual) stack at once.

use crate::jni::{device_request, guard, read_floats, write_floats, JavaProgress};
use crate::progress::Progress;
use crate::smlm::drift::{estimate_drift, DriftOptions};
use crate::smlm::render::{render, RenderMode, RenderOptions};
use crate::smlm::results::{read_csv_file, write_csv_file};
use crate::smlm::{Camera, FitMethod, Localization, LocalizeOptions, Localizer};
use crate::{Error, Result};
use jni::objects::{JClass, JFloatArray, JObject, JString};
use jni::sys::{jboolean, jdouble, jfloatArray, jint, jlong, JNI_TRUE};
use jni::JNIEnv;
use std::path::PathBuf;

/// Floats per localization on the bridge.
const FIELDS: usize = 8;

pub(crate) fn pack(locs: &[Localization]) -> Vec<f32> {
    let mut out = Vec::with_capacity(locs.len() * FIELDS);
    for l in locs {
        out.extend_from_slice(&[
            l.frame as f32,
            l.x_nm,
            l.y_nm,
            l.sigma_nm,
            l.photons,
            l.background,
            l.bkgstd,
            l.uncertainty_nm,
        ]);
    }
    out
}

fn unpack(v: &[f32]) -> Result<Vec<Localization>> {
    if v.len() % FIELDS != 0 {
        return Err(Error::InvalidInput(format!(
            "localization table has {} values, not a multiple of {FIELDS}",
            v.len()
        )));
    }
    Ok(v.chunks_exact(FIELDS)
        .map(|c| Localization {
            frame: c[0].max(0.0) as u32,
            x_nm: c[1],
            y_nm: c[2],
            sigma_nm: c[3],
            photons: c[4],
            background: c[5],
            bkgstd: c[6],
            uncertainty_nm: c[7],
        })
        .collect())
}

pub(crate) fn floats_in(env: &mut JNIEnv, array: &JFloatArray, what: &str) -> Result<Vec<f32>> {
    if array.is_null() {
        return Err(Error::InvalidInput(format!("{what} is missing")));
    }
    let len = env.get_array_length(array)? as usize;
    read_floats(env, array, len, what)
}

pub(crate) fn path_in(env: &mut JNIEnv, s: &JString) -> Result<PathBuf> {
    if s.is_null() {
        return Err(Error::InvalidInput("no file given".into()));
    }
    let p: String = env.get_string(s)?.into();
    Ok(PathBuf::from(p))
}

// Rust objects lent to Java as `long` handles: made by `into_handle`, used through
// `handle_mut`, given back exactly once by `take_handle` (Java then clears its copy, so a
// used-up handle is 0). One Java thread uses a handle at a time.

pub(crate) fn into_handle<T>(value: T) -> jlong {
    Box::into_raw(Box::new(value)) as jlong
}

pub(crate) fn handle_mut<'a, T>(handle: jlong, what: &str) -> Result<&'a mut T> {
    if handle == 0 {
        return Err(Error::Internal(format!(
            "{what} used after it was finished"
        )));
    }
    // SAFETY: a non-zero handle comes from `into_handle::<T>` and has not been taken back
    // (see above).
    Ok(unsafe { &mut *(handle as *mut T) })
}

pub(crate) fn take_handle<T>(handle: jlong, what: &str) -> Result<Box<T>> {
    handle_mut::<T>(handle, what)?;
    // SAFETY: as in `handle_mut`; Java clears the handle, so this happens once.
    Ok(unsafe { Box::from_raw(handle as *mut T) })
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

/// A stream of whole frames lent to Java through a handle (the localizer, Deep-STORM).
pub(crate) trait FrameStream {
    /// What the handle is called in messages.
    const WHAT: &'static str;
    fn push(&mut self, frames: &[f32], progress: &mut dyn Progress) -> Result<()>;
}

impl FrameStream for Localizer {
    const WHAT: &'static str = "the localizer";
    fn push(&mut self, frames: &[f32], progress: &mut dyn Progress) -> Result<()> {
        Localizer::push(self, frames, progress)
    }
}

/// The body of every `…Push(long handle, float[] frames, ProgressListener listener)`.
pub(crate) fn push_frames<'l, T: FrameStream>(
    env: &mut JNIEnv<'l>,
    handle: jlong,
    frames: &JFloatArray<'l>,
    listener: &JObject<'l>,
) {
    guard(env, |env| {
        let data = floats_in(env, frames, "the frames")?;
        let stream = handle_mut::<T>(handle, T::WHAT)?;
        let mut progress = JavaProgress { env, listener };
        stream.push(&data, &mut progress)
    })
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
        write_floats(env, &pack(&locs))
    })
}

/// `void localizerFree(long handle)`: drops an unfinished localizer (cancel, error).
#[no_mangle]
pub extern "system" fn Java_fluorecon_NativeSmlm_localizerFree<'l>(
    _env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) {
    if handle != 0 {
        drop(take_handle::<Localizer>(handle, Localizer::WHAT));
    }
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
        let locs = unpack(&floats_in(env, &locs, "the localizations")?)?;
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
        let mut locs = unpack(&floats_in(env, &locs, "the localizations")?)?;
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
        write_floats(env, &pack(&locs))
    })
}

/// `float[] readCsv(String path)`: a ThunderSTORM CSV.
#[no_mangle]
pub extern "system" fn Java_fluorecon_NativeSmlm_readCsv<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    path: JString<'l>,
) -> jfloatArray {
    guard(&mut env, |env| {
        let p = path_in(env, &path)?;
        let locs = read_csv_file(&p)?;
        write_floats(env, &pack(&locs))
    })
}

/// `void writeCsv(String path, float[] locs)`: ThunderSTORM CSV, written atomically.
#[no_mangle]
pub extern "system" fn Java_fluorecon_NativeSmlm_writeCsv<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    path: JString<'l>,
    locs: JFloatArray<'l>,
) {
    guard(&mut env, |env| {
        let p = path_in(env, &path)?;
        let locs = unpack(&floats_in(env, &locs, "the localizations")?)?;
        write_csv_file(&p, &locs)
    })
}
