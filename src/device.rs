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

impl Device {
    /// "CUDA device 0 (NVIDIA H100)" or "the CPU (16 threads)": the device that ran a job, in
    /// the log's sentences.
    pub fn ran_on(&self) -> String {
        match self {
            Device::Cuda { ordinal, name } => format!("CUDA device {ordinal} ({name})"),
            Device::Cpu { threads } => format!("the CPU ({threads} threads)"),
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu { threads } => write!(f, "CPU ({threads} threads)"),
            Device::Cuda { ordinal, name } => write!(f, "CUDA:{ordinal} ({name})"),
        }
    }
}

/// For an operation with a GPU implementation: the GPU to run on, or `None` (the CPU) with
/// the reason when one was wanted but cannot be used. `auto` without a usable GPU in a CPU
/// build needs no reason (nothing was expected); in a CUDA build it says why.
pub fn select_gpu(
    request: DeviceRequest,
    cuda: &std::result::Result<CudaStatus, String>,
) -> (Option<CudaGpu>, Option<String>) {
    let ordinal = match request {
        DeviceRequest::Cpu => return (None, None),
        DeviceRequest::Auto => 0,
        DeviceRequest::Cuda(n) => n,
    };
    let asked = match request {
        DeviceRequest::Auto => "auto: no usable GPU".to_string(),
        _ => format!("CUDA:{ordinal} was requested but cannot be used"),
    };
    match cuda {
        Err(_) if request == DeviceRequest::Auto && !crate::gpu::BUILT_WITH_CUDA => (None, None),
        Err(reason) => (
            None,
            Some(format!("{asked} ({reason}); running on the CPU")),
        ),
        Ok(st) => match st.gpus.iter().find(|g| g.ordinal == ordinal) {
            Some(g) => (Some(g.clone()), None),
            None => (
                None,
                Some(format!(
                    "{asked} (the driver reports {} GPU(s)); running on the CPU",
                    st.gpus.len()
                )),
            ),
        },
    }
}

/// The GPU a job runs on, when the request and the machine allow one (only the `cuda` build
/// has GPUs: elsewhere [`crate::gpu::Gpu`] has no values); `None` is the CPU.
pub(crate) type GpuSlot = Option<crate::gpu::Gpu>;

/// The one device choice of every method with a GPU path: the GPU that `request` and the
/// machine allow ([`select_gpu`]), on which `open` sets up the method's own GPU resources
/// (a context, kernels, a copy of a network); `None` means the CPU. Why a GPU that was wanted
/// is not used (none usable, or `open` failed: "`what` cannot use CUDA:N (why)") goes to
/// `report`, ending in "; running on the CPU".
pub fn choose_gpu<G>(
    request: DeviceRequest,
    what: &str,
    report: &mut dyn FnMut(String),
    open: impl FnOnce(&CudaGpu) -> std::result::Result<G, String>,
) -> Option<G> {
    if request == DeviceRequest::Cpu {
        return None;
    }
    let (gpu, reason) = select_gpu(request, &cuda_status());
    if let Some(reason) = reason {
        report(reason);
    }
    let g = gpu?;
    open(&g)
        .map_err(|why| {
            report(format!(
                "{what} cannot use CUDA:{} ({why}); running on the CPU",
                g.ordinal
            ))
        })
        .ok()
}

/// What [`run_on_gpu`] did.
#[derive(Debug)]
pub enum OnGpu<T> {
    /// The GPU ran the job: its result.
    Done(T),
    /// There was no GPU: the caller runs its CPU path.
    NoGpu,
    /// The GPU failed: the warning (already logged) says why. The slot is empty now, so the
    /// rest of the work stays on the CPU; the caller runs its CPU path.
    FellBack(String),
}

/// Whether a job that failed with `e` on a GPU is run again on the CPU: any failure but a
/// cancel, an input the job cannot take or a file error (those would fail on the CPU the same
/// way).
pub fn worth_retrying_on_cpu(e: &crate::Error) -> bool {
    !matches!(
        e,
        crate::Error::Cancelled | crate::Error::InvalidInput(_) | crate::Error::File { .. }
    )
}

/// The one fallback after a GPU failure, used by every method with a GPU path and by the
/// networks: runs `job` on the GPU in `slot` when there is one ([`choose_gpu`] filled it).
/// When the job fails in a way the CPU would not repeat ([`worth_retrying_on_cpu`]) or panics
/// in the GPU code, "Warning: `what` failed on DEVICE (why); running it on the CPU" is logged,
/// the slot is emptied and [`OnGpu::FellBack`] returned; other errors are returned as they are.
/// `ran_on` names the slot's device for the log ([`Device::ran_on`]).
pub fn run_on_gpu<G, T>(
    slot: &mut Option<G>,
    what: &str,
    ran_on: impl Fn(&G) -> String,
    progress: &mut dyn crate::progress::Progress,
    job: impl FnOnce(&mut G, &mut dyn crate::progress::Progress) -> Result<T>,
) -> Result<OnGpu<T>> {
    let Some(gpu) = slot.as_mut() else {
        return Ok(OnGpu::NoGpu);
    };
    let device = ran_on(gpu);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(gpu, progress)))
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("no message");
            Err(crate::Error::Device(format!(
                "panic in the GPU code: {what}"
            )))
        });
    match result {
        Ok(t) => Ok(OnGpu::Done(t)),
        Err(e) if worth_retrying_on_cpu(&e) => {
            let warning = format!("{what} failed on {device} ({e}); running it on the CPU");
            progress.log(&format!("Warning: {warning}"));
            *slot = None;
            Ok(OnGpu::FellBack(warning))
        }
        Err(e) => Err(e),
    }
}

/// Opens the GPU for `request` (operations with a GPU path: RL, SIM), or None with the reason
/// pushed to `warnings` when one was wanted but cannot be used.
pub(crate) fn open_gpu(request: DeviceRequest, warnings: &mut Vec<String>) -> GpuSlot {
    choose_gpu(request, "this operation", &mut |w| warnings.push(w), |g| {
        crate::gpu::Gpu::open(g.ordinal).map_err(|e| e.to_string())
    })
}

/// The device of an opened GPU, for the result and the log.
pub(crate) fn gpu_device(gpu: &GpuSlot) -> Option<Device> {
    gpu.as_ref().map(crate::gpu::Gpu::device)
}

/// The CPU with rayon's thread count.
pub(crate) fn cpu_device() -> Device {
    Device::Cpu {
        threads: rayon::current_num_threads(),
    }
}

/// Build features, for `About Fluorecon…` and `fluorecon info`.
pub fn build_features() -> Vec<&'static str> {
    let mut f = vec!["cpu"];
    if crate::gpu::BUILT_WITH_CUDA {
        f.push("cuda");
    }
    f
}

/// Which build of the library this is: "cuda" (built with the `cuda` feature, the plugin's
/// `libfluorecon_cuda.so`) or "cpu" (`libfluorecon.so`).
pub fn library_flavour() -> &'static str {
    if crate::gpu::BUILT_WITH_CUDA {
        "cuda"
    } else {
        "cpu"
    }
}

/// One GPU as the CUDA driver reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CudaGpu {
    pub ordinal: usize,
    pub name: String,
    /// Total memory in MiB (2^20 bytes).
    pub memory_mib: usize,
    /// Compute capability (major, minor), e.g. (8, 0) for an A100.
    pub compute_capability: (i32, i32),
}

/// What the NVIDIA driver reports: its CUDA version and the GPUs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CudaStatus {
    /// CUDA version the driver supports, as `cuDriverGetVersion` encodes it: 1000 × major +
    /// 10 × minor (13000 is CUDA 13.0).
    pub driver_version: i32,
    pub gpus: Vec<CudaGpu>,
}

/// "13.0" for the driver version 13000.
pub fn cuda_version_text(v: i32) -> String {
    format!("{}.{}", v / 1000, (v % 1000) / 10)
}

/// Asks the NVIDIA driver for its version and GPUs. Err: why there is no
/// usable GPU, for the log (no driver, driver error, or a library built without CUDA).
pub fn cuda_status() -> std::result::Result<CudaStatus, String> {
    crate::gpu::probe()
}

/// The `info` lines about the library and its devices, "key: value" each, from the facts given
/// (separate from gathering them so that every case can be tested without a GPU).
pub fn info_lines(
    flavour: &str,
    features: &[&str],
    cpu_threads: usize,
    cuda: &std::result::Result<CudaStatus, String>,
) -> Vec<String> {
    let mut lines = vec![
        format!("Library flavour: {flavour}"),
        format!("Build features: {}", features.join(", ")),
    ];
    match cuda {
        Ok(st) => {
            lines.push(format!(
                "CUDA driver: {} (driver API version {}); library built for the CUDA 13.0 runtime",
                cuda_version_text(st.driver_version),
                st.driver_version
            ));
            if st.driver_version < 13000 {
                lines.push(format!(
                    "CUDA warning: the driver supports CUDA {} only; CUDA 13.0 needs driver 580 or newer",
                    cuda_version_text(st.driver_version)
                ));
            }
        }
        Err(reason) => lines.push(format!("CUDA driver: none ({reason})")),
    }
    lines.push(format!(
        "Device: CPU: {cpu_threads} threads ({})",
        std::env::consts::ARCH
    ));
    match cuda {
        Ok(st) if st.gpus.is_empty() => {
            lines.push("Device: CUDA: the driver found no GPU; running on the CPU".into())
        }
        Ok(st) => lines.extend(st.gpus.iter().map(|g| {
            format!(
                "Device: CUDA:{}: {}, {} MiB, compute capability {}.{}",
                g.ordinal, g.name, g.memory_mib, g.compute_capability.0, g.compute_capability.1
            )
        })),
        Err(_) => lines.push("Device: CUDA: none, running on the CPU".into()),
    }
    lines
}

/// Human-readable list of the devices found (one per line).
pub fn devices_found() -> Vec<String> {
    info_lines(
        library_flavour(),
        &build_features(),
        rayon::current_num_threads(),
        &cuda_status(),
    )
    .into_iter()
    .filter_map(|l| l.strip_prefix("Device: ").map(str::to_string))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(ordinal: usize, name: &str) -> CudaGpu {
        CudaGpu {
            ordinal,
            name: name.into(),
            memory_mib: 81_559,
            compute_capability: (9, 0),
        }
    }

    #[test]
    fn cpu_build_says_why_there_is_no_gpu() {
        let lines = info_lines("cpu", &["cpu"], 4, &Err("no NVIDIA driver".into()));
        assert_eq!(
            lines,
            [
                "Library flavour: cpu",
                "Build features: cpu",
                "CUDA driver: none (no NVIDIA driver)",
                &format!("Device: CPU: 4 threads ({})", std::env::consts::ARCH),
                "Device: CUDA: none, running on the CPU",
            ]
        );
    }

    #[test]
    fn gpus_and_driver_version_are_listed() {
        let st = CudaStatus {
            driver_version: 13000,
            gpus: vec![gpu(0, "NVIDIA H100"), gpu(1, "NVIDIA A100")],
        };
        let lines = info_lines("cuda", &["cpu", "cuda"], 16, &Ok(st));
        assert_eq!(lines[0], "Library flavour: cuda");
        assert_eq!(lines[1], "Build features: cpu, cuda");
        assert_eq!(
            lines[2],
            "CUDA driver: 13.0 (driver API version 13000); library built for the CUDA 13.0 runtime"
        );
        assert_eq!(
            &lines[4..],
            [
                "Device: CUDA:0: NVIDIA H100, 81559 MiB, compute capability 9.0",
                "Device: CUDA:1: NVIDIA A100, 81559 MiB, compute capability 9.0",
            ]
        );
    }

    #[test]
    fn old_driver_and_no_gpu_are_reported() {
        let st = CudaStatus {
            driver_version: 12040,
            gpus: vec![],
        };
        let lines = info_lines("cuda", &["cpu", "cuda"], 2, &Ok(st));
        assert!(lines[2].starts_with("CUDA driver: 12.4 "), "{lines:?}");
        assert_eq!(
            lines[3],
            "CUDA warning: the driver supports CUDA 12.4 only; CUDA 13.0 needs driver 580 or newer"
        );
        assert_eq!(
            lines.last().unwrap(),
            "Device: CUDA: the driver found no GPU; running on the CPU"
        );
    }

    /// This build's own report: the CPU library names its flavour and why CUDA is absent; the
    /// CUDA library on a machine without a driver says so (run by scripts/gpu-tests.sh with a GPU).
    #[test]
    fn this_build_reports_its_flavour() {
        let text = crate::info_text();
        assert!(
            text.starts_with(&format!("Fluorecon: {}\n", crate::VERSION)),
            "{text}"
        );
        if crate::gpu::BUILT_WITH_CUDA {
            assert!(text.contains("Library flavour: cuda\n"), "{text}");
            assert!(text.contains("Build features: cpu, cuda\n"), "{text}");
            match cuda_status() {
                Ok(st) => assert!(text.contains(&format!(
                    "CUDA driver: {} ",
                    cuda_version_text(st.driver_version)
                ))),
                Err(reason) => {
                    eprintln!("no GPU here: {reason}");
                    assert!(
                        text.contains(&format!("CUDA driver: none ({reason})")),
                        "{text}"
                    )
                }
            }
        } else {
            assert!(text.contains("Library flavour: cpu\n"), "{text}");
            assert!(text.contains("Build features: cpu\n"), "{text}");
            assert!(
                text.contains(
                    "CUDA driver: none (this library was built without the 'cuda' feature)\n"
                ),
                "{text}"
            );
        }
        assert!(text.contains("Device: CPU: "), "{text}");
        assert_eq!(devices_found().len(), text.matches("Device: ").count());
    }

    /// Every device name a dialog or the CLI offers parses; anything else is a clear error.
    #[test]
    fn device_requests_parse() {
        assert_eq!(
            "auto".parse::<DeviceRequest>().unwrap(),
            DeviceRequest::Auto
        );
        assert_eq!(
            " CPU ".parse::<DeviceRequest>().unwrap(),
            DeviceRequest::Cpu
        );
        assert_eq!(
            "cuda".parse::<DeviceRequest>().unwrap(),
            DeviceRequest::Cuda(0)
        );
        assert_eq!(
            "cuda:2".parse::<DeviceRequest>().unwrap(),
            DeviceRequest::Cuda(2)
        );
        let err = "tpu".parse::<DeviceRequest>().unwrap_err().to_string();
        assert!(err.contains("unknown device 'tpu'"), "{err}");
        assert!("cuda:x".parse::<DeviceRequest>().is_err());
    }

    /// The GPU choice for an operation that has a GPU path, for every case of request and driver.
    #[test]
    fn gpu_selection_says_why_not() {
        let two = Ok(CudaStatus {
            driver_version: 13000,
            gpus: vec![gpu(0, "NVIDIA H100"), gpu(1, "NVIDIA A100")],
        });
        assert_eq!(select_gpu(DeviceRequest::Cpu, &two), (None, None));
        assert_eq!(
            select_gpu(DeviceRequest::Auto, &two).0.unwrap().name,
            "NVIDIA H100"
        );
        assert_eq!(
            select_gpu(DeviceRequest::Cuda(1), &two).0.unwrap().name,
            "NVIDIA A100"
        );
        let (none, why) = select_gpu(DeviceRequest::Cuda(2), &two);
        assert!(none.is_none());
        assert_eq!(
            why.unwrap(),
            "CUDA:2 was requested but cannot be used (the driver reports 2 GPU(s)); running on the CPU"
        );
        let no_driver = Err("no NVIDIA driver: libcuda.so.1 could not be opened".to_string());
        assert_eq!(
            select_gpu(DeviceRequest::Cuda(0), &no_driver).1.unwrap(),
            "CUDA:0 was requested but cannot be used (no NVIDIA driver: libcuda.so.1 could not be \
             opened); running on the CPU"
        );
        let auto = select_gpu(DeviceRequest::Auto, &no_driver);
        assert!(auto.0.is_none());
        // A CPU build has nothing to explain for auto; a CUDA build says why it is not used.
        assert_eq!(auto.1.is_some(), crate::gpu::BUILT_WITH_CUDA, "{auto:?}");
    }

    #[test]
    fn cuda_versions_read_as_major_minor() {
        assert_eq!(cuda_version_text(13000), "13.0");
        assert_eq!(cuda_version_text(12080), "12.8");
    }

    /// A progress that keeps the log.
    #[derive(Default)]
    struct Log(Vec<String>);
    impl crate::progress::Progress for Log {
        fn log(&mut self, message: &str) {
            self.0.push(message.to_string());
        }
    }

    /// A stand-in for a method's GPU resources: its device name.
    struct FakeGpu(&'static str);

    fn run(slot: &mut Option<FakeGpu>, log: &mut Log, result: Result<u32>) -> Result<OnGpu<u32>> {
        run_on_gpu(slot, "the job", |g| g.0.to_string(), log, |_, _| result)
    }

    #[test]
    fn a_gpu_job_that_succeeds_keeps_the_gpu() {
        let (mut slot, mut log) = (Some(FakeGpu("CUDA device 0 (X)")), Log::default());
        assert!(matches!(
            run(&mut slot, &mut log, Ok(7)),
            Ok(OnGpu::Done(7))
        ));
        assert!(slot.is_some() && log.0.is_empty());
    }

    #[test]
    fn without_a_gpu_the_caller_runs_the_cpu_path() {
        let (mut slot, mut log) = (None, Log::default());
        assert!(matches!(run(&mut slot, &mut log, Ok(7)), Ok(OnGpu::NoGpu)));
        assert!(log.0.is_empty());
    }

    #[test]
    fn a_gpu_failure_is_logged_and_the_rest_runs_on_the_cpu() {
        let (mut slot, mut log) = (Some(FakeGpu("CUDA device 0 (X)")), Log::default());
        let oom = Err(crate::Error::Device("the GPU is out of memory".into()));
        let Ok(OnGpu::FellBack(w)) = run(&mut slot, &mut log, oom) else {
            panic!("expected a fallback");
        };
        let why = crate::Error::Device("the GPU is out of memory".into());
        assert_eq!(
            w,
            format!("the job failed on CUDA device 0 (X) ({why}); running it on the CPU")
        );
        assert!(slot.is_none());
        assert_eq!(log.0, vec![format!("Warning: {w}")]);
    }

    #[test]
    fn a_panic_in_the_gpu_code_falls_back_too() {
        let (mut slot, mut log) = (Some(FakeGpu("CUDA device 1 (Y)")), Log::default());
        let r = run_on_gpu(
            &mut slot,
            "SIM",
            |g| g.0.to_string(),
            &mut log,
            |_, _| -> Result<u32> { panic!("cuda kernel launch") },
        );
        let Ok(OnGpu::FellBack(w)) = r else {
            panic!("expected a fallback");
        };
        assert!(
            w.contains("panic in the GPU code: cuda kernel launch"),
            "{w}"
        );
        assert!(slot.is_none() && log.0.len() == 1);
    }

    #[test]
    fn a_cancel_or_bad_input_is_not_retried_on_the_cpu() {
        for e in [
            crate::Error::Cancelled,
            crate::Error::InvalidInput("no".into()),
        ] {
            let (mut slot, mut log) = (Some(FakeGpu("CUDA device 0 (X)")), Log::default());
            assert!(run(&mut slot, &mut log, Err(e)).is_err());
            assert!(slot.is_some() && log.0.is_empty());
        }
    }
}
