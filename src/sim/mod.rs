//! 2D structured-illumination microscopy (SIM) reconstruction: pattern estimation and Wiener
//! reconstruction at twice the widefield resolution.
//!
//! Follows Gustafsson 2000 (J. Microsc. 198:82, the image formation model and Wiener SIM),
//! Wicker et al. 2013 (Opt. Express 21:2032, phase and parameter estimation by band
//! cross-correlation) and Müller et al. 2016 (Nat. Commun. 7:10980, fairSIM: OTF model,
//! attenuated OTF, apodisation, defaults).
//!
//! Conventions: the raw stack is a [`Volume`] whose planes are the frames, in the order given
//! by [`FrameOrder`] (default PAZ: phase fastest, then angle, then z); each z plane is
//! reconstructed in 2D. Pixel sizes come from [`SimOptics`] (nm); frequencies are in
//! cycles/µm or in pixels of the Fourier grid (FFT index units); angles in degrees from +x
//! towards +y; phases in radians, of the pattern cos(2πk₀·r + φ) with r measured from the
//! centre pixel (x, y) = (nx/2, ny/2), 0-based. Output images have half the raw pixel size
//! (2× as many pixels along x and y); output pixel (2x, 2y) is centred on raw pixel (x, y).
//!
//! - [`otf`]: the OTF model; [`synthetic`]: simulated raw data with known parameters;
//! - [`estimate`]: k₀, phase and modulation per direction; [`reconstruct`](mod@reconstruct):
//!   the Wiener filter; [`bands`]: band separation and shifts; [`fft2`]: complex 2D FFT.
//!
//! Devices: the Wiener filter of every plane runs on an NVIDIA GPU (`wiener_cuda`, the `cuda`
//! feature) when [`SimOptions::device`] allows and one is usable, else on the CPU, with the
//! same filters and the same result up to float rounding; a GPU failure finishes the stack on
//! the CPU. Pattern estimation always runs on the CPU.

pub mod bands;
pub mod estimate;
pub mod otf;
pub mod reconstruct;
pub mod synthetic;
#[cfg(feature = "cuda")]
pub mod wiener_cuda;

pub use estimate::{AngleParams, ParamFlags};
pub use otf::{Otf, SimOptics};
pub use synthetic::{simulate_sim, PatternTruth, SimAcquisition, SimData};

use crate::device::{self, Device, DeviceRequest};
use crate::image::{check_finite, check_min_size};
use crate::progress::check_cancel;
use crate::{invalid, Error, Progress, Result, Volume, VoxelSize};
use ndarray::{Array3, ArrayView2, Axis};
use rayon::prelude::*;
use reconstruct::{wiener_sim_with, WienerFilters, WienerSettings};

/// Order of the frames in a raw SIM stack (fastest-varying index first).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FrameOrder {
    /// Phase, then angle, then z (fairSIM default).
    #[default]
    Paz,
    /// Phase, then z, then angle (OMX).
    Pza,
    /// z, then angle, then phase (Zeiss).
    Zap,
}

impl FrameOrder {
    /// Index of the frame of plane `z`, direction `a`, phase `p` in a stack of `nz` planes,
    /// `na` directions and `np` phases.
    pub fn index(self, z: usize, a: usize, p: usize, (nz, na, np): (usize, usize, usize)) -> usize {
        match self {
            FrameOrder::Paz => p + np * (a + na * z),
            FrameOrder::Pza => p + np * (z + nz * a),
            FrameOrder::Zap => z + nz * (a + na * p),
        }
    }
}

/// Options of [`reconstruct()`]. Defaults follow fairSIM.
#[derive(Debug, Clone, PartialEq)]
pub struct SimOptions {
    /// Pattern directions (default 3).
    pub angles: usize,
    /// Equidistant phases per direction, ≥ 3 (default 3).
    pub phases: usize,
    /// Frame order of the stack within one time point (default PAZ).
    pub order: FrameOrder,
    /// Time points in the stack (default 1). Time is the slowest index whatever the order:
    /// each time point is a block of z × angles × phases frames.
    pub time_points: usize,
    /// Estimate the pattern on every plane (z and time) rather than once, on the middle plane
    /// of the first time point (default false). A plane whose estimate shows no stripes uses
    /// the reference estimate, with a warning.
    pub estimate_per_plane: bool,
    /// Wiener parameter w (default 0.05).
    pub wiener: f64,
    /// Apodisation cutoff, multiple of the widefield cutoff (default 2).
    pub apodization_cutoff: f64,
    /// Apodisation exponent ("bend", default 0.9).
    pub apodization_bend: f64,
    /// OTF attenuation a of the model OTF (default 0.3).
    pub otf_attenuation: f64,
    /// An OTF measured from a bead ([`Otf::from_psf`]) used instead of the model OTF.
    pub measured_otf: Option<Otf>,
    /// Camera background subtracted from every pixel before processing, in the stack's units
    /// (default 0); negative results are clipped to 0.
    pub background: f32,
    /// Width of the cosine edge taper, raw pixels (default 12; 0 = none).
    pub taper_px: usize,
    /// Modulation used when an estimate is outside 0.4–1.1 (default 0.7).
    pub default_modulation: f64,
    /// Where the Wiener filter runs (default auto: the GPU when there is a usable one).
    pub device: DeviceRequest,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            angles: 3,
            phases: 3,
            order: FrameOrder::Paz,
            time_points: 1,
            estimate_per_plane: false,
            wiener: 0.05,
            apodization_cutoff: 2.0,
            apodization_bend: 0.9,
            otf_attenuation: 0.3,
            measured_otf: None,
            background: 0.0,
            taper_px: 12,
            default_modulation: 0.7,
            device: DeviceRequest::Auto,
        }
    }
}

/// Output of [`reconstruct()`]; images are (time_points·nz, 2ny, 2nx), time slowest, with half
/// the raw pixel size.
#[derive(Debug, Clone)]
pub struct SimResult {
    /// The SIM reconstruction.
    pub sim: Volume,
    /// The mean of all frames of each plane, Fourier-interpolated to the 2× grid.
    pub widefield: Volume,
    /// The widefield image Wiener-filtered with the same w (for comparison).
    pub wiener_widefield: Volume,
    /// z planes per time point.
    pub planes: usize,
    /// Pattern parameters per direction, estimated on the reference plane (the middle plane
    /// of the first time point).
    pub params: Vec<AngleParams>,
    /// The parameters used for each output plane (all equal to `params` unless
    /// [`SimOptions::estimate_per_plane`]).
    pub plane_params: Vec<Vec<AngleParams>>,
    /// Warnings for the log (low modulation, implausible k₀, uneven angles…; why the GPU was
    /// not used when `cuda` was asked for, or why it failed). With `auto`, the lack of a usable
    /// GPU is only logged.
    pub warnings: Vec<String>,
    /// The device that reconstructed the planes (the CPU when a GPU failed on the way).
    pub device: Device,
}

impl SimResult {
    /// "CUDA device 0 (NVIDIA H100)" or "the CPU (16 threads)", for the log.
    pub fn device_text(&self) -> String {
        self.device.ran_on()
    }
}

/// Where the frames of one plane are in the raw stack.
#[derive(Clone, Copy)]
struct Layout {
    order: FrameOrder,
    planes: usize,
    angles: usize,
    phases: usize,
}

impl Layout {
    /// Frame of time point t, plane z, direction a, phase p.
    fn frame(&self, t: usize, z: usize, a: usize, p: usize) -> usize {
        let block = self.planes * self.angles * self.phases;
        t * block
            + self
                .order
                .index(z, a, p, (self.planes, self.angles, self.phases))
    }
}

/// Reconstructs a raw 2D SIM stack (frames as planes, see [`FrameOrder`]).
pub fn reconstruct(
    raw: &Volume,
    optics: &SimOptics,
    opts: &SimOptions,
    progress: &mut dyn Progress,
) -> Result<SimResult> {
    optics.validate()?;
    validate_options(opts)?;
    let (frames, ny, nx) = raw.shape();
    let per_plane = opts.angles * opts.phases;
    let per_time = per_plane * opts.time_points;
    if frames == 0 || frames % per_time != 0 {
        let times = if opts.time_points > 1 {
            format!(" × {} time points", opts.time_points)
        } else {
            String::new()
        };
        return invalid!(
            "SIM stack has {frames} frames; {} angles × {} phases{times} needs a multiple of \
             {per_time}",
            opts.angles,
            opts.phases
        );
    }
    check_min_size(&raw.data, "the SIM stack", 32)?;
    check_finite(&raw.data, "the SIM stack")?;
    let layout = Layout {
        order: opts.order,
        planes: frames / per_time,
        angles: opts.angles,
        phases: opts.phases,
    };
    let nplanes = layout.planes * opts.time_points;
    let otf = match &opts.measured_otf {
        Some(m) => m.clone(),
        None => Otf::new(optics, opts.otf_attenuation),
    };
    let prepare = |layout: &Layout, plane: usize| -> Vec<Vec<Vec<f32>>> {
        let (t, z) = (plane / layout.planes, plane % layout.planes);
        (0..opts.angles)
            .map(|a| {
                (0..opts.phases)
                    .map(|p| {
                        let frame = raw.data.index_axis(Axis(0), layout.frame(t, z, a, p));
                        preprocess(frame, opts.background, opts.taper_px)
                    })
                    .collect()
            })
            .collect()
    };
    let estimate = |frames: &[Vec<Vec<f32>>]| -> Vec<AngleParams> {
        let mut params: Vec<AngleParams> = frames
            .par_iter()
            .map(|angle_frames| {
                let refs: Vec<&[f32]> = angle_frames.iter().map(|f| f.as_slice()).collect();
                estimate::estimate_angle(&refs, (ny, nx), optics, &otf, opts.default_modulation)
            })
            .collect();
        estimate::flag_uneven_angles(&mut params);
        params
    };

    progress.status("SIM: estimating the illumination pattern");
    let reference_plane = layout.planes / 2;
    let reference = prepare(&layout, reference_plane);
    let params = estimate(&reference);
    check_cancel(progress)?;
    progress.fraction(0.1);
    if suspicious(&params) {
        check_frame_order(&params, &layout, reference_plane, |l, z| {
            estimate(&prepare(l, z))
        })?;
    }
    let mut warnings = warnings(&params, optics, opts);

    let settings = WienerSettings {
        wiener: opts.wiener,
        apodization_cutoff: opts.apodization_cutoff,
        apodization_bend: opts.apodization_bend,
    };
    let (mut device_warnings, mut no_gpu) = (Vec::new(), Vec::new());
    let mut planes = Planes::new(opts, (ny, nx), settings, &mut no_gpu);
    if opts.device == DeviceRequest::Auto {
        no_gpu.iter().for_each(|w| progress.log(w));
    } else {
        for w in no_gpu {
            progress.log(&format!("Warning: {w}"));
            device_warnings.push(w);
        }
    }
    progress.log(&format!("SIM on {}", planes.device().ran_on()));
    let out_shape = (nplanes, 2 * ny, 2 * nx);
    let (mut sim, mut wf, mut wwf) = (zeros(out_shape), zeros(out_shape), zeros(out_shape));
    let mut plane_params = Vec::with_capacity(nplanes);
    let mut reference = Some(reference);
    for plane in 0..nplanes {
        check_cancel(progress)?;
        progress.status(&format!(
            "SIM: reconstructing plane {}/{nplanes}",
            plane + 1
        ));
        let frames = match (plane == reference_plane, reference.take()) {
            (true, Some(f)) => f,
            (_, r) => {
                reference = r;
                prepare(&layout, plane)
            }
        };
        let used = if opts.estimate_per_plane && plane != reference_plane {
            let own = estimate(&frames);
            if own.iter().any(|p| p.flags.no_stripes) {
                warnings.push(format!(
                    "plane {}: no clear stripe pattern; the reference plane's parameters were \
                     used",
                    plane + 1
                ));
                params.clone()
            } else {
                for w in self::warnings(&own, optics, opts) {
                    warnings.push(format!("plane {}: {w}", plane + 1));
                }
                own
            }
        } else {
            params.clone()
        };
        let refs: Vec<Vec<&[f32]>> = frames
            .iter()
            .map(|a| a.iter().map(|f| f.as_slice()).collect())
            .collect();
        let out = [&mut sim, &mut wf, &mut wwf].map(|v| {
            v.index_axis_mut(Axis(0), plane)
                .into_slice()
                .expect("standard layout")
        });
        if let Some(w) = planes.run(&refs, &used, (optics, &otf), out, plane) {
            progress.log(&format!("Warning: {w}"));
            device_warnings.push(w);
        }
        plane_params.push(used);
        progress.fraction(0.1 + 0.9 * (plane + 1) as f32 / nplanes as f32);
    }
    for w in &warnings {
        progress.log(w);
    }
    warnings.extend(device_warnings);
    let half = optics.pixel_size_um() / 2.0;
    let voxel = VoxelSize {
        z: raw.voxel.z,
        y: half,
        x: half,
    };
    Ok(SimResult {
        sim: Volume::new(sim, voxel),
        widefield: Volume::new(wf, voxel),
        wiener_widefield: Volume::new(wwf, voxel),
        planes: layout.planes,
        params,
        plane_params,
        warnings,
        device: planes.device(),
    })
}

/// Runs the Wiener filter of each plane: on the GPU while it works (the `cuda` feature and a
/// usable GPU), on the CPU otherwise. The filters are computed (on the host) for the first
/// plane and again only when the pattern parameters change.
struct Planes {
    raw: (usize, usize),
    phases: usize,
    settings: WienerSettings,
    /// The parameters the filters were computed for, and the filters.
    filters: Option<(Vec<AngleParams>, WienerFilters)>,
    #[cfg(feature = "cuda")]
    gpu: Option<wiener_cuda::SimGpu>,
    /// Whether the GPU holds the current filters.
    #[cfg(feature = "cuda")]
    gpu_filters: bool,
}

impl Planes {
    /// Opens the GPU that `opts.device` asks for and prepares it for frames of `raw` pixels,
    /// or pushes to `why_not` why the CPU will run instead.
    fn new(
        opts: &SimOptions,
        raw: (usize, usize),
        settings: WienerSettings,
        why_not: &mut Vec<String>,
    ) -> Planes {
        let gpu = device::open_gpu(opts.device, why_not);
        #[cfg(feature = "cuda")]
        let gpu = gpu.and_then(|g| {
            let ordinal = g.ordinal;
            wiener_cuda::SimGpu::new(g, raw, opts.angles, opts.phases)
                .map_err(|e| {
                    why_not.push(format!(
                        "SIM cannot run on CUDA device {ordinal} ({e}); running on the CPU"
                    ))
                })
                .ok()
        });
        #[cfg(not(feature = "cuda"))]
        let _ = gpu;
        Planes {
            raw,
            phases: opts.phases,
            settings,
            filters: None,
            #[cfg(feature = "cuda")]
            gpu,
            #[cfg(feature = "cuda")]
            gpu_filters: false,
        }
    }

    /// The device the planes run on now.
    fn device(&self) -> Device {
        #[cfg(feature = "cuda")]
        if let Some(g) = &self.gpu {
            return g.device();
        }
        device::cpu_device()
    }

    /// Reconstructs plane `plane` (0-based) from `frames` with pattern `params` into `out`
    /// (SIM, widefield, Wiener-filtered widefield). Returns a warning when the GPU failed: this
    /// plane and the rest are then computed on the CPU.
    fn run(
        &mut self,
        frames: &[Vec<&[f32]>],
        params: &[AngleParams],
        (optics, otf): (&SimOptics, &Otf),
        out: [&mut [f32]; 3],
        plane: usize,
    ) -> Option<String> {
        if self.filters.as_ref().is_none_or(|(p, _)| p != params) {
            let f = WienerFilters::new(self.raw, self.phases, optics, otf, params, &self.settings);
            self.filters = Some((params.to_vec(), f));
            #[cfg(feature = "cuda")]
            {
                self.gpu_filters = false;
            }
        }
        let filters = &self.filters.as_ref().expect("just set").1;
        #[cfg(feature = "cuda")]
        let (out, warning) = match self.gpu.as_mut() {
            None => (out, None),
            Some(g) => {
                let set = if self.gpu_filters {
                    Ok(())
                } else {
                    g.set_filters(filters)
                };
                let [a, b, c] = out;
                match set.and_then(|()| g.reconstruct(frames, [&mut *a, &mut *b, &mut *c])) {
                    Ok(()) => {
                        self.gpu_filters = true;
                        return None;
                    }
                    Err(e) => {
                        let warning = format!(
                            "SIM on {} failed ({e}); plane {} and the rest are computed on the \
                             CPU",
                            g.device().ran_on(),
                            plane + 1
                        );
                        self.gpu = None;
                        ([a, b, c], Some(warning))
                    }
                }
            }
        };
        #[cfg(not(feature = "cuda"))]
        let warning = {
            let _ = plane;
            None
        };
        let r = wiener_sim_with(frames, filters);
        for (dst, src) in out
            .into_iter()
            .zip([r.sim, r.widefield, r.wiener_widefield])
        {
            dst.copy_from_slice(&src);
        }
        warning
    }
}

/// A zero-filled array backed by huge pages (see [`crate::image::work_buffer`]).
fn zeros(shape: (usize, usize, usize)) -> Array3<f32> {
    let n = shape.0 * shape.1 * shape.2;
    Array3::from_shape_vec(shape, crate::image::work_buffer(n)).expect("sizes match")
}

/// Estimates that a wrong frame order typically produces: a direction without stripes, an
/// implausible k₀ or modulation, or directions not evenly spaced.
fn suspicious(params: &[AngleParams]) -> bool {
    params.iter().any(|p| {
        let f = p.flags;
        f.no_stripes || f.low_modulation || f.k0_implausible || f.uneven_angles
    })
}

/// Called when the estimates look wrong: if another frame order gives consistent parameters,
/// the stack is in that order and this is an error that names it; if there are no stripes
/// in any order, that is an error too. Otherwise the estimates stand (with warnings).
fn check_frame_order(
    params: &[AngleParams],
    layout: &Layout,
    plane: usize,
    estimate: impl Fn(&Layout, usize) -> Vec<AngleParams>,
) -> Result<()> {
    let mapping = |l: &Layout| -> Vec<usize> {
        let (t, z) = (plane / l.planes, plane % l.planes);
        (0..l.angles)
            .flat_map(|a| (0..l.phases).map(move |p| (a, p)))
            .map(|(a, p)| l.frame(t, z, a, p))
            .collect()
    };
    let given = mapping(layout);
    let mut tried = vec![given];
    for order in [FrameOrder::Paz, FrameOrder::Pza, FrameOrder::Zap] {
        let alt = Layout { order, ..*layout };
        let m = mapping(&alt);
        if tried.contains(&m) {
            continue; // same frames as an order already tried (e.g. PAZ and PZA for one plane)
        }
        tried.push(m);
        let alt_params = estimate(&alt, plane);
        if !suspicious(&alt_params) {
            return invalid!(
                "the pattern parameters do not fit frame order {} ({}) but they do fit frame \
                 order {}: the stack is probably in {} order; choose that order",
                layout.order.name(),
                describe(params),
                order.name(),
                order.name()
            );
        }
    }
    if params.iter().all(|p| p.flags.no_stripes) {
        return invalid!(
            "no stripe pattern was found in the SIM stack (correlation peaks {}, in any frame \
             order); check the number of angles and phases, and that this is raw SIM data \
             rather than a widefield or reconstructed image",
            params
                .iter()
                .map(|p| format!("{:.1}", p.peak_ratio))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

/// Short summary of the estimates: direction, modulation and correlation peak per angle.
fn describe(params: &[AngleParams]) -> String {
    params
        .iter()
        .map(|p| {
            format!(
                "{:.1}°, m {:.2}, peak {:.1}",
                p.angle_deg, p.modulation, p.peak_ratio
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl FrameOrder {
    /// "PAZ", "PZA" or "ZAP".
    pub fn name(self) -> &'static str {
        match self {
            FrameOrder::Paz => "PAZ",
            FrameOrder::Pza => "PZA",
            FrameOrder::Zap => "ZAP",
        }
    }
}

impl std::str::FromStr for FrameOrder {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_uppercase().as_str() {
            "PAZ" => Ok(FrameOrder::Paz),
            "PZA" => Ok(FrameOrder::Pza),
            "ZAP" => Ok(FrameOrder::Zap),
            _ => invalid!("unknown frame order '{s}': use PAZ, PZA or ZAP"),
        }
    }
}

fn validate_options(opts: &SimOptions) -> Result<()> {
    if opts.time_points == 0 {
        return invalid!("the number of time points must be at least 1");
    }
    if opts.angles == 0 || opts.phases < 3 {
        return invalid!(
            "SIM needs at least 1 angle and 3 phases per angle (got {} angles, {} phases)",
            opts.angles,
            opts.phases
        );
    }
    let checks = [
        (
            opts.wiener > 0.0 && opts.wiener.is_finite(),
            "the Wiener parameter must be positive",
        ),
        (
            opts.apodization_cutoff > 0.0,
            "the apodisation cutoff must be positive",
        ),
        (
            opts.apodization_bend > 0.0,
            "the apodisation bend must be positive",
        ),
        (
            opts.otf_attenuation > 0.0 && opts.otf_attenuation <= 1.0,
            "the OTF attenuation must be in (0, 1]",
        ),
        (
            opts.default_modulation > 0.0 && opts.default_modulation <= 1.0,
            "the default modulation must be in (0, 1]",
        ),
        (
            opts.background.is_finite(),
            "the background must be a number",
        ),
    ];
    match checks.iter().find(|(ok, _)| !ok) {
        Some((_, msg)) => Err(Error::InvalidInput((*msg).into())),
        None => Ok(()),
    }
}

/// Human-readable warnings about the estimated parameters.
fn warnings(params: &[AngleParams], optics: &SimOptics, opts: &SimOptions) -> Vec<String> {
    let kc = optics.cutoff_per_um();
    let mut w = Vec::new();
    for (a, p) in params.iter().enumerate() {
        let f = p.flags;
        if f.no_stripes {
            w.push(format!(
                "angle {}: no clear stripe pattern (correlation peak {:.1})",
                a + 1,
                p.peak_ratio
            ));
        }
        if f.low_modulation {
            w.push(format!(
                "angle {}: estimated modulation {:.2} is outside 0.4–1.1; using {:.2} instead",
                a + 1,
                p.modulation,
                opts.default_modulation
            ));
        }
        if f.k0_implausible {
            w.push(format!(
                "angle {}: pattern frequency {:.2} cycles/µm is {:.2} × the cutoff (expected \
                 0.5–1.1); check NA, wavelength and pixel size",
                a + 1,
                p.k0_per_um[0].hypot(p.k0_per_um[1]),
                p.k0_per_um[0].hypot(p.k0_per_um[1]) / kc
            ));
        }
    }
    if params.first().is_some_and(|p| p.flags.uneven_angles) {
        let angles: Vec<String> = params
            .iter()
            .map(|p| format!("{:.1}°", p.angle_deg))
            .collect();
        w.push(format!(
            "the pattern directions ({}) are not evenly spaced over 180°; check the frame order",
            angles.join(", ")
        ));
    }
    w
}

/// The Fourier-space view of an image: log₁₀(1 + |FFT|), zero frequency at pixel
/// (nx/2, ny/2), row-major (ny, nx). Used to show the SIM spectrum with the detected pattern
/// peaks: frequency (kx, ky) in Fourier-grid pixels is at (nx/2 + kx, ny/2 + ky).
pub fn fourier_view(image: ArrayView2<f32>) -> Vec<f32> {
    let (ny, nx) = image.dim();
    let mut spec: Vec<crate::fft::Complex32> = image
        .iter()
        .map(|&v| crate::fft::Complex32::new(v, 0.0))
        .collect();
    crate::fft::Fft2::new(ny, nx).forward(&mut spec);
    let mut out = vec![0f32; ny * nx];
    for j in 0..ny {
        let y = (j + ny / 2) % ny;
        for i in 0..nx {
            let x = (i + nx / 2) % nx;
            out[y * nx + x] = (1.0 + spec[j * nx + i].norm()).log10();
        }
    }
    out
}

/// Subtracts `background` (clipping at 0) and fades the outer `taper` pixels to 0 with a
/// cosine edge, so that the periodic FFT sees no edge.
pub(crate) fn preprocess(frame: ArrayView2<f32>, background: f32, taper: usize) -> Vec<f32> {
    let (ny, nx) = frame.dim();
    let ramp = |i: usize, n: usize| -> f32 {
        let d = i.min(n - 1 - i);
        if d >= taper {
            1.0
        } else {
            let t = (d as f32 + 0.5) / taper as f32;
            0.5 - 0.5 * (std::f32::consts::PI * t).cos()
        }
    };
    let wx: Vec<f32> = (0..nx).map(|x| ramp(x, nx)).collect();
    let mut out = Vec::with_capacity(ny * nx);
    for (y, row) in frame.outer_iter().enumerate() {
        let wy = ramp(y, ny);
        out.extend(
            row.iter()
                .zip(&wx)
                .map(|(&v, &w)| (v - background).max(0.0) * w * wy),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_orders_are_permutations() {
        let dims = (2, 3, 5);
        for order in [FrameOrder::Paz, FrameOrder::Pza, FrameOrder::Zap] {
            let mut seen = [false; 30];
            for z in 0..2 {
                for a in 0..3 {
                    for p in 0..5 {
                        seen[order.index(z, a, p, dims)] = true;
                    }
                }
            }
            assert!(seen.iter().all(|&s| s), "{order:?}");
        }
        assert_eq!(FrameOrder::Paz.index(1, 2, 4, dims), 4 + 5 * (2 + 3));
        assert_eq!(FrameOrder::Zap.index(1, 0, 1, dims), 1 + 2 * 3);
    }

    #[test]
    fn fourier_view_puts_a_cosine_at_its_frequency() {
        // cos(2π·5x/32): peaks at kx = ±5, i.e. pixels x = 16 ± 5 of row 8.
        let img = ndarray::Array2::from_shape_fn((16, 32), |(_, x)| {
            (2.0 * std::f32::consts::PI * 5.0 * x as f32 / 32.0).cos()
        });
        let v = fourier_view(img.view());
        let top: Vec<usize> = {
            let mut idx: Vec<usize> = (0..v.len()).collect();
            idx.sort_by(|&a, &b| v[b].total_cmp(&v[a]));
            idx[..2].to_vec()
        };
        let mut peaks: Vec<(usize, usize)> = top.iter().map(|&i| (i / 32, i % 32)).collect();
        peaks.sort();
        assert_eq!(peaks, vec![(8, 11), (8, 21)]);
        assert!((v[8 * 32 + 11] - (1.0f32 + 256.0).log10()).abs() < 1e-4);
    }

    #[test]
    fn taper_fades_edges() {
        let frame = ndarray::Array2::from_elem((40, 40), 110.0f32);
        let out = preprocess(frame.view(), 10.0, 12);
        assert!(out[0] < 1.0);
        assert!((out[20 * 40 + 20] - 100.0).abs() < 1e-4);
        assert!(out[20 * 40 + 5] > 10.0 && out[20 * 40 + 5] < 90.0);
    }
}
