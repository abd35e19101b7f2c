//! 2D SIM Wiener reconstruction on the GPU against the CPU, on the same seeded simulated raw
//! data. Without a usable GPU (the CPU build, or no driver) the GPU comparisons print why and
//! pass as skipped; the fallback test runs everywhere. scripts/gpu-tests.sh runs this file on
//! a GPU machine, where a comparison that did not run on the GPU fails.
//!
//! Bound: relative RMS of GPU − CPU below 1e-4 for each of the SIM, widefield and
//! Wiener-filtered widefield images. Both paths use the same host-computed filters, pattern
//! parameters (estimated on the CPU) and f32 arithmetic in the same order; what differs is the
//! FFT library (cuFFT against RustFFT: other factorisations and twiddle factors, ~1e-7
//! relative per transform, up to four transforms in series) and fused multiply-adds in the
//! kernels, which amount to ~1e-6. A wrong index, sign or scale gives O(1).

use fluorecon::device::{Device, DeviceRequest};
use fluorecon::metrics::relative_rms;
use fluorecon::sim::{reconstruct, simulate_sim, SimAcquisition, SimOptics, SimOptions, SimResult};
use fluorecon::synthetic::phantom;
use fluorecon::{NoProgress, Volume};
use ndarray::{Array2, Array3, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

mod common;
use common::gpu_here;

const BOUND: f64 = 1e-4;

/// Raw frames (3 angles × 3 phases, PAZ) of three seeded phantoms (beads and filaments) on
/// (ny, nx) pixels, dense and bright enough for clean pattern estimates at these small sizes.
fn raw_frames((ny, nx): (usize, usize), seed: u64) -> Volume {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let object = (0..3).fold(Array2::<f32>::zeros((ny, nx)), |o, _| {
        o + phantom((1, ny, nx), &mut rng).index_axis(Axis(0), 0)
    });
    let acq = SimAcquisition {
        photons: 5000.0,
        background: 100.0,
        read_noise: 2.0,
        seed: seed + 50,
        ..Default::default()
    };
    simulate_sim(&object, &SimOptics::default(), &acq)
        .unwrap()
        .raw
}

fn options(device: DeviceRequest) -> SimOptions {
    SimOptions {
        background: 100.0,
        device,
        ..Default::default()
    }
}

fn run(raw: &Volume, opts: &SimOptions) -> SimResult {
    reconstruct(raw, &SimOptics::default(), opts, &mut NoProgress).unwrap()
}

/// SIM on CUDA:0 and on the CPU with `opts`; fails unless the GPU ran, the parameters are the
/// same and the three images agree within [`BOUND`].
fn compare(name: &str, raw: &Volume, opts: &SimOptions) {
    let cpu = run(
        raw,
        &SimOptions {
            device: DeviceRequest::Cpu,
            ..opts.clone()
        },
    );
    let gpu = run(
        raw,
        &SimOptions {
            device: DeviceRequest::Cuda(0),
            ..opts.clone()
        },
    );
    assert!(
        matches!(gpu.device, Device::Cuda { ordinal: 0, .. }),
        "{name}: ran on {} instead of the GPU: {:?}",
        gpu.device,
        gpu.warnings
    );
    assert!(matches!(cpu.device, Device::Cpu { .. }), "{name}");
    assert_eq!(gpu.warnings, cpu.warnings, "{name}");
    assert_eq!(gpu.plane_params, cpu.plane_params, "{name}");
    for (what, g, c) in [
        ("SIM", &gpu.sim, &cpu.sim),
        ("widefield", &gpu.widefield, &cpu.widefield),
        (
            "Wiener widefield",
            &gpu.wiener_widefield,
            &cpu.wiener_widefield,
        ),
    ] {
        let err = relative_rms(&g.data, &c.data);
        println!(
            "{name}, {what}: GPU ({}) vs CPU relative RMS {err:.2e} (bound {BOUND:.0e})",
            gpu.device
        );
        assert!(
            err < BOUND,
            "{name}, {what}: relative RMS {err:.2e} ≥ {BOUND:.0e}"
        );
    }
}

#[test]
fn gpu_matches_cpu_on_square_frames() {
    if !gpu_here("gpu_matches_cpu_on_square_frames") {
        return;
    }
    // 128 × 128: even sizes, so the widefield images drop the Nyquist row and column.
    let raw = raw_frames((128, 128), 1);
    compare("128×128", &raw, &options(DeviceRequest::Cuda(0)));
}

#[test]
fn gpu_matches_cpu_on_odd_and_uneven_frames() {
    if !gpu_here("gpu_matches_cpu_on_odd_and_uneven_frames") {
        return;
    }
    // 99 rows (odd: no Nyquist row) × 130 columns (even: a Nyquist column), no edge taper.
    let raw = raw_frames((99, 130), 2);
    let opts = SimOptions {
        taper_px: 0,
        ..options(DeviceRequest::Cuda(0))
    };
    compare("99×130", &raw, &opts);
}

#[test]
fn gpu_matches_cpu_on_a_stack_with_a_pattern_per_plane() {
    if !gpu_here("gpu_matches_cpu_on_a_stack_with_a_pattern_per_plane") {
        return;
    }
    // Two time points of 128 × 96 frames, the second with its phases advanced by one step and
    // estimated on its own: the GPU buffers serve both planes, the filters are uploaded twice.
    let one = raw_frames((128, 96), 3);
    let (_, ny, nx) = one.shape();
    let mut stack = Array3::zeros((18, ny, nx));
    for a in 0..3 {
        for p in 0..3 {
            let src = one.data.index_axis(Axis(0), p + 3 * a);
            stack.index_axis_mut(Axis(0), p + 3 * a).assign(&src);
            stack
                .index_axis_mut(Axis(0), 9 + (p + 2) % 3 + 3 * a)
                .assign(&src);
        }
    }
    let opts = SimOptions {
        time_points: 2,
        estimate_per_plane: true,
        ..options(DeviceRequest::Cuda(0))
    };
    compare("two planes", &Volume::new(stack, one.voxel), &opts);
}

/// Without a usable GPU a CUDA request says why in the warnings, runs on the CPU and gives the
/// CPU's result exactly (`auto` too, without a warning); on a GPU machine the same request runs
/// there.
#[test]
fn cuda_request_without_gpu_falls_back_to_cpu() {
    let raw = raw_frames((64, 64), 4);
    let cpu = run(&raw, &options(DeviceRequest::Cpu));
    assert!(cpu.warnings.is_empty(), "{:?}", cpu.warnings);
    let ran_on = |r: &SimResult, device: bool, text: &str| {
        assert!(device, "{:?}", r.device);
        assert!(r.device_text().starts_with(text), "{}", r.device_text());
    };
    let on_cpu = |r: &SimResult| matches!(r.device, Device::Cpu { threads } if threads >= 1);
    ran_on(&cpu, on_cpu(&cpu), "the CPU (");
    let asked = run(&raw, &options(DeviceRequest::Cuda(0)));
    if gpu_here("cuda_request_without_gpu_falls_back_to_cpu, GPU half") {
        let on_gpu = matches!(asked.device, Device::Cuda { ordinal: 0, .. });
        ran_on(&asked, on_gpu, "CUDA device 0 (");
        return;
    }
    ran_on(&asked, on_cpu(&asked), "the CPU (");
    assert_eq!(asked.warnings.len(), 1, "{:?}", asked.warnings);
    let why = &asked.warnings[0];
    assert!(
        why.starts_with("CUDA:0 was requested but cannot be used (")
            && why.ends_with("); running on the CPU"),
        "{why}"
    );
    if !cfg!(feature = "cuda") {
        assert!(
            why.contains("this library was built without the 'cuda' feature"),
            "{why}"
        );
    }
    assert_eq!(asked.sim.data, cpu.sim.data);
    assert_eq!(asked.widefield.data, cpu.widefield.data);
    assert_eq!(asked.wiener_widefield.data, cpu.wiener_widefield.data);
    // `auto` without a usable GPU only logs why: no warning, the CPU's result.
    let auto = run(&raw, &options(DeviceRequest::Auto));
    ran_on(&auto, on_cpu(&auto), "the CPU (");
    assert!(auto.warnings.is_empty(), "{:?}", auto.warnings);
    assert_eq!(auto.sim.data, cpu.sim.data);
    // A GPU number the driver does not have is reported the same way.
    let far = run(&raw, &options(DeviceRequest::Cuda(7)));
    assert!(matches!(far.device, Device::Cpu { .. }));
    assert!(
        far.warnings[0].starts_with("CUDA:7 was requested but cannot be used"),
        "{:?}",
        far.warnings
    );
}
