//! The localization pipeline over a stack: ADU → photons, detection, fitting, in chunks of
//! frames (so a 100 000-frame stack never has to be in memory), parallel over the frames of
//! a chunk.

use super::detect::detect;
use super::fit::{fit_spot_masked, FitOptions, Spot, MAX_WINDOW};
use super::{Camera, Localization};
use crate::device::{choose_gpu, run_on_gpu, Device, DeviceRequest, OnGpu};
use crate::progress::{check_cancel, Progress};
use crate::{invalid, Result};
use ndarray::Array3;
use rayon::prelude::*;

/// Frames handed to the thread pool at once.
pub const CHUNK_FRAMES: usize = 256;

/// Settings of [`localize_stack`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LocalizeOptions {
    pub camera: Camera,
    /// Camera pixel size in the sample, nm.
    pub pixel_nm: f64,
    /// Detection threshold as a multiple of std(Wave.F1) (1 = ThunderSTORM's default; 1.5, the
    /// default here, drops the noise detections 1 lets through on simulated EMCCD data).
    pub threshold: f64,
    pub fit: FitOptions,
    /// Rejects fits whose σ differs from the typical σ by more than this fraction (e.g.
    /// 0.2 keeps 0.8–1.2 × the median σ of the first chunk's fits): two overlapping
    /// molecules fitted as one give a wide spot and a position between them. `None` keeps
    /// every fit with σ in `fit.sigma_range_px`.
    pub sigma_tolerance: Option<f64>,
    /// Where to fit (the CPU for now; a CUDA request is logged with the reason).
    pub device: DeviceRequest,
}

impl Default for LocalizeOptions {
    fn default() -> Self {
        LocalizeOptions {
            camera: Camera::default(),
            pixel_nm: 100.0,
            threshold: 1.5,
            fit: FitOptions::default(),
            sigma_tolerance: Some(0.12),
            device: DeviceRequest::Auto,
        }
    }
}

impl LocalizeOptions {
    /// Checks the settings against frames of `w`×`h` pixels.
    pub fn validate(&self, w: usize, h: usize) -> Result<()> {
        self.camera.validate()?;
        if !(self.pixel_nm.is_finite() && self.pixel_nm > 0.0) {
            return invalid!(
                "pixel size must be a positive number of nm, not {}",
                self.pixel_nm
            );
        }
        if !(self.threshold.is_finite() && self.threshold > 0.0) {
            return invalid!(
                "detection threshold must be positive, not {}",
                self.threshold
            );
        }
        let win = 2 * self.fit.radius + 1;
        if self.fit.radius == 0 || win > MAX_WINDOW {
            return invalid!(
                "fit radius must be 1–{} pixels, not {}",
                (MAX_WINDOW - 1) / 2,
                self.fit.radius
            );
        }
        if w < win || h < win {
            return invalid!(
                "frames are {w}×{h} pixels, smaller than the {win}×{win}-pixel fit window; \
                 use a smaller fit radius"
            );
        }
        let (lo, hi) = self.fit.sigma_range_px;
        if !(self.fit.initial_sigma_px > 0.0 && lo < hi && lo >= 0.0) {
            return invalid!(
                "PSF σ settings are inconsistent (start {}, range {lo}–{hi} px)",
                self.fit.initial_sigma_px
            );
        }
        if let Some(t) = self.sigma_tolerance {
            if !(t > 0.0 && t < 1.0) {
                return invalid!("σ tolerance must be between 0 and 1 (a fraction), not {t}");
            }
        }
        Ok(())
    }
}

/// Minimum number of fits from which the typical σ is taken.
const SIGMA_SAMPLE: usize = 20;

/// Fails when the camera offset is above the signal: a frame whose mean, in ADU, is below the
/// offset means the offset (or the camera type) is set wrong.
pub fn check_offset(adu: &[f32], frame: u32, camera: &Camera) -> Result<()> {
    let mean = adu.iter().map(|&v| v as f64).sum::<f64>() / adu.len().max(1) as f64;
    if mean < camera.offset_adu {
        return invalid!(
            "the camera offset ({} ADU) is above the signal: frame {frame} averages {mean:.1} \
             ADU. Set the offset to the camera's dark level (look at a dark frame or the \
             camera's data sheet)",
            camera.offset_adu
        );
    }
    Ok(())
}

/// Where a candidate's fit window lies in the frame (its top-left pixel) and the candidate
/// pixel, frame pixels.
#[derive(Debug, Clone, Copy)]
struct WindowAt {
    x0: usize,
    y0: usize,
    cx: usize,
    cy: usize,
}

/// The fit windows of one frame, `win`² values each (photons, x fastest), one after the
/// other; `used` marks the pixels each fit uses.
struct FrameWindows {
    at: Vec<WindowAt>,
    values: Vec<f64>,
    used: Vec<bool>,
}

/// Converts one frame of raw ADU values (`w`×`h`, x fastest) to photons, detects the
/// candidates and cuts their fit windows.
fn frame_windows(
    adu: &[f32],
    w: usize,
    h: usize,
    frame: u32,
    opts: &LocalizeOptions,
) -> Result<FrameWindows> {
    if let Some(p) = adu.iter().position(|v| !v.is_finite()) {
        return invalid!(
            "frame {frame} has a pixel that is not a number at x={}, y={}; replace NaNs first \
             (Process › Math › Remove NaNs…)",
            p % w,
            p / w
        );
    }
    let cam = &opts.camera;
    // Effective photons: variance = mean also behind an EM register (see `camera`).
    let scale = (cam.photons_per_adu() / cam.excess_noise()) as f32;
    let offset = cam.offset_adu as f32;
    let img: Vec<f32> = adu.iter().map(|&v| (v - offset) * scale).collect();
    let r = opts.fit.radius;
    let win = 2 * r + 1;
    let candidates = detect(&img, w, h, opts.threshold);
    let mut out = FrameWindows {
        at: Vec::with_capacity(candidates.len()),
        values: vec![0.0; candidates.len() * win * win],
        used: vec![true; candidates.len() * win * win],
    };
    for (k, &(cx, cy)) in candidates.iter().enumerate() {
        let x0 = cx.saturating_sub(r).min(w - win);
        let y0 = cy.saturating_sub(r).min(h - win);
        // Neighbouring candidates whose spots reach into the window.
        let reach = 2 * r as isize + 1;
        let near: Vec<(isize, isize)> = candidates
            .iter()
            .map(|&(x, y)| (x as isize - cx as isize, y as isize - cy as isize))
            .filter(|&(dx, dy)| (dx, dy) != (0, 0) && dx.abs() <= reach && dy.abs() <= reach)
            .collect();
        let window = &mut out.values[k * win * win..(k + 1) * win * win];
        let used = &mut out.used[k * win * win..(k + 1) * win * win];
        for j in 0..win {
            for i in 0..win {
                window[j * win + i] = img[(y0 + j) * w + x0 + i] as f64;
                // A pixel nearer to another candidate than to this one, or within 2.5 pixels
                // of it, is left out.
                let (px, py) = (
                    (x0 + i) as isize - cx as isize,
                    (y0 + j) as isize - cy as isize,
                );
                let d0 = px * px + py * py;
                used[j * win + i] = near
                    .iter()
                    .all(|&(nx, ny)| (px - nx).pow(2) + (py - ny).pow(2) > d0.max(6));
            }
        }
        out.at.push(WindowAt { x0, y0, cx, cy });
    }
    Ok(out)
}

/// The localization of a fit `s` of the window `at` of frame `frame`; `None` when the fit
/// wandered off to a neighbour (it is not this candidate's molecule).
fn localization(
    at: &WindowAt,
    s: &Spot,
    frame: u32,
    opts: &LocalizeOptions,
) -> Option<Localization> {
    let (x, y) = (at.x0 as f64 + s.x, at.y0 as f64 + s.y);
    if (x - at.cx as f64 - 0.5).abs() > 2.0 || (y - at.cy as f64 - 0.5).abs() > 2.0 {
        return None;
    }
    let px = opts.pixel_nm;
    let f2 = opts.camera.excess_noise();
    Some(Localization {
        frame,
        x_nm: (x * px) as f32,
        y_nm: (y * px) as f32,
        sigma_nm: (s.sigma * px) as f32,
        photons: (s.photons * f2) as f32,
        background: (s.background * f2) as f32,
        bkgstd: (s.residual_std * f2) as f32,
        uncertainty_nm: (((s.crlb_x + s.crlb_y) / 2.0).sqrt() * px) as f32,
    })
}

/// Localizes the molecules of one frame of raw ADU values (`w`×`h`, x fastest); `frame` is
/// the frame number (from 1) written into the results.
pub fn localize_frame(
    adu: &[f32],
    w: usize,
    h: usize,
    frame: u32,
    opts: &LocalizeOptions,
) -> Result<Vec<Localization>> {
    let windows = frame_windows(adu, w, h, frame, opts)?;
    let win = 2 * opts.fit.radius + 1;
    let n = win * win;
    Ok(windows
        .at
        .iter()
        .enumerate()
        .filter_map(|(k, at)| {
            let range = k * n..(k + 1) * n;
            let used = Some(&windows.used[range.clone()]);
            let s = fit_spot_masked(&windows.values[range], win, used, &opts.fit)?;
            localization(at, &s, frame, opts)
        })
        .collect())
}

/// [`localize_frames`] with the fits on a GPU: the windows of all frames are cut in parallel
/// on the CPU, then fitted in one batch by `fitter`.
fn localize_frames_gpu(
    fitter: &super::fit_cuda::SpotFitter,
    frames: &[f32],
    w: usize,
    h: usize,
    first_frame: u32,
    opts: &LocalizeOptions,
) -> Result<Vec<Localization>> {
    let per_frame = each_frame(frames, w, h, first_frame, |f, frame| {
        frame_windows(f, w, h, frame, opts)
    })?;
    let values: Vec<f64> = per_frame
        .iter()
        .flat_map(|f| f.values.iter().copied())
        .collect();
    let used: Vec<bool> = per_frame
        .iter()
        .flat_map(|f| f.used.iter().copied())
        .collect();
    let win = 2 * opts.fit.radius + 1;
    let mut spots = fitter.fit(&values, &used, win, &opts.fit)?.into_iter();
    let mut out = Vec::new();
    for (k, f) in per_frame.iter().enumerate() {
        for at in &f.at {
            if let Some(s) = spots.next().flatten() {
                out.extend(localization(at, &s, first_frame + k as u32, opts));
            }
        }
    }
    Ok(out)
}

/// Localizes `n` consecutive frames stored contiguously (`n`·`h`·`w` values), the first being
/// frame number `first_frame`, in parallel. Results in frame order.
pub fn localize_frames(
    frames: &[f32],
    w: usize,
    h: usize,
    first_frame: u32,
    opts: &LocalizeOptions,
) -> Result<Vec<Localization>> {
    let per_frame = each_frame(frames, w, h, first_frame, |f, frame| {
        localize_frame(f, w, h, frame, opts)
    })?;
    Ok(per_frame.concat())
}

/// `job(frame pixels, frame number)` for each of the `w`×`h` frames stored contiguously in
/// `frames`, the first being number `first_frame`, in parallel; results in frame order.
fn each_frame<T: Send>(
    frames: &[f32],
    w: usize,
    h: usize,
    first_frame: u32,
    job: impl Fn(&[f32], u32) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    let plane = w * h;
    if plane == 0 || frames.len() % plane != 0 {
        return invalid!(
            "{} pixel values are not a whole number of {w}×{h} frames",
            frames.len()
        );
    }
    frames
        .par_chunks(plane)
        .enumerate()
        .map(|(k, f)| job(f, first_frame + k as u32))
        .collect()
}

/// Localizes a stream of frames pushed in any number at a time, processing them in chunks
/// of [`CHUNK_FRAMES`] so that only one chunk of raw frames is ever in memory. The typical
/// PSF σ is taken from the first fits (see [`LocalizeOptions::sigma_tolerance`]).
pub struct Localizer {
    opts: LocalizeOptions,
    width: usize,
    height: usize,
    /// Frames waiting to be localized.
    pending: Vec<f32>,
    /// Frames localized so far.
    done: usize,
    out: Vec<Localization>,
    /// Accepted σ range, nm, once known.
    sigma_range: Option<(f32, f32)>,
    /// `out[unfiltered..]` has not been through the σ filter yet.
    unfiltered: usize,
    /// The GPU that fits the spots, when the device is CUDA (chosen at the first frame).
    gpu: Option<super::fit_cuda::SpotFitter>,
}

impl Localizer {
    /// A localizer for frames of `width`×`height` pixels.
    pub fn new(width: usize, height: usize, opts: &LocalizeOptions) -> Result<Localizer> {
        if width == 0 || height == 0 {
            return invalid!("the frames are empty ({width}×{height} pixels)");
        }
        opts.validate(width, height)?;
        Ok(Localizer {
            opts: *opts,
            width,
            height,
            pending: Vec::new(),
            done: 0,
            out: Vec::new(),
            sigma_range: None,
            unfiltered: 0,
            gpu: None,
        })
    }

    /// Frames pushed so far.
    pub fn frames(&self) -> usize {
        self.done + self.pending.len() / (self.width * self.height)
    }

    /// Localizations so far (frames still pending not included).
    pub fn localizations(&self) -> usize {
        self.out.len()
    }

    /// Adds whole frames (x fastest, frame after frame), localizing every full chunk.
    pub fn push(&mut self, frames: &[f32], progress: &mut dyn Progress) -> Result<()> {
        let plane = self.width * self.height;
        if frames.len() % plane != 0 {
            return invalid!(
                "{} pixel values are not a whole number of {}×{} frames",
                frames.len(),
                self.width,
                self.height
            );
        }
        if self.frames() == 0 && !frames.is_empty() {
            check_offset(&frames[..plane], 1, &self.opts.camera)?;
            let device = self.choose_device(progress);
            progress.log(&format!("Localizing on {device}"));
        }
        let mut rest = frames;
        while !rest.is_empty() {
            let room = CHUNK_FRAMES * plane - self.pending.len();
            let take = room.min(rest.len());
            if self.pending.is_empty() && take == CHUNK_FRAMES * plane {
                // A whole chunk straight from the caller's buffer.
                self.localize(&rest[..take], progress)?;
            } else {
                self.pending.extend_from_slice(&rest[..take]);
                if self.pending.len() == CHUNK_FRAMES * plane {
                    let chunk = std::mem::take(&mut self.pending);
                    self.localize(&chunk, progress)?;
                    self.pending = chunk;
                    self.pending.clear();
                }
            }
            rest = &rest[take..];
        }
        Ok(())
    }

    /// Localizes what is pending and returns every localization, in frame order.
    pub fn finish(mut self, progress: &mut dyn Progress) -> Result<Vec<Localization>> {
        let chunk = std::mem::take(&mut self.pending);
        if !chunk.is_empty() {
            self.localize(&chunk, progress)?;
        }
        if self.done == 0 {
            return invalid!("the stack is empty: there are no frames to localize");
        }
        // With fewer than SIGMA_SAMPLE fits in all, the typical σ is unknown: none is rejected.
        self.out.shrink_to_fit();
        Ok(self.out)
    }

    /// The device that fits the spots: a GPU when the request allows it and one can be used
    /// (its kernel loaded), else the CPU; why a GPU that was wanted is not used is logged.
    fn choose_device(&mut self, progress: &mut dyn Progress) -> Device {
        let mut warn = |w: String| progress.log(&format!("Warning: {w}"));
        self.gpu = choose_gpu(self.opts.device, "spot fitting", &mut warn, |g| {
            super::fit_cuda::SpotFitter::new(g.ordinal).map_err(|e| e.to_string())
        });
        if let Some(fitter) = &self.gpu {
            return fitter.device();
        }
        Device::Cpu {
            threads: rayon::current_num_threads(),
        }
    }

    /// The localizations of `frames`, the first being frame number `first`: on the GPU when
    /// one fits the spots (a GPU failure is logged, and the CPU fits from then on), else on the
    /// CPU.
    fn localize_chunk(
        &mut self,
        frames: &[f32],
        first: u32,
        progress: &mut dyn Progress,
    ) -> Result<Vec<Localization>> {
        let (w, h) = (self.width, self.height);
        let opts = &self.opts;
        let on_gpu = run_on_gpu(
            &mut self.gpu,
            "spot fitting",
            |fitter| fitter.device().ran_on(),
            progress,
            |fitter, _| localize_frames_gpu(fitter, frames, w, h, first, opts),
        )?;
        if let OnGpu::Done(found) = on_gpu {
            return Ok(found);
        }
        localize_frames(frames, w, h, first, &self.opts)
    }

    fn localize(&mut self, frames: &[f32], progress: &mut dyn Progress) -> Result<()> {
        check_cancel(progress)?;
        let (w, h) = (self.width, self.height);
        let found = self.localize_chunk(frames, self.done as u32 + 1, progress)?;
        self.out.extend(found);
        self.done += frames.len() / (w * h);
        if self.sigma_range.is_none() && self.out.len() >= SIGMA_SAMPLE {
            self.learn_sigma(progress);
        }
        self.filter_sigma();
        progress.status(&format!(
            "Localized {} frames: {} molecules",
            self.done,
            self.out.len()
        ));
        Ok(())
    }

    fn learn_sigma(&mut self, progress: &mut dyn Progress) {
        let Some(t) = self.opts.sigma_tolerance else {
            return;
        };
        let mut s: Vec<f32> = self.out.iter().map(|l| l.sigma_nm).collect();
        s.sort_by(f32::total_cmp);
        let m = s[s.len() / 2];
        let (lo, hi) = (m * (1.0 - t as f32), m * (1.0 + t as f32));
        self.sigma_range = Some((lo, hi));
        let px = self.opts.pixel_nm as f32;
        progress.log(&format!(
            "Typical PSF σ {:.2} pixels; fits with σ outside {:.2}–{:.2} pixels are rejected",
            m / px,
            lo / px,
            hi / px
        ));
    }

    fn filter_sigma(&mut self) {
        if let Some((lo, hi)) = self.sigma_range {
            let mut k = self.unfiltered;
            for i in self.unfiltered..self.out.len() {
                if (lo..=hi).contains(&self.out[i].sigma_nm) {
                    self.out[k] = self.out[i];
                    k += 1;
                }
            }
            self.out.truncate(k);
            self.unfiltered = k;
        }
    }
}

/// Localizes every frame of a stack in ADU, shape (frames, height, width), chunk by chunk.
pub fn localize_stack(
    stack: &Array3<f32>,
    opts: &LocalizeOptions,
    progress: &mut dyn Progress,
) -> Result<Vec<Localization>> {
    let (n, h, w) = stack.dim();
    if n == 0 || h == 0 || w == 0 {
        return invalid!("the stack is empty ({w}×{h} pixels, {n} frames): nothing to localize");
    }
    let mut loc = Localizer::new(w, h, opts)?;
    let mut chunk = Vec::with_capacity(CHUNK_FRAMES * w * h);
    for start in (0..n).step_by(CHUNK_FRAMES) {
        let end = (start + CHUNK_FRAMES).min(n);
        chunk.clear();
        chunk.extend(stack.slice(ndarray::s![start..end, .., ..]).iter());
        loc.push(&chunk, progress)?;
        progress.fraction(end as f32 / n as f32);
    }
    loc.finish(progress)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smlm::synthetic::{simulate_smlm, SmlmSimOptions};
    use crate::NoProgress;

    fn sim(frames: usize) -> (Array3<f32>, LocalizeOptions) {
        let o = SmlmSimOptions {
            active_per_frame: 4.0,
            ..SmlmSimOptions::low_density(frames)
        };
        let s = simulate_smlm(&o).unwrap();
        let opts = LocalizeOptions {
            camera: o.camera.analysis_camera(),
            ..LocalizeOptions::default()
        };
        (s.frames, opts)
    }

    /// Frames pushed one at a time, in odd batches or all at once give the same table.
    #[test]
    fn streaming_does_not_change_the_result() {
        let (stack, opts) = sim(600);
        let all = localize_stack(&stack, &opts, &mut NoProgress).unwrap();
        assert!(all.len() > 1000, "{}", all.len());
        let data = stack.as_slice().unwrap();
        let plane = 64 * 64;
        for batch in [1usize, 7, 300] {
            let mut loc = Localizer::new(64, 64, &opts).unwrap();
            for chunk in data.chunks(batch * plane) {
                loc.push(chunk, &mut NoProgress).unwrap();
            }
            assert_eq!(
                loc.finish(&mut NoProgress).unwrap(),
                all,
                "batches of {batch}"
            );
        }
        assert!(all.windows(2).all(|w| w[0].frame <= w[1].frame));
    }

    #[test]
    fn bad_stacks_are_refused_with_a_reason() {
        let (mut stack, opts) = sim(2);
        let e = |s: &Array3<f32>, o: &LocalizeOptions| {
            localize_stack(s, o, &mut NoProgress)
                .unwrap_err()
                .to_string()
        };
        let high = LocalizeOptions {
            camera: Camera {
                offset_adu: 10_000.0,
                ..opts.camera
            },
            ..opts
        };
        assert!(e(&stack, &high).contains("is above the signal"));
        assert!(e(&Array3::zeros((0, 64, 64)), &opts).contains("empty"));
        assert!(e(&Array3::zeros((1, 5, 5)), &opts).contains("smaller than the 7×7"));
        // A single frame is a valid stack.
        let one = stack.slice(ndarray::s![0..1, .., ..]).to_owned();
        localize_stack(&one, &opts, &mut NoProgress).unwrap();
        stack[[1, 3, 4]] = f32::NAN;
        let before = stack.clone();
        let msg = e(&stack, &opts);
        assert!(msg.contains("frame 2") && msg.contains("x=4, y=3"), "{msg}");
        assert_eq!(format!("{before:?}"), format!("{stack:?}"));
    }

    /// Esc / Ctrl-C stops between chunks with `Cancelled`.
    #[test]
    fn cancel_stops_the_run() {
        struct CancelAfter(usize);
        impl Progress for CancelAfter {
            fn cancelled(&mut self) -> bool {
                self.0 = self.0.saturating_sub(1);
                self.0 == 0
            }
        }
        let (stack, opts) = sim(3 * CHUNK_FRAMES);
        let r = localize_stack(&stack, &opts, &mut CancelAfter(2));
        assert!(matches!(r, Err(crate::Error::Cancelled)), "{r:?}");
    }
}
