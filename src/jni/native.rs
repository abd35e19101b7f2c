//! JNI entry points of `java/…/fluorecon/Native.java`: version and build information,
//! Richardson–Lucy deconvolution, model PSFs, SIM reconstruction.

use super::convert::{
    device_request, dims, read_floats, required_string, sim_result, volume, write_floats,
    write_ints,
};
use super::guard;
use super::progress::JavaProgress;
use crate::deconv::{richardson_lucy, Boundary, RlOptions};
use crate::progress::Progress;
use crate::psf::{self, Psf, PsfParams};
use crate::{Error, Result, Volume, VoxelSize};
use jni::objects::{JClass, JFloatArray, JObject, JString};
use jni::sys::{jboolean, jdouble, jfloat, jfloatArray, jint, jintArray, jstring, JNI_TRUE};
use jni::JNIEnv;
use ndarray::Array3;

fn psf_params(
    env: &mut JNIEnv,
    model: &JString,
    na: f64,
    wavelength_nm: f64,
    immersion_index: f64,
    pixel_size_nm: f64,
    z_step_nm: f64,
) -> Result<PsfParams> {
    Ok(PsfParams {
        model: required_string(env, model, "no PSF model given: use born-wolf or gaussian")?
            .parse()?,
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
        let volume = volume(
            env,
            &image,
            (nx, ny, nz),
            [voxel_x_nm, voxel_y_nm, voxel_z_nm],
            "the image",
        )?;
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
        write_ints(env, &[nx as i32, ny as i32, nz as i32])
    })
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
        let order = required_string(env, &order, "no frame order given: use PAZ, PZA or ZAP")?;
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
        let view = if fourier == JNI_TRUE {
            let reference = res.planes / 2;
            Some(fourier_view(
                res.sim.data.index_axis(ndarray::Axis(0), reference),
            ))
        } else {
            None
        };
        sim_result(env, &res, view)
    })
}
