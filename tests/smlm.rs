//! Localization microscopy end to end: simulated stacks with ground truth through the
//! pipeline, the CSV round trip, rendering and drift correction, and the CLI.

use fluorecon::smlm::metrics::{assess, Point};
use fluorecon::smlm::simulate::{simulate_smlm, SmlmSimOptions, SmlmSimulation};
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
