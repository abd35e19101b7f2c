//! Localization microscopy on the command line: `localize` (TIFF stack → ThunderSTORM CSV,
//! frames streamed so that any length fits in memory), `render` (CSV → super-resolved TIFF)
//! and `simulate-smlm` (a blinking-emitter stack with its ground truth).

use crate::terminal::{install_ctrlc, CliProgress};
use clap::{Args, ValueEnum};
use fluorecon::io::tiff::{read_tiff_planes, write_tiff, Hyperstack};
use fluorecon::progress::check_cancel;
use fluorecon::smlm::results::{read_csv_file, write_csv_file};
use fluorecon::smlm::synthetic::{simulate_smlm, write_truth_csv, SimCamera, SmlmSimOptions};
use fluorecon::smlm::{
    estimate_drift, render, Camera, DriftOptions, FitMethod, Localization, LocalizeOptions,
    Localizer, RenderMode, RenderOptions,
};
use fluorecon::{invalid, Error, Progress, Result, VoxelSize};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Args, Debug)]
#[command(
    after_help = "Camera: photons = (ADU − offset) · e⁻/ADU / EM gain.\n\nExamples:\n  \
    fluorecon localize storm.tif --pixel-size 100 --offset 100 --e-per-adu 45 --em-gain 300 \
    -o storm.csv\n  \
    fluorecon localize scmos.tif --offset 100 --e-per-adu 0.5 --fitter lsq -o locs.csv"
)]
pub struct LocalizeArgs {
    /// Input TIFF stack of raw camera frames (ADU), one molecule image per frame
    #[arg(value_name = "IN.tif")]
    pub input: PathBuf,

    /// Output CSV with ThunderSTORM's columns (x, y, sigma and uncertainty in nm)
    #[arg(short, long, value_name = "OUT.csv")]
    pub output: PathBuf,

    /// Camera pixel size in the sample, nm [default: from the TIFF's calibration]
    #[arg(long, value_name = "NM")]
    pub pixel_size: Option<f64>,

    #[command(flatten)]
    pub camera: CameraArgs,

    /// Detection threshold as a multiple of std(Wave.F1) (ThunderSTORM: 1; 0.5–2 typical)
    #[arg(long, value_name = "K", default_value_t = 1.5)]
    pub threshold: f64,

    /// Fitting objective
    #[arg(long, value_enum, value_name = "FITTER", default_value_t = FitterArg::Mle)]
    pub fitter: FitterArg,

    /// Starting PSF σ, nm
    #[arg(long, value_name = "NM", default_value_t = 130.0)]
    pub sigma: f64,

    /// Fit window half-size, pixels (the window is 2r+1 pixels square)
    #[arg(long, value_name = "PX", default_value_t = 3)]
    pub fit_radius: usize,

    /// Reject fits whose σ differs from the typical σ by more than this fraction
    /// (overlapping molecules); 0 keeps them all
    #[arg(long, value_name = "FRACTION", default_value_t = 0.12)]
    pub sigma_tolerance: f64,

    /// Correct drift by cross-correlating blocks of this many frames (0 = no correction)
    #[arg(long, value_name = "FRAMES", default_value_t = 0)]
    pub drift_block: u32,

    #[command(flatten)]
    pub compute: crate::DeviceChoice,
}

/// Camera settings of the analysis: photons = (ADU − offset) · e⁻/ADU / EM gain.
#[derive(Args, Debug, Clone)]
pub struct CameraArgs {
    /// Camera offset (baseline, dark level), ADU
    #[arg(long, value_name = "ADU", default_value_t = 100.0)]
    pub offset: f64,

    /// Photoelectrons per ADU (the camera's conversion factor)
    #[arg(long, value_name = "E", default_value_t = 1.0)]
    pub e_per_adu: f64,

    /// EM gain of an EMCCD (0 = no EM gain: sCMOS or CCD)
    #[arg(long, value_name = "GAIN", default_value_t = 0.0)]
    pub em_gain: f64,
}

impl CameraArgs {
    pub fn camera(&self) -> Camera {
        Camera {
            offset_adu: self.offset,
            electrons_per_adu: self.e_per_adu,
            em_gain: (self.em_gain != 0.0).then_some(self.em_gain),
        }
    }
}

/// Fitters on the command line.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FitterArg {
    /// Poisson maximum likelihood (Levenberg–Marquardt): reaches the Cramér–Rao bound
    Mle,
    /// Least squares (Levenberg–Marquardt)
    Lsq,
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    fluorecon render storm.csv --magnification 10 -o storm-sr.tif\n  \
    fluorecon render storm.csv --mode histogram --width 256 --height 256 -o hist.tif")]
pub struct RenderArgs {
    /// Localizations: a CSV with ThunderSTORM's columns (frame, x [nm], y [nm], …)
    #[arg(value_name = "IN.csv")]
    pub input: PathBuf,

    /// Output 32-bit TIFF calibrated in µm; each localization adds 1 to its sum
    #[arg(short, long, value_name = "OUT.tif")]
    pub output: PathBuf,

    /// Camera pixel size of the localized stack, nm
    #[arg(long, value_name = "NM", default_value_t = 100.0)]
    pub pixel_size: f64,

    /// Rendered pixels per camera pixel
    #[arg(long, value_name = "M", default_value_t = 8.0)]
    pub magnification: f64,

    /// Gaussian (σ = each localization's uncertainty) or histogram
    #[arg(long, value_enum, value_name = "MODE", default_value_t = ModeArg::Gaussian)]
    pub mode: ModeArg,

    /// Field width and height in camera pixels [default: just large enough for the data]
    #[arg(long, value_name = "PX")]
    pub width: Option<usize>,
    #[arg(long, value_name = "PX")]
    pub height: Option<usize>,

    /// Correct drift first, cross-correlating blocks of this many frames (0 = no correction)
    #[arg(long, value_name = "FRAMES", default_value_t = 0)]
    pub drift_block: u32,

    #[command(flatten)]
    pub compute: crate::DeviceChoice,
}

/// Rendering modes on the command line.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeArg {
    Gaussian,
    Histogram,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Writes stack.tif (raw ADU) and truth.csv (frame, id, x [nm], y [nm], \
    photons) into the output folder, and prints the camera settings for `localize`.\n\n\
    Example:\n  fluorecon simulate-smlm --preset low-density --frames 1000 -o ld"
)]
pub struct SimulateSmlmArgs {
    /// Density preset after the SMLM Challenge 2016 2D sets (64×64 frames, 100 nm pixels)
    #[arg(long, value_enum, value_name = "PRESET", default_value_t = PresetArg::LowDensity)]
    pub preset: PresetArg,

    /// Number of frames
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub frames: usize,

    /// Camera: EMCCD as in the challenge (gain 300, read noise 74.4 e⁻, baseline 100 ADU,
    /// 45 e⁻/ADU) or an sCMOS (1.5 e⁻ read noise, baseline 100 ADU, 0.5 e⁻/ADU)
    #[arg(long, value_enum, value_name = "CAMERA", default_value_t = CameraArg::Emccd)]
    pub camera: CameraArg,

    /// Random seed
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,

    /// Output folder (created if needed)
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PresetArg {
    LowDensity,
    HighDensity,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CameraArg {
    Emccd,
    Scmos,
}

/// `fluorecon localize`.
pub fn localize(a: &LocalizeArgs) -> Result<()> {
    let start = Instant::now();
    if let Some(p) = a.pixel_size {
        if !(p.is_finite() && p > 0.0) {
            return invalid!("--pixel-size must be a positive number of nm, not {p}");
        }
    }
    // Positions are computed in pixels (pixel size 1) and scaled once the calibration is
    // known: the TIFF's calibration is read along with its pixels.
    let px_guess = a.pixel_size.unwrap_or(100.0);
    let mut opts = LocalizeOptions {
        camera: a.camera.camera(),
        pixel_nm: 1.0,
        threshold: a.threshold,
        sigma_tolerance: (a.sigma_tolerance != 0.0).then_some(a.sigma_tolerance),
        device: a.compute.device,
        ..LocalizeOptions::default()
    };
    opts.fit.method = match a.fitter {
        FitterArg::Mle => FitMethod::Mle,
        FitterArg::Lsq => FitMethod::LeastSquares,
    };
    opts.fit.radius = a.fit_radius;
    opts.fit.initial_sigma_px = a.sigma / px_guess;
    let cancel = install_ctrlc();
    let mut bar = CliProgress::new(cancel);
    bar.restart(&format!("localizing {}", a.input.display()));
    let mut localizer: Option<Localizer> = None;
    let mut plane_buf: Vec<f32> = Vec::new();
    let mut planes = 0usize;
    let info = read_tiff_planes(&a.input, &mut |plane, w, h| {
        if localizer.is_none() {
            localizer = Some(Localizer::new(w, h, &opts)?);
        }
        let loc = localizer.as_mut().expect("created above");
        plane_buf.extend_from_slice(plane);
        planes += 1;
        if planes % 64 == 0 {
            check_cancel(&mut bar)?;
            loc.push(&plane_buf, &mut bar)?;
            plane_buf.clear();
        }
        Ok(())
    })?;
    let Some(mut loc) = localizer else {
        return invalid!("{}: the stack is empty", a.input.display());
    };
    loc.push(&plane_buf, &mut bar)?;
    if info.channels > 1 {
        return invalid!(
            "{} has {} channels; localize one channel at a time (split the channels first)",
            a.input.display(),
            info.channels
        );
    }
    let mut locs = loc.finish(&mut bar)?;
    let pixel_nm = match a.pixel_size {
        Some(p) => p,
        None if info.is_calibrated_in_microns() => info.voxel.x * 1000.0,
        None => {
            return invalid!(
                "{} has no pixel size in µm; give the camera pixel size with --pixel-size",
                a.input.display()
            )
        }
    };
    if a.pixel_size.is_none() && (pixel_nm - px_guess).abs() > 1e-6 {
        bar.log(&format!(
            "pixel size {pixel_nm:.1} nm from the TIFF; the starting σ assumed 100 nm pixels"
        ));
    }
    for l in &mut locs {
        let s = pixel_nm as f32;
        l.x_nm *= s;
        l.y_nm *= s;
        l.sigma_nm *= s;
        l.uncertainty_nm *= s;
    }
    if a.drift_block > 0 {
        correct_drift(&mut locs, a.drift_block, &mut bar)?;
    }
    bar.finish();
    write_csv_file(&a.output, &locs)?;
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "fluorecon: {} localizations in {planes} frames, {secs:.1} s ({:.0} frames/s) → {}",
        locs.len(),
        planes as f64 / secs.max(1e-9),
        a.output.display()
    );
    Ok(())
}

fn correct_drift(locs: &mut [Localization], block: u32, bar: &mut CliProgress) -> Result<()> {
    let opts = DriftOptions {
        frames_per_block: block,
        ..DriftOptions::default()
    };
    bar.restart("estimating drift");
    let drift = estimate_drift(locs, &opts, bar)?;
    let (dx, dy) = (drift.x_nm.last().copied(), drift.y_nm.last().copied());
    bar.log(&format!(
        "drift at the last frame: x {:.1} nm, y {:.1} nm (corrected)",
        dx.unwrap_or(0.0),
        dy.unwrap_or(0.0)
    ));
    drift.correct(locs);
    Ok(())
}

/// `fluorecon render`.
pub fn render_cmd(a: &RenderArgs) -> Result<()> {
    let mut locs = read_csv_file(&a.input)?;
    if locs.is_empty() {
        return invalid!("{} has no localizations to render", a.input.display());
    }
    let cancel = install_ctrlc();
    let mut bar = CliProgress::new(cancel);
    if a.drift_block > 0 {
        correct_drift(&mut locs, a.drift_block, &mut bar)?;
    }
    let (fw, fh) = fluorecon::smlm::render::field_of_view(&locs, a.pixel_size.max(1e-9));
    let opts = RenderOptions {
        width_px: a.width.unwrap_or(fw),
        height_px: a.height.unwrap_or(fh),
        camera_pixel_nm: a.pixel_size,
        magnification: a.magnification,
        mode: match a.mode {
            ModeArg::Gaussian => RenderMode::Gaussian,
            ModeArg::Histogram => RenderMode::Histogram,
        },
        ..RenderOptions::default()
    };
    check_cancel(&mut bar)?;
    let wide = fluorecon::smlm::render::oversized_uncertainties(&locs, &opts);
    if wide > 0 {
        bar.log(&format!(
            "warning: {wide} localization(s) have an uncertainty above {:.0} nm; they are drawn \
             with σ = {:.0} nm (check the CSV's uncertainty column)",
            fluorecon::smlm::render::MAX_SIGMA_PX * opts.pixel_nm(),
            fluorecon::smlm::render::MAX_SIGMA_PX * opts.pixel_nm()
        ));
    }
    let img = render(&locs, &opts)?;
    let (h, w) = img.dim();
    let um = opts.pixel_nm() / 1000.0;
    let mut out = Hyperstack::zeros(
        w,
        h,
        1,
        1,
        1,
        VoxelSize {
            z: um,
            y: um,
            x: um,
        },
        "micron",
    );
    out.data = img.into_raw_vec_and_offset().0;
    bar.finish();
    write_tiff(&a.output, &out)?;
    eprintln!(
        "fluorecon: rendered {} localizations into {w}×{h} pixels of {:.2} nm → {}",
        locs.len(),
        opts.pixel_nm(),
        a.output.display()
    );
    Ok(())
}

/// `fluorecon simulate-smlm`.
pub fn simulate_smlm_cmd(a: &SimulateSmlmArgs) -> Result<()> {
    let mut o = match a.preset {
        PresetArg::LowDensity => SmlmSimOptions::low_density(a.frames),
        PresetArg::HighDensity => SmlmSimOptions::high_density(a.frames),
    };
    o.seed = a.seed;
    if a.camera == CameraArg::Scmos {
        o.camera = SimCamera::Scmos {
            quantum_efficiency: 0.8,
            read_noise_e: 1.5,
            baseline_adu: 100.0,
            electrons_per_adu: 0.5,
        };
    }
    let sim = simulate_smlm(&o)?;
    std::fs::create_dir_all(&a.output).map_err(|e| Error::File {
        path: a.output.display().to_string(),
        message: format!("cannot create the folder: {e}"),
    })?;
    let um = o.pixel_nm / 1000.0;
    let (n, h, w) = sim.frames.dim();
    let mut stack = Hyperstack::zeros(
        w,
        h,
        1,
        1,
        n,
        VoxelSize {
            z: 1.0,
            y: um,
            x: um,
        },
        "micron",
    );
    stack.data = sim.frames.iter().copied().collect();
    write_tiff(&a.output.join("stack.tif"), &stack)?;
    let truth_path = a.output.join("truth.csv");
    write_truth(&truth_path, &sim.truth)?;
    let cam = o.camera.analysis_camera();
    eprintln!(
        "fluorecon: {n} frames, {} emitter images → {}; localize with --pixel-size {} \
         --offset {} --e-per-adu {} --em-gain {}",
        sim.truth.len(),
        a.output.display(),
        o.pixel_nm,
        cam.offset_adu,
        cam.electrons_per_adu,
        cam.em_gain.unwrap_or(0.0)
    );
    Ok(())
}

fn write_truth(path: &Path, truth: &[fluorecon::smlm::synthetic::TrueEmitter]) -> Result<()> {
    let fail = |e: std::io::Error| Error::File {
        path: path.display().to_string(),
        message: format!("cannot write: {e}"),
    };
    let f = std::fs::File::create(path).map_err(fail)?;
    let mut w = std::io::BufWriter::new(f);
    write_truth_csv(&mut w, truth).map_err(fail)?;
    std::io::Write::flush(&mut w).map_err(fail)
}
