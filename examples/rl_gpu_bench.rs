//! Richardson–Lucy on the GPU against its memory-bandwidth floor, and the CPU for comparison:
//! `cargo run --release --features cuda --example rl_gpu_bench -- [iterations] [NZxNYxNX]
//! [psf_z psf_xy] [cpu_iterations]` (defaults 100, 64x512x512, 31 63, 3).
//!
//! Floor = bytes one iteration must move at the least (deconv::rl_cuda::footprint: each FFT
//! reads and writes once, the element-wise steps read and write their volumes once) ÷ the
//! GPU's device-to-device copy bandwidth measured here. Per-iteration time = (time of N
//! iterations − time of 1) / (N − 1), each the fastest of three runs after a warm-up run, so
//! set-up (NVRTC, plans, OTF, copies) is left out.
use fluorecon::deconv::rl_cuda::footprint;
use fluorecon::deconv::{fft_grid, richardson_lucy, RlOptions};
use fluorecon::device::DeviceRequest;
use fluorecon::gpu::Gpu;
use fluorecon::psf::Psf;
use fluorecon::{NoProgress, Volume, VoxelSize};
use ndarray::Array3;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, d: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let iterations = num(0, 100).max(2);
    let shape: Vec<usize> = args
        .get(1)
        .map_or("64x512x512", |s| s.as_str())
        .split('x')
        .filter_map(|v| v.parse().ok())
        .collect();
    let shape = (shape[0], shape[1], shape[2]);
    let (pz, pxy) = (num(2, 31), num(3, 63));
    let cpu_iterations = num(4, 3);

    // σ 3 planes axially, 1.5 pixels laterally (as examples/rl_speed).
    let psf = Psf::gaussian_voxels((pz, pxy, pxy), (3.0, 1.5));
    let img = Array3::from_shape_fn(shape, |(z, y, x)| 10.0 + ((x * 7 + y * 3 + z) % 17) as f32);
    let vol = Volume::new(img, VoxelSize::default());
    let time = |n: usize, device: DeviceRequest| {
        let opts = RlOptions {
            iterations: n,
            device,
            ..Default::default()
        };
        let t = Instant::now();
        let r = richardson_lucy(&vol, &psf, &opts, &mut NoProgress).expect("RL");
        (t.elapsed().as_secs_f64(), r)
    };

    let grid = fft_grid(shape, (pz, pxy, pxy), RlOptions::default().boundary);
    let fov = shape.0 * shape.1 * shape.2;
    let bytes = footprint(grid, fov, &RlOptions::default(), true).bytes_per_iteration;
    println!(
        "RL 3D {}×{}×{} (z×y×x), PSF {pz}×{pxy}×{pxy}, non-circulant FFT grid {}×{}×{}: at least \
         {:.2} GB moved per iteration",
        shape.0,
        shape.1,
        shape.2,
        grid.0,
        grid.1,
        grid.2,
        bytes as f64 * 1e-9
    );

    match Gpu::open(0) {
        Err(e) => println!("BENCH  RL GPU: no GPU ({e})"),
        Ok(gpu) => {
            let bandwidth = gpu.copy_bandwidth(1 << 30).expect("copy bandwidth");
            // A warm-up run first (NVRTC, cuFFT's plans, the driver's first launches), then
            // the fastest of three runs of 1 and of N iterations.
            time(1, DeviceRequest::Cuda(0));
            let fastest = |n: usize| {
                (0..3)
                    .map(|_| time(n, DeviceRequest::Cuda(0)))
                    .min_by(|a, b| a.0.total_cmp(&b.0))
                    .expect("three runs")
            };
            let (t1, r1) = fastest(1);
            let (tn, rn) = fastest(iterations);
            assert!(
                rn.warnings.is_empty() && r1.warnings.is_empty(),
                "the GPU run fell back: {:?}",
                rn.warnings
            );
            let per = (tn - t1) / (iterations - 1) as f64;
            let floor = bytes as f64 / bandwidth;
            println!(
                "BENCH  RL GPU {iterations} iterations on {}: {tn:.2} s in all, {:.2} ms per \
                 iteration (set-up {:.2} s); D2D copy bandwidth {:.0} GB/s → floor {:.2} ms per \
                 iteration; {:.1}× the floor",
                rn.device,
                per * 1e3,
                t1 - per,
                bandwidth * 1e-9,
                floor * 1e3,
                per / floor
            );
        }
    }
    if cpu_iterations > 0 {
        let (tc, rc) = time(cpu_iterations, DeviceRequest::Cpu);
        println!(
            "BENCH  RL CPU {cpu_iterations} iterations on {}: {:.2} s per iteration (set-up \
             included)",
            rc.device,
            tc / cpu_iterations as f64
        );
    }
}
