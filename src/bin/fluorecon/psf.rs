//! `fluorecon psf`: a model PSF written as a 32-bit TIFF calibrated in µm; also the PSF model
//! choice and the checks on PSF sizes that `deconvolve` and `simulate` share.

use crate::parse_size;
use clap::{Args, ValueEnum};
use fluorecon::io::tiff::{write_tiff, Hyperstack};
use fluorecon::psf::{suggested_shape, Psf, PsfModel, PsfParams};
use fluorecon::{invalid, Result, Volume};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct OpticsArgs {
    /// Numerical aperture of the objective
    #[arg(long, value_name = "NA")]
    pub na: f64,

    /// Emission wavelength, nm
    #[arg(long, value_name = "NM")]
    pub wavelength: f64,

    /// Refractive index of the immersion medium: 1.518 oil, 1.33 water, 1.0 air
    #[arg(long, value_name = "N", default_value_t = 1.518)]
    pub immersion: f64,

    /// Lateral pixel size in the sample, nm
    #[arg(long, value_name = "NM")]
    pub pixel_size: f64,
}

#[derive(Args, Debug)]
#[command(after_help = "Example:\n  \
    fluorecon psf --model born-wolf --na 1.4 --wavelength 520 --pixel-size 65 --z-step 200 \
    -o psf.tif")]
pub struct PsfArgs {
    /// PSF model
    #[arg(long, value_enum, value_name = "MODEL")]
    pub model: ModelArg,

    #[command(flatten)]
    pub optics: OpticsArgs,

    /// Distance between z planes, nm (not needed for a 2D PSF, --size NX,NY,1)
    #[arg(long, value_name = "NM")]
    pub z_step: Option<f64>,

    /// PSF size in pixels, odd along every axis [default: large enough for the model]
    #[arg(long, value_name = "NX,NY,NZ", value_parser = parse_size)]
    pub size: Option<(usize, usize, usize)>,

    /// Output TIFF (32-bit, sum 1, calibrated in µm)
    #[arg(short, long, value_name = "PSF.tif")]
    pub output: PathBuf,
}

/// PSF models on the command line.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelArg {
    /// Scalar Born & Wolf widefield model
    BornWolf,
    /// Gaussian approximation (faster, less accurate out of focus)
    Gaussian,
}

impl From<ModelArg> for PsfModel {
    fn from(m: ModelArg) -> PsfModel {
        match m {
            ModelArg::BornWolf => PsfModel::BornWolf,
            ModelArg::Gaussian => PsfModel::Gaussian,
        }
    }
}

/// `fluorecon psf`.
pub fn psf(a: &PsfArgs) -> Result<()> {
    let o = &a.optics;
    let nz_given = a.size.map(|(_, _, nz)| nz);
    let z_step = match (a.z_step, nz_given) {
        (Some(z), _) => z,
        (None, Some(1)) => o.pixel_size, // not used for a 2D PSF
        (None, _) => {
            return invalid!("--z-step NM is needed for a 3D PSF (or give --size NX,NY,1 for 2D)")
        }
    };
    let params = PsfParams {
        model: a.model.into(),
        na: o.na,
        wavelength_nm: o.wavelength,
        immersion_index: o.immersion,
        pixel_size_nm: o.pixel_size,
        z_step_nm: z_step,
    };
    let shape = match a.size {
        Some((nx, ny, nz)) => {
            check_odd(nx, ny, nz)?;
            (nz, ny, nx)
        }
        None => default_psf_shape(&params),
    };
    let psf = Psf::generate(&params, shape)?;
    let volume = Volume::new(psf.data, Psf::voxel_size(&params));
    write_tiff(&a.output, &Hyperstack::from_volume(&volume))?;
    let (nz, ny, nx) = shape;
    eprintln!(
        "fluorecon: wrote a {} PSF of {nx}×{ny}×{nz} pixels (x×y×z; pixel {} nm, z step {} nm) → {}",
        model_name(params.model),
        o.pixel_size,
        z_step,
        a.output.display()
    );
    Ok(())
}

/// The model as messages name it.
pub fn model_name(m: PsfModel) -> &'static str {
    match m {
        PsfModel::BornWolf => "Born & Wolf",
        PsfModel::Gaussian => "Gaussian",
    }
}

/// Fails unless a PSF size in pixels is odd along every axis.
pub fn check_odd(nx: usize, ny: usize, nz: usize) -> Result<()> {
    if nx % 2 == 0 || ny % 2 == 0 || nz % 2 == 0 {
        return invalid!(
            "the PSF size must be odd along every axis (its peak sits in the centre pixel), \
             e.g. 65,65,33; got {nx},{ny},{nz}"
        );
    }
    Ok(())
}

/// The PSF size when none is given: the library's suggestion for a 17-plane stack of a
/// large field (33 planes for Born & Wolf).
fn default_psf_shape(p: &PsfParams) -> (usize, usize, usize) {
    suggested_shape(p, (17, 1025, 1025))
}
