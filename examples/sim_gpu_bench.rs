//! 2D SIM Wiener reconstruction per plane on the GPU and on the CPU:
//! `cargo run --release [--features cuda] --example sim_gpu_bench -- [planes] [sizes]`
//! (defaults 6 planes, sizes 512,1024: raw frames of N × N, 3 angles × 3 phases, results
//! 2N × 2N).
//!
//! A stack of `planes` planes (the same simulated frames each) is reconstructed with one
//! pattern estimate; per-plane time = (time of the stack − time of one plane) / (planes − 1),
//! each the fastest of three runs, so set-up (pattern estimation on the CPU, filters, NVRTC, plans, allocation) is left out.
//! It includes what every plane costs: the preprocessing of its frames on the CPU, the copies
//! to and from the GPU and the Wiener filter. Without the `cuda` feature or a GPU only the CPU
//! is timed.

use fluorecon::device::{Device, DeviceRequest};
use fluorecon::metrics::relative_rms;
use fluorecon::sim::{reconstruct, simulate_sim, SimAcquisition, SimOptics, SimOptions, SimResult};
use fluorecon::synthetic::phantom;
use fluorecon::{NoProgress, Volume};
use ndarray::{Array3, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let planes = args
        .next()
        .map_or(6, |a| a.parse::<usize>().expect("planes"))
        .max(2);
    let sizes: Vec<usize> = match args.next() {
        Some(list) => list
            .split(',')
            .map(|v| v.parse().expect("sizes: N,N,…"))
            .collect(),
        None => vec![512, 1024],
    };
    for n in sizes {
        bench(n, planes);
    }
}

fn bench(n: usize, planes: usize) {
    let optics = SimOptics::default();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let object = phantom((1, n, n), &mut rng)
        .index_axis(Axis(0), 0)
        .to_owned();
    let acq = SimAcquisition {
        photons: 1000.0,
        background: 100.0,
        ..Default::default()
    };
    let one = simulate_sim(&object, &optics, &acq)
        .expect("simulated frames")
        .raw;
    let frames = one.shape().0;
    let mut data = Array3::zeros((frames * planes, n, n));
    for p in 0..planes {
        for f in 0..frames {
            data.index_axis_mut(Axis(0), p * frames + f)
                .assign(&one.data.index_axis(Axis(0), f));
        }
    }
    let stack = Volume::new(data, one.voxel);
    let run = |raw: &Volume, device: DeviceRequest| -> (f64, SimResult) {
        let opts = SimOptions {
            background: 100.0,
            device,
            ..Default::default()
        };
        let t = Instant::now();
        let r = reconstruct(raw, &optics, &opts, &mut NoProgress).expect("SIM");
        (t.elapsed().as_secs_f64(), r)
    };
    // The fastest of three runs each: one plane's set-up (the pattern estimate on the CPU)
    // varies by more than a GPU plane costs.
    let fastest = |raw: &Volume, device: DeviceRequest| -> (f64, SimResult) {
        (0..3)
            .map(|_| run(raw, device))
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .expect("three runs")
    };
    let per_plane = |device: DeviceRequest| -> (f64, SimResult) {
        let (t1, _) = fastest(&one, device);
        let (tn, r) = fastest(&stack, device);
        ((tn - t1) / (planes - 1) as f64, r)
    };
    println!(
        "SIM {n}×{n} raw frames (3 × 3), {0}×{0} results, {planes} planes",
        2 * n
    );
    let (cpu, cpu_result) = per_plane(DeviceRequest::Cpu);
    println!(
        "BENCH  SIM {n}×{n} per plane on {}: {:.1} ms",
        cpu_result.device,
        cpu * 1e3
    );
    run(&one, DeviceRequest::Cuda(0)); // warm-up: NVRTC, cuFFT's first plans
    let (gpu, gpu_result) = per_plane(DeviceRequest::Cuda(0));
    if !matches!(gpu_result.device, Device::Cuda { .. }) {
        println!(
            "BENCH  SIM {n}×{n} GPU: not run ({})",
            gpu_result.warnings.join("; ")
        );
        return;
    }
    let rms = |a: &Volume, b: &Volume| relative_rms(&a.data, &b.data);
    println!(
        "BENCH  SIM {n}×{n} per plane on {}: {:.1} ms, {:.1}× the CPU; GPU vs CPU relative RMS \
         {:.1e} (SIM), {:.1e} (widefield)",
        gpu_result.device,
        gpu * 1e3,
        cpu / gpu,
        rms(&gpu_result.sim, &cpu_result.sim),
        rms(&gpu_result.widefield, &cpu_result.widefield)
    );
}
