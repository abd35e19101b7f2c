//! MLE (and least-squares) spot fitting on the GPU against the CPU, on the same windows.
//! Without a usable GPU (the CPU build, or no driver) the GPU comparison prints why and passes
//! as skipped; the localizer's fallback test runs everywhere. scripts/gpu-tests.sh runs this
//! file on a GPU machine.
//!
//! Bounds (both paths run the same f64 iterations; only erf/exp/log differ in their last
//! bits): positions within 1e-3 px, photons and background within 1e-3 relative, σ within
//! 1e-3 px, CRLB within 1e-2 relative; the same fits accepted for at least 99.5 % of the
//! windows (a fit on the edge of a rejection rule may fall either way).

mod common;
use common::{gpu_here, Log};
use fluorecon::device::DeviceRequest;
use fluorecon::smlm::synthetic::{simulate_smlm, SmlmSimOptions};
use fluorecon::smlm::{localize_stack, LocalizeOptions};

#[test]
fn gpu_fits_match_cpu_fits() {
    if gpu_here("gpu_fits_match_cpu_fits") {
        #[cfg(feature = "cuda")]
        compare_fits();
    }
}

#[cfg(feature = "cuda")]
fn compare_fits() {
    use fluorecon::smlm::fit::{fit_spot_masked, random_spot_windows};
    use fluorecon::smlm::fit_cuda::SpotFitter;
    use fluorecon::smlm::{FitMethod, FitOptions};
    let fitter = SpotFitter::new(0).unwrap();
    for (method, w, seed) in [
        (FitMethod::Mle, 7, 1),
        (FitMethod::Mle, 11, 2),
        (FitMethod::LeastSquares, 9, 3),
    ] {
        let count = 4000;
        let windows = random_spot_windows(count, w, seed);
        // Every third window leaves out its right column and bottom row (a neighbour's side).
        let used: Vec<bool> = (0..count * w * w)
            .map(|p| {
                let (k, j, i) = (p / (w * w), (p / w) % w, p % w);
                k % 3 != 0 || (i + 1 < w && j + 1 < w)
            })
            .collect();
        let opts = FitOptions {
            method,
            radius: (w - 1) / 2,
            ..FitOptions::default()
        };
        let gpu = fitter.fit(&windows, &used, w, &opts).unwrap();
        let n = w * w;
        let (mut same, mut compared) = (0, 0);
        for (k, g) in gpu.iter().enumerate() {
            let range = k * n..(k + 1) * n;
            let c = fit_spot_masked(&windows[range.clone()], w, Some(&used[range]), &opts);
            same += usize::from(c.is_some() == g.is_some());
            let (Some(c), Some(g)) = (c, g) else {
                continue;
            };
            compared += 1;
            let rel = |a: f64, b: f64| (a - b).abs() / b.abs().max(1e-12);
            let what = format!("{method:?} w={w} window {k}: CPU {c:?}, GPU {g:?}");
            assert!(
                (c.x - g.x).abs() <= 1e-3 && (c.y - g.y).abs() <= 1e-3,
                "{what}"
            );
            assert!(rel(g.photons, c.photons) <= 1e-3, "{what}");
            assert!(rel(g.background, c.background) <= 1e-3, "{what}");
            assert!((c.sigma - g.sigma).abs() <= 1e-3, "{what}");
            assert!(
                rel(g.crlb_x, c.crlb_x) <= 1e-2 && rel(g.crlb_y, c.crlb_y) <= 1e-2,
                "{what}"
            );
        }
        eprintln!(
            "{method:?} w={w}: {compared} fits compared, acceptance agrees on {same}/{count}"
        );
        assert!(
            same as f64 >= 0.995 * count as f64,
            "{method:?} w={w}: {same}/{count}"
        );
        assert!(
            compared as f64 >= 0.9 * count as f64,
            "{method:?} w={w}: {compared}"
        );
    }
}

/// The localizer asked for CUDA: on a GPU it says so and finds what the CPU finds (within the
/// bounds above, in nm); without one it logs why and runs on the CPU with the CPU's result.
#[test]
fn localizer_on_cuda_matches_the_cpu_or_says_why_not() {
    let o = SmlmSimOptions {
        active_per_frame: 6.0,
        ..SmlmSimOptions::low_density(40)
    };
    let sim = simulate_smlm(&o).unwrap();
    let opts = LocalizeOptions {
        camera: o.camera.analysis_camera(),
        ..LocalizeOptions::default()
    };
    let run = |device| {
        let mut log = Log::default();
        let locs =
            localize_stack(&sim.frames, &LocalizeOptions { device, ..opts }, &mut log).unwrap();
        (locs, log.0)
    };
    let (cpu, _) = run(DeviceRequest::Cpu);
    let (cuda, log) = run(DeviceRequest::Cuda(0));
    assert!(cpu.len() > 100, "{} localizations", cpu.len());
    let on_gpu = log.iter().any(|l| l.starts_with("Localizing on CUDA:0 ("));
    if gpu_here("localizer_on_cuda_matches_the_cpu_or_says_why_not") {
        assert!(on_gpu, "{log:?}");
        assert!(!log.iter().any(|l| l.starts_with("Warning")), "{log:?}");
    } else {
        assert!(!on_gpu, "{log:?}");
        assert!(
            log.iter().any(
                |l| l.starts_with("Warning: CUDA:0 was requested but cannot be used (")
                    && l.ends_with("; running on the CPU")
            ),
            "{log:?}"
        );
        assert!(
            log.iter().any(|l| l.starts_with("Localizing on CPU (")),
            "{log:?}"
        );
    }
    // Same molecules: at most 0.5 % differ in acceptance; matched ones agree.
    let nm = opts.pixel_nm as f32 * 1e-3;
    let matched = cuda
        .iter()
        .filter(|g| {
            cpu.iter().any(|c| {
                c.frame == g.frame
                    && (c.x_nm - g.x_nm).abs() <= nm.max(1e-3)
                    && (c.y_nm - g.y_nm).abs() <= nm.max(1e-3)
                    && (c.photons - g.photons).abs() <= 1e-3 * c.photons
            })
        })
        .count();
    assert!(
        matched as f64 >= 0.995 * cpu.len().max(cuda.len()) as f64,
        "{matched} of {} (CPU) / {} (CUDA) localizations match",
        cpu.len(),
        cuda.len()
    );
}
