//! Special functions, written out so that the crate needs no numerics library: Bessel
//! functions J₀ and J₁ (power series below |x| = 15, Hankel's asymptotic expansion above;
//! absolute error below 1e-10 everywhere) for the PSF models, the (complementary) error
//! function (Numerical Recipes' Chebyshev fit, relative error below 1.2e-7) for the PSF
//! models and the integrated-Gaussian spots of localization, and Gauss–Legendre nodes.

use std::f64::consts::{FRAC_PI_4, PI};

/// Where the power series hands over to the asymptotic expansion. At 15 the series loses
/// ~5 of its 16 digits to cancellation and the asymptotic series' smallest term is ~e⁻³⁰.
const SERIES_LIMIT: f64 = 15.0;

/// Bessel function of the first kind of order 0, J₀(x).
pub fn bessel_j0(x: f64) -> f64 {
    bessel_j(0, x)
}

/// Bessel function of the first kind of order 1, J₁(x).
pub fn bessel_j1(x: f64) -> f64 {
    bessel_j(1, x)
}

fn bessel_j(order: u32, x: f64) -> f64 {
    let ax = x.abs();
    let value = if ax < SERIES_LIMIT {
        bessel_series(order, ax)
    } else {
        bessel_asymptotic(order, ax)
    };
    // J₀ is even, J₁ odd.
    if order == 1 && x < 0.0 {
        -value
    } else {
        value
    }
}

/// J_ν(x) = Σₖ (−1)ᵏ (x/2)^(2k+ν) / (k! (k+ν)!), x ≥ 0.
fn bessel_series(order: u32, x: f64) -> f64 {
    let half = 0.5 * x;
    let half2 = half * half;
    let mut term = if order == 0 { 1.0 } else { half };
    let mut sum = term;
    for k in 1..200u32 {
        term *= -half2 / (f64::from(k) * f64::from(k + order));
        sum += term;
        if f64::from(k) > half && term.abs() < 1e-17 {
            break;
        }
    }
    sum
}

/// Hankel's expansion J_ν(x) = √(2/(πx)) (P cos ω − Q sin ω), ω = x − (2ν+1)π/4, with
/// P = Σ (−1)ᵏ a₂ₖ/x²ᵏ, Q = Σ (−1)ᵏ a₂ₖ₊₁/x²ᵏ⁺¹, aₘ = Πⱼ₌₁..ₘ (4ν² − (2j−1)²) / (m! 8ᵐ).
/// Summed until the terms stop shrinking (the series is asymptotic), x ≥ 15.
fn bessel_asymptotic(order: u32, x: f64) -> f64 {
    let mu = 4.0 * f64::from(order * order);
    let (mut p, mut q) = (1.0, 0.0);
    let mut term = 1.0f64;
    for m in 1..100u32 {
        let odd = f64::from(2 * m - 1);
        let next = term * (mu - odd * odd) / (f64::from(m) * 8.0 * x);
        if next.abs() >= term.abs() {
            break;
        }
        term = next;
        match m % 4 {
            1 => q += term,
            2 => p -= term,
            3 => q -= term,
            _ => p += term,
        }
        if term.abs() < 1e-17 {
            break;
        }
    }
    let omega = x - FRAC_PI_4 * f64::from(2 * order + 1);
    (2.0 / (PI * x)).sqrt() * (p * omega.cos() - q * omega.sin())
}

/// Complementary error function erfc(x) = 1 − erf(x); relative error below 1.2e-7
/// (Numerical Recipes §6.2, Chebyshev fit), so it stays accurate in the far tail.
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let value = t * (-z * z + poly).exp();
    if x >= 0.0 {
        value
    } else {
        2.0 - value
    }
}

/// Error function erf(x).
pub fn erf(x: f64) -> f64 {
    1.0 - erfc(x)
}

/// Gauss–Legendre nodes and weights for ∫₀¹ f(ρ) dρ ≈ Σ wᵢ f(ρᵢ) with `n` points (exact for
/// polynomials up to degree 2n−1). Nodes by Newton's method on the Legendre recurrence.
pub fn gauss_legendre_01(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut nodes = vec![0.0; n];
    let mut weights = vec![0.0; n];
    let nf = n as f64;
    for i in 0..n.div_ceil(2) {
        // Tricomi's initial guess for the i-th root (descending), then Newton.
        let mut z = (PI * (i as f64 + 0.75) / (nf + 0.5)).cos();
        let mut dp = 1.0;
        for _ in 0..100 {
            let (mut p1, mut p2) = (1.0, 0.0);
            for j in 1..=n {
                let jf = j as f64;
                let p3 = p2;
                p2 = p1;
                p1 = ((2.0 * jf - 1.0) * z * p2 - (jf - 1.0) * p3) / jf;
            }
            dp = nf * (z * p1 - p2) / (z * z - 1.0);
            let step = p1 / dp;
            z -= step;
            if step.abs() < 1e-15 {
                break;
            }
        }
        let w = 2.0 / ((1.0 - z * z) * dp * dp);
        // Map [−1, 1] to [0, 1].
        nodes[i] = 0.5 * (1.0 - z);
        nodes[n - 1 - i] = 0.5 * (1.0 + z);
        weights[i] = 0.5 * w;
        weights[n - 1 - i] = 0.5 * w;
    }
    (nodes, weights)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Slow, obviously correct reference: Bessel's integral
    /// J_ν(x) = (1/π) ∫₀^π cos(νθ − x sin θ) dθ, by the trapezoid rule (spectrally accurate
    /// for this periodic integrand once the step resolves the oscillation).
    fn bessel_integral(order: u32, x: f64) -> f64 {
        let n = 4000 + 4 * x.abs() as usize;
        let h = PI / n as f64;
        let f = |t: f64| (f64::from(order) * t - x * t.sin()).cos();
        let mut s = 0.5 * (f(0.0) + f(PI));
        for i in 1..n {
            s += f(i as f64 * h);
        }
        s * h / PI
    }

    #[test]
    fn j0_j1_match_reference_values() {
        // (x, J₀(x), J₁(x)) from SciPy 1.17 (Cephes).
        let table = [
            (0.0, 1.0, 0.0),
            (1.0, 0.765_197_686_557_966_5, 0.440_050_585_744_933_5),
            (2.404_825_557_695_773, 0.0, 0.519_147_497_289_466_6),
            (5.0, -0.177_596_771_314_338_3, -0.327_579_137_591_465_3),
            (10.0, -0.245_935_764_451_348_3, 0.043_472_746_168_861_41),
            (12.0, 0.047_689_310_796_833_35, -0.223_447_104_490_627_6),
            (15.0, -0.014_224_472_826_780_6, 0.205_104_038_613_522_8),
            (20.0, 0.167_024_664_340_583_2, 0.066_833_124_175_850_2),
            (50.0, 0.055_812_327_669_252_09, -0.097_511_828_125_175_09),
            (100.0, 0.019_985_850_304_223_33, -0.077_145_352_014_112_3),
            (1000.0, 0.024_786_686_152_420_03, 0.004_728_311_907_089_02),
        ];
        for (x, j0, j1) in table {
            assert!(
                (bessel_j0(x) - j0).abs() < 1e-12,
                "J0({x}) = {} ≠ {j0}",
                bessel_j0(x)
            );
            assert!(
                (bessel_j1(x) - j1).abs() < 1e-12,
                "J1({x}) = {} ≠ {j1}",
                bessel_j1(x)
            );
            assert_eq!(bessel_j0(-x), bessel_j0(x));
            assert_eq!(bessel_j1(-x), -bessel_j1(x));
        }
    }

    #[test]
    fn j0_j1_match_bessel_integral_at_random_points() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut worst = 0.0f64;
        for i in 0..300 {
            // Dense around the series/asymptotic hand-over, then out to 400.
            let x = if i < 100 {
                rng.gen_range(13.0..17.0)
            } else {
                rng.gen_range(0.0..400.0)
            };
            worst = worst
                .max((bessel_j0(x) - bessel_integral(0, x)).abs())
                .max((bessel_j1(x) - bessel_integral(1, x)).abs());
        }
        eprintln!("PROBE bessel {worst:e}");
        assert!(worst < 1e-10, "worst |error| {worst:e}");
    }

    #[test]
    fn j1_is_minus_derivative_of_j0() {
        for x in [0.3, 2.0, 7.5, 14.9, 15.1, 33.0] {
            // Fourth-order central difference.
            let (h, f) = (1e-2, bessel_j0);
            let d =
                (f(x - 2.0 * h) - 8.0 * f(x - h) + 8.0 * f(x + h) - f(x + 2.0 * h)) / (12.0 * h);
            assert!(
                (d + bessel_j1(x)).abs() < 1e-8,
                "x={x}: {:e}",
                (d + bessel_j1(x)).abs()
            );
        }
    }

    #[test]
    fn erf_matches_reference_values() {
        let table = [
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_8),
            (3.0, 0.999_977_909_503_001_4),
        ];
        for (x, e) in table {
            assert!((erf(x) - e).abs() < 2e-7, "erf({x})");
            assert!((erf(-x) + e).abs() < 2e-7, "erf(-{x})");
        }
        let tail = 2.209_049_699_858_544_5e-5; // erfc(3)
        assert!((erfc(3.0) / tail - 1.0).abs() < 1.2e-7);
    }

    #[test]
    fn gauss_legendre_integrates_polynomials_exactly() {
        let (x, w) = gauss_legendre_01(12);
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-14);
        for degree in 0..24 {
            let s: f64 = x.iter().zip(&w).map(|(x, w)| w * x.powi(degree)).sum();
            assert!(
                (s - 1.0 / f64::from(degree + 1)).abs() < 1e-14,
                "degree {degree}"
            );
        }
    }
}
