//! Reconstruction of a raw SIM stack: frames prepared (background, edge taper), the pattern
//! estimated on the reference plane (and on every plane when asked), the frame order checked
//! when the estimates look wrong, then the Wiener filter plane by plane.

use super::frame_order::{check_frame_order, suspicious, Layout};
use super::options::validate_options;
use super::planes::Planes;
use super::reconstruct::WienerSettings;
use super::{directions, noise, outliers, AngleParams, Otf, SimOptics, SimOptions, SimResult};
use crate::device::DeviceRequest;
use crate::image::{check_finite, check_min_size};
use crate::progress::check_cancel;
use crate::{invalid, Progress, Result, Volume, VoxelSize};
use ndarray::{Array3, ArrayView2, Axis};
use rayon::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Reconstructs a raw 2D SIM stack (frames as planes, see [`FrameOrder`](super::FrameOrder)).
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
    if opts.taper_px > ny.min(nx) / 4 {
        return invalid!(
            "the edge taper ({} pixels) must be at most a quarter of the frames' smaller side \
             ({} pixels); 0 turns it off",
            opts.taper_px,
            ny.min(nx)
        );
    }
    // Pattern estimation correlates spectra (sums of squares over every pixel, f32): values
    // beyond ~1e12 overflow there and read as "no stripe pattern".
    let peak = raw.data.iter().fold(0f32, |m, v| m.max(v.abs()));
    if peak > 1e12 {
        return invalid!(
            "the raw frames reach {peak:e}, too large for the single-precision Fourier \
             transforms (they overflow); scale the stack down first (Process › Math › Multiply \
             in Fiji)"
        );
    }
    // Saturated pixels clip the pattern and, as a bright flat patch in every frame, swamp the
    // pattern estimate (modulation near 0, k₀ off by ~0.5 px in a test): an error unless a
    // failed estimate is allowed.
    let saturation = saturation_warning(raw);
    if let (Some(w), false) = (&saturation, opts.allow_failed_estimate) {
        return invalid!(
            "{}; to reconstruct anyway, allow a failed estimate",
            w.trim_start_matches("Warning: ")
        );
    }
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
    let hot_pixels = AtomicUsize::new(0);
    let prepare = |layout: &Layout, plane: usize| -> Vec<Vec<Vec<f32>>> {
        let (t, z) = (plane / layout.planes, plane % layout.planes);
        (0..opts.angles)
            .map(|a| {
                (0..opts.phases)
                    .into_par_iter()
                    .map(|p| {
                        let frame = raw.data.index_axis(Axis(0), layout.frame(t, z, a, p));
                        let mut f = preprocess(frame, opts.background, opts.taper_px);
                        if opts.replace_hot_pixels {
                            let n = outliers::replace_hot_pixels(&mut f, (ny, nx));
                            hot_pixels.fetch_add(n, Ordering::Relaxed);
                        }
                        f
                    })
                    .collect()
            })
            .collect()
    };
    let estimate = |frames: &[Vec<Vec<f32>>]| -> Vec<AngleParams> {
        let refs: Vec<Vec<&[f32]>> = frames
            .iter()
            .map(|a| a.iter().map(|f| f.as_slice()).collect())
            .collect();
        directions::estimate_directions(&refs, (ny, nx), optics, &otf, opts.default_modulation)
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
    if let Some(w) = saturation {
        warnings.insert(0, w);
    }
    let failed: Vec<String> = params
        .iter()
        .enumerate()
        .filter(|(_, p)| p.flags.failed())
        .map(|(a, _)| (a + 1).to_string())
        .collect();
    if !failed.is_empty() {
        if !opts.allow_failed_estimate {
            return invalid!(
                "the illumination pattern could not be estimated reliably for angle(s) {} ({}); \
                 the reconstruction would show artefacts. Check NA, wavelength, pixel size, the \
                 numbers of angles and phases and the frame order; to reconstruct anyway with \
                 these estimates, allow a failed estimate",
                failed.join(", "),
                warnings.join("; ")
            );
        }
        warnings.push(format!(
            "the pattern estimate failed for angle(s) {}; reconstructed anyway because a failed \
             estimate was allowed: expect artefacts",
            failed.join(", ")
        ));
    }

    let wiener = if opts.wiener > 0.0 {
        opts.wiener
    } else {
        let refs: Vec<&[f32]> = reference
            .iter()
            .flat_map(|a| a.iter().map(|f| f.as_slice()))
            .collect();
        let q = noise::noise_to_signal(&refs, (ny, nx), optics, &otf);
        let w = noise::auto_wiener(q);
        progress.log(&format!(
            "SIM: Wiener parameter {w:.3} (automatic; noise-to-signal ratio {q:.4} at half the \
             cutoff)"
        ));
        w
    };
    let settings = WienerSettings {
        wiener,
        apodization_cutoff: opts.apodization_cutoff,
        apodization_bend: opts.apodization_bend,
        zero_order_strength: opts.zero_order_strength,
        zero_order_fwhm_per_um: opts.zero_order_fwhm_per_um,
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
            if own.iter().any(|p| p.flags.failed()) {
                warnings.push(format!(
                    "plane {}: no reliable stripe pattern; the reference plane's parameters were \
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
        // A GPU failure is logged by `run`; the warning also goes into the result.
        if let Some(w) = planes.run(&refs, &used, (optics, &otf), out, plane, progress)? {
            device_warnings.push(w);
        }
        plane_params.push(used);
        progress.fraction(0.1 + 0.9 * (plane + 1) as f32 / nplanes as f32);
    }
    let hot = hot_pixels.into_inner();
    if hot > 0 {
        warnings.push(format!(
            "{hot} hot pixel(s) (far brighter than all their neighbours, e.g. cosmic rays) were \
             replaced by the median of their neighbours"
        ));
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
        wiener_used: wiener,
    })
}

/// A warning when at least 4 pixels sit at the stack's maximum and that maximum is the full
/// scale of an 8-, 12-, 14- or 16-bit camera: saturated pixels clip the stripe pattern, and
/// the reconstruction shows artefacts around them.
fn saturation_warning(raw: &Volume) -> Option<String> {
    let max = raw.data.iter().copied().fold(f32::MIN, f32::max);
    if ![255.0, 4095.0, 16383.0, 65535.0].contains(&max) {
        return None;
    }
    let n = raw.data.iter().filter(|&&v| v == max).count();
    (n >= 4).then(|| {
        format!(
            "Warning: {n} pixels are at {max}, the camera's full scale (saturated): the stripe \
             pattern is clipped there and the SIM image shows artefacts around them; reduce the \
             exposure or the illumination"
        )
    })
}

/// A zero-filled array backed by huge pages (see [`crate::image::work_buffer`]).
fn zeros(shape: (usize, usize, usize)) -> Array3<f32> {
    let n = shape.0 * shape.1 * shape.2;
    Array3::from_shape_vec(shape, crate::image::work_buffer(n)).expect("sizes match")
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
    for (a, p) in params.iter().enumerate() {
        if p.flags.inconsistent && !p.flags.uneven_angles {
            w.push(format!(
                "angle {}: pattern frequency {:.3} cycles/µm disagrees with the other directions \
                 (more than {:.0} %)",
                a + 1,
                p.k0_per_um[0].hypot(p.k0_per_um[1]),
                100.0 * directions::K0_TOLERANCE
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
    fn taper_fades_edges() {
        let frame = ndarray::Array2::from_elem((40, 40), 110.0f32);
        let out = preprocess(frame.view(), 10.0, 12);
        assert!(out[0] < 1.0);
        assert!((out[20 * 40 + 20] - 100.0).abs() < 1e-4);
        assert!(out[20 * 40 + 5] > 10.0 && out[20 * 40 + 5] < 90.0);
    }
}
