//! `fluorecon`: the command line of Fluorecon. Same algorithms as the Fiji plugin, for
//! servers, clusters and scripts: TIFF in, 32-bit TIFF out, progress on stderr, Ctrl-C
//! cancels without leaving a partial output file.
//!
//! Exit codes: 0 success, 1 error (message on stderr), 2 usage error, 130 cancelled.

mod deconv;
mod deepstorm;
mod denoise;
mod denoise_classical;
mod info;
mod paths;
mod psf;
mod sim;
mod smlm;
mod terminal;

use clap::{Args, Parser, Subcommand};
use fluorecon::device::DeviceRequest;
use fluorecon::{invalid, Error, Result};
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
    Deconvolve(deconv::DeconvolveArgs),
    /// Write a model PSF as a 32-bit TIFF calibrated in µm
    Psf(psf::PsfArgs),
    /// Simulate a widefield acquisition with known ground truth (truth.tif, blurred.tif,
    /// psf.tif) for tests, sample data and benchmarks
    Simulate(deconv::SimulateArgs),
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
    /// Denoise without training: Poisson–Gaussian noise model (estimated from the image, or
    /// given), generalised Anscombe transform and BM3D
    DenoiseClassical(denoise_classical::DenoiseClassicalArgs),
    /// Estimate the Poisson–Gaussian noise (gain, variance at zero) of a camera image
    EstimateNoise(denoise_classical::EstimateNoiseArgs),
    /// Show the version, build features and the devices found
    Info,
}

/// `--device`, the same for every compute command.
#[derive(Args, Debug, Clone, Copy)]
pub struct DeviceChoice {
    /// Where to compute: auto (the GPU when this build and the machine have one, else the
    /// CPU), cpu, cuda or cuda:N. A CUDA request that cannot be honoured is reported with the
    /// reason and runs on the CPU
    #[arg(long, value_name = "DEVICE", default_value = "auto")]
    pub device: DeviceRequest,
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
    check_paths(&cli.command)?;
    match cli.command {
        Command::Deconvolve(a) => deconv::deconvolve(&a),
        Command::Psf(a) => psf::psf(&a),
        Command::Simulate(a) => deconv::simulate(&a),
        Command::Sim(a) => sim::sim(&a),
        Command::SimulateSim(a) => sim::simulate_sim_cmd(&a),
        Command::Localize(a) => smlm::localize(&a),
        Command::Render(a) => smlm::render_cmd(&a),
        Command::SimulateSmlm(a) => smlm::simulate_smlm_cmd(&a),
        Command::Deepstorm(c) => deepstorm::deepstorm(&c),
        Command::N2v(c) => denoise::n2v(&c),
        Command::Care(c) => denoise::care(&c),
        Command::DenoiseClassical(a) => denoise_classical::denoise_classical_cmd(&a),
        Command::EstimateNoise(a) => denoise_classical::estimate_noise_cmd(&a),
        Command::Info => {
            info::info();
            Ok(())
        }
    }
}

/// The files a command reads and writes, checked by [`paths::check_outputs`] before any
/// work: no output may be an input or another output, or an existing read-only file.
fn check_paths(command: &Command) -> Result<()> {
    use std::path::{Path, PathBuf};
    let model_files = |dir: &Path| -> Vec<PathBuf> {
        ["model.json", "model.safetensors"]
            .iter()
            .map(|f| dir.join(f))
            .collect()
    };
    let (inputs, outputs): (Vec<PathBuf>, Vec<PathBuf>) = match command {
        Command::Deconvolve(a) => (
            [Some(a.input.clone()), a.psf.clone()]
                .into_iter()
                .flatten()
                .collect(),
            vec![a.output.clone()],
        ),
        Command::Sim(a) => (
            [Some(a.input.clone()), a.psf.clone()]
                .into_iter()
                .flatten()
                .collect(),
            [
                Some(a.output.clone()),
                a.widefield.clone(),
                a.wiener_widefield.clone(),
                a.params.clone(),
            ]
            .into_iter()
            .flatten()
            .collect(),
        ),
        Command::Localize(a) => (vec![a.input.clone()], vec![a.output.clone()]),
        Command::Render(a) => (vec![a.input.clone()], vec![a.output.clone()]),
        Command::Deepstorm(deepstorm::DeepStormCommand::Localize(a)) => {
            let mut inputs = vec![a.input.clone()];
            if let Some(m) = &a.model {
                inputs.extend(model_files(m));
            }
            (
                inputs,
                [Some(a.output.clone()), a.density.clone()]
                    .into_iter()
                    .flatten()
                    .collect(),
            )
        }
        Command::N2v(denoise::N2vCommand::Train(a)) => (a.inputs.clone(), model_files(&a.output)),
        Command::N2v(denoise::N2vCommand::Denoise(a)) => {
            let mut outputs = vec![a.output.clone()];
            if let Some(m) = &a.save_model {
                outputs.extend(model_files(m));
            }
            (vec![a.input.clone()], outputs)
        }
        Command::N2v(denoise::N2vCommand::Predict(a))
        | Command::Care(denoise::CareCommand::Predict(a)) => {
            let mut inputs = vec![a.input.clone()];
            inputs.extend(model_files(&a.model));
            (
                inputs,
                [Some(a.output.clone()), a.uncertainty.clone()]
                    .into_iter()
                    .flatten()
                    .collect(),
            )
        }
        Command::Care(denoise::CareCommand::Train(a)) => (
            a.low.iter().chain(&a.high).cloned().collect(),
            model_files(&a.output),
        ),
        _ => return Ok(()),
    };
    let inputs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    let outputs: Vec<&Path> = outputs.iter().map(PathBuf::as_path).collect();
    paths::check_outputs(&inputs, &outputs)
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
