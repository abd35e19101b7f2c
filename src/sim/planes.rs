//! The Wiener filter of every plane, on the GPU while it works, else on the CPU.

use super::reconstruct::{wiener_sim_with, WienerFilters, WienerSettings};
use super::wiener_cuda;
use super::{AngleParams, Otf, SimOptics, SimOptions};
use crate::device::{self, Device};

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
    /// (SIM, widefield, Wiener-filtered widefield). Returns a warning when the GPU failed: this
    /// plane and the rest are then computed on the CPU.
    pub(super) fn run(
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
            self.gpu_filters = false;
        }
        let filters = &self.filters.as_ref().expect("just set").1;
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
