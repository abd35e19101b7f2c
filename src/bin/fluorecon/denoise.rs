//! `fluorecon n2v train|predict|denoise` and `fluorecon care train|predict`: denoising
//! models trained and applied from the command line. Every channel and time point of a
//! hyperstack is one training image (or is restored on its own); models are folders with
//! `model.safetensors` + `model.json`, written only when training completes.

use crate::terminal::{install_ctrlc, CliProgress};
use clap::{Args, Subcommand};
use fluorecon::denoise::care::{train_care, CareOptions};
use fluorecon::denoise::n2v::{denoise_n2v_each, train_n2v, N2vOptions};
use fluorecon::denoise::{check_uncertainty, finish_training, restore, RestoreOptions};
use fluorecon::io::tiff::{read_tiff, write_tiff_with_progress, Hyperstack};
use fluorecon::nn::tiling::TileOptions;
use fluorecon::nn::{load_model, Model, Normalization, TrainOptions};
use fluorecon::progress::check_cancel;
use fluorecon::{invalid, Result, Volume};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Subcommand, Debug)]
pub enum N2vCommand {
    /// Train a Noise2Void model on noisy images (no clean images needed) and save it as a
    /// model folder
    Train(N2vTrainArgs),
    /// Denoise with a saved model (Noise2Void or CARE)
    Predict(PredictArgs),
    /// Train on the image itself, then denoise it (one step)
    Denoise(N2vDenoiseArgs),
}

#[derive(Subcommand, Debug)]
pub enum CareCommand {
    /// Train a CARE model on pairs of low- and high-quality images of the same fields
    Train(CareTrainArgs),
    /// Restore with a saved model (CARE or Noise2Void)
    Predict(PredictArgs),
}

/// Network and schedule options shared by N2V and CARE training.
#[derive(Args, Debug)]
pub struct NetArgs {
    /// U-Net depth (number of poolings)
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub depth: usize,
    /// Filters of the first level (doubling per level) [default: 16; N2V and CARE use 32,
    /// slower on a CPU]
    #[arg(long, value_name = "N")]
    pub filters: Option<usize>,
    /// Convolution kernel side [default: 3 for N2V, 5 for CARE]
    #[arg(long, value_name = "N")]
    pub kernel: Option<usize>,
    /// 3D network on z-stacks (default: 2D, plane by plane)
    #[arg(long = "3d")]
    pub three_d: bool,
    /// Training epochs
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub epochs: usize,
    /// Training steps per epoch
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub steps: usize,
    /// Patches per step
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub batch: usize,
    /// Lateral patch side in pixels (multiple of 2^depth)
    #[arg(long, value_name = "PX", default_value_t = 64)]
    pub patch: usize,
    /// Patch depth in planes (3D networks)
    #[arg(long, value_name = "PLANES", default_value_t = 16)]
    pub patch_z: usize,
    /// Adam learning rate
    #[arg(long, value_name = "LR", default_value_t = 4e-4)]
    pub learning_rate: f64,
    /// Fraction of the patches held out for validation
    #[arg(long, value_name = "F", default_value_t = 0.1)]
    pub validation: f64,
    /// Random seed (same seed, same data: same model)
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Model name stored in model.json [default: the output folder's name]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    #[command(flatten)]
    pub compute: crate::DeviceChoice,
}

impl NetArgs {
    fn train_options(&self) -> TrainOptions {
        TrainOptions {
            epochs: self.epochs,
            steps_per_epoch: self.steps,
            learning_rate: self.learning_rate,
            seed: self.seed,
            device: self.compute.device,
            ..Default::default()
        }
    }
}

/// N2V masking options.
#[derive(Args, Debug)]
pub struct MaskArgs {
    /// Percentage of pixels masked per patch
    #[arg(long, value_name = "PERCENT", default_value_t = 0.2)]
    pub masked: f64,
    /// Radius of the neighbourhood that replaces a masked pixel, pixels
    #[arg(long, value_name = "PX", default_value_t = 5)]
    pub radius: usize,
    /// N2V2: blur pooling, no top skip connection, median replacement (fewer
    /// checkerboard artefacts)
    #[arg(long)]
    pub n2v2: bool,
}

#[derive(Args, Debug)]
#[command(after_help = "Example:\n  fluorecon n2v train noisy1.tif noisy2.tif -o models/my-n2v")]
pub struct N2vTrainArgs {
    /// Noisy training images (TIFF stacks or hyperstacks; every channel and frame is used)
    #[arg(value_name = "IN.tif", required = true)]
    pub inputs: Vec<PathBuf>,
    /// Model folder to write (model.safetensors + model.json)
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    #[command(flatten)]
    pub net: NetArgs,
    #[command(flatten)]
    pub mask: MaskArgs,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Example:\n  fluorecon n2v denoise noisy.tif -o denoised.tif --save-model models/n2v"
)]
pub struct N2vDenoiseArgs {
    /// Noisy image (TIFF stack or hyperstack)
    #[arg(value_name = "IN.tif")]
    pub input: PathBuf,
    /// Denoised image (32-bit TIFF, same dimensions and calibration)
    #[arg(short, long, value_name = "OUT.tif")]
    pub output: PathBuf,
    /// Also save the trained model in this folder
    #[arg(long, value_name = "DIR")]
    pub save_model: Option<PathBuf>,
    #[command(flatten)]
    pub net: NetArgs,
    #[command(flatten)]
    pub mask: MaskArgs,
    #[command(flatten)]
    pub tiles: TileArgs,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Example:\n  fluorecon care train --low low1.tif --high high1.tif \
    --low low2.tif --high high2.tif -o models/my-care"
)]
pub struct CareTrainArgs {
    /// Low-quality (noisy) training image; repeat, paired in order with --high
    #[arg(long, value_name = "LOW.tif", required = true)]
    pub low: Vec<PathBuf>,
    /// High-quality image of the same field as the --low at the same position
    #[arg(long, value_name = "HIGH.tif", required = true)]
    pub high: Vec<PathBuf>,
    /// Model folder to write
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Predict a per-pixel uncertainty too (Laplace mean and scale)
    #[arg(long)]
    pub probabilistic: bool,
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Args, Debug)]
pub struct TileArgs {
    /// Tile side in pixels [default: chosen from --memory]
    #[arg(long, value_name = "PX")]
    pub tile: Option<usize>,
    /// Memory for one tile, MiB
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    pub memory: usize,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Example:\n  fluorecon care predict low.tif --model models/my-care -o restored.tif \
    --uncertainty sigma.tif"
)]
pub struct PredictArgs {
    /// Image to restore (TIFF stack or hyperstack; every channel and frame is restored)
    #[arg(value_name = "IN.tif")]
    pub input: PathBuf,
    /// Model folder (model.json + model.safetensors)
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// Restored image (32-bit TIFF, same dimensions and calibration)
    #[arg(short, long, value_name = "OUT.tif")]
    pub output: PathBuf,
    /// Probabilistic CARE models: write the per-pixel standard deviation here
    #[arg(long, value_name = "SIGMA.tif")]
    pub uncertainty: Option<PathBuf>,
    /// Normalise by these percentiles of each image instead of the model's normalisation
    #[arg(long, value_name = "LOW,HIGH", value_parser = parse_percentiles)]
    pub percentiles: Option<(f64, f64)>,
    #[command(flatten)]
    pub tiles: TileArgs,
    #[command(flatten)]
    pub compute: crate::DeviceChoice,
}

fn parse_percentiles(s: &str) -> std::result::Result<(f64, f64), String> {
    let v: Vec<f64> = s
        .split(',')
        .map(|p| p.trim().parse::<f64>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| format!("'{s}' is not two percentiles such as 2,99.8"))?;
    match v[..] {
        [a, b] => Ok((a, b)),
        _ => Err(format!("'{s}' is not two percentiles such as 2,99.8")),
    }
}

pub fn n2v(cmd: &N2vCommand) -> Result<()> {
    match cmd {
        N2vCommand::Train(a) => n2v_train(a),
        N2vCommand::Predict(a) => predict(a),
        N2vCommand::Denoise(a) => n2v_denoise(a),
    }
}

pub fn care(cmd: &CareCommand) -> Result<()> {
    match cmd {
        CareCommand::Train(a) => care_train(a),
        CareCommand::Predict(a) => predict(a),
    }
}

/// Every (channel, frame) volume of a TIFF.
fn volumes(path: &Path) -> Result<(Hyperstack, Vec<Volume>)> {
    let h = read_tiff(path)?;
    let mut v = Vec::new();
    for t in 0..h.frames {
        for c in 0..h.channels {
            v.push(h.volume(c, t));
        }
    }
    Ok((h, v))
}

fn n2v_options(net: &NetArgs, mask: &MaskArgs, output: &Path) -> N2vOptions {
    let mut o = N2vOptions::default();
    o.unet.depth = net.depth;
    o.unet.base_filters = net.filters.unwrap_or(16);
    o.unet.kernel_size = net.kernel.unwrap_or(3);
    o.unet.dims = if net.three_d { 3 } else { 2 };
    o.train = net.train_options();
    o.masking.masked_percent = mask.masked;
    o.masking.radius = mask.radius;
    o.patch = net.patch;
    o.patch_z = net.patch_z;
    o.batch = net.batch;
    o.validation_fraction = net.validation;
    o.name = model_name(net, output);
    if mask.n2v2 {
        o = o.n2v2();
    }
    o
}

fn model_name(net: &NetArgs, output: &Path) -> String {
    net.name.clone().unwrap_or_else(|| {
        output
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("model")
            .to_string()
    })
}

fn n2v_train(a: &N2vTrainArgs) -> Result<()> {
    let start = Instant::now();
    let mut images = Vec::new();
    for p in &a.inputs {
        images.extend(volumes(p)?.1);
    }
    let opts = n2v_options(&a.net, &a.mask, &a.output);
    let mut bar = CliProgress::new(install_ctrlc());
    let refs: Vec<&Volume> = images.iter().collect();
    // The training loop logs every epoch's losses through the progress bar.
    let model = train_n2v(&refs, &opts, &mut bar)?;
    save_trained(&model, &a.output, &mut bar, start)
}

/// Saves a trained model (nothing when the user cancelled) and says so.
fn save_trained(model: &Model, dir: &Path, bar: &mut CliProgress, start: Instant) -> Result<()> {
    finish_training(model, Some(dir), bar)?;
    bar.finish();
    let h = &model.info.history;
    eprintln!(
        "fluorecon: trained {} ({} epochs, best validation loss {:.5} at epoch {}) in {:.1} s → {}",
        model.info.method,
        h.history.len(),
        h.best_validation_loss,
        h.best_epoch,
        start.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(())
}

fn care_train(a: &CareTrainArgs) -> Result<()> {
    let start = Instant::now();
    if a.low.len() != a.high.len() {
        return invalid!(
            "{} --low but {} --high images: give them in pairs (--low A.tif --high A-clean.tif …)",
            a.low.len(),
            a.high.len()
        );
    }
    let mut lows = Vec::new();
    let mut highs = Vec::new();
    for (l, h) in a.low.iter().zip(&a.high) {
        let (_, lv) = volumes(l)?;
        let (_, hv) = volumes(h)?;
        if lv.len() != hv.len() {
            return invalid!(
                "{} has {} channel/frame volumes but {} has {}",
                l.display(),
                lv.len(),
                h.display(),
                hv.len()
            );
        }
        lows.extend(lv);
        highs.extend(hv);
    }
    let mut opts = CareOptions::default();
    opts.unet.depth = a.net.depth;
    opts.unet.base_filters = a.net.filters.unwrap_or(16);
    opts.unet.kernel_size = a.net.kernel.unwrap_or(5);
    opts.unet.dims = if a.net.three_d { 3 } else { 2 };
    opts.train = a.net.train_options();
    opts.probabilistic = a.probabilistic;
    opts.patch = a.net.patch;
    opts.patch_z = a.net.patch_z;
    opts.batch = a.net.batch;
    opts.validation_fraction = a.net.validation;
    opts.name = model_name(&a.net, &a.output);
    let pairs: Vec<(&Volume, &Volume)> = lows.iter().zip(highs.iter()).collect();
    let mut bar = CliProgress::new(install_ctrlc());
    let model = train_care(&pairs, &opts, &mut bar)?;
    save_trained(&model, &a.output, &mut bar, start)
}

fn tile_options(t: &TileArgs) -> TileOptions {
    TileOptions {
        tile: t.tile,
        memory_mib: t.memory,
        ..Default::default()
    }
}

/// A hyperstack of zeros with `h`'s dimensions and calibration.
fn empty_like(h: &Hyperstack) -> Hyperstack {
    let mut o = Hyperstack::zeros(
        h.width, h.height, h.channels, h.slices, h.frames, h.voxel, &h.unit,
    );
    o.frame_interval = h.frame_interval;
    o
}

/// Restores every (channel, frame) volume of `input` with `model`, then writes the result
/// (and the uncertainty) with the input's dimensions and calibration.
fn restore_file(
    model: &Model,
    input: &Path,
    output: &Path,
    uncertainty: Option<&Path>,
    options: &RestoreOptions,
    bar: &mut CliProgress,
) -> Result<()> {
    let start = Instant::now();
    let h = read_tiff(input)?;
    if uncertainty.is_some() {
        check_uncertainty(model)?;
    }
    let (mut out, mut sigma) = (empty_like(&h), empty_like(&h));
    let parts = h.channels * h.frames;
    let mut device = String::new();
    for t in 0..h.frames {
        for c in 0..h.channels {
            check_cancel(bar)?;
            let v = h.volume(c, t);
            let mut part = fluorecon::progress::SubProgress::new(bar, t * h.channels + c, parts);
            let r = restore(model, &v, options, &mut part)?;
            out.set_volume(c, t, &r.image)?;
            if let Some(s) = &r.uncertainty {
                sigma.set_volume(c, t, s)?;
            }
            device = r.device;
        }
    }
    let uncertainty = uncertainty.map(|path| (path, &sigma));
    write_restored(&out, output, uncertainty, model, &device, start, bar)
}

/// Writes a restored hyperstack (and the uncertainty) and says what was done.
fn write_restored(
    out: &Hyperstack,
    output: &Path,
    uncertainty: Option<(&Path, &Hyperstack)>,
    model: &Model,
    device: &str,
    start: Instant,
    bar: &mut CliProgress,
) -> Result<()> {
    check_cancel(bar)?;
    bar.restart(&format!("writing {}", output.display()));
    write_tiff_with_progress(output, out, bar)?;
    if let Some((path, sigma)) = uncertainty {
        write_tiff_with_progress(path, sigma, bar)?;
    }
    bar.finish();
    eprintln!(
        "fluorecon: restored {} stack(s) of {}×{}×{} (x×y×z) with '{}' ({}) on {device} in \
         {:.1} s → {}",
        out.channels * out.frames,
        out.width,
        out.height,
        out.slices,
        model.info.name,
        model.info.method,
        start.elapsed().as_secs_f64(),
        output.display()
    );
    Ok(())
}

fn predict(a: &PredictArgs) -> Result<()> {
    let model = load_model(&a.model)?;
    let options = RestoreOptions {
        tiles: tile_options(&a.tiles),
        normalization: a
            .percentiles
            .map(|(low, high)| Normalization::Percentile { low, high }),
        device: a.compute.device,
    };
    let mut bar = CliProgress::new(install_ctrlc());
    restore_file(
        &model,
        &a.input,
        &a.output,
        a.uncertainty.as_deref(),
        &options,
        &mut bar,
    )
}

fn n2v_denoise(a: &N2vDenoiseArgs) -> Result<()> {
    let start = Instant::now();
    let (h, images) = volumes(&a.input)?;
    // The result's dimensions and calibration; the pixels are in `images`.
    let mut out = empty_like(&h);
    drop(h);
    let opts = n2v_options(&a.net, &a.mask, a.save_model.as_deref().unwrap_or(&a.input));
    let options = RestoreOptions {
        tiles: tile_options(&a.tiles),
        normalization: None,
        device: a.net.compute.device,
    };
    let mut bar = CliProgress::new(install_ctrlc());
    let refs: Vec<&Volume> = images.iter().collect();
    let (restored, model) =
        denoise_n2v_each(&refs, &opts, &options, a.save_model.as_deref(), &mut bar)?;
    for (k, r) in restored.iter().enumerate() {
        out.set_volume(k % out.channels, k / out.channels, &r.image)?;
    }
    let device = restored.last().map_or("", |r| r.device.as_str());
    write_restored(&out, &a.output, None, &model, device, start, &mut bar)?;
    eprintln!(
        "fluorecon: Noise2Void training and denoising took {:.1} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
