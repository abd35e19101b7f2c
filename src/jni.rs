//! The JNI bridge to the Fiji plugin (`java/…/fluorecon/Native.java`): the only FFI code.
//!
//! Arrays are copied in, the core computes, results are copied out (no critical sections
//! are held while Java is called back). Every `Err` becomes a `fluorecon.FluoreconException`
//! (`fluorecon.CancelledException` for a cancel) and every panic is caught and becomes a
//! `FluoreconException` too: Fiji never crashes because of the engine.

use crate::deconv::{richardson_lucy, Boundary, RlOptions};
use crate::device::DeviceRequest;
use crate::progress::Progress;
use crate::psf::{self, Psf, PsfModel, PsfParams};
use crate::{Error, Result, Volume, VoxelSize};
use jni::objects::{JClass, JFloatArray, JObject, JString, JValue};
use jni::sys::{jboolean, jdouble, jfloat, jfloatArray, jint, jintArray, jstring, JNI_TRUE};
use jni::JNIEnv;
use ndarray::Array3;
use std::panic::{catch_unwind, AssertUnwindSafe};

const EXCEPTION: &str = "fluorecon/FluoreconException";
const CANCELLED: &str = "fluorecon/CancelledException";

impl From<jni::errors::Error> for Error {
    fn from(e: jni::errors::Error) -> Self {
        Error::Internal(format!("JNI: {e}"))
    }
}

/// Runs `body`, turning an `Err` or a panic into a pending Java exception (and the
/// return value into null / the default).
pub(crate) fn guard<'l, T: Default>(
    env: &mut JNIEnv<'l>,
    body: impl FnOnce(&mut JNIEnv<'l>) -> Result<T>,
) -> T {
    let outcome = catch_unwind(AssertUnwindSafe(|| body(&mut *env)));
    let err = match outcome {
        Ok(Ok(v)) => return v,
        Ok(Err(e)) => e,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Error::Internal(msg)
        }
    };
    // A Java exception raised by a callback may be pending: ours replaces it.
    if env.exception_check().unwrap_or(false) {
        let _ = env.exception_clear();
    }
    let class = if matches!(err, Error::Cancelled) {
        CANCELLED
    } else {
        EXCEPTION
    };
    let _ = env.throw_new(class, err.to_string());
    T::default()
}

/// `fluorecon.ProgressListener` seen from Rust. A null listener ignores everything.
pub(crate) struct JavaProgress<'a, 'l> {
    pub(crate) env: &'a mut JNIEnv<'l>,
    pub(crate) listener: &'a JObject<'l>,
}

impl JavaProgress<'_, '_> {
    fn call_string(&mut self, method: &str, message: &str) {
        if self.listener.is_null() {
            return;
        }
        if let Ok(s) = self.env.new_string(message) {
            let _ = self.env.call_method(
                self.listener,
                method,
                "(Ljava/lang/String;)V",
                &[JValue::Object(&s)],
            );
            let _ = self.env.delete_local_ref(s);
        }
        self.clear_exception();
    }
    /// A listener that throws must not abort the computation: forget its exception.
    fn clear_exception(&mut self) {
        if self.env.exception_check().unwrap_or(false) {
            let _ = self.env.exception_clear();
        }
    }
}

impl Progress for JavaProgress<'_, '_> {
    fn fraction(&mut self, fraction: f32) {
        if self.listener.is_null() {
            return;
        }
        let _ = self.env.call_method(
            self.listener,
            "fraction",
            "(D)V",
            &[JValue::Double(fraction as f64)],
        );
        self.clear_exception();
    }
    fn status(&mut self, message: &str) {
        self.call_string("status", message)
    }
    fn log(&mut self, message: &str) {
        self.call_string("log", message)
    }
    fn cancelled(&mut self) -> bool {
        if self.listener.is_null() {
            return false;
        }
        let r = self
            .env
            .call_method(self.listener, "cancelled", "()Z", &[])
            .and_then(|v| v.z());
        self.clear_exception();
        r.unwrap_or(false)
    }
}

pub(crate) fn read_floats(
    env: &mut JNIEnv,
    array: &JFloatArray,
    expected: usize,
    what: &str,
) -> Result<Vec<f32>> {
    if array.is_null() {
        return Err(Error::InvalidInput(format!("{what} is missing")));
    }
    let len = env.get_array_length(array)? as usize;
    if len != expected {
        return Err(Error::InvalidInput(format!(
            "{what} has {len} values but its dimensions say {expected}"
        )));
    }
    let mut buf = vec![0f32; len];
    env.get_float_array_region(array, 0, &mut buf)?;
    Ok(buf)
}

pub(crate) fn write_floats(env: &mut JNIEnv, data: &[f32]) -> Result<jfloatArray> {
    let out = env.new_float_array(data.len() as i32)?;
    env.set_float_array_region(&out, 0, data)?;
    Ok(out.into_raw())
}

/// The device a dialog chose: "auto", "cpu", "cuda" or "cuda:N"; null means auto.
pub(crate) fn device_request(env: &mut JNIEnv, device: &JString) -> Result<DeviceRequest> {
    if device.is_null() {
        return Ok(DeviceRequest::Auto);
    }
    let name: String = env.get_string(device)?.into();
    name.parse()
}

pub(crate) fn dims(nx: jint, ny: jint, nz: jint, what: &str) -> Result<(usize, usize, usize)> {
    if nx < 0 || ny < 0 || nz < 0 {
        return Err(Error::InvalidInput(format!(
            "{what} has negative dimensions"
        )));
    }
    Ok((nz as usize, ny as usize, nx as usize))
}

fn psf_params(
    env: &mut JNIEnv,
    model: &JString,
    na: f64,
    wavelength_nm: f64,
    immersion_index: f64,
    pixel_size_nm: f64,
    z_step_nm: f64,
) -> Result<PsfParams> {
    let name: String = env.get_string(model)?.into();
    let model = match name.to_ascii_lowercase().as_str() {
        "gaussian" => PsfModel::Gaussian,
        "born-wolf" | "born & wolf" | "bornwolf" => PsfModel::BornWolf,
        other => {
            return Err(Error::InvalidInput(format!(
                "unknown PSF model '{other}': use born-wolf or gaussian"
            )))
        }
    };
    Ok(PsfParams {
        model,
        na,
        wavelength_nm,
        immersion_index,
        pixel_size_nm,
        z_step_nm,
    })
}

#[no_mangle]
pub extern "system" fn Java_fluorecon_Native_version<'l>(
    mut env: JNIEnv<'l>,
    _: JClass<'l>,
) -> jstring {
    guard(&mut env, |env| {
        Ok(env.new_string(crate::VERSION)?.into_raw())
    })
}

#[no_mangle]
pub extern "system" fn Java_fluorecon_Native_info<'l>(
    mut env: JNIEnv<'l>,
    _: JClass<'l>,
) -> jstring {
    guard(&mut env, |env| {
        Ok(env.new_string(crate::info_text())?.into_raw())
    })
}

#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "system" fn Java_fluorecon_Native_deconvolve<'l>(
    mut env: JNIEnv<'l>,
    _: JClass<'l>,
    image: JFloatArray<'l>,
    nx: jint,
    ny: jint,
    nz: jint,
    psf: JFloatArray<'l>,
    pnx: jint,
    pny: jint,
    pnz: jint,
    measured_psf: jboolean,
    iterations: jint,
    tv_lambda: jfloat,
    acceleration: jboolean,
    circulant: jboolean,
    tolerance: jfloat,
    voxel_x_nm: jfloat,
    voxel_y_nm: jfloat,
    voxel_z_nm: jfloat,
    device: JString<'l>,
    listener: JObject<'l>,
) -> jfloatArray {
    guard(&mut env, |env| {
        let shape = dims(nx, ny, nz, "the image")?;
        let pixels = read_floats(env, &image, shape.0 * shape.1 * shape.2, "the image")?;
        // Java passes nm; the core's voxel sizes are µm.
        let voxel = VoxelSize {
            z: voxel_z_nm as f64 / 1000.0,
            y: voxel_y_nm as f64 / 1000.0,
            x: voxel_x_nm as f64 / 1000.0,
        };
        let volume = Volume::from_vec(pixels, shape, voxel)?;
        let pshape = dims(pnx, pny, pnz, "the PSF")?;
        let kernel = read_floats(env, &psf, pshape.0 * pshape.1 * pshape.2, "the PSF")?;
        let kernel = Array3::from_shape_vec(pshape, kernel).expect("length checked");
        let psf = if measured_psf == JNI_TRUE {
            Psf::from_measured(&kernel)?
        } else {
            Psf { data: kernel }
        };
        let opts = RlOptions {
            iterations: iterations.max(0) as usize,
            tv_lambda,
            acceleration: acceleration == JNI_TRUE,
            boundary: if circulant == JNI_TRUE {
                Boundary::Circulant
            } else {
                Boundary::NonCirculant
            },
            tolerance,
            device: device_request(env, &device)?,
            memory_limit: None,
        };
        let mut progress = JavaProgress {
            env: &mut *env,
            listener: &listener,
        };
        let result = richardson_lucy(&volume, &psf, &opts, &mut progress)?;
        progress.log(&format!(
            "Fluorecon Richardson–Lucy: {} iterations on {}",
            result.iterations, result.device
        ));
        let out = result.volume.data;
        write_floats(env, out.as_slice().expect("standard layout"))
    })
}

#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "system" fn Java_fluorecon_Native_generatePsf<'l>(
    mut env: JNIEnv<'l>,
    _: JClass<'l>,
    model: JString<'l>,
    na: jdouble,
    wavelength_nm: jdouble,
    immersion_index: jdouble,
    pixel_size_nm: jdouble,
    z_step_nm: jdouble,
    nx: jint,
    ny: jint,
    nz: jint,
) -> jfloatArray {
    guard(&mut env, |env| {
        let params = psf_params(
            env,
            &model,
            na,
            wavelength_nm,
            immersion_index,
            pixel_size_nm,
            z_step_nm,
        )?;
        let psf = Psf::generate(&params, dims(nx, ny, nz, "the PSF")?)?;
        write_floats(env, psf.data.as_slice().expect("standard layout"))
    })
}

#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "system" fn Java_fluorecon_Native_suggestPsfSize<'l>(
    mut env: JNIEnv<'l>,
    _: JClass<'l>,
    model: JString<'l>,
    na: jdouble,
    wavelength_nm: jdouble,
    immersion_index: jdouble,
    pixel_size_nm: jdouble,
    z_step_nm: jdouble,
    image_nx: jint,
    image_ny: jint,
    image_nz: jint,
) -> jintArray {
    guard(&mut env, |env| {
        let params = psf_params(
            env,
            &model,
            na,
            wavelength_nm,
            immersion_index,
            pixel_size_nm,
            z_step_nm,
        )?;
        let image_shape = dims(image_nx, image_ny, image_nz, "the image")?;
        params.validate(image_shape.0 > 1)?;
        let (nz, ny, nx) = psf::suggested_shape(&params, image_shape);
        let out = env.new_int_array(3)?;
        env.set_int_array_region(&out, 0, &[nx as i32, ny as i32, nz as i32])?;
        Ok(out.into_raw())
    })
}

/// Values per direction in the parameter array of `simReconstruct` (see Native.java).
const SIM_PARAM_FIELDS: usize = 11;

fn push_sim_params(out: &mut Vec<f64>, params: &[crate::sim::AngleParams]) {
    for p in params {
        let f = p.flags;
        let flags = f.no_stripes as u8
            | (f.low_modulation as u8) << 1
            | (f.k0_implausible as u8) << 2
            | (f.uneven_angles as u8) << 3;
        out.extend_from_slice(&[
            p.k0_px[0],
            p.k0_px[1],
            p.k0_per_um[0],
            p.k0_per_um[1],
            p.angle_deg,
            p.line_spacing_nm,
            p.phase_rad,
            p.modulation,
            p.modulation_used,
            p.peak_ratio,
            flags as f64,
        ]);
    }
}

#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "system" fn Java_fluorecon_Native_simReconstruct<'l>(
    mut env: JNIEnv<'l>,
    _: JClass<'l>,
    raw: JFloatArray<'l>,
    nx: jint,
    ny: jint,
    frames: jint,
    pixel_size_nm: jdouble,
    na: jdouble,
    wavelength_nm: jdouble,
    angles: jint,
    phases: jint,
    order: JString<'l>,
    time_points: jint,
    per_plane: jboolean,
    wiener: jdouble,
    apodization_cutoff: jdouble,
    apodization_bend: jdouble,
    otf_attenuation: jdouble,
    psf: JFloatArray<'l>,
    pnx: jint,
    pny: jint,
    pnz: jint,
    background: jfloat,
    taper: jint,
    fourier: jboolean,
    device: JString<'l>,
    listener: JObject<'l>,
) -> jni::sys::jobjectArray {
    use crate::sim::{fourier_view, reconstruct, Otf, SimOptics, SimOptions};
    guard(&mut env, |env| {
        let shape = dims(nx, ny, frames, "the SIM stack")?;
        let data = read_floats(env, &raw, shape.0 * shape.1 * shape.2, "the SIM stack")?;
        let optics = SimOptics {
            na,
            wavelength_nm,
            pixel_size_nm,
        };
        let measured_otf = if psf.is_null() {
            None
        } else {
            let pshape = dims(pnx, pny, pnz, "the PSF")?;
            let p = read_floats(env, &psf, pshape.0 * pshape.1 * pshape.2, "the PSF")?;
            let p =
                Array3::from_shape_vec(pshape, p).map_err(|e| Error::Internal(e.to_string()))?;
            Some(Otf::from_psf(
                &Volume::new(p, VoxelSize::default()),
                &optics,
            )?)
        };
        let order: String = env.get_string(&order)?.into();
        let device = device_request(env, &device)?;
        let count = |v: jint, what: &str| -> Result<usize> {
            usize::try_from(v).map_err(|_| Error::InvalidInput(format!("{what} is negative ({v})")))
        };
        let opts = SimOptions {
            angles: count(angles, "the number of angles")?,
            phases: count(phases, "the number of phases")?,
            order: order.parse()?,
            time_points: count(time_points, "the number of time points")?,
            estimate_per_plane: per_plane == JNI_TRUE,
            wiener,
            apodization_cutoff,
            apodization_bend,
            otf_attenuation,
            measured_otf,
            background,
            taper_px: count(taper, "the edge taper")?,
            device,
            ..SimOptions::default()
        };
        let stack =
            Array3::from_shape_vec(shape, data).map_err(|e| Error::Internal(e.to_string()))?;
        let voxel = VoxelSize {
            z: 1.0,
            y: pixel_size_nm * 1e-3,
            x: pixel_size_nm * 1e-3,
        };
        let mut progress = JavaProgress {
            env: &mut *env,
            listener: &listener,
        };
        let res = reconstruct(&Volume::new(stack, voxel), &optics, &opts, &mut progress)?;
        progress.log(&format!("Fluorecon SIM: computed on {}", res.device_text()));
        let mut params =
            Vec::with_capacity((1 + res.plane_params.len()) * opts.angles * SIM_PARAM_FIELDS);
        push_sim_params(&mut params, &res.params);
        for p in &res.plane_params {
            push_sim_params(&mut params, p);
        }
        let view = if fourier == JNI_TRUE {
            let reference = res.planes / 2;
            Some(fourier_view(
                res.sim.data.index_axis(ndarray::Axis(0), reference),
            ))
        } else {
            None
        };
        let out = env.new_object_array(6, "java/lang/Object", JObject::null())?;
        for (i, v) in [&res.sim, &res.widefield, &res.wiener_widefield]
            .into_iter()
            .enumerate()
        {
            let a = write_floats(env, v.data.as_slice().expect("standard layout"))?;
            let a = unsafe { JObject::from_raw(a) };
            env.set_object_array_element(&out, i as i32, &a)?;
            env.delete_local_ref(a)?;
        }
        let p = env.new_double_array(params.len() as i32)?;
        env.set_double_array_region(&p, 0, &params)?;
        env.set_object_array_element(&out, 3, &p)?;
        if let Some(view) = view {
            let a = unsafe { JObject::from_raw(write_floats(env, &view)?) };
            env.set_object_array_element(&out, 4, &a)?;
        }
        let planes = env.new_int_array(1)?;
        env.set_int_array_region(&planes, 0, &[res.planes as i32])?;
        env.set_object_array_element(&out, 5, &planes)?;
        Ok(out.into_raw())
    })
}
