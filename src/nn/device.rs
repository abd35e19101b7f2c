//! The device of a network job: the CPU or a GPU (candle's CUDA device), chosen per job from
//! the user's request, held per thread while the job runs, and the fallback to the CPU when
//! the job fails on the GPU.

use crate::device::{run_on_gpu, OnGpu};
use candle_core::Device;

thread_local! {
    /// The device of this thread's current network job and its name for the log (see
    /// [`DeviceScope`]); the CPU outside of a job.
    static CURRENT: std::cell::RefCell<(Device, String)> =
        std::cell::RefCell::new((Device::Cpu, cpu_name()));
}

/// The device networks of the current job run on: what [`run_on_device`] chose for this
/// thread, else the CPU. Tensors and networks of the job are created on it.
pub fn device() -> Device {
    CURRENT.with(|c| c.borrow().0.clone())
}

/// Human-readable name of [`device()`], for logs: "CPU (4 threads)" or "CUDA:0 (NVIDIA H100)".
pub fn device_name() -> String {
    CURRENT.with(|c| c.borrow().1.clone())
}

/// [`device_name()`] of the CPU.
pub fn cpu_name() -> String {
    format!(
        "CPU ({} threads)",
        candle_core::utils::get_num_threads().max(1)
    )
}

/// While it lives, [`device()`] on this thread is the device it was made with; dropping it
/// restores the previous one.
pub struct DeviceScope {
    previous: Option<(Device, String)>,
}

impl DeviceScope {
    pub fn enter(device: Device, name: String) -> DeviceScope {
        let previous = CURRENT.with(|c| c.replace((device, name)));
        DeviceScope {
            previous: Some(previous),
        }
    }

    /// Networks on the CPU.
    pub fn cpu() -> DeviceScope {
        DeviceScope::enter(Device::Cpu, cpu_name())
    }
}

impl Drop for DeviceScope {
    fn drop(&mut self) {
        if let Some(p) = self.previous.take() {
            CURRENT.with(|c| *c.borrow_mut() = p);
        }
    }
}

/// candle's device for GPU `ordinal`, made once per process (each one has its own stream and
/// loads candle's kernels on first use). Err: why it cannot be used (in the CPU build: candle
/// was built without CUDA).
fn cuda_device(ordinal: usize) -> std::result::Result<Device, String> {
    static DEVICES: std::sync::Mutex<Vec<(usize, Device)>> = std::sync::Mutex::new(Vec::new());
    let mut devices = DEVICES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, d)) = devices.iter().find(|(n, _)| *n == ordinal) {
        return Ok(d.clone());
    }
    let d = std::panic::catch_unwind(|| Device::new_cuda(ordinal))
        .map_err(|_| "candle's CUDA device panicked on start".to_string())?
        .map_err(|e| format!("candle could not open the GPU: {e}"))?;
    devices.push((ordinal, d.clone()));
    Ok(d)
}

/// The device for a network job asked to run on `request` and its name: a GPU (candle's CUDA
/// device) when the request allows it and one is usable, else the CPU; when a GPU was wanted
/// but cannot be used, the reason is logged as a warning.
pub fn select_device(
    request: crate::device::DeviceRequest,
    progress: &mut dyn crate::progress::Progress,
) -> (Device, String) {
    let mut warn = |w: String| progress.log(&format!("Warning: {w}"));
    crate::device::choose_gpu(request, "the networks", &mut warn, |g| {
        Ok((
            cuda_device(g.ordinal)?,
            format!("CUDA:{} ({})", g.ordinal, g.name),
        ))
    })
    .unwrap_or_else(|| (Device::Cpu, cpu_name()))
}

/// Runs a network job on the device `request` selects (see [`select_device`]): `job` creates
/// its tensors and networks on [`device()`] and names it with [`device_name()`]. On a GPU, a
/// failure of the job (a CUDA error such as running out of GPU memory, or a panic in candle's
/// CUDA code) is logged as a warning with its reason and the whole job runs again on the CPU
/// ([`crate::device::run_on_gpu`], the one fallback).
/// Returns the job's result and the name of the device that produced it.
pub fn run_on_device<T>(
    request: crate::device::DeviceRequest,
    progress: &mut dyn crate::progress::Progress,
    mut job: impl FnMut(&mut dyn crate::progress::Progress) -> crate::Result<T>,
) -> crate::Result<(T, String)> {
    let (dev, name) = select_device(request, progress);
    let mut gpu = (!dev.is_cpu()).then_some((dev, name));
    let on_gpu = run_on_gpu(
        &mut gpu,
        "the network",
        |(_, n)| n.clone(),
        progress,
        |g, p| {
            let _scope = DeviceScope::enter(g.0.clone(), g.1.clone());
            job(p).map(|t| (t, g.1.clone()))
        },
    )?;
    if let OnGpu::Done(done) = on_gpu {
        return Ok(done);
    }
    let _scope = DeviceScope::cpu();
    Ok((job(progress)?, cpu_name()))
}
