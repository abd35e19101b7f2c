//! Conversions between Java values and the core's: strings (one reader), float arrays,
//! dimensions and volumes, options, the camera, localization tables and the SIM result.
//!
//! Every native call takes its options as one JSON object, built in Java from the dialog's
//! values and read by [`options`] into a struct with `#[serde(deny_unknown_fields)]`: the
//! core's options struct, or a bridge-side one that maps field for field onto it. A missing
//! or misspelt field is an error that names it. Values that name something (the device, the
//! frame order, the PSF model) are read by the core's `FromStr` ([`parsed`]), the parsers the
//! command line uses.
//!
//! Java's conventions: a volume is `nz` planes of `ny · nx` floats, x fastest; voxel sizes
//! arrive in nm (the core's are µm).

use crate::sim::{AngleParams, SimResult};
use crate::smlm::{Camera, Localization};
use crate::{Error, Result, Volume, VoxelSize};
use jni::objects::{JFloatArray, JObject, JString, JValue};
use jni::sys::{jfloat, jfloatArray, jint, jintArray, jobject, jobjectArray};
use jni::JNIEnv;
use serde::de::{DeserializeOwned, Deserializer};
use serde::Deserialize;

/// A Java string; `None` when null or blank, else the text without surrounding blanks.
pub(crate) fn string(env: &mut JNIEnv, s: &JString) -> Result<Option<String>> {
    if s.is_null() {
        return Ok(None);
    }
    let text: String = env.get_string(s)?.into();
    let text = text.trim();
    Ok((!text.is_empty()).then(|| text.to_string()))
}

/// A Java string that must be given; `missing` says what to do when it is not.
pub(crate) fn required_string(env: &mut JNIEnv, s: &JString, missing: &str) -> Result<String> {
    string(env, s)?.ok_or_else(|| Error::InvalidInput(missing.into()))
}

/// The options of a call: a JSON object read into `T` (see the module's description).
pub(crate) fn options<T: DeserializeOwned>(
    env: &mut JNIEnv,
    json: &JString,
    what: &str,
) -> Result<T> {
    let text = required_string(env, json, &format!("the {what} options are missing"))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::InvalidInput(format!("bad {what} options ({e}): {text}")))
}

/// A string option read by the core's `FromStr` (`#[serde(deserialize_with = "parsed")]`):
/// the device ("auto", "cpu", "cuda" or "cuda:N"), the SIM frame order.
pub(crate) fn parsed<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr<Err = Error>,
{
    String::deserialize(d)?
        .parse()
        .map_err(serde::de::Error::custom)
}

/// The camera of a localization call: photons = (ADU − offset) · e⁻/ADU / EM gain.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CameraOptions {
    offset_adu: f64,
    electrons_per_adu: f64,
    /// 0 for a camera without EM gain (sCMOS, CCD).
    em_gain: f64,
}

impl From<CameraOptions> for Camera {
    fn from(c: CameraOptions) -> Camera {
        Camera {
            offset_adu: c.offset_adu,
            electrons_per_adu: c.electrons_per_adu,
            em_gain: (c.em_gain != 0.0).then_some(c.em_gain),
        }
    }
}

/// The values of a Java `float[]`, which must hold `expected` of them.
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

/// All values of a Java `float[]` of any length.
pub(crate) fn read_all_floats(
    env: &mut JNIEnv,
    array: &JFloatArray,
    what: &str,
) -> Result<Vec<f32>> {
    if array.is_null() {
        return Err(Error::InvalidInput(format!("{what} is missing")));
    }
    let len = env.get_array_length(array)? as usize;
    read_floats(env, array, len, what)
}

/// A new Java `float[]` holding `data`.
pub(crate) fn write_floats(env: &mut JNIEnv, data: &[f32]) -> Result<jfloatArray> {
    let out = env.new_float_array(data.len() as i32)?;
    env.set_float_array_region(&out, 0, data)?;
    Ok(out.into_raw())
}

/// A new Java `float[][]` holding one `float[]` per slice of `data`.
pub(crate) fn write_float_arrays(env: &mut JNIEnv, data: &[&[f32]]) -> Result<jobjectArray> {
    let out = env.new_object_array(data.len() as i32, "[F", JObject::null())?;
    for (i, d) in data.iter().enumerate() {
        let a = env.new_float_array(d.len() as i32)?;
        env.set_float_array_region(&a, 0, d)?;
        env.set_object_array_element(&out, i as i32, &a)?;
        env.delete_local_ref(a)?;
    }
    Ok(out.into_raw())
}

/// A new Java `int[]` holding `data`.
pub(crate) fn write_ints(env: &mut JNIEnv, data: &[i32]) -> Result<jintArray> {
    let out = env.new_int_array(data.len() as i32)?;
    env.set_int_array_region(&out, 0, data)?;
    Ok(out.into_raw())
}

/// Java's (nx, ny, nz) as the core's (nz, ny, nx).
pub(crate) fn dims(nx: jint, ny: jint, nz: jint, what: &str) -> Result<(usize, usize, usize)> {
    if nx < 0 || ny < 0 || nz < 0 {
        return Err(Error::InvalidInput(format!(
            "{what} has negative dimensions"
        )));
    }
    Ok((nz as usize, ny as usize, nx as usize))
}

/// A volume of nx × ny × nz floats with voxels of `voxel_nm` (x, y, z in nm).
pub(crate) fn volume(
    env: &mut JNIEnv,
    image: &JFloatArray,
    (nx, ny, nz): (jint, jint, jint),
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

/// Floats per localization on the bridge: frame (from 1), x [nm], y [nm], sigma [nm],
/// intensity [photon], offset [photon], bkgstd [photon], uncertainty [nm].
const LOCALIZATION_FIELDS: usize = 8;

/// Localizations as a Java `float[]` of 8 values each.
pub(crate) fn write_localizations(env: &mut JNIEnv, locs: &[Localization]) -> Result<jfloatArray> {
    let mut out = Vec::with_capacity(locs.len() * LOCALIZATION_FIELDS);
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
    write_floats(env, &out)
}

/// The localizations of a Java `float[]` of 8 values each.
pub(crate) fn read_localizations(
    env: &mut JNIEnv,
    array: &JFloatArray,
) -> Result<Vec<Localization>> {
    let v = read_all_floats(env, array, "the localizations")?;
    if v.len() % LOCALIZATION_FIELDS != 0 {
        return Err(Error::InvalidInput(format!(
            "localization table has {} values, not a multiple of {LOCALIZATION_FIELDS}",
            v.len()
        )));
    }
    Ok(v.chunks_exact(LOCALIZATION_FIELDS)
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

/// Values per direction in `SimResult.parameters` (see SimResult.java).
const SIM_PARAM_FIELDS: usize = 11;

fn push_sim_params(out: &mut Vec<f64>, params: &[AngleParams]) {
    for p in params {
        let f = p.flags;
        let flags = f.no_stripes as u8
            | (f.low_modulation as u8) << 1
            | (f.k0_implausible as u8) << 2
            | (f.uneven_angles as u8) << 3
            | (f.inconsistent as u8) << 4;
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

/// A `fluorecon.SimResult`: the three images, the pattern parameters (the reference
/// estimate, then one set per output plane), the Fourier view or null, the number of planes
/// per time point.
pub(crate) fn sim_result(
    env: &mut JNIEnv,
    res: &SimResult,
    fourier_view: Option<Vec<f32>>,
) -> Result<jobject> {
    let angles = res.params.len();
    let mut params = Vec::with_capacity((1 + res.plane_params.len()) * angles * SIM_PARAM_FIELDS);
    push_sim_params(&mut params, &res.params);
    for p in &res.plane_params {
        push_sim_params(&mut params, p);
    }
    let image = |env: &mut JNIEnv, v: &Volume| -> Result<JObject> {
        let a = write_floats(env, v.data.as_slice().expect("standard layout"))?;
        Ok(unsafe { JObject::from_raw(a) })
    };
    let sim = image(env, &res.sim)?;
    let widefield = image(env, &res.widefield)?;
    let wiener_widefield = image(env, &res.wiener_widefield)?;
    let parameters = env.new_double_array(params.len() as i32)?;
    env.set_double_array_region(&parameters, 0, &params)?;
    let view = match fourier_view {
        Some(v) => unsafe { JObject::from_raw(write_floats(env, &v)?) },
        None => JObject::null(),
    };
    let out = env.new_object(
        "fluorecon/SimResult",
        "([F[F[F[D[FI)V",
        &[
            JValue::Object(&sim),
            JValue::Object(&widefield),
            JValue::Object(&wiener_widefield),
            JValue::Object(&parameters),
            JValue::Object(&view),
            JValue::Int(res.planes as i32),
        ],
    )?;
    Ok(out.into_raw())
}
