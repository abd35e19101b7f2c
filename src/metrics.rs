//! Image comparison metrics against a reference or ground truth, for tests, benchmarks and
//! the CLI: relative RMS difference and PSNR. (SMLM's localization metrics, Jaccard and
//! RMSE after matching, are in `smlm::metrics`.)

use ndarray::{s, Array3};

/// Relative RMS difference ‖a − b‖ / ‖b‖ (f64 sums), e.g. of a GPU result against the CPU's.
pub fn relative_rms(a: &Array3<f32>, b: &Array3<f32>) -> f64 {
    assert_eq!(
        a.dim(),
        b.dim(),
        "relative RMS of images of different shapes"
    );
    let d2: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| ((x - y) as f64).powi(2))
        .sum();
    let n2: f64 = b.iter().map(|&y| (y as f64).powi(2)).sum();
    (d2 / n2).sqrt()
}

/// Peak signal-to-noise ratio of `estimate` against `truth`, dB, with the data range
/// max(truth) − min(truth). Optionally over an interior crop of `margin` voxels per side
/// (x, y; and z when the volume has more than 2·margin planes).
pub fn psnr(estimate: &Array3<f32>, truth: &Array3<f32>, margin: usize) -> f64 {
    assert_eq!(
        estimate.dim(),
        truth.dim(),
        "PSNR of images of different shapes"
    );
    let (nz, ny, nx) = truth.dim();
    let mz = if nz > 2 * margin { margin } else { 0 };
    let (my, mx) = (margin.min((ny - 1) / 2), margin.min((nx - 1) / 2));
    let region = s![mz..nz - mz, my..ny - my, mx..nx - mx];
    let (e, t) = (estimate.slice(region), truth.slice(region));
    let (lo, hi) = t
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let mse = e
        .iter()
        .zip(t.iter())
        .map(|(&a, &b)| ((a - b) as f64).powi(2))
        .sum::<f64>()
        / t.len() as f64;
    let range = (hi - lo) as f64;
    10.0 * (range * range / mse.max(f64::MIN_POSITIVE)).log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_rms_of_known_error() {
        let b = Array3::from_elem((1, 2, 2), 2.0f32);
        let a = b.mapv(|v| v + 0.5); // ‖a − b‖ = 1, ‖b‖ = 4
        assert!((relative_rms(&a, &b) - 0.25).abs() < 1e-12);
    }

    #[test]
    fn psnr_of_known_error() {
        let truth = Array3::from_shape_fn((1, 10, 10), |(_, y, _)| y as f32 * 10.0);
        let est = truth.mapv(|v| v + 9.0); // MSE 81, range 90 → 20 dB
        assert!((psnr(&est, &truth, 0) - 20.0).abs() < 1e-9);
    }
}
