//! 2D SIM Wiener reconstruction on the GPU: cuFFT for the 2D complex transforms and
//! NVRTC-compiled kernels (`sim_kernels.cu`) for the band separation, zero padding, phase-ramp
//! shift, Wiener division and the widefield images, one plane at a time. The filters (OTF
//! grids, Wiener denominators with apodisation, separation weights, phase ramps) are the ones
//! [`WienerFilters`] computes on the host for the CPU path too, so the result is the CPU's
//! ([`crate::sim::reconstruct::wiener_sim_with`]) up to float rounding. Pattern estimation
//! stays on the CPU (a few small FFTs and searches per stack, once by default). The buffers
//! and plans for one frame size are allocated once and serve every plane of a stack.

use super::reconstruct::{WienerFilters, UPSCALE};
use crate::device::Device;
use crate::fft::Complex32;
use crate::gpu::cufft::ComplexPlan;
use crate::gpu::{gpu_error, kernels, launch, ptr, Gpu};
use crate::{Error, Result};
use cudarc::driver::CudaSlice;

/// Kernel source, compiled at run time for the GPU present.
const KERNELS: &str = include_str!("wiener_kernels.cu");

kernels!("SIM", KERNELS; separate_bands, zero_pad, shift_add_real, wiener_combine,
    widefield_pack, real_part_clipped, split_packed);

/// GPU memory, bytes, that [`SimGpu`] needs for raw frames of `raw` = (ny, nx) pixels,
/// `angles` × `phases` per plane: the raw frames of a plane, band 0's sum and band +1 on the
/// raw grid (complex), three complex images on the 2× grid (band +1 padded, the shifted sum
/// that becomes the numerator, the widefield spectrum), the OTF on both grids, the SIM and
/// widefield filters, the three results, the separation weights and phase ramps, and a cuFFT
/// workspace per plan (estimated as one image each).
pub fn footprint(raw: (usize, usize), angles: usize, phases: usize) -> usize {
    let coarse = raw.0 * raw.1;
    let fine = 4 * coarse;
    let fine_side = 2 * (raw.0 + raw.1);
    let floats = angles * phases * coarse
        + 2 * 2 * coarse
        + 3 * 2 * fine
        + coarse
        + 3 * fine
        + 3 * fine
        + angles * (2 * 2 * phases + 2 * fine_side)
        + 2 * coarse
        + 2 * fine;
    4 * floats
}

/// The per-plane scalars of the filters last uploaded.
struct Uploaded {
    /// Band +1 zero-padding factor per direction.
    scales: Vec<f32>,
    angles: f32,
    /// Nyquist row and column of the 2× grid, −1 for none.
    nyquist: (i32, i32),
}

/// Plans, kernels and buffers for reconstructing planes of one frame size on one GPU.
/// (Fields drop in order: every GPU resource before the [`Gpu`] that owns the context.)
pub struct SimGpu {
    k: Kernels,
    coarse: ComplexPlan,
    fine: ComplexPlan,
    /// The preprocessed frames of a plane, direction-major then phase.
    frames: CudaSlice<f32>,
    /// Band 0 summed over directions (raw grid, complex).
    zero_sum: CudaSlice<f32>,
    /// Band +1 of one direction (raw grid, complex).
    band: CudaSlice<f32>,
    /// Band +1 zero-padded into the 2× grid (complex).
    padded: CudaSlice<f32>,
    /// Shifted bands summed in real space, then the numerator (2× grid, complex).
    sum: CudaSlice<f32>,
    /// Band 0 zero-padded, then the packed widefield spectrum (2× grid, complex).
    widefield: CudaSlice<f32>,
    h_coarse: CudaSlice<f32>,
    h_fine: CudaSlice<f32>,
    sim_filter: CudaSlice<f32>,
    widefield_filter: CudaSlice<f32>,
    /// Per direction: band 0 weights, then band +1 weights (complex, one per phase).
    weights: CudaSlice<f32>,
    /// Per direction: the column ramp (fx), then the row ramp (fy) (complex).
    ramps: CudaSlice<f32>,
    /// SIM, widefield and Wiener-filtered widefield images, one after the other.
    out: CudaSlice<f32>,
    uploaded: Option<Uploaded>,
    raw: (usize, usize),
    angles: usize,
    phases: usize,
    gpu: Gpu,
}

/// Interleaved (re, im) floats of complex values.
fn floats<'a>(values: impl IntoIterator<Item = &'a Complex32>) -> Vec<f32> {
    values.into_iter().flat_map(|c| [c.re, c.im]).collect()
}

impl SimGpu {
    /// Prepares `gpu` for planes of `raw` = (ny, nx) frames, `angles` × `phases` per plane:
    /// checks that [`footprint`] fits in its free memory, compiles the kernels, plans the
    /// transforms and allocates every buffer.
    pub fn new(gpu: Gpu, raw: (usize, usize), angles: usize, phases: usize) -> Result<SimGpu> {
        gpu.ctx
            .bind_to_thread()
            .map_err(|e| gpu_error("binding the GPU", e))?;
        gpu.check_free_memory(footprint(raw, angles, phases), "this SIM reconstruction")?;
        let k = Kernels::load(&gpu)?;
        let stream = &gpu.stream;
        let (ny, nx) = raw;
        let (coarse, fine) = (ny * nx, 4 * ny * nx);
        let alloc = |len: usize| {
            stream
                .alloc_zeros::<f32>(len)
                .map_err(|e| gpu_error("allocating GPU memory", e))
        };
        Ok(SimGpu {
            coarse: ComplexPlan::new((ny, nx), stream).map_err(Error::Device)?,
            fine: ComplexPlan::new((2 * ny, 2 * nx), stream).map_err(Error::Device)?,
            frames: alloc(angles * phases * coarse)?,
            zero_sum: alloc(2 * coarse)?,
            band: alloc(2 * coarse)?,
            padded: alloc(2 * fine)?,
            sum: alloc(2 * fine)?,
            widefield: alloc(2 * fine)?,
            h_coarse: alloc(coarse)?,
            h_fine: alloc(fine)?,
            sim_filter: alloc(fine)?,
            widefield_filter: alloc(fine)?,
            weights: alloc(angles * 2 * 2 * phases)?,
            ramps: alloc(angles * 2 * (2 * nx + 2 * ny))?,
            out: alloc(3 * fine)?,
            k,
            uploaded: None,
            raw,
            angles,
            phases,
            gpu,
        })
    }

    /// The GPU, as the result reports it.
    pub fn device(&self) -> Device {
        self.gpu.device()
    }

    /// Uploads the filters of the planes that follow (computed on the host for this frame
    /// size, direction and phase count).
    pub fn set_filters(&mut self, f: &WienerFilters) -> Result<()> {
        if f.raw != self.raw || f.phases != self.phases || f.directions.len() != self.angles {
            return Err(Error::Internal(format!(
                "SIM filters for {:?} frames, {} directions × {} phases on a GPU set up for {:?}, \
                 {} × {}",
                f.raw,
                f.directions.len(),
                f.phases,
                self.raw,
                self.angles,
                self.phases
            )));
        }
        self.uploaded = None;
        let stream = &self.gpu.stream;
        let weights = floats(f.directions.iter().flat_map(|d| d.weights.iter().flatten()));
        let ramps = floats(
            f.directions
                .iter()
                .flat_map(|d| d.ramp_x.iter().chain(&d.ramp_y)),
        );
        for (src, dst) in [
            (&f.h_coarse, &mut self.h_coarse),
            (&f.h_fine, &mut self.h_fine),
            (&f.sim, &mut self.sim_filter),
            (&f.widefield, &mut self.widefield_filter),
            (&weights, &mut self.weights),
            (&ramps, &mut self.ramps),
        ] {
            if src.len() != dst.len() {
                return Err(Error::Internal(format!(
                    "SIM filter of {} values for a GPU buffer of {}",
                    src.len(),
                    dst.len()
                )));
            }
            stream
                .memcpy_htod(src.as_slice(), dst)
                .map_err(|e| gpu_error("copying the SIM filters to the GPU", e))?;
        }
        let index = |i: Option<usize>| i.map_or(-1, |i| i as i32);
        self.uploaded = Some(Uploaded {
            scales: f.directions.iter().map(|d| d.scale).collect(),
            angles: f.angles,
            nyquist: (index(f.nyquist.0), index(f.nyquist.1)),
        });
        Ok(())
    }

    /// Reconstructs one plane with the filters set last: `frames[a][p]` is the (ny, nx) frame
    /// of direction a and phase p, preprocessed as for the CPU. Writes the SIM, widefield and
    /// Wiener-filtered widefield images (2ny, 2nx) to `out`.
    pub fn reconstruct(&mut self, frames: &[Vec<&[f32]>], out: [&mut [f32]; 3]) -> Result<()> {
        let Some(up) = self.uploaded.as_ref() else {
            return Err(Error::Internal("SIM on the GPU without filters".into()));
        };
        let (ny, nx) = self.raw;
        let (fy, fx) = (2 * ny, 2 * nx);
        let (n_c, n_f) = (ny * nx, fy * fx);
        let phases = self.phases;
        let sizes_ok = frames.len() == self.angles
            && frames
                .iter()
                .all(|a| a.len() == phases && a.iter().all(|f| f.len() == n_c))
            && out.iter().all(|o| o.len() == n_f);
        if !sizes_ok {
            return Err(Error::Internal(
                "SIM frames or outputs of the wrong size for the GPU buffers".into(),
            ));
        }
        let gpu = &self.gpu;
        let stream = &gpu.stream;
        gpu.ctx
            .bind_to_thread()
            .map_err(|e| gpu_error("binding the GPU", e))?;
        for (i, frame) in frames.iter().flatten().enumerate() {
            stream
                .memcpy_htod(*frame, &mut self.frames.slice_mut(i * n_c..(i + 1) * n_c))
                .map_err(|e| gpu_error("copying the SIM frames to the GPU", e))?;
        }
        let k = &self.k;
        let fft = |r: std::result::Result<(), String>| r.map_err(Error::Device);
        let (ny_i, nx_i, fy_i, fx_i) = (ny as i32, nx as i32, fy as i32, fx as i32);
        let (nc_i, nf_i, phases_i) = (n_c as i64, n_f as i64, phases as i32);
        let inv_n = 1.0 / n_f as f32;
        let (frames_p, zero_p, band_p) = (
            ptr(gpu, Some(&self.frames)),
            ptr(gpu, Some(&self.zero_sum)),
            ptr(gpu, Some(&self.band)),
        );
        let (padded_p, sum_p, wf_p) = (
            ptr(gpu, Some(&self.padded)),
            ptr(gpu, Some(&self.sum)),
            ptr(gpu, Some(&self.widefield)),
        );
        let (hc_p, weights_p, ramps_p) = (
            ptr(gpu, Some(&self.h_coarse)),
            ptr(gpu, Some(&self.weights)),
            ptr(gpu, Some(&self.ramps)),
        );
        // Byte offsets: 4 per float, 8 per complex value.
        let at = |p: u64, bytes: usize| p + bytes as u64;

        // Bands ±1 of every direction: separated, H-weighted on the raw grid, zero-padded,
        // back to real space, shifted by the phase ramp and summed (see wiener_sim_with).
        for (a, &scale) in up.scales.iter().enumerate() {
            let first = i32::from(a == 0);
            let (fr, w0) = (
                at(frames_p, 4 * a * phases * n_c),
                at(weights_p, 8 * 2 * a * phases),
            );
            let w1 = at(w0, 8 * phases);
            launch!(gpu, k.separate_bands, n_c; fr, phases_i, w0, w1, zero_p, band_p, nc_i, first)?;
            fft(self.coarse.forward(stream, &mut self.band))?;
            launch!(gpu, k.zero_pad, n_f; band_p, hc_p, ny_i, nx_i, padded_p, fy_i, fx_i, scale)?;
            fft(self.fine.inverse(stream, &mut self.padded))?;
            let ramp_x = at(ramps_p, 8 * a * (fx + fy));
            let ramp_y = at(ramp_x, 8 * fx);
            launch!(gpu, k.shift_add_real, n_f; sum_p, padded_p, ramp_x, ramp_y, fy_i, fx_i, inv_n, first)?;
        }
        fft(self.fine.forward(stream, &mut self.sum))?;
        // Band 0, the Wiener filter, the SIM image.
        fft(self.coarse.forward(stream, &mut self.zero_sum))?;
        let (no_h, upscale) = (0u64, UPSCALE);
        launch!(gpu, k.zero_pad, n_f; zero_p, no_h, ny_i, nx_i, wf_p, fy_i, fx_i, upscale)?;
        let (hf_p, sim_f_p, wf_f_p) = (
            ptr(gpu, Some(&self.h_fine)),
            ptr(gpu, Some(&self.sim_filter)),
            ptr(gpu, Some(&self.widefield_filter)),
        );
        launch!(gpu, k.wiener_combine, n_f; sum_p, wf_p, hf_p, sim_f_p, nf_i)?;
        fft(self.fine.inverse(stream, &mut self.sum))?;
        let out_p = ptr(gpu, Some(&self.out));
        let (sim_out, wf_out, wwf_out) = (out_p, at(out_p, 4 * n_f), at(out_p, 8 * n_f));
        launch!(gpu, k.real_part_clipped, n_f; sum_p, sim_out, nf_i, inv_n)?;
        // Widefield and Wiener-filtered widefield from one packed inverse transform.
        let ((nyq_y, nyq_x), angles) = (up.nyquist, up.angles);
        launch!(gpu, k.widefield_pack, n_f; wf_p, wf_f_p, fy_i, fx_i, nyq_y, nyq_x, angles)?;
        fft(self.fine.inverse(stream, &mut self.widefield))?;
        launch!(gpu, k.split_packed, n_f; wf_p, wf_out, wwf_out, nf_i, inv_n)?;
        for (i, dst) in out.into_iter().enumerate() {
            stream
                .memcpy_dtoh(&self.out.slice(i * n_f..(i + 1) * n_f), dst)
                .map_err(|e| gpu_error("copying the SIM result from the GPU", e))?;
        }
        gpu.sync()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NVRTC needs no GPU (the CUDA build links libnvrtc.so.13): the kernels must compile for
    /// sm_80 and every one the engine loads must be in the PTX.
    #[test]
    fn sim_kernels_compile_with_nvrtc() {
        crate::gpu::assert_compiles_for_sm80("SIM", KERNELS, KERNEL_NAMES);
    }

    /// The memory estimate for 1024 × 1024 frames, 3 × 3 per plane: per raw pixel 9 floats of
    /// raw frames, 4, 24, 13 and 12 for the bands, the 2× grid images, the filters and the
    /// results, 10 for the cuFFT workspaces (≈ 302 MB), plus the weights and ramps.
    #[test]
    fn memory_estimate() {
        let c = 1024 * 1024;
        let extra = 3 * (2 * 2 * 3 + 2 * (2048 + 2048));
        assert_eq!(footprint((1024, 1024), 3, 3), 4 * (72 * c + extra));
        assert_eq!(footprint((1024, 1024), 3, 3) >> 20, 288);
    }
}
