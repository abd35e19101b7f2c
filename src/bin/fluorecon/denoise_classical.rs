//! `fluorecon denoise-classical` and `fluorecon estimate-noise`: Poisson–Gaussian noise
//! model (from the image, from a dark/flat pair, or given) and GAT + BM3D denoising of every
//! channel and time point of a TIFF. The noise model of each (channel, frame) volume is
//! estimated on its own and printed.

use crate::terminal::{install_ctrlc, CliProgress};
use clap::Args;
use fluorecon::denoise::classical::{denoise_classical, ClassicalOptions};
use fluorecon::denoise::noise_model::{
    estimate_noise, from_dark_flat, NoiseEstimateOptions, NoiseModel,
};
use fluorecon::io::tiff::{read_tiff, write_tiff_with_progress, Hyperstack};
use fluorecon::progress::{check_cancel, Progress, SubProgress};
use fluorecon::{invalid, Result, Volume};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Where the noise model comes from.
#[derive(Args, Debug)]
pub struct NoiseArgs {
    /// Camera gain, ADU per photon (with --offset and --read-noise: no estimation)
    #[arg(long, value_name = "ADU", requires_all = ["offset", "read_noise"])]
    pub gain: Option<f64>,
    /// Camera offset (baseline), ADU
    #[arg(long, value_name = "ADU", requires = "gain")]
    pub offset: Option<f64>,
    /// Read noise (standard deviation), ADU
    #[arg(long, value_name = "ADU", requires = "gain")]
    pub read_noise: Option<f64>,
    /// A dark frame (no light) of the same camera settings: offset and read noise
    #[arg(
        long,
        value_name = "DARK.tif",
        requires = "flat",
        conflicts_with = "gain"
    )]
    pub dark: Option<PathBuf>,
    /// An evenly lit frame of the same camera settings: the gain
    #[arg(long, value_name = "FLAT.tif", requires = "dark")]
    pub flat: Option<PathBuf>,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  fluorecon denoise-classical noisy.tif -o denoised.tif\n  \
    fluorecon denoise-classical noisy.tif -o denoised.tif --gain 2.1 --offset 100 --read-noise 1.6\n  \
    fluorecon denoise-classical noisy.tif -o denoised.tif --dark dark.tif --flat flat.tif"
)]
pub struct DenoiseClassicalArgs {
    /// Noisy image (TIFF stack or hyperstack; every channel and frame is denoised, a stack
    /// plane by plane)
    #[arg(value_name = "IN.tif")]
    pub input: PathBuf,
    /// Denoised image (32-bit TIFF, same dimensions and calibration)
    #[arg(short, long, value_name = "OUT.tif")]
    pub output: PathBuf,
    #[command(flatten)]
    pub noise: NoiseArgs,
}

#[derive(Args, Debug)]
#[command(after_help = "Example:\n  fluorecon estimate-noise raw.tif")]
pub struct EstimateNoiseArgs {
    /// Camera image (TIFF stack or hyperstack; one model per channel and frame)
    #[arg(value_name = "IN.tif")]
    pub input: PathBuf,
}

/// The given model (gain, offset, read noise; or dark/flat frames), or `None` to estimate.
fn given_model(a: &NoiseArgs, bar: &mut CliProgress) -> Result<Option<NoiseModel>> {
    if let (Some(g), Some(o), Some(r)) = (a.gain, a.offset, a.read_noise) {
        return NoiseModel::from_camera(g, o, r).map(Some);
    }
    if let (Some(d), Some(f)) = (&a.dark, &a.flat) {
        let (dark, flat) = (single_volume(d)?, single_volume(f)?);
        let (m, offset, read) = from_dark_flat(&dark, &flat)?;
        bar.log(&format!(
            "fluorecon: dark/flat frames: offset {offset:.2} ADU, read noise {read:.3} ADU, gain \
             {:.4} ADU/photon",
            m.gain
        ));
        return Ok(Some(m));
    }
    Ok(None)
}

/// The first (channel, frame) volume of a TIFF with one.
fn single_volume(path: &Path) -> Result<Volume> {
    let h = read_tiff(path)?;
    if h.channels * h.frames != 1 {
        return invalid!(
            "{} has {} channels and {} frames; a dark or flat frame is one image or stack",
            path.display(),
            h.channels,
            h.frames
        );
    }
    Ok(h.volume(0, 0))
}

pub fn denoise_classical_cmd(a: &DenoiseClassicalArgs) -> Result<()> {
    let start = Instant::now();
    let mut bar = CliProgress::new(install_ctrlc());
    let noise = given_model(&a.noise, &mut bar)?;
    let h = read_tiff(&a.input)?;
    let mut out = Hyperstack::zeros(
        h.width, h.height, h.channels, h.slices, h.frames, h.voxel, &h.unit,
    );
    out.frame_interval = h.frame_interval;
    let parts = h.channels * h.frames;
    let options = ClassicalOptions {
        noise,
        ..Default::default()
    };
    for t in 0..h.frames {
        for c in 0..h.channels {
            check_cancel(&mut bar)?;
            if parts > 1 {
                bar.set_prefix(format!(
                    "c {}/{}, t {}/{}: ",
                    c + 1,
                    h.channels,
                    t + 1,
                    h.frames
                ));
            }
            let v = h.volume(c, t);
            let mut part = SubProgress::new(&mut bar, t * h.channels + c, parts);
            let d = denoise_classical(&v, &options, &mut part)?;
            if parts > 1 {
                eprintln!(
                    "fluorecon: channel {}, frame {}: {}",
                    c + 1,
                    t + 1,
                    d.noise.describe()
                );
            }
            out.set_volume(c, t, &d.image)?;
        }
    }
    check_cancel(&mut bar)?;
    bar.restart(&format!("writing {}", a.output.display()));
    write_tiff_with_progress(&a.output, &out, &mut bar)?;
    bar.finish();
    eprintln!(
        "fluorecon: denoised {parts} stack(s) of {}×{}×{} (x×y×z) with GAT + BM3D in {:.1} s → {}",
        h.width,
        h.height,
        h.slices,
        start.elapsed().as_secs_f64(),
        a.output.display()
    );
    Ok(())
}

pub fn estimate_noise_cmd(a: &EstimateNoiseArgs) -> Result<()> {
    let h = read_tiff(&a.input)?;
    for t in 0..h.frames {
        for c in 0..h.channels {
            let e = estimate_noise(&h.volume(c, t), &NoiseEstimateOptions::default())?;
            println!(
                "channel {} frame {}: gain {:.6} ADU/photon, variance at zero {:.6} ADU² ({} \
                 smooth blocks, {} levels{})",
                c + 1,
                t + 1,
                e.model.gain,
                e.model.variance_at_zero,
                e.blocks,
                e.levels.len(),
                if e.clipped {
                    ", clipped values left out"
                } else {
                    ""
                }
            );
            eprintln!("fluorecon: {}", e.model.describe());
        }
    }
    Ok(())
}
