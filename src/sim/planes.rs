//! The Wiener filter of every plane, on the GPU while it works, else on the CPU.

use super::reconstruct::{wiener_sim_with, WienerFilters, WienerSettings};
use super::wiener_cuda;
use super::{AngleParams, Otf, SimOptics, SimOptions};
use crate::device::{self, run_on_gpu, Device, OnGpu};
use crate::progress::Progress;
use crate::Result;

/// Runs the Wiener filter of each plane: on the GPU while it works (the `cuda` feature and a
/// usable GPU), on the CPU otherwise. The filters are computed (on the host) for the first
/// plane and again only when the pattern parameters change.
pub(super) struct Planes {
    raw: (usize, usize),
    phases: usize,
    settings: WienerSettings,
    /// The parameters the filters were computed for, and the filters.
    filters: Option<(Vec<AngleParams>, WienerFilters)>,
    gpu: Option<wiener_cuda::SimGpu>,
    /// Whether the GPU holds the current filters.
    gpu_filters: bool,
}

impl Planes {
    /// Opens the GPU that `opts.device` asks for and prepares it for frames of `raw` pixels,
    /// or pushes to `why_not` why the CPU will run instead.
    pub(super) fn new(
        opts: &SimOptions,
        raw: (usize, usize),
        settings: WienerSettings,
        why_not: &mut Vec<String>,
    ) -> Planes {
        let gpu = device::open_gpu(opts.device, why_not).and_then(|g| {
            let on = g.device().ran_on();
            wiener_cuda::SimGpu::new(g, raw, opts.angles, opts.phases)
                .map_err(|e| {
                    why_not.push(format!("SIM cannot run on {on} ({e}); running on the CPU"))
                })
                .ok()
        });
        Planes {
            raw,
            phases: opts.phases,
            settings,
            filters: None,
            gpu,
            gpu_filters: false,
        }
    }

    /// The device the planes run on now.
    pub(super) fn device(&self) -> Device {
        if let Some(g) = &self.gpu {
            return g.device();
        }
        device::cpu_device()
    }

    /// Reconstructs plane `plane` (0-based) from `frames` with pattern `params` into `out`
    /// (SIM, widefield, Wiener-filtered widefield). Returns the warning (logged to `progress`)
    /// when the GPU failed: this plane and the rest are then computed on the CPU.
    pub(super) fn run(
        &mut self,
        frames: &[Vec<&[f32]>],
        params: &[AngleParams],
        (optics, otf): (&SimOptics, &Otf),
        out: [&mut [f32]; 3],
        plane: usize,
        progress: &mut dyn Progress,
    ) -> Result<Option<String>> {
        if self.filters.as_ref().is_none_or(|(p, _)| p != params) {
            let f = WienerFilters::new(self.raw, self.phases, optics, otf, params, &self.settings);
            self.filters = Some((params.to_vec(), f));
            self.gpu_filters = false;
        }
        let filters = &self.filters.as_ref().expect("just set").1;
        let [a, b, c] = out;
        let gpu_filters = &mut self.gpu_filters;
        let on_gpu = run_on_gpu(
            &mut self.gpu,
            &format!("SIM of plane {}", plane + 1),
            |g| g.device().ran_on(),
            progress,
            |g, _| {
                if !*gpu_filters {
                    g.set_filters(filters)?;
                    *gpu_filters = true;
                }
                g.reconstruct(frames, [&mut *a, &mut *b, &mut *c])
            },
        )?;
        let warning = match on_gpu {
            OnGpu::Done(()) => return Ok(None),
            OnGpu::FellBack(w) => Some(w),
            OnGpu::NoGpu => None,
        };
        let out = [a, b, c];
        let r = wiener_sim_with(frames, filters);
        for (dst, src) in out
            .into_iter()
            .zip([r.sim, r.widefield, r.wiener_widefield])
        {
            dst.copy_from_slice(&src);
        }
        Ok(warning)
    }
}
