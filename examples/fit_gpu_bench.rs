//! MLE spot fitting on the GPU (one thread per spot) against the CPU (all cores):
//! `cargo run --release --features cuda --example fit_gpu_bench -- [spots] [cpu_spots]`
//! (defaults 1000000 and 100000). Prints fits/s for windows of 7×7, 9×9 and 11×11 pixels
//! (random spots, see `smlm::fit::random_spot_windows`). GPU time includes the copies to and
//! from the GPU; the kernel is compiled and loaded before timing (first, untimed call).
use fluorecon::smlm::fit::{fit_spot_masked, random_spot_windows};
use fluorecon::smlm::fit_cuda::SpotFitter;
use fluorecon::smlm::FitOptions;
use rayon::prelude::*;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, d: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (spots, cpu_spots) = (num(0, 1_000_000), num(1, 100_000));
    let fitter = match SpotFitter::new(0) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("fit_gpu_bench: no GPU ({e})");
            std::process::exit(1);
        }
    };
    println!("fit_gpu_bench on {}", fitter.device());
    for w in [7, 9, 11] {
        let opts = FitOptions {
            radius: (w - 1) / 2,
            ..FitOptions::default()
        };
        let windows = random_spot_windows(spots, w, w as u64);
        let used = vec![true; windows.len()];
        let n = w * w;
        fitter.fit(&windows[..n], &used[..n], w, &opts).unwrap();
        let t = Instant::now();
        let gpu = fitter.fit(&windows, &used, w, &opts).unwrap();
        let gpu_s = t.elapsed().as_secs_f64();
        let cpu_n = cpu_spots.min(spots);
        let t = Instant::now();
        let cpu: Vec<_> = windows[..cpu_n * n]
            .par_chunks(n)
            .map(|win| fit_spot_masked(win, w, None, &opts))
            .collect();
        let cpu_s = t.elapsed().as_secs_f64();
        let accepted = gpu.iter().filter(|s| s.is_some()).count();
        println!(
            "BENCH  MLE fit {w}×{w}: GPU {:.3e} fits/s ({spots} spots in {gpu_s:.3} s, {accepted} \
             accepted), CPU {:.3e} fits/s on {} threads ({cpu_n} spots, {} accepted), GPU/CPU {:.1}×",
            spots as f64 / gpu_s,
            cpu_n as f64 / cpu_s,
            rayon::current_num_threads(),
            cpu.iter().filter(|s| s.is_some()).count(),
            (spots as f64 / gpu_s) / (cpu_n as f64 / cpu_s)
        );
    }
}
