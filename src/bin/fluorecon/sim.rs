//! `fluorecon sim` (2D SIM reconstruction) and `fluorecon simulate-sim` (raw SIM data with
//! known truth).

use crate::terminal::{install_ctrlc, CliProgress};
use clap::{Args, ValueEnum};
use fluorecon::io::tiff::{read_tiff, write_tiff, Hyperstack};
use fluorecon::progress::check_cancel;
use fluorecon::sim::{
    reconstruct, simulate_sim, AngleParams, FrameOrder, Otf, SimAcquisition, SimOptics, SimOptions,
};
use fluorecon::{invalid, synthetic, Error, Result, Volume, VoxelSize};
use ndarray::{Array3, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Args, Debug)]
#[command(
    after_help = "The raw frames are the planes of the TIFF (or of each channel of a \
    hyperstack). Within one plane and time point the order is --order (PAZ: phase fastest, \
    then angle, then z); time points are the slowest index. A hyperstack whose z holds \
    angles × phases × planes frames and whose t holds time points is read that way.\n\n\
    Example:\n  fluorecon sim raw.tif --na 1.2 --wavelength 525 -o sim.tif --widefield wf.tif \
    --params params.csv"
)]
pub struct SimArgs {
    /// Raw SIM frames: TIFF stack or ImageJ hyperstack, 8-, 16- or 32-bit
    #[arg(value_name = "RAW.tif")]
    pub input: PathBuf,

    /// Output: the SIM reconstruction, 32-bit, 2× the pixels along x and y, calibration halved
    #[arg(short, long, value_name = "SIM.tif")]
    pub output: PathBuf,

    /// Numerical aperture of the objective
    #[arg(long, value_name = "NA")]
    pub na: f64,

    /// Emission wavelength, nm
    #[arg(long, value_name = "NM")]
    pub wavelength: f64,

    /// Camera pixel size in the sample, nm [default: from the input's calibration]
    #[arg(long, value_name = "NM")]
    pub pixel_size: Option<f64>,

    /// Pattern directions
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub angles: usize,

    /// Phases per direction (≥ 3, equidistant)
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub phases: usize,

    /// Frame order: PAZ (phase fastest, then angle, then z; fairSIM), PZA (OMX) or ZAP (Zeiss)
    #[arg(long, value_enum, value_name = "ORDER", default_value_t = OrderArg::Paz)]
    pub order: OrderArg,

    /// Time points in the stack [default: the hyperstack's t when its z holds the SIM frames,
    /// otherwise 1]
    #[arg(long, value_name = "N")]
    pub time_points: Option<usize>,

    /// Estimate the pattern on every plane instead of once on the middle plane
    #[arg(long)]
    pub per_plane: bool,

    /// Wiener parameter w (larger: less noise, less resolution); 0 = automatic, from the noise
    /// of the raw data
    #[arg(long, value_name = "W", default_value_t = 0.0)]
    pub wiener: f64,

    /// Apodisation cutoff, multiple of the widefield cutoff; 0 = at the SIM support (cutoff +
    /// |k0|)
    #[arg(long, value_name = "F", default_value_t = 0.0)]
    pub apodization_cutoff: f64,

    /// Apodisation bend (exponent; smaller keeps more high frequencies)
    #[arg(long, value_name = "B", default_value_t = 0.9)]
    pub apodization_bend: f64,

    /// Attenuation a of the model OTF (1 = ideal)
    #[arg(long, value_name = "A", default_value_t = 0.3)]
    pub otf_attenuation: f64,

    /// Zero-order attenuation against out-of-focus light: strength in [0, 1) (0 = off)
    #[arg(long, value_name = "S", default_value_t = 0.95)]
    pub zero_order: f64,

    /// Measured PSF (a bead, same pixel size) whose OTF replaces the model OTF
    #[arg(long, value_name = "PSF.tif")]
    pub psf: Option<PathBuf>,

    /// Camera background subtracted from every pixel, in the image's units (counts)
    #[arg(long, value_name = "COUNTS", default_value_t = 0.0)]
    pub background: f32,

    /// Cosine edge taper width, raw pixels (0 = none)
    #[arg(long, value_name = "PX", default_value_t = 12)]
    pub taper: usize,

    /// Reconstruct even when the pattern estimate of a direction failed (no stripes, an
    /// implausible k0, or a k0 that disagrees with the other directions) or pixels are
    /// saturated; without it such a stack is an error
    #[arg(long)]
    pub allow_failed_estimate: bool,

    /// Also write the widefield image (mean of the frames, on the SIM grid)
    #[arg(long, value_name = "WF.tif")]
    pub widefield: Option<PathBuf>,

    /// Also write the Wiener-filtered widefield image (on the SIM grid)
    #[arg(long, value_name = "WWF.tif")]
    pub wiener_widefield: Option<PathBuf>,

    /// Also write the pattern parameters per channel, plane and angle as CSV
    #[arg(long, value_name = "PARAMS.csv")]
    pub params: Option<PathBuf>,

    #[command(flatten)]
    pub compute: crate::DeviceChoice,
}

/// Frame orders on the command line.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderArg {
    #[value(name = "PAZ", alias = "paz")]
    Paz,
    #[value(name = "PZA", alias = "pza")]
    Pza,
    #[value(name = "ZAP", alias = "zap")]
    Zap,
}

impl From<OrderArg> for FrameOrder {
    fn from(o: OrderArg) -> FrameOrder {
        match o {
            OrderArg::Paz => FrameOrder::Paz,
            OrderArg::Pza => FrameOrder::Pza,
            OrderArg::Zap => FrameOrder::Zap,
        }
    }
}

/// `fluorecon sim`.
pub fn sim(a: &SimArgs) -> Result<()> {
    let start = Instant::now();
    let input = read_tiff(&a.input)?;
    let pixel_size_nm = match a.pixel_size {
        Some(p) => p,
        None if input.is_calibrated_in_microns() => input.voxel.x * 1000.0,
        None => {
            return invalid!(
                "{} has no pixel size in µm (unit '{}'): give --pixel-size in nm",
                a.input.display(),
                input.unit
            )
        }
    };
    let optics = SimOptics {
        na: a.na,
        wavelength_nm: a.wavelength,
        pixel_size_nm,
    };
    let measured_otf = match &a.psf {
        Some(path) => {
            let psf = read_tiff(path)?;
            Some(Otf::from_psf(&psf.volume(0, 0), &optics)?)
        }
        None => None,
    };
    let per_plane = a.angles * a.phases;
    if input.channels > 1 && input.slices * input.frames == 1 {
        return invalid!(
            "{} has {} channels of one frame each: the raw SIM frames must be its planes (z) or \
             time points, not channels; re-order the hyperstack (channels ↔ slices)",
            a.input.display(),
            input.channels
        );
    }
    // Frames of one channel: z, then t (time slowest).
    let frames = input.slices * input.frames;
    let time_points = match a.time_points {
        Some(t) => t,
        None if input.frames > 1 && per_plane > 0 && input.slices % per_plane == 0 => input.frames,
        None => 1,
    };
    let opts = SimOptions {
        angles: a.angles,
        phases: a.phases,
        order: a.order.into(),
        time_points,
        estimate_per_plane: a.per_plane,
        wiener: a.wiener,
        apodization_cutoff: a.apodization_cutoff,
        apodization_bend: a.apodization_bend,
        otf_attenuation: a.otf_attenuation,
        zero_order_strength: a.zero_order,
        measured_otf,
        background: a.background,
        taper_px: a.taper,
        device: a.compute.device,
        allow_failed_estimate: a.allow_failed_estimate,
        ..SimOptions::default()
    };

    let cancel = install_ctrlc();
    let mut bar = CliProgress::new(cancel);
    let nc = input.channels;
    let (nx, ny) = (input.width, input.height);
    let mut outputs: Option<[Hyperstack; 3]> = None;
    let mut csv = String::from(
        "channel,plane,angle,k0_x [px],k0_y [px],k0 [1/um],angle [deg],line spacing [nm],\
         phase [rad],modulation,modulation used,peak ratio,flags\n",
    );
    let mut ran_on = String::new();
    for c in 0..nc {
        check_cancel(&mut bar)?;
        if nc > 1 {
            bar.set_prefix(format!("c {}/{nc}: ", c + 1));
        }
        let mut raw = Array3::from_shape_vec(
            (frames, ny, nx),
            fluorecon::image::work_buffer(frames * ny * nx),
        )
        .expect("sizes match");
        for t in 0..input.frames {
            for z in 0..input.slices {
                let i = input.plane_index(c, z, t) * nx * ny;
                raw.index_axis_mut(Axis(0), z + input.slices * t)
                    .as_slice_mut()
                    .expect("standard layout")
                    .copy_from_slice(&input.data[i..i + nx * ny]);
            }
        }
        let raw = Volume::new(raw, input.voxel);
        let res = reconstruct(&raw, &optics, &opts, &mut bar)?;
        let planes = res.planes;
        ran_on = res.device_text();
        // Keep a time axis: a plain stack of frames along t stays along t.
        let (slices, times) = if input.slices == 1 && time_points == 1 && input.frames > 1 {
            (1, planes)
        } else {
            (planes, time_points)
        };
        let out = outputs.get_or_insert_with(|| {
            let voxel = VoxelSize {
                z: input.voxel.z,
                ..res.sim.voxel
            };
            let make = || {
                let mut h = Hyperstack::zeros(2 * nx, 2 * ny, nc, slices, times, voxel, "micron");
                h.frame_interval = input.frame_interval;
                h
            };
            [make(), make(), make()]
        });
        let n = 4 * nx * ny;
        for (h, v) in out
            .iter_mut()
            .zip([&res.sim, &res.widefield, &res.wiener_widefield])
        {
            for (p, plane) in v.data.outer_iter().enumerate() {
                let (z, t) = (p % slices, p / slices);
                let i = h.plane_index(c, z, t) * n;
                h.data[i..i + n].copy_from_slice(plane.as_slice().expect("standard layout"));
            }
        }
        for (p, params) in res.plane_params.iter().enumerate() {
            for (k, ap) in params.iter().enumerate() {
                csv_row(&mut csv, c + 1, p + 1, k + 1, ap);
            }
        }
        bar.finish();
        eprint!("{}", table(&res.params, nc, c));
    }
    let [sim, wf, wwf] = outputs.expect("at least one channel");
    write_tiff(&a.output, &sim)?;
    for (path, h) in [(&a.widefield, &wf), (&a.wiener_widefield, &wwf)] {
        if let Some(p) = path {
            write_tiff(p, h)?;
        }
    }
    if let Some(p) = &a.params {
        write_text(p, &csv)?;
    }
    eprintln!(
        "fluorecon: SIM reconstruction of {} ({frames} frames × {nc} channel(s)) on {ran_on} → {} \
         in {:.2} s",
        a.input.display(),
        a.output.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The pattern parameters as a small table for the terminal.
fn table(params: &[AngleParams], channels: usize, c: usize) -> String {
    let mut s = String::new();
    if channels > 1 {
        let _ = writeln!(s, "channel {}:", c + 1);
    }
    let _ = writeln!(
        s,
        "  angle  k0 [1/µm]  direction  spacing [nm]  phase [rad]  modulation  flags"
    );
    for (k, p) in params.iter().enumerate() {
        let _ = writeln!(
            s,
            "  {:>5}  {:>10.4}  {:>8.2}°  {:>12.1}  {:>11.3}  {:>10.3}  {}",
            k + 1,
            p.k0_per_um[0].hypot(p.k0_per_um[1]),
            p.angle_deg,
            p.line_spacing_nm,
            p.phase_rad,
            p.modulation,
            flags(p)
        );
    }
    s
}

fn flags(p: &AngleParams) -> String {
    let f = p.flags;
    let mut v = Vec::new();
    if f.no_stripes {
        v.push("no-stripes");
    }
    if f.low_modulation {
        v.push("low-modulation");
    }
    if f.k0_implausible {
        v.push("implausible-k0");
    }
    if f.uneven_angles {
        v.push("uneven-angles");
    }
    if f.inconsistent {
        v.push("inconsistent-k0");
    }
    if v.is_empty() {
        "ok".into()
    } else {
        v.join(" ")
    }
}

fn csv_row(csv: &mut String, channel: usize, plane: usize, angle: usize, p: &AngleParams) {
    let _ = writeln!(
        csv,
        "{channel},{plane},{angle},{:.4},{:.4},{:.5},{:.3},{:.2},{:.4},{:.4},{:.4},{:.2},{}",
        p.k0_px[0],
        p.k0_px[1],
        p.k0_per_um[0].hypot(p.k0_per_um[1]),
        p.angle_deg,
        p.line_spacing_nm,
        p.phase_rad,
        p.modulation,
        p.modulation_used,
        p.peak_ratio,
        flags(p)
    );
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::File {
        path: path.display().to_string(),
        message: format!("cannot write: {e}"),
    })
}

#[derive(Args, Debug)]
#[command(
    after_help = "Writes truth.tif (the object), raw.tif (the frames, PAZ order) and \
    pattern.csv (the true pattern parameters).\n\nExample:\n  fluorecon simulate-sim --size 512 \
    -o simdata/"
)]
pub struct SimulateSimArgs {
    /// Image size in pixels (square)
    #[arg(long, value_name = "N", default_value_t = 512)]
    pub size: usize,

    /// Numerical aperture
    #[arg(long, value_name = "NA", default_value_t = 1.2)]
    pub na: f64,

    /// Emission wavelength, nm
    #[arg(long, value_name = "NM", default_value_t = 525.0)]
    pub wavelength: f64,

    /// Camera pixel size in the sample, nm
    #[arg(long, value_name = "NM", default_value_t = 80.0)]
    pub pixel_size: f64,

    /// Pattern directions
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub angles: usize,

    /// Phases per direction
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub phases: usize,

    /// Modulation depth of the pattern (0–1)
    #[arg(long, value_name = "M", default_value_t = 0.8)]
    pub modulation: f64,

    /// Stripe period, nm [default: 1/(0.85 × the widefield cutoff)]
    #[arg(long, value_name = "NM")]
    pub line_spacing: Option<f64>,

    /// Peak photon count of the brightest structures per frame
    #[arg(long, value_name = "PHOTONS", default_value_t = 1000.0)]
    pub photons: f64,

    /// Background, photons per pixel
    #[arg(long, value_name = "PHOTONS", default_value_t = 100.0)]
    pub background: f64,

    /// Camera read noise, e⁻ rms
    #[arg(long, value_name = "E", default_value_t = 2.0)]
    pub read_noise: f64,

    /// Random seed (object, pattern phases, noise)
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,

    /// Output folder (created if needed)
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
}

/// `fluorecon simulate-sim`.
pub fn simulate_sim_cmd(a: &SimulateSimArgs) -> Result<()> {
    if a.size < 32 {
        return invalid!("--size must be at least 32 pixels");
    }
    let optics = SimOptics {
        na: a.na,
        wavelength_nm: a.wavelength,
        pixel_size_nm: a.pixel_size,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(a.seed);
    // The object and every raw frame.
    synthetic::check_volume((1, a.size, a.size), 4 + (a.angles * a.phases) as u64)?;
    let object = synthetic::phantom((1, a.size, a.size), &mut rng)
        .index_axis(Axis(0), 0)
        .to_owned();
    let acq = SimAcquisition {
        angles: a.angles,
        phases: a.phases,
        modulation: a.modulation,
        line_spacing_nm: a.line_spacing,
        photons: a.photons,
        background: a.background,
        read_noise: a.read_noise,
        seed: a.seed.wrapping_add(1000),
        ..SimAcquisition::default()
    };
    let data = simulate_sim(&object, &optics, &acq)?;
    std::fs::create_dir_all(&a.output).map_err(|e| Error::File {
        path: a.output.display().to_string(),
        message: format!("cannot create the folder: {e}"),
    })?;
    let voxel = data.raw.voxel;
    write_tiff(
        &a.output.join("truth.tif"),
        &Hyperstack::from_volume(&Volume::new(object.insert_axis(Axis(0)), voxel)),
    )?;
    write_tiff(
        &a.output.join("raw.tif"),
        &Hyperstack::from_volume(&data.raw),
    )?;
    let mut csv = String::from(
        "angle,angle [deg],k0_x [px],k0_y [px],k0 [1/um],line spacing [nm],phase at centre [rad],modulation\n",
    );
    for (k, t) in data.truth.iter().enumerate() {
        let _ = writeln!(
            csv,
            "{},{:.4},{:.4},{:.4},{:.5},{:.2},{:.5},{:.3}",
            k + 1,
            t.angle_deg,
            t.k0_px[0],
            t.k0_px[1],
            t.k0_per_um[0].hypot(t.k0_per_um[1]),
            t.line_spacing_nm,
            (t.phase_rad + std::f64::consts::PI).rem_euclid(2.0 * std::f64::consts::PI)
                - std::f64::consts::PI,
            t.modulation
        );
    }
    write_text(&a.output.join("pattern.csv"), &csv)?;
    eprintln!(
        "fluorecon: simulated {} SIM frames of {n}×{n} pixels ({} nm) → {}/{{truth,raw}}.tif, \
         pattern.csv",
        a.angles * a.phases,
        a.pixel_size,
        a.output.display(),
        n = a.size
    );
    Ok(())
}
