//! `fluorecon`: the command line of Fluorecon. Same algorithms as the Fiji plugin, for
//! servers, clusters and scripts: TIFF in, 32-bit TIFF out, progress on stderr, Ctrl-C
//! cancels without leaving a partial output file.
//!
//! Exit codes: 0 success, 1 error (message on stderr), 2 usage error, 130 cancelled.

mod commands;
mod deepstorm;
mod denoise;
mod info;
mod psf;
mod sim;
mod smlm;
mod terminal;

use clap::{Args, Parser, Subcommand, ValueEnum};
use fluorecon::deconv::Boundary;
use fluorecon::device::DeviceRequest;
use fluorecon::{invalid, Error, Result};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "fluorecon",
    version,
    about = "Fluorescence image reconstruction: Richardson–Lucy deconvolution, PSF models, SIM, \
             simulated data",
    after_help = "Lengths on the command line are in nm; TIFF calibrations are read and written \
                  in µm (ImageJ's 'micron'). Run 'fluorecon <command> --help' for details."
)]
struct Cli {
    /// Number of CPU threads [default: all cores]
    #[arg(long, global = true, value_name = "N")]
    threads: Option<usize>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Deconvolve every channel and time point of a TIFF z-stack or ImageJ hyperstack
    /// (Richardson–Lucy, optionally with total-variation regularisation)
    Deconvolve(DeconvolveArgs),
    /// Write a model PSF as a 32-bit TIFF calibrated in µm
    Psf(psf::PsfArgs),
    /// Simulate a widefield acquisition with known ground truth (truth.tif, blurred.tif,
    /// psf.tif) for tests, sample data and benchmarks
    Simulate(SimulateArgs),
    /// Reconstruct 2D SIM raw data (Wiener SIM with automatic pattern estimation)
    Sim(sim::SimArgs),
    /// Simulate raw 2D SIM frames with known object and pattern (for tests and benchmarks)
    SimulateSim(sim::SimulateSimArgs),
    /// Localize single molecules in a TIFF stack of raw camera frames (SMLM: PALM, STORM,
    /// PAINT) and write a ThunderSTORM-compatible CSV
    Localize(smlm::LocalizeArgs),
    /// Render localizations (CSV) as a super-resolved image
    Render(smlm::RenderArgs),
    /// Simulate a blinking-emitter SMLM stack with its ground truth (EMCCD or sCMOS)
    SimulateSmlm(smlm::SimulateSmlmArgs),
    /// Deep-STORM: localize molecules in dense frames with a neural network, or train one
    #[command(subcommand)]
    Deepstorm(deepstorm::DeepStormCommand),
    /// Noise2Void denoising: train on noisy images alone, apply a model, or both at once
    #[command(subcommand)]
    N2v(denoise::N2vCommand),
    /// CARE restoration: train on low/high-quality image pairs, apply a model
    #[command(subcommand)]
    Care(denoise::CareCommand),
    /// Show the version, build features and the devices found
    Info,
}

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
    pub psf_model: Option<psf::ModelArg>,

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

/// `--device`, the same for every compute command.
#[derive(Args, Debug, Clone, Copy)]
pub struct DeviceChoice {
    /// Where to compute: auto (the GPU when this build and the machine have one, else the
    /// CPU), cpu, cuda or cuda:N. A CUDA request that cannot be honoured is reported with the
    /// reason and runs on the CPU
    #[arg(long, value_name = "DEVICE", default_value = "auto", value_parser = parse_device)]
    pub device: DeviceRequest,
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

/// Asks glibc to keep freed work buffers in the heap for reuse: by default it unmaps every
/// large block on free, and each new buffer of the next step page-faults its memory in
/// again (measured: a tenth of a SIM reconstruction's time).
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds; called before any other thread runs.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

fn parse_device(s: &str) -> std::result::Result<DeviceRequest, String> {
    s.parse::<DeviceRequest>().map_err(|e| e.to_string())
}

/// Three positive sizes separated by `sep` characters.
fn parse_three(s: &str, seps: &[char], what: &str) -> std::result::Result<Vec<usize>, String> {
    let parts: Vec<&str> = s.split(|c| seps.contains(&c)).collect();
    let sizes: Option<Vec<usize>> = parts
        .iter()
        .map(|p| p.trim().parse::<usize>().ok().filter(|&n| n > 0))
        .collect();
    match sizes {
        Some(v) if v.len() == 3 || v.len() == 2 => Ok(v),
        _ => Err(format!("'{s}' is not a size; expected {what}")),
    }
}

/// `NZxNYxNX` (or `NYxNX`) → (nz, ny, nx).
fn parse_shape(s: &str) -> std::result::Result<(usize, usize, usize), String> {
    let v = parse_three(s, &['x', 'X', '×'], "NZxNYxNX such as 32x128x128")?;
    Ok(match v[..] {
        [nz, ny, nx] => (nz, ny, nx),
        [ny, nx] => (1, ny, nx),
        _ => unreachable!(),
    })
}

/// `NX,NY,NZ` (or `NX,NY`) → (nx, ny, nz).
fn parse_size(s: &str) -> std::result::Result<(usize, usize, usize), String> {
    let v = parse_three(s, &[','], "NX,NY,NZ such as 65,65,33")?;
    Ok(match v[..] {
        [nx, ny, nz] => (nx, ny, nz),
        [nx, ny] => (nx, ny, 1),
        _ => unreachable!(),
    })
}

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = Cli::parse(); // usage errors: message and exit code 2
                            // A bug must still end with an error message and exit code 1, not a bare backtrace.
    let outcome = std::panic::catch_unwind(|| run(cli)).unwrap_or_else(|_| {
        Err(Error::InvalidInput(
            "internal error (a bug in fluorecon; please report it with the command line)".into(),
        ))
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Error::Cancelled) => {
            eprintln!("fluorecon: cancelled");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("fluorecon: error: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    if let Some(n) = cli.threads {
        if n == 0 {
            return invalid!("--threads must be at least 1");
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| Error::InvalidInput(format!("cannot start {n} threads: {e}")))?;
    }
    match cli.command {
        Command::Deconvolve(a) => commands::deconvolve(&a),
        Command::Psf(a) => psf::psf(&a),
        Command::Simulate(a) => commands::simulate(&a),
        Command::Sim(a) => sim::sim(&a),
        Command::SimulateSim(a) => sim::simulate_sim_cmd(&a),
        Command::Localize(a) => smlm::localize(&a),
        Command::Render(a) => smlm::render_cmd(&a),
        Command::SimulateSmlm(a) => smlm::simulate_smlm_cmd(&a),
        Command::Deepstorm(c) => deepstorm::deepstorm(&c),
        Command::N2v(c) => denoise::n2v(&c),
        Command::Care(c) => denoise::care(&c),
        Command::Info => {
            info::info();
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every compute command takes --device (default auto) and rejects an unknown one.
    #[test]
    fn every_compute_command_takes_device() {
        let commands: [&[&str]; 8] = [
            &["deconvolve", "a.tif", "-o", "b.tif", "--psf", "p.tif"],
            &[
                "sim",
                "a.tif",
                "-o",
                "b.tif",
                "--na",
                "1.4",
                "--wavelength",
                "520",
                "--pixel-size",
                "65",
            ],
            &["localize", "a.tif", "-o", "b.csv"],
            &["n2v", "train", "a.tif", "-o", "m"],
            &["n2v", "predict", "a.tif", "--model", "m", "-o", "b.tif"],
            &["n2v", "denoise", "a.tif", "-o", "b.tif"],
            &[
                "care", "train", "--low", "l.tif", "--high", "h.tif", "-o", "m",
            ],
            &["care", "predict", "a.tif", "--model", "m", "-o", "b.tif"],
        ];
        for args in commands {
            let parse = |extra: &[&str]| {
                Cli::try_parse_from(["fluorecon"].iter().chain(args).chain(extra))
                    .map(|c| device_of(&c.command))
            };
            assert_eq!(parse(&[]).unwrap(), DeviceRequest::Auto, "{args:?}");
            assert_eq!(
                parse(&["--device", "cpu"]).unwrap(),
                DeviceRequest::Cpu,
                "{args:?}"
            );
            assert_eq!(
                parse(&["--device", "cuda:1"]).unwrap(),
                DeviceRequest::Cuda(1),
                "{args:?}"
            );
            let err = parse(&["--device", "tpu"]).unwrap_err().to_string();
            assert!(err.contains("unknown device 'tpu'"), "{args:?}: {err}");
        }
    }

    fn device_of(c: &Command) -> DeviceRequest {
        use denoise::{CareCommand as C, N2vCommand as N};
        match c {
            Command::Deconvolve(a) => a.compute.device,
            Command::Sim(a) => a.compute.device,
            Command::Localize(a) => a.compute.device,
            Command::N2v(N::Train(a)) => a.net.compute.device,
            Command::N2v(N::Denoise(a)) => a.net.compute.device,
            Command::N2v(N::Predict(a)) | Command::Care(C::Predict(a)) => a.compute.device,
            Command::Care(C::Train(a)) => a.net.compute.device,
            other => panic!("not a compute command: {other:?}"),
        }
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_shape("32x128x64"), Ok((32, 128, 64)));
        assert_eq!(parse_shape("128x64"), Ok((1, 128, 64)));
        assert!(parse_shape("32x0x4").is_err());
        assert!(parse_shape("abc").is_err());
        assert_eq!(parse_size("65,65,33"), Ok((65, 65, 33)));
        assert_eq!(parse_size("31,31"), Ok((31, 31, 1)));
    }
}
