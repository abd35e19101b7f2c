//! `fluorecon deconvolve` (Richardson–Lucy on every channel and time point of a TIFF) and
//! `fluorecon simulate` (a widefield acquisition with known ground truth).

use crate::psf::{check_odd, model_name, ModelArg};
use crate::terminal::{install_ctrlc, CliProgress};
use crate::{parse_shape, parse_size, DeviceChoice};
use clap::{Args, ValueEnum};
use fluorecon::deconv::{richardson_lucy, Boundary, RlOptions};
use fluorecon::io::tiff::{read_tiff, write_tiff, write_tiff_with_progress, Hyperstack};
use fluorecon::progress::{check_cancel, SubProgress};
use fluorecon::psf::{Psf, PsfModel, PsfParams};
use fluorecon::{invalid, synthetic, Progress, Result, Volume};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    fluorecon deconvolve cells.tif --psf bead.tif -n 40 -o cells-rl.tif\n  \
    fluorecon deconvolve cells.tif --psf-model born-wolf --na 1.4 --wavelength 520 \
    --tv 0.002 --accelerate -o cells-rl.tif")]
pub struct DeconvolveArgs {
    /// Input TIFF: 8-, 16- or 32-bit z-stack or ImageJ hyperstack (every channel and frame is
    /// deconvolved)
    #[arg(value_name = "IN.tif")]
    pub input: PathBuf,

    /// Output TIFF: 32-bit float, same dimensions and calibration as the input
    #[arg(short, long, value_name = "OUT.tif")]
    pub output: PathBuf,

    /// Measured PSF: a TIFF z-stack of one bead, sampled like the image (same pixel size and
    /// z step); it is centred and normalised automatically
    #[arg(long, value_name = "PSF.tif")]
    pub psf: Option<PathBuf>,

    /// Compute a model PSF instead of using a measured one
    #[arg(long, value_enum, value_name = "MODEL")]
    pub psf_model: Option<ModelArg>,

    /// Numerical aperture of the objective (with --psf-model), e.g. 1.4
    #[arg(long, value_name = "NA")]
    pub na: Option<f64>,

    /// Emission wavelength in nm (with --psf-model), e.g. 520
    #[arg(long, value_name = "NM")]
    pub wavelength: Option<f64>,

    /// Refractive index of the immersion medium (with --psf-model): 1.518 oil, 1.33 water,
    /// 1.0 air
    #[arg(long, value_name = "N", default_value_t = 1.518)]
    pub immersion: f64,

    /// Lateral pixel size in the sample, nm (with --psf-model) [default: from the input's
    /// calibration]
    #[arg(long, value_name = "NM")]
    pub pixel_size: Option<f64>,

    /// Distance between z planes, nm (with --psf-model) [default: from the input's
    /// calibration]
    #[arg(long, value_name = "NM")]
    pub z_step: Option<f64>,

    /// Maximum number of Richardson–Lucy iterations
    #[arg(short = 'n', long, value_name = "N", default_value_t = 40)]
    pub iterations: usize,

    /// Total-variation regularisation λ (0 = plain Richardson–Lucy; typical 0.001–0.01,
    /// higher for noisier images)
    #[arg(long, value_name = "LAMBDA", default_value_t = 0.0)]
    pub tv: f32,

    /// Biggs–Andrews acceleration: similar results in fewer iterations
    #[arg(long)]
    pub accelerate: bool,

    /// Edge model: non-circulant (no ringing at the image border) or circulant (periodic,
    /// faster, as most tools)
    #[arg(long, value_enum, value_name = "MODE", default_value_t = BoundaryArg::NonCirculant)]
    pub boundary: BoundaryArg,

    /// Stop early when the relative change between iterations falls below this (0 = run
    /// all iterations), e.g. 0.001
    #[arg(long, value_name = "T", default_value_t = 0.0)]
    pub tolerance: f32,

    #[command(flatten)]
    pub compute: DeviceChoice,
}

/// Boundary models on the command line.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoundaryArg {
    NonCirculant,
    Circulant,
}

impl From<BoundaryArg> for Boundary {
    fn from(b: BoundaryArg) -> Boundary {
        match b {
            BoundaryArg::NonCirculant => Boundary::NonCirculant,
            BoundaryArg::Circulant => Boundary::Circulant,
        }
    }
}

/// `fluorecon deconvolve`.
pub fn deconvolve(a: &DeconvolveArgs) -> Result<()> {
    let start = Instant::now();
    check_options(a)?;
    let input = read_tiff(&a.input)?;
    check_pixels(&a.input, &input)?;

    let cancel = install_ctrlc();
    let mut bar = CliProgress::new(cancel);
    let psf = deconvolution_psf(a, &input, &mut bar)?;
    let opts = RlOptions {
        iterations: a.iterations,
        tv_lambda: a.tv,
        acceleration: a.accelerate,
        boundary: a.boundary.into(),
        tolerance: a.tolerance,
        device: a.compute.device,
        memory_limit: None,
    };

    let (nc, nt) = (input.channels, input.frames);
    let parts = nc * nt;
    let mut out = Hyperstack::zeros(
        input.width,
        input.height,
        nc,
        input.slices,
        nt,
        input.voxel,
        &input.unit,
    );
    out.frame_interval = input.frame_interval;
    let (mut its_min, mut its_max) = (usize::MAX, 0);
    let mut used_device = None;
    for t in 0..nt {
        for c in 0..nc {
            check_cancel(&mut bar)?;
            let mut at = Vec::new();
            if nc > 1 {
                at.push(format!("c {}/{nc}", c + 1));
            }
            if nt > 1 {
                at.push(format!("t {}/{nt}", t + 1));
            }
            bar.set_prefix(if at.is_empty() {
                String::new()
            } else {
                at.join(", ") + ": "
            });
            let volume = input.volume(c, t);
            let mut part = SubProgress::new(&mut bar, t * nc + c, parts);
            let result = richardson_lucy(&volume, &psf, &opts, &mut part)?;
            out.set_volume(c, t, &result.volume)?;
            its_min = its_min.min(result.iterations);
            its_max = its_max.max(result.iterations);
            used_device = Some(result.device);
        }
    }
    drop(input);
    check_cancel(&mut bar)?;

    bar.restart(&format!("writing {}", a.output.display()));
    write_tiff_with_progress(&a.output, &out, &mut bar)?;
    bar.finish();

    let iterations = if its_min == its_max {
        format!("{its_max} iterations")
    } else {
        format!("{its_min}–{its_max} iterations")
    };
    let device = used_device.map_or_else(|| "?".to_string(), |d| d.to_string());
    eprintln!(
        "fluorecon: deconvolved {parts} stack(s) of {}×{}×{} (x×y×z): {iterations} on {device} \
         in {:.1} s → {}",
        out.width,
        out.height,
        out.slices,
        start.elapsed().as_secs_f64(),
        a.output.display()
    );
    Ok(())
}

/// Option checks that need no file.
fn check_options(a: &DeconvolveArgs) -> Result<()> {
    if a.iterations == 0 {
        return invalid!("--iterations must be at least 1 (typical: 20–100)");
    }
    if !(a.tv.is_finite() && a.tv >= 0.0) {
        return invalid!("--tv must be 0 or positive (typical: 0.001–0.01)");
    }
    if !(a.tolerance.is_finite() && a.tolerance >= 0.0) {
        return invalid!("--tolerance must be 0 or positive (e.g. 0.001)");
    }
    match (&a.psf, a.psf_model) {
        (Some(_), Some(_)) => {
            invalid!("give either --psf (a measured PSF) or --psf-model (a computed one), not both")
        }
        (None, None) => invalid!(
            "a PSF is needed: give --psf PSF.tif (a measured bead) or --psf-model \
             born-wolf|gaussian with --na and --wavelength"
        ),
        _ => Ok(()),
    }
}

/// Fails on NaN or infinite pixels, saying where the first one is.
fn check_pixels(path: &Path, h: &Hyperstack) -> Result<()> {
    let Some(i) = h.data.iter().position(|v| !v.is_finite()) else {
        return Ok(());
    };
    let count = h.data.iter().filter(|v| !v.is_finite()).count();
    let n = h.plane_len();
    let (plane, x, y) = (i / n, i % n % h.width, i % n / h.width);
    let (c, z, t) = (
        plane % h.channels,
        plane / h.channels % h.slices,
        plane / (h.channels * h.slices),
    );
    invalid!(
        "{} has {count} pixel(s) that are not numbers (first: {} at x={x}, y={y}, channel {}, \
         slice {}, frame {}); replace them first, e.g. in Fiji with Process › Math › Remove NaNs…",
        path.display(),
        h.data[i],
        c + 1,
        z + 1,
        t + 1
    )
}

/// The measured or model PSF for `input`.
fn deconvolution_psf(
    a: &DeconvolveArgs,
    input: &Hyperstack,
    log: &mut dyn Progress,
) -> Result<Psf> {
    if let Some(path) = &a.psf {
        if a.na.is_some() || a.wavelength.is_some() || a.pixel_size.is_some() || a.z_step.is_some()
        {
            log.log("Warning: --na, --wavelength, --pixel-size and --z-step are ignored with a measured PSF");
        }
        let h = read_tiff(path)?;
        if h.channels * h.frames != 1 {
            return invalid!(
                "the PSF file {} has {} channel(s) and {} frame(s); give one z-stack of one bead",
                path.display(),
                h.channels,
                h.frames
            );
        }
        check_pixels(path, &h)?;
        if h.is_calibrated_in_microns() && input.is_calibrated_in_microns() {
            let differs = |p: f64, i: f64| (p - i).abs() > 0.02 * i;
            let z_matters = h.slices > 1 && input.slices > 1;
            if differs(h.voxel.x, input.voxel.x) || (z_matters && differs(h.voxel.z, input.voxel.z))
            {
                log.log(&format!(
                    "Warning: the PSF's voxel size ({:.1} nm, z {:.1} nm) differs from the \
                     image's ({:.1} nm, z {:.1} nm); a measured PSF must be sampled like the image",
                    h.voxel.x * 1e3,
                    h.voxel.z * 1e3,
                    input.voxel.x * 1e3,
                    input.voxel.z * 1e3
                ));
            }
        }
        log.log(&format!(
            "PSF: {} ({}×{}×{} pixels, measured)",
            path.display(),
            h.width,
            h.height,
            h.slices
        ));
        return Psf::from_measured(&h.volume(0, 0).data);
    }

    let model: PsfModel = a.psf_model.expect("checked").into();
    let (Some(na), Some(wavelength)) = (a.na, a.wavelength) else {
        return invalid!(
            "--psf-model needs --na (numerical aperture, e.g. 1.4) and --wavelength \
             (emission wavelength in nm, e.g. 520)"
        );
    };
    let calibrated = input.is_calibrated_in_microns();
    let uncalibrated = |what: &str| {
        invalid!(
            "{} has no calibration in µm (unit: '{}'); give {what}",
            a.input.display(),
            input.unit
        )
    };
    let (pixel_size, pixel_from_file) = match a.pixel_size {
        Some(p) => (p, false),
        None if calibrated => (input.voxel.x * 1e3, true),
        None => return uncalibrated("--pixel-size NM (and --z-step NM for a z-stack)"),
    };
    let (z_step, z_from_file) = match a.z_step {
        Some(z) => (z, false),
        None if calibrated => (input.voxel.z * 1e3, true),
        None if input.slices == 1 => (pixel_size, false), // unused for a 2D image
        None => return uncalibrated("--z-step NM"),
    };
    if pixel_from_file && (input.voxel.x - input.voxel.y).abs() > 0.01 * input.voxel.x {
        log.log(&format!(
            "Warning: pixels are not square ({:.1} × {:.1} nm); the model uses the width",
            input.voxel.x * 1e3,
            input.voxel.y * 1e3
        ));
    }
    let params = PsfParams {
        model,
        na,
        wavelength_nm: wavelength,
        immersion_index: a.immersion,
        pixel_size_nm: pixel_size,
        z_step_nm: z_step,
    };
    let source = |from_file: bool| if from_file { " (from the file)" } else { "" };
    let z_text = if input.slices > 1 {
        format!(", z step {z_step:.1} nm{}", source(z_from_file))
    } else {
        String::new()
    };
    log.log(&format!(
        "PSF: {} model, NA {na}, λ {wavelength} nm, immersion n {}, pixel {pixel_size:.1} nm{}{z_text}",
        model_name(model),
        a.immersion,
        source(pixel_from_file),
    ));
    Psf::for_image(&params, input.stack_shape())
}

#[derive(Args, Debug)]
#[command(after_help = "Example:\n  fluorecon simulate --shape 32x256x256 -o sample/")]
pub struct SimulateArgs {
    /// Image size NZxNYxNX in pixels, e.g. 32x128x128 (NYxNX for a 2D image)
    #[arg(long, value_name = "NZxNYxNX", value_parser = parse_shape)]
    pub shape: (usize, usize, usize),

    /// Numerical aperture of the objective
    #[arg(long, value_name = "NA", default_value_t = 1.4)]
    pub na: f64,

    /// Emission wavelength, nm
    #[arg(long, value_name = "NM", default_value_t = 520.0)]
    pub wavelength: f64,

    /// Refractive index of the immersion medium
    #[arg(long, value_name = "N", default_value_t = 1.518)]
    pub immersion: f64,

    /// Lateral pixel size in the sample, nm
    #[arg(long, value_name = "NM", default_value_t = 100.0)]
    pub pixel_size: f64,

    /// Distance between z planes, nm
    #[arg(long, value_name = "NM", default_value_t = 200.0)]
    pub z_step: f64,

    /// Peak photon count of the brightest structures
    #[arg(long, value_name = "PHOTONS", default_value_t = 1000.0)]
    pub photons: f32,

    /// Uniform background, photons per pixel
    #[arg(long, value_name = "PHOTONS", default_value_t = 10.0)]
    pub background: f32,

    /// Random seed of the sample and the noise
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,

    /// PSF size in pixels, odd along every axis [default: sized for the image]
    #[arg(long, value_name = "NX,NY,NZ", value_parser = parse_size)]
    pub psf_size: Option<(usize, usize, usize)>,

    /// Output folder (created if needed)
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
}

/// `fluorecon simulate`.
pub fn simulate(a: &SimulateArgs) -> Result<()> {
    let params = PsfParams {
        model: PsfModel::BornWolf,
        na: a.na,
        wavelength_nm: a.wavelength,
        immersion_index: a.immersion,
        pixel_size_nm: a.pixel_size,
        z_step_nm: a.z_step,
    };
    if !(a.photons.is_finite() && a.photons > 0.0) {
        return invalid!("--photons must be positive");
    }
    if !(a.background.is_finite() && a.background >= 0.0) {
        return invalid!("--background must be 0 or positive");
    }
    let shape = a.shape;
    let psf = match a.psf_size {
        Some((nx, ny, nz)) => {
            check_odd(nx, ny, nz)?;
            Psf::generate(&params, (nz, ny, nx))?
        }
        None => Psf::for_image(&params, shape)?,
    };
    let opts = synthetic::WidefieldOptions {
        peak_photons: a.photons,
        background: a.background,
        seed: a.seed,
    };
    let sim = synthetic::widefield(shape, &psf, &opts)?;
    std::fs::create_dir_all(&a.output).map_err(|e| fluorecon::Error::File {
        path: a.output.display().to_string(),
        message: format!("cannot create the folder: {e}"),
    })?;
    let voxel = Psf::voxel_size(&params);
    let write = |name: &str, data| -> Result<()> {
        write_tiff(
            &a.output.join(name),
            &Hyperstack::from_volume(&Volume::new(data, voxel)),
        )
    };
    write("truth.tif", sim.truth)?;
    write("blurred.tif", sim.noisy)?;
    let (pz, py, px) = psf.shape();
    write("psf.tif", psf.data)?;
    let (nz, ny, nx) = shape;
    eprintln!(
        "fluorecon: simulated {nx}×{ny}×{nz} pixels (x×y×z; pixel {} nm, z step {} nm; PSF \
         {px}×{py}×{pz}) → {}/{{truth,blurred,psf}}.tif",
        a.pixel_size,
        a.z_step,
        a.output.display()
    );
    Ok(())
}
