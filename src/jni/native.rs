//! JNI entry points of `java/…/fluorecon/Native.java`: version and build information,
//! Richardson–Lucy deconvolution, model PSFs, SIM reconstruction. Each call takes its
//! options as one JSON object (see [`super::convert`]); images and PSFs are arrays with
//! their dimensions beside them.

use super::convert::{
    dims, options, parsed, read_floats, sim_result, volume, write_floats, write_ints,
};
use super::guard;
use super::progress::JavaProgress;
use crate::deconv::{richardson_lucy, Boundary, RlOptions};
use crate::device::DeviceRequest;
use crate::progress::Progress;
use crate::psf::{self, Psf, PsfParams};
use crate::sim::{fourier_view, reconstruct, FrameOrder, Otf, SimOptics, SimOptions};
use crate::{Error, Result, Volume, VoxelSize};
use jni::objects::{JClass, JFloatArray, JObject, JString};
use jni::sys::{jfloatArray, jint, jintArray, jobject, jstring};
use jni::JNIEnv;
use ndarray::Array3;
use serde::Deserialize;

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

/// The options of `deconvolve`: [`RlOptions`] field for field, with the PSF's kind and the
/// voxel size.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeconvolveOptions {
    /// True: the engine cleans the PSF (background, centring, normalisation); false: a model
    /// PSF used as it is.
    measured_psf: bool,
    iterations: i32,
    tv_lambda: f32,
    acceleration: bool,
    /// Periodic boundaries instead of the non-circulant edge handling.
    circulant: bool,
    tolerance: f32,
    /// x, y, z in nm.
    voxel_nm: [f32; 3],
    #[serde(deserialize_with = "parsed")]
    device: DeviceRequest,
}

impl DeconvolveOptions {
    fn rl(&self) -> RlOptions {
        RlOptions {
            iterations: self.iterations.max(0) as usize,
            tv_lambda: self.tv_lambda,
            acceleration: self.acceleration,
            boundary: if self.circulant {
                Boundary::Circulant
            } else {
                Boundary::NonCirculant
            },
            tolerance: self.tolerance,
            device: self.device,
            memory_limit: None,
        }
    }
}

/// `float[] deconvolve(float[] image, int nx, int ny, int nz, float[] psf, int pnx, int pny,
/// int pnz, String options, ProgressListener listener)`.
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
    options_json: JString<'l>,
    listener: JObject<'l>,
) -> jfloatArray {
    guard(&mut env, |env| {
        let o: DeconvolveOptions = options(env, &options_json, "deconvolution")?;
        let volume = volume(env, &image, (nx, ny, nz), o.voxel_nm, "the image")?;
        let pshape = dims(pnx, pny, pnz, "the PSF")?;
        let kernel = read_floats(env, &psf, pshape.0 * pshape.1 * pshape.2, "the PSF")?;
        let kernel = Array3::from_shape_vec(pshape, kernel).expect("length checked");
        let psf = if o.measured_psf {
            Psf::from_measured(&kernel)?
        } else {
            Psf { data: kernel }
        };
        let mut progress = JavaProgress {
            env: &mut *env,
            listener: &listener,
        };
        let result = richardson_lucy(&volume, &psf, &o.rl(), &mut progress)?;
        progress.log(&format!(
            "Fluorecon Richardson–Lucy: {} iterations on {}",
            result.iterations, result.device
        ));
        let out = result.volume.data;
        write_floats(env, out.as_slice().expect("standard layout"))
    })
}

/// `float[] generatePsf(String options, int nx, int ny, int nz)`: the options are
/// [`PsfParams`].
#[no_mangle]
pub extern "system" fn Java_fluorecon_Native_generatePsf<'l>(
    mut env: JNIEnv<'l>,
    _: JClass<'l>,
    options_json: JString<'l>,
    nx: jint,
    ny: jint,
    nz: jint,
) -> jfloatArray {
    guard(&mut env, |env| {
        let params: PsfParams = options(env, &options_json, "PSF")?;
        let psf = Psf::generate(&params, dims(nx, ny, nz, "the PSF")?)?;
        write_floats(env, psf.data.as_slice().expect("standard layout"))
    })
}

/// `int[] suggestPsfSize(String options, int imageNx, int imageNy, int imageNz)`: the
/// options are [`PsfParams`].
#[no_mangle]
pub extern "system" fn Java_fluorecon_Native_suggestPsfSize<'l>(
    mut env: JNIEnv<'l>,
    _: JClass<'l>,
    options_json: JString<'l>,
    image_nx: jint,
    image_ny: jint,
    image_nz: jint,
) -> jintArray {
    guard(&mut env, |env| {
        let params: PsfParams = options(env, &options_json, "PSF")?;
        let image_shape = dims(image_nx, image_ny, image_nz, "the image")?;
        params.validate(image_shape.0 > 1)?;
        let (nz, ny, nx) = psf::suggested_shape(&params, image_shape);
        write_ints(env, &[nx as i32, ny as i32, nz as i32])
    })
}

/// The options of `simReconstruct`: [`SimOptics`] and [`SimOptions`] field for field, with
/// the Fourier view asked for or not.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SimReconstructOptions {
    /// Camera pixel in the sample, nm.
    pixel_size_nm: f64,
    na: f64,
    wavelength_nm: f64,
    angles: i32,
    phases: i32,
    /// "PAZ", "PZA" or "ZAP".
    #[serde(deserialize_with = "parsed")]
    order: FrameOrder,
    time_points: i32,
    estimate_per_plane: bool,
    wiener: f64,
    apodization_cutoff: f64,
    apodization_bend: f64,
    otf_attenuation: f64,
    zero_order_strength: f64,
    background: f32,
    taper_px: i32,
    fourier_view: bool,
    allow_failed_estimate: bool,
    #[serde(deserialize_with = "parsed")]
    device: DeviceRequest,
}

impl SimReconstructOptions {
    fn optics(&self) -> SimOptics {
        SimOptics {
            na: self.na,
            wavelength_nm: self.wavelength_nm,
            pixel_size_nm: self.pixel_size_nm,
        }
    }

    fn sim(&self, measured_otf: Option<Otf>) -> Result<SimOptions> {
        let count = |v: i32, what: &str| -> Result<usize> {
            usize::try_from(v).map_err(|_| Error::InvalidInput(format!("{what} is negative ({v})")))
        };
        Ok(SimOptions {
            angles: count(self.angles, "the number of angles")?,
            phases: count(self.phases, "the number of phases")?,
            order: self.order,
            time_points: count(self.time_points, "the number of time points")?,
            estimate_per_plane: self.estimate_per_plane,
            wiener: self.wiener,
            apodization_cutoff: self.apodization_cutoff,
            apodization_bend: self.apodization_bend,
            otf_attenuation: self.otf_attenuation,
            zero_order_strength: self.zero_order_strength,
            measured_otf,
            background: self.background,
            taper_px: count(self.taper_px, "the edge taper")?,
            device: self.device,
            allow_failed_estimate: self.allow_failed_estimate,
            ..SimOptions::default()
        })
    }
}

/// `SimResult simReconstruct(float[] raw, int nx, int ny, int frames, float[] psf, int pnx,
/// int pny, int pnz, String options, ProgressListener listener)`: `psf` null for the model
/// OTF.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "system" fn Java_fluorecon_Native_simReconstruct<'l>(
    mut env: JNIEnv<'l>,
    _: JClass<'l>,
    raw: JFloatArray<'l>,
    nx: jint,
    ny: jint,
    frames: jint,
    psf: JFloatArray<'l>,
    pnx: jint,
    pny: jint,
    pnz: jint,
    options_json: JString<'l>,
    listener: JObject<'l>,
) -> jobject {
    guard(&mut env, |env| {
        let o: SimReconstructOptions = options(env, &options_json, "SIM")?;
        let shape = dims(nx, ny, frames, "the SIM stack")?;
        let data = read_floats(env, &raw, shape.0 * shape.1 * shape.2, "the SIM stack")?;
        let optics = o.optics();
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
        let opts = o.sim(measured_otf)?;
        let stack =
            Array3::from_shape_vec(shape, data).map_err(|e| Error::Internal(e.to_string()))?;
        let voxel = VoxelSize {
            z: 1.0,
            y: o.pixel_size_nm * 1e-3,
            x: o.pixel_size_nm * 1e-3,
        };
        let mut progress = JavaProgress {
            env: &mut *env,
            listener: &listener,
        };
        let res = reconstruct(&Volume::new(stack, voxel), &optics, &opts, &mut progress)?;
        progress.log(&format!("Fluorecon SIM: computed on {}", res.device_text()));
        let view = if o.fourier_view {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::psf::PsfModel;

    #[test]
    fn psf_options_are_the_core_params_and_nothing_else() {
        let json = r#"{"model":"Born & Wolf","na":1.4,"wavelength_nm":520,"immersion_index":1.518,
            "pixel_size_nm":100,"z_step_nm":200}"#;
        let p: PsfParams = serde_json::from_str(json).unwrap();
        assert_eq!(p.model, PsfModel::BornWolf);
        assert_eq!((p.na, p.z_step_nm), (1.4, 200.0));
        let e = serde_json::from_str::<PsfParams>(&json.replace("\"na\"", "\"NA\""))
            .err()
            .unwrap();
        assert!(e.to_string().contains("unknown field `NA`"), "{e}");
        let e = serde_json::from_str::<PsfParams>(&json.replace("Born & Wolf", "airy"))
            .err()
            .unwrap();
        assert!(e.to_string().contains("unknown PSF model 'airy'"), "{e}");
    }

    #[test]
    fn deconvolution_options_map_onto_rl_options() {
        let o: DeconvolveOptions = serde_json::from_str(
            r#"{"measured_psf":true,"iterations":12,"tv_lambda":0.002,"acceleration":true,
            "circulant":true,"tolerance":0.0,"voxel_nm":[65,65,200],"device":"cuda:1"}"#,
        )
        .unwrap();
        assert_eq!(
            o.rl(),
            RlOptions {
                iterations: 12,
                tv_lambda: 0.002,
                acceleration: true,
                boundary: Boundary::Circulant,
                tolerance: 0.0,
                device: DeviceRequest::Cuda(1),
                memory_limit: None,
            }
        );
    }
}
