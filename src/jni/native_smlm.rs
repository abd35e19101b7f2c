//! JNI entry points of localization microscopy (`java/…/fluorecon/NativeSmlm.java`).
//!
//! A localization crosses the bridge as 8 floats: frame (from 1), x [nm], y [nm], sigma [nm],
//! intensity [photon], offset [photon], bkgstd [photon], uncertainty [nm]. A stack is
//! localized through a handle, frames pushed a chunk at a time, so that Java never copies a
//! whole (virtual) stack at once. Each call with options takes them as one JSON object (see
//! [`super::convert`]).

use super::convert::{
    options, parsed, read_localizations, required_string, write_floats, write_localizations,
    CameraOptions,
};
use super::guard;
use super::handles::{free_handle, into_handle, push_frames, take_handle, FrameStream};
use super::progress::JavaProgress;
use crate::device::DeviceRequest;
use crate::progress::Progress;
use crate::smlm::drift::{estimate_drift, DriftOptions};
use crate::smlm::render::{render, RenderMode, RenderOptions};
use crate::smlm::results::{read_csv_file, write_csv_file};
use crate::smlm::{FitMethod, LocalizeOptions, Localizer};
use crate::{Error, Result};
use jni::objects::{JClass, JFloatArray, JObject, JString};
use jni::sys::{jfloatArray, jint, jlong};
use jni::JNIEnv;
use serde::Deserialize;
use std::path::PathBuf;

fn path(env: &mut JNIEnv, s: &JString) -> Result<PathBuf> {
    Ok(PathBuf::from(required_string(env, s, "no file given")?))
}

/// The options of `localizerNew`: [`LocalizeOptions`] field for field.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LocalizerOptions {
    /// Camera pixel in the sample, nm.
    pixel_nm: f64,
    camera: CameraOptions,
    /// Detection threshold, multiple of std(Wave.F1).
    threshold: f64,
    /// Poisson MLE; false: least squares.
    mle: bool,
    /// Starting PSF σ, nm.
    sigma_nm: f64,
    /// Fit window half-size, pixels.
    fit_radius: i32,
    /// Rejects fits whose σ is further than this fraction from the typical σ; 0 = off.
    sigma_tolerance: f64,
    #[serde(deserialize_with = "parsed")]
    device: DeviceRequest,
}

impl From<LocalizerOptions> for LocalizeOptions {
    fn from(o: LocalizerOptions) -> LocalizeOptions {
        let mut opts = LocalizeOptions {
            camera: o.camera.into(),
            pixel_nm: o.pixel_nm,
            threshold: o.threshold,
            sigma_tolerance: (o.sigma_tolerance != 0.0).then_some(o.sigma_tolerance),
            device: o.device,
            ..LocalizeOptions::default()
        };
        opts.fit.method = if o.mle {
            FitMethod::Mle
        } else {
            FitMethod::LeastSquares
        };
        opts.fit.radius = o.fit_radius.max(0) as usize;
        opts.fit.initial_sigma_px = o.sigma_nm / o.pixel_nm;
        opts
    }
}

/// `long localizerNew(int nx, int ny, String options)`: a localizer for frames of nx×ny
/// pixels.
#[no_mangle]
pub extern "system" fn Java_fluorecon_NativeSmlm_localizerNew<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    nx: jint,
    ny: jint,
    options_json: JString<'l>,
) -> jlong {
    guard(&mut env, |env| {
        let opts: LocalizerOptions = options(env, &options_json, "localization")?;
        if nx <= 0 || ny <= 0 {
            return Err(Error::InvalidInput(format!(
                "the frames are empty ({nx}×{ny} pixels)"
            )));
        }
        let loc = Localizer::new(nx as usize, ny as usize, &opts.into())?;
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

/// The options of `render`: [`RenderOptions`] field for field.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RenderCall {
    /// Field size in camera pixels.
    width_px: i32,
    height_px: i32,
    camera_pixel_nm: f64,
    /// Rendered pixels per camera pixel.
    magnification: f64,
    /// A histogram instead of Gaussians.
    histogram: bool,
}

/// `float[] render(float[] locs, String options)`: rows × columns of the rendered image.
#[no_mangle]
pub extern "system" fn Java_fluorecon_NativeSmlm_render<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    locs: JFloatArray<'l>,
    options_json: JString<'l>,
) -> jfloatArray {
    guard(&mut env, |env| {
        let o: RenderCall = options(env, &options_json, "rendering")?;
        let locs = read_localizations(env, &locs)?;
        let opts = RenderOptions {
            width_px: o.width_px.max(0) as usize,
            height_px: o.height_px.max(0) as usize,
            camera_pixel_nm: o.camera_pixel_nm,
            magnification: o.magnification,
            mode: if o.histogram {
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

/// The options of `correctDrift`: [`DriftOptions`] field for field.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DriftCall {
    frames_per_block: i32,
}

/// `float[] correctDrift(float[] locs, String options, ProgressListener listener)`.
#[no_mangle]
pub extern "system" fn Java_fluorecon_NativeSmlm_correctDrift<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    locs: JFloatArray<'l>,
    options_json: JString<'l>,
    listener: JObject<'l>,
) -> jfloatArray {
    guard(&mut env, |env| {
        let o: DriftCall = options(env, &options_json, "drift correction")?;
        let mut locs = read_localizations(env, &locs)?;
        let opts = DriftOptions {
            frames_per_block: o.frames_per_block.max(0) as u32,
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
