//! Deep-STORM on the command line: `deepstorm localize` (TIFF stack → ThunderSTORM CSV and
//! the super-resolved density image) and `deepstorm train` (a model for another camera, pixel
//! size or PSF, trained on simulated frames).

use crate::smlm::CameraArgs;
use crate::terminal::{install_ctrlc, CliProgress};
use clap::{Args, Subcommand, ValueEnum};
use fluorecon::io::tiff::{read_tiff_planes, write_tiff, Hyperstack};
use fluorecon::progress::check_cancel;
use fluorecon::smlm::deepstorm::{
    train_deepstorm, DeepStormConfig, DeepStormLocalizer, DeepStormModel, DeepStormOptions,
    TrainingSettings,
};
use fluorecon::smlm::results::write_csv_file;
use fluorecon::smlm::synthetic::SimCamera;
use fluorecon::{invalid, Progress, Result, VoxelSize};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Subcommand, Debug)]
pub enum DeepStormCommand {
    /// Localize molecules with a Deep-STORM model (dense frames where spots overlap)
    Localize(LocalizeArgs),
    /// Train a Deep-STORM model on simulated frames for a camera, pixel size and PSF
    Train(TrainArgs),
}

#[derive(Args, Debug)]
#[command(
    after_help = "Without --model, the model shipped with Fluorecon is used (EMCCD, \
    100 nm pixels, PSF σ 120 nm; see models/deepstorm-2d-emccd-100nm/README.md).\n\n\
    Example:\n  fluorecon deepstorm localize dense.tif --offset 100 --e-per-adu 45 --em-gain 300 \
    -o dense.csv --density dense-sr.tif"
)]
pub struct LocalizeArgs {
    /// Input TIFF stack of raw camera frames (ADU)
    #[arg(value_name = "IN.tif")]
    pub input: PathBuf,
    /// Output CSV with ThunderSTORM's columns
    #[arg(short, long, value_name = "OUT.csv")]
    pub output: PathBuf,
    /// Also write the super-resolved image (sum of the frames' density maps, molecules per
    /// fine pixel), 32-bit TIFF calibrated in µm
    #[arg(long, value_name = "OUT.tif")]
    pub density: Option<PathBuf>,
    /// Model folder (model.json + model.safetensors) [default: the shipped model]
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Camera pixel size in the sample, nm [default: from the TIFF's calibration]
    #[arg(long, value_name = "NM")]
    pub pixel_size: Option<f64>,
    #[command(flatten)]
    pub camera: CameraArgs,
    /// Detection threshold, fraction of one isolated molecule's peak in the blurred density
    /// [default: the model's, chosen in training]
    #[arg(long, value_name = "F")]
    pub threshold: Option<f64>,
    /// Frames per pass through the network
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub batch: usize,
    #[command(flatten)]
    pub compute: crate::DeviceChoice,
}

/// Simulated camera of a training run.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrainCamera {
    Emccd,
    Scmos,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Trains on simulated frames (no data needed): give the camera, pixel \
    size and PSF of the data to analyse. The detection threshold is then chosen on simulated \
    filament stacks. A CPU trains the default (small) network in about 20 minutes; the paper's \
    network is --upsampling 8 --filters 32,64,128 --bottleneck 512.\n\nExample:\n  \
    fluorecon deepstorm train --pixel-size 160 --psf-sigma 150 --camera scmos --e-per-adu 0.5 \
    --read-noise 1.5 -o models/my-deepstorm"
)]
pub struct TrainArgs {
    /// Model folder to write
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Model name [default: the folder's name]
    #[arg(long)]
    pub name: Option<String>,
    /// Camera pixel size in the sample, nm
    #[arg(long, value_name = "NM", default_value_t = 100.0)]
    pub pixel_size: f64,
    /// PSF standard deviation, nm
    #[arg(long, value_name = "NM", default_value_t = 120.0)]
    pub psf_sigma: f64,
    /// Camera type
    #[arg(long, value_enum, default_value_t = TrainCamera::Emccd)]
    pub camera: TrainCamera,
    /// Camera offset (baseline), ADU
    #[arg(long, value_name = "ADU", default_value_t = 100.0)]
    pub offset: f64,
    /// Photoelectrons per ADU
    #[arg(long, value_name = "E", default_value_t = 45.0)]
    pub e_per_adu: f64,
    /// EM gain (EMCCD)
    #[arg(long, value_name = "GAIN", default_value_t = 300.0)]
    pub em_gain: f64,
    /// Read noise, e⁻ rms
    #[arg(long, value_name = "E", default_value_t = 74.4)]
    pub read_noise: f64,
    /// Quantum efficiency
    #[arg(long, value_name = "QE", default_value_t = 0.9)]
    pub qe: f64,
    /// Photons per molecule per frame, range (log-uniform)
    #[arg(long, value_name = "MIN,MAX", value_delimiter = ',', num_args = 2, default_values_t = [600.0, 6000.0])]
    pub photons: Vec<f64>,
    /// Background photons per pixel per frame, range
    #[arg(long, value_name = "MIN,MAX", value_delimiter = ',', num_args = 2, default_values_t = [5.0, 50.0])]
    pub background: Vec<f64>,
    /// Molecules per µm², range
    #[arg(long = "molecule-density", value_name = "MIN,MAX", value_delimiter = ',', num_args = 2, default_values_t = [0.0, 4.0])]
    pub molecule_density: Vec<f64>,
    /// Fine-grid pixels per camera pixel
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub upsampling: usize,
    /// Filters of the three encoder levels
    #[arg(long, value_name = "A,B,C", value_delimiter = ',', num_args = 3, default_values_t = [16, 32, 64])]
    pub filters: Vec<usize>,
    /// Filters of the middle block
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub bottleneck: usize,
    /// Training epochs
    #[arg(long, value_name = "N", default_value_t = 40)]
    pub epochs: usize,
    /// Steps per epoch
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub steps: usize,
    /// Patches per step
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub batch: usize,
    /// Patch side, camera pixels
    #[arg(long, value_name = "PX", default_value_t = 16)]
    pub patch: usize,
    /// Adam learning rate
    #[arg(long, value_name = "LR", default_value_t = 1e-3)]
    pub learning_rate: f64,
    /// Weight of the L1 sparsity term
    #[arg(long, value_name = "L", default_value_t = 1.0)]
    pub l1: f64,
    /// Random seed
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    #[command(flatten)]
    pub compute: crate::DeviceChoice,
}

pub fn deepstorm(cmd: &DeepStormCommand) -> Result<()> {
    match cmd {
        DeepStormCommand::Localize(a) => localize(a),
        DeepStormCommand::Train(a) => train(a),
    }
}

fn load(model: &Option<PathBuf>) -> Result<DeepStormModel> {
    match model {
        Some(dir) => DeepStormModel::load(dir),
        None => DeepStormModel::bundled(),
    }
}

fn localize(a: &LocalizeArgs) -> Result<()> {
    let start = Instant::now();
    let model = std::sync::Arc::new(load(&a.model)?);
    let camera = a.camera.camera();
    camera.validate()?;
    let mut bar = CliProgress::new(install_ctrlc());
    bar.restart(&format!("Deep-STORM {}", a.input.display()));
    // The pixel size: given, or from the TIFF's calibration (a first pass over the file reads
    // it: decoding is cheap next to the network).
    let pixel_nm = match a.pixel_size {
        Some(p) => p,
        None => {
            let header = read_tiff_planes(&a.input, &mut |_, _, _| Ok(()))?;
            if !header.is_calibrated_in_microns() {
                return invalid!(
                    "{} has no pixel size in µm; give the camera pixel size with --pixel-size",
                    a.input.display()
                );
            }
            header.voxel.x * 1000.0
        }
    };
    let opts = DeepStormOptions {
        camera,
        pixel_nm,
        threshold: a.threshold,
        batch: a.batch,
        device: a.compute.device,
    };
    let mut runner: Option<DeepStormLocalizer> = None;
    let mut buf: Vec<f32> = Vec::new();
    let mut planes = 0usize;
    let info = read_tiff_planes(&a.input, &mut |plane, w, h| {
        if runner.is_none() {
            let mut r = DeepStormLocalizer::new(model.clone(), w, h, &opts)?;
            let on = r.choose_device(&mut bar);
            bar.log(&format!("Deep-STORM model '{}' on {on}", model.info.name));
            for warning in r.warnings() {
                bar.log(&format!("warning: {warning}"));
            }
            runner = Some(r);
        }
        buf.extend_from_slice(plane);
        planes += 1;
        if planes % (4 * a.batch.max(1)) == 0 {
            check_cancel(&mut bar)?;
            runner.as_mut().expect("created").push(&buf, &mut bar)?;
            buf.clear();
            bar.status(&format!("{planes} frames"));
        }
        Ok(())
    })?;
    if info.channels > 1 {
        return invalid!(
            "{} has {} channels; localize one channel at a time",
            a.input.display(),
            info.channels
        );
    }
    let Some(mut runner) = runner else {
        return invalid!("{}: the stack is empty", a.input.display());
    };
    runner.push(&buf, &mut bar)?;
    let result = runner.finish();
    bar.finish();
    write_csv_file(&a.output, &result.localizations)?;
    if let Some(path) = &a.density {
        let um = result.density_pixel_nm / 1000.0;
        let mut img = Hyperstack::zeros(
            result.density_width,
            result.density_height,
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
        img.data = result.density;
        write_tiff(path, &img)?;
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "fluorecon: Deep-STORM found {} molecules in {planes} frames, {secs:.1} s ({:.1} frames/s) → {}",
        result.localizations.len(),
        planes as f64 / secs.max(1e-9),
        a.output.display()
    );
    Ok(())
}

fn train(a: &TrainArgs) -> Result<()> {
    let start = Instant::now();
    let camera = match a.camera {
        TrainCamera::Emccd => SimCamera::Emccd {
            quantum_efficiency: a.qe,
            em_gain: a.em_gain,
            read_noise_e: a.read_noise,
            baseline_adu: a.offset,
            electrons_per_adu: a.e_per_adu,
        },
        TrainCamera::Scmos => SimCamera::Scmos {
            quantum_efficiency: a.qe,
            read_noise_e: a.read_noise,
            baseline_adu: a.offset,
            electrons_per_adu: a.e_per_adu,
        },
    };
    let config = DeepStormConfig {
        upsampling: a.upsampling,
        filters: [a.filters[0], a.filters[1], a.filters[2]],
        bottleneck: a.bottleneck,
        kernel_size: 3,
    };
    let defaults = TrainingSettings::default();
    let settings = TrainingSettings {
        pixel_nm: a.pixel_size,
        psf_sigma_nm: a.psf_sigma,
        camera,
        photons: [a.photons[0], a.photons[1]],
        background: [a.background[0], a.background[1]],
        density: [a.molecule_density[0], a.molecule_density[1]],
        patch_px: a.patch,
        batch_size: a.batch,
        l1_weight: a.l1,
        schedule: fluorecon::nn::TrainOptions {
            epochs: a.epochs,
            steps_per_epoch: a.steps,
            learning_rate: a.learning_rate,
            seed: a.seed,
            device: a.compute.device,
            ..defaults.schedule.clone()
        },
        ..defaults
    };
    let name = a.name.clone().unwrap_or_else(|| {
        a.output
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "deepstorm".into())
    });
    let mut bar = CliProgress::new(install_ctrlc());
    bar.restart("training Deep-STORM");
    let model = train_deepstorm(&name, &config, &settings, &mut bar)?;
    check_cancel(&mut bar)?;
    model.save(&a.output)?;
    bar.finish();
    let h = &model.info.history;
    eprintln!(
        "fluorecon: trained Deep-STORM ({} epochs, best validation loss {:.4} at epoch {}; {}) \
         in {:.0} s → {}",
        h.history.len(),
        h.best_validation_loss,
        h.best_epoch,
        model.info.data,
        start.elapsed().as_secs_f64(),
        a.output.display()
    );
    Ok(())
}
