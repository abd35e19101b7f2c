//! Which device runs a job: the CPU always, an NVIDIA GPU when the library was built with the
//! `cuda` feature and a GPU is there. The device actually used is reported to the caller.

use crate::{invalid, Result};

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceRequest {
    /// The GPU when there is one, else the CPU.
    #[default]
    Auto,
    Cpu,
    /// CUDA device by ordinal.
    Cuda(usize),
}

impl std::str::FromStr for DeviceRequest {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "" | "auto" => Ok(DeviceRequest::Auto),
            "cpu" => Ok(DeviceRequest::Cpu),
            "cuda" | "gpu" => Ok(DeviceRequest::Cuda(0)),
            _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(n)) => Ok(DeviceRequest::Cuda(n)),
                _ => invalid!("unknown device '{s}': use auto, cpu, cuda or cuda:N"),
            },
        }
    }
}

/// The device a job ran on, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Device {
    Cpu { threads: usize },
    Cuda { ordinal: usize, name: String },
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu { threads } => write!(f, "CPU ({threads} threads)"),
            Device::Cuda { ordinal, name } => write!(f, "CUDA:{ordinal} ({name})"),
        }
    }
}

/// Picks the device for a job that has only a CPU implementation so far. Returns the device
/// and, when the request could not be honoured, the reason (to be logged).
pub fn select_cpu_only(request: DeviceRequest) -> (Device, Option<String>) {
    let cpu = Device::Cpu {
        threads: rayon::current_num_threads(),
    };
    match request {
        DeviceRequest::Cpu | DeviceRequest::Auto => (cpu, None),
        DeviceRequest::Cuda(n) => (
            cpu,
            Some(format!(
                "CUDA:{n} was requested but this operation has no GPU implementation yet{}; running on the CPU",
                if cfg!(feature = "cuda") { "" } else { " and this library was built without CUDA" }
            )),
        ),
    }
}

/// Build features, for `About Fluorecon…` and `fluorecon info`.
pub fn build_features() -> Vec<&'static str> {
    let mut f = vec!["cpu"];
    if cfg!(feature = "cuda") {
        f.push("cuda");
    }
    f
}

/// Human-readable list of the devices found (one per line).
pub fn devices_found() -> Vec<String> {
    let mut out = vec![format!(
        "CPU: {} threads ({})",
        rayon::current_num_threads(),
        std::env::consts::ARCH
    )];
    out.extend(cuda_devices());
    out
}

#[cfg(feature = "cuda")]
fn cuda_devices() -> Vec<String> {
    // The driver library is opened at run time; a missing driver is a message, not a crash.
    let probe = std::panic::catch_unwind(|| -> std::result::Result<Vec<String>, String> {
        use cudarc::driver::result as drv;
        drv::init().map_err(|e| format!("{e:?}"))?;
        let n = drv::device::get_count().map_err(|e| format!("{e:?}"))?;
        let mut names = Vec::new();
        for i in 0..n {
            let dev = drv::device::get(i).map_err(|e| format!("{e:?}"))?;
            let name = drv::device::get_name(dev).unwrap_or_else(|_| "unknown GPU".into());
            let mem = unsafe { drv::device::total_mem(dev) }.unwrap_or(0);
            names.push(format!("CUDA:{i}: {name}, {} MiB", mem / (1 << 20)));
        }
        Ok(names)
    });
    match probe {
        Ok(Ok(v)) if v.is_empty() => vec!["CUDA: driver found, no GPU".into()],
        Ok(Ok(v)) => v,
        Ok(Err(e)) => vec![format!("CUDA: not available ({e})")],
        Err(_) => vec!["CUDA: not available (no NVIDIA driver library found)".into()],
    }
}

#[cfg(not(feature = "cuda"))]
fn cuda_devices() -> Vec<String> {
    vec!["CUDA: not built (library compiled without the 'cuda' feature)".into()]
}
