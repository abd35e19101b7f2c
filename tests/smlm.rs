//! Localization microscopy end to end: simulated stacks with ground truth through the
//! pipeline, the CSV round trip, rendering and drift correction, and the CLI.

use fluorecon::smlm::metrics::{assess, Point};
use fluorecon::smlm::synthetic::{simulate_smlm, SmlmSimOptions, SmlmSimulation};
use fluorecon::smlm::{localize_stack, FitMethod, Localization, LocalizeOptions};
use fluorecon::NoProgress;

fn low_density(frames: usize, seed: u64) -> (SmlmSimOptions, SmlmSimulation) {
    let o = SmlmSimOptions {
        seed,
        ..SmlmSimOptions::low_density(frames)
    };
    let sim = simulate_smlm(&o).unwrap();
    (o, sim)
}

fn points(locs: &[Localization]) -> Vec<Point> {
    locs.iter()
        .map(|l| (l.frame, l.x_nm as f64, l.y_nm as f64))
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The bar: on the low-density simulation Jaccard ≥ 0.9 and lateral RMSE ≤ 1.2 × the
/// median lateral CRLB (√(CRLB_x + CRLB_y) = √2 · the per-axis uncertainty).
#[test]
fn low_density_meets_the_challenge_bar() {
    for method in [FitMethod::Mle, FitMethod::LeastSquares] {
        let seed = 5;
        let (o, sim) = low_density(1000, seed);
        let mut opts = LocalizeOptions {
            camera: o.camera.analysis_camera(),
            pixel_nm: o.pixel_nm,
            ..LocalizeOptions::default()
        };
        opts.fit.method = method;
        let before = sim.frames.clone();
        let locs = localize_stack(&sim.frames, &opts, &mut NoProgress).unwrap();
        assert_eq!(sim.frames, before, "input modified");
        let truth: Vec<Point> = sim
            .truth
            .iter()
            .map(|t| (t.frame, t.x_nm, t.y_nm))
            .collect();
        let mut pairs = Vec::new();
        let r = assess(&points(&locs), &truth, 250.0, Some(&mut pairs));
        let crlb = median(
            pairs
                .iter()
                .map(|&(i, _)| std::f64::consts::SQRT_2 * locs[i].uncertainty_nm as f64)
                .collect(),
        );
        let photons = median(
            pairs
                .iter()
                .map(|&(i, j)| locs[i].photons as f64 / (0.9 * sim.truth[j].photons))
                .collect(),
        );
        eprintln!(
            "{method:?}: {} true, {} found: JAC {:.3}, RMSE {:.2} nm, median lateral CRLB {:.2} nm, \
             bias ({:.2}, {:.2}) nm, photons found/true·QE {:.3}, E {:.1}",
            truth.len(),
            locs.len(),
            r.jaccard,
            r.rmse_lateral_nm,
            crlb,
            r.mean_dx_nm,
            r.mean_dy_nm,
            photons,
            r.efficiency
        );
        assert!(r.jaccard >= 0.9, "{method:?}: Jaccard {}", r.jaccard);
        if method == FitMethod::Mle {
            assert!(
                r.rmse_lateral_nm <= 1.2 * crlb,
                "RMSE {} nm vs median CRLB {crlb} nm",
                r.rmse_lateral_nm
            );
        }
        assert!(r.mean_dx_nm.abs() < 2.0 && r.mean_dy_nm.abs() < 2.0);
        assert!((photons - 1.0).abs() < 0.1, "photon ratio {photons}");
    }
}

// ---- command line ----

use fluorecon::io::tiff::{write_tiff, Hyperstack};
use fluorecon::smlm::results::read_csv_file;
use fluorecon::VoxelSize;
mod common;
use common::{fails, ok, read_truth, TempDir};

/// A low-density stack of `frames` frames as a TIFF hyperstack (100 nm pixels).
fn simulated_stack(frames: usize) -> Hyperstack {
    let sim = simulate_smlm(&SmlmSimOptions::low_density(frames)).unwrap();
    let voxel = VoxelSize {
        z: 1.0,
        y: 0.1,
        x: 0.1,
    };
    let mut stack = Hyperstack::zeros(64, 64, 1, 1, frames, voxel, "micron");
    stack.data = sim.frames.iter().copied().collect();
    stack
}

/// simulate-smlm → localize (streamed from the TIFF) → CSV against the truth → render.
#[test]
fn cli_simulate_localize_render() {
    let d = TempDir::new("e2e");
    ok(&[
        "simulate-smlm",
        "--frames",
        "600",
        "--seed",
        "3",
        "-o",
        &d.path("sim"),
    ]);
    let stack = d.path("sim/stack.tif");
    let csv = d.path("locs.csv");
    let log = ok(&[
        "localize",
        &stack,
        "--offset",
        "100",
        "--e-per-adu",
        "45",
        "--em-gain",
        "300",
        "-o",
        &csv,
    ]);
    assert!(log.contains("frames/s"), "{log}");
    let locs = read_csv_file(std::path::Path::new(&csv)).unwrap();
    let truth = read_truth(&d.path("sim/truth.csv"));
    let r = assess(&points(&locs), &truth, 250.0, None);
    assert!(r.jaccard >= 0.9, "Jaccard {}", r.jaccard);
    // The pixel size came from the TIFF's calibration (100 nm): positions are in nm.
    assert!(locs.iter().all(|l| l.x_nm > 0.0 && l.x_nm < 6400.0));

    let tif = d.path("sr.tif");
    ok(&[
        "render",
        &csv,
        "--width",
        "64",
        "--height",
        "64",
        "--magnification",
        "5",
        "-o",
        &tif,
    ]);
    let img = fluorecon::io::tiff::read_tiff(std::path::Path::new(&tif)).unwrap();
    assert_eq!((img.width, img.height), (320, 320));
    assert!(
        (img.voxel.x - 0.02).abs() < 1e-6,
        "pixel {} µm",
        img.voxel.x
    );
    let sum: f64 = img.data.iter().map(|&v| v as f64).sum();
    // Conserved up to the localizations within ~4σ of the border.
    assert!(
        (sum - locs.len() as f64).abs() < 0.01 * locs.len() as f64,
        "{sum} vs {}",
        locs.len()
    );

    // A single frame is a legitimate stack; drift correction on it is not.
    let single = d.path("one.tif");
    write_tiff(std::path::Path::new(&single), &simulated_stack(1)).unwrap();
    ok(&[
        "localize",
        &single,
        "--offset",
        "100",
        "--e-per-adu",
        "45",
        "--em-gain",
        "300",
        "-o",
        &d.path("one.csv"),
    ]);
    let e = fails(&[
        "localize",
        &single,
        "--offset",
        "100",
        "--e-per-adu",
        "45",
        "--em-gain",
        "300",
        "--drift-block",
        "100",
        "-o",
        &d.path("one-d.csv"),
    ]);
    assert!(
        e.contains("only one block") || e.contains("needs localizations"),
        "{e}"
    );
    assert!(!std::path::Path::new(&d.path("one-d.csv")).exists());
}

/// Bad inputs end with a message that says what is wrong, and write nothing.
#[test]
fn cli_bad_inputs() {
    let d = TempDir::new("bad");
    let mut stack = simulated_stack(3);
    let good = d.path("good.tif");
    write_tiff(std::path::Path::new(&good), &stack).unwrap();
    let out = d.path("out.csv");
    // Offset above the signal.
    let e = fails(&["localize", &good, "--offset", "5000", "-o", &out]);
    assert!(e.contains("offset (5000 ADU) is above the signal"), "{e}");
    // NaN pixels.
    stack.data[64 * 10 + 5] = f32::NAN;
    let nan = d.path("nan.tif");
    write_tiff(std::path::Path::new(&nan), &stack).unwrap();
    let e = fails(&["localize", &nan, "--offset", "100", "-o", &out]);
    assert!(e.contains("not a number at x=5, y=10"), "{e}");
    // A CSV without the position columns.
    let csv = d.path("bad.csv");
    std::fs::write(&csv, "\"id\",\"frame\",\"x [px]\",\"y [px]\"\n1,1,3,4\n").unwrap();
    let e = fails(&["render", &csv, "-o", &d.path("r.tif")]);
    assert!(
        e.contains("lacks the column(s) \"x [nm]\", \"y [nm]\""),
        "{e}"
    );
    // An empty CSV.
    std::fs::write(&csv, "").unwrap();
    let e = fails(&["render", &csv, "-o", &d.path("r.tif")]);
    assert!(e.contains("is empty"), "{e}");
    assert!(
        !std::path::Path::new(&out).exists() && !std::path::Path::new(&d.path("r.tif")).exists()
    );
}
