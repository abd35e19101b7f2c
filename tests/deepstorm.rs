//! Deep-STORM with the model shipped in `models/` (compiled into the library) against the
//! classical MLE pipeline on simulated stacks with ground truth, and its command line.

use fluorecon::smlm::deepstorm::{deepstorm_stack, DeepStormModel, DeepStormOptions};
use fluorecon::smlm::metrics::{assess, Assessment, Point};
use fluorecon::smlm::synthetic::{simulate_smlm, SmlmSimOptions, SmlmSimulation};
use fluorecon::smlm::{localize_stack, Localization, LocalizeOptions};
use fluorecon::NoProgress;
use std::sync::Arc;

mod common;
use common::{fails, ok, read_truth, TempDir};

fn points(locs: &[Localization]) -> Vec<Point> {
    locs.iter()
        .map(|l| (l.frame, l.x_nm as f64, l.y_nm as f64))
        .collect()
}

fn truth(sim: &SmlmSimulation) -> Vec<Point> {
    sim.truth
        .iter()
        .map(|t| (t.frame, t.x_nm, t.y_nm))
        .collect()
}

/// (MLE, Deep-STORM) scores and Deep-STORM's result on a simulated stack.
fn compare(o: &SmlmSimOptions) -> (Assessment, Assessment, f64, usize) {
    let sim = simulate_smlm(o).unwrap();
    let camera = o.camera.analysis_camera();
    let mle = localize_stack(
        &sim.frames,
        &LocalizeOptions {
            camera,
            pixel_nm: o.pixel_nm,
            ..LocalizeOptions::default()
        },
        &mut NoProgress,
    )
    .unwrap();
    let model = Arc::new(DeepStormModel::bundled().expect("the shipped model is compiled in"));
    let before = sim.frames.clone();
    let ds = deepstorm_stack(
        model,
        sim.frames.as_slice().unwrap(),
        o.width,
        o.height,
        &DeepStormOptions {
            camera,
            pixel_nm: o.pixel_nm,
            ..DeepStormOptions::default()
        },
        &mut NoProgress,
    )
    .unwrap();
    assert_eq!(sim.frames, before, "input modified");
    let t = truth(&sim);
    let a_mle = assess(&points(&mle), &t, 250.0, None);
    let a_ds = assess(&points(&ds.localizations), &t, 250.0, None);
    let density: f64 = ds.density.iter().map(|&v| v as f64).sum();
    eprintln!(
        "{} molecules/frame: MLE JAC {:.3} RMSE {:.1} nm; Deep-STORM JAC {:.3} RMSE {:.1} nm \
         bias ({:.1}, {:.1}) nm, {} found, density sum {density:.0}, {} true",
        o.active_per_frame,
        a_mle.jaccard,
        a_mle.rmse_lateral_nm,
        a_ds.jaccard,
        a_ds.rmse_lateral_nm,
        a_ds.mean_dx_nm,
        a_ds.mean_dy_nm,
        ds.localizations.len(),
        t.len()
    );
    (a_mle, a_ds, density, t.len())
}

/// The bar: on the high-density simulation Deep-STORM's Jaccard beats the MLE
/// pipeline's. Its density map counts about as many molecules as there are.
#[test]
fn deepstorm_beats_mle_at_high_density() {
    let o = SmlmSimOptions {
        seed: 31,
        ..SmlmSimOptions::high_density(40)
    };
    let (mle, ds, density, n) = compare(&o);
    assert!(
        ds.jaccard > mle.jaccard + 0.1,
        "Deep-STORM {} vs MLE {}",
        ds.jaccard,
        mle.jaccard
    );
    assert!(ds.jaccard > 0.85, "{}", ds.jaccard);
    assert!(ds.rmse_lateral_nm < 35.0, "{}", ds.rmse_lateral_nm);
    assert!(
        (density / n as f64 - 1.0).abs() < 0.3,
        "density map sums to {density} for {n} molecules"
    );
}

/// At low density Deep-STORM finds the molecules too (the MLE fit stays more precise there).
#[test]
fn deepstorm_at_low_density() {
    let o = SmlmSimOptions {
        seed: 32,
        ..SmlmSimOptions::low_density(80)
    };
    let (_, ds, _, _) = compare(&o);
    assert!(ds.jaccard > 0.9, "{}", ds.jaccard);
    assert!(ds.rmse_lateral_nm < 25.0, "{}", ds.rmse_lateral_nm);
}

/// `fluorecon simulate-smlm` → `fluorecon deepstorm localize` (bundled model, pixel size from
/// the TIFF) → CSV and density image; bad input fails with a message.
#[test]
fn cli_deepstorm_localize() {
    let d = TempDir::new("deepstorm-cli");
    let p = |f: &str| d.path(f);
    ok(&[
        "simulate-smlm",
        "--preset",
        "high-density",
        "--frames",
        "12",
        "-o",
        &p(""),
    ]);
    let err = ok(&[
        "deepstorm",
        "localize",
        &p("stack.tif"),
        "--offset",
        "100",
        "--e-per-adu",
        "45",
        "--em-gain",
        "300",
        "-o",
        &p("ds.csv"),
        "--density",
        &p("ds.tif"),
    ]);
    assert!(
        err.contains("Deep-STORM model 'deepstorm-2d-emccd-100nm'"),
        "{err}"
    );
    let locs = fluorecon::smlm::results::read_csv_file(std::path::Path::new(&p("ds.csv"))).unwrap();
    let truth = read_truth(&p("truth.csv"));
    let a = assess(&points(&locs), &truth, 250.0, None);
    assert!(a.jaccard > 0.8, "{a:?}");
    // Photons: 2000 emitted × QE 0.9 on average.
    let mut photons: Vec<f32> = locs.iter().map(|l| l.photons).collect();
    photons.sort_by(f32::total_cmp);
    let median = photons[photons.len() / 2];
    assert!(
        (median / 1800.0 - 1.0).abs() < 0.15,
        "median photons {median}"
    );
    let density = fluorecon::io::tiff::read_tiff(std::path::Path::new(&p("ds.tif"))).unwrap();
    assert_eq!((density.width, density.height), (256, 256));
    assert!(
        (density.voxel.x - 0.025).abs() < 1e-9,
        "{:?}",
        density.voxel
    );

    // A model folder that is not one; a corrupt input.
    let err = fails(&[
        "deepstorm",
        "localize",
        &p("stack.tif"),
        "--model",
        &p("nowhere"),
        "-o",
        &p("x.csv"),
    ]);
    assert!(err.contains("model.json"), "{err}");
    std::fs::write(p("bad.tif"), b"II*\0garbage").unwrap();
    fails(&[
        "deepstorm",
        "localize",
        &p("bad.tif"),
        "--pixel-size",
        "100",
        "-o",
        &p("x.csv"),
    ]);
    assert!(!std::path::Path::new(&p("x.csv")).exists());
}
