use super::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Poisson};

/// A noisy window of photon counts around (x, y).
fn spot_window(rng: &mut ChaCha8Rng, w: usize, truth: [f64; 5]) -> Vec<f64> {
    let [x, y, n, b, s] = truth;
    let (mut ex, mut ey, mut d1, mut d2) = (vec![0.0; w], vec![0.0; w], vec![0.0; w], vec![0.0; w]);
    pixel_integrals(x, s, &mut ex, &mut d1, &mut d2);
    pixel_integrals(y, s, &mut ey, &mut d1, &mut d2);
    let mut out = Vec::with_capacity(w * w);
    for j in 0..w {
        for i in 0..w {
            let mu = b + n * ex[i] * ey[j];
            out.push(Poisson::new(mu).unwrap().sample(rng));
        }
    }
    out
}

#[test]
fn pixel_integrals_match_finite_differences() {
    let n = 9;
    let (x, s) = (4.3, 1.2);
    let (mut e, mut dx, mut ds) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    pixel_integrals(x, s, &mut e, &mut dx, &mut ds);
    let total: f64 = e.iter().sum();
    assert!((total - 0.9993).abs() < 1e-3, "sum {total}");
    let h = 1e-5;
    let (mut ep, mut em, mut t1, mut t2) = (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    pixel_integrals(x + h, s, &mut ep, &mut t1, &mut t2);
    pixel_integrals(x - h, s, &mut em, &mut t1, &mut t2);
    for i in 0..n {
        let fd = (ep[i] - em[i]) / (2.0 * h);
        assert!(
            (fd - dx[i]).abs() < 1e-5,
            "d/dx pixel {i}: {fd} vs {}",
            dx[i]
        );
    }
    pixel_integrals(x, s + h, &mut ep, &mut t1, &mut t2);
    pixel_integrals(x, s - h, &mut em, &mut t1, &mut t2);
    for i in 0..n {
        let fd = (ep[i] - em[i]) / (2.0 * h);
        assert!(
            (fd - ds[i]).abs() < 1e-5,
            "d/dσ pixel {i}: {fd} vs {}",
            ds[i]
        );
    }
}

/// Over many noisy spots the MLE is unbiased and its spread matches the CRLB.
#[test]
fn mle_reaches_the_crlb() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let opts = FitOptions::default();
    let w = 7;
    let trials = 1500;
    let (mut ex, mut ey, mut e2, mut crlb, mut n_err) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let mut fitted = 0;
    for _ in 0..trials {
        let truth = [
            3.5 + rng.gen_range(-0.5..0.5),
            3.5 + rng.gen_range(-0.5..0.5),
            800.0,
            10.0,
            1.3,
        ];
        let win = spot_window(&mut rng, w, truth);
        let Some(s) = fit_spot(&win, w, &opts) else {
            continue;
        };
        fitted += 1;
        ex += s.x - truth[0];
        ey += s.y - truth[1];
        e2 += (s.x - truth[0]).powi(2);
        crlb += s.crlb_x;
        n_err += s.photons / truth[2] - 1.0;
        assert!((s.sigma - 1.3).abs() < 0.3, "σ {}", s.sigma);
    }
    let k = fitted as f64;
    assert!(
        fitted >= trials - 5,
        "only {fitted} of {trials} fits converged"
    );
    let (bias_x, bias_y) = (ex / k, ey / k);
    let (rmse, sd) = ((e2 / k).sqrt(), (crlb / k).sqrt());
    assert!(
        bias_x.abs() < 0.01 && bias_y.abs() < 0.01,
        "bias {bias_x} {bias_y}"
    );
    assert!(
        rmse > 0.9 * sd && rmse < 1.1 * sd,
        "RMSE {rmse} px vs √CRLB {sd} px"
    );
    assert!((n_err / k).abs() < 0.03, "photon bias {}", n_err / k);
}

#[test]
fn least_squares_fits_too() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let opts = FitOptions {
        method: FitMethod::LeastSquares,
        ..FitOptions::default()
    };
    let truth = [3.2, 3.9, 3000.0, 20.0, 1.2];
    let win = spot_window(&mut rng, 7, truth);
    let s = fit_spot(&win, 7, &opts).expect("fit");
    assert!((s.x - truth[0]).abs() < 0.1 && (s.y - truth[1]).abs() < 0.1);
    assert!(
        (s.photons / truth[2] - 1.0).abs() < 0.1,
        "photons {}",
        s.photons
    );
}

/// Windows without a spot, with NaN or all zero are rejected, never a panic.
#[test]
fn bad_windows_are_rejected() {
    let opts = FitOptions::default();
    assert!(fit_spot(&[0.0; 49], 7, &opts).is_none());
    let mut nan = vec![5.0; 49];
    nan[10] = f64::NAN;
    assert!(fit_spot(&nan, 7, &opts).is_none());
    assert!(fit_spot(&[1.0; 10], 7, &opts).is_none());
    // A spot far off-centre, half outside the window: the fit must not pretend.
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let win = spot_window(&mut rng, 7, [-1.5, 3.5, 2000.0, 10.0, 1.3]);
    if let Some(s) = fit_spot(&win, 7, &opts) {
        assert!((0.0..=7.0).contains(&s.x));
    }
}
