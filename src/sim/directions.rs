//! The pattern of all directions at once: the coarse correlation peaks of every direction
//! ([`CoarseSearch`]) are combined so that the directions agree, as a real SIM pattern does
//! (one stripe period for every direction, directions evenly spaced over 180°). A sample
//! with its own periodic structure, out-of-focus light or noise can make a wrong peak the
//! strongest of one direction; the consistent combination of candidate peaks is then taken
//! instead. A direction is flagged `inconsistent` when no consistent combination exists and
//! it disagrees with the others.

use super::estimate::{flag_uneven_angles, AngleParams, Candidate, CoarseSearch};
use super::otf::{Otf, SimOptics};
use rayon::prelude::*;

/// Largest relative difference of |k₀| between directions that still counts as one pattern.
pub const K0_TOLERANCE: f64 = 0.03;
/// Largest deviation (degrees) of the spacing of the directions from 180°/directions.
pub const ANGLE_TOLERANCE_DEG: f64 = 5.0;
/// Correlation peak over the mean of the search region that pure noise does not reach (its
/// maximum is about 3.6 on a 256² image): a peak this high in every direction of a consistent
/// combination counts as stripes even below
/// [`MIN_PEAK_RATIO`](super::estimate::MIN_PEAK_RATIO) (a chance combination of noise
/// peaks that agrees in |k₀| and direction is rare: about 1 in 200 for 3 directions).
pub const CONSISTENT_PEAK_RATIO: f64 = 4.0;

/// Estimates the pattern of every direction; `frames[a]` holds the frames of direction a (one
/// per equidistant phase, background-subtracted and tapered, (ny, nx) row-major).
pub fn estimate_directions(
    frames: &[Vec<&[f32]>],
    dims: (usize, usize),
    optics: &SimOptics,
    otf: &Otf,
    default_modulation: f64,
) -> Vec<AngleParams> {
    let mut searches: Vec<CoarseSearch> = frames
        .par_iter()
        .map(|f| CoarseSearch::new(f, dims, optics, otf))
        .collect();
    let p = optics.pixel_size_um();
    let to_um = |c: &Candidate| {
        [
            c.shift[0] as f64 / (dims.1 as f64 * p),
            c.shift[1] as f64 / (dims.0 as f64 * p),
        ]
    };
    let mut candidates: Vec<Vec<[f64; 2]>> = searches
        .iter()
        .map(|s| s.candidates.iter().map(to_um).collect())
        .collect();
    let mut chosen = consistent_choice(&candidates, |a, i| searches[a].candidates[i].ratio);
    if chosen.is_none() && searches.len() > 1 {
        // A direction whose true peak is weak (a sample with little structure along it, low
        // light): look where the other directions' strongest peaks predict it, |k₀| the same
        // and the direction rotated by a multiple of 180°/directions.
        let n = searches.len();
        let predicted: Vec<[f64; 2]> = searches
            .iter()
            .filter_map(|s| s.candidates.first())
            .flat_map(|c| {
                (1..n).map(move |j| {
                    let a = std::f64::consts::PI * j as f64 / n as f64;
                    let (sn, cs) = a.sin_cos();
                    let (x, y) = (c.shift[0] as f64, c.shift[1] as f64);
                    // rotate in physical frequency units (non-square frames)
                    let (ux, uy) = (x / dims.1 as f64, y / dims.0 as f64);
                    let (rx, ry) = (ux * cs - uy * sn, ux * sn + uy * cs);
                    [rx * dims.1 as f64, ry * dims.0 as f64]
                })
            })
            .collect();
        for s in searches.iter_mut() {
            for &k in &predicted {
                for sign in [1.0, -1.0] {
                    if let Some(c) = s.peak_near([sign * k[0], sign * k[1]]) {
                        if !s.candidates.iter().any(|o| o.shift == c.shift) {
                            s.candidates.push(c);
                        }
                    }
                }
            }
        }
        candidates = searches
            .iter()
            .map(|s| s.candidates.iter().map(to_um).collect())
            .collect();
        chosen = consistent_choice(&candidates, |a, i| searches[a].candidates[i].ratio);
    }
    let picks: Vec<Candidate> = searches
        .iter()
        .enumerate()
        .map(|(a, s)| {
            let i = chosen.as_ref().map_or(0, |c| c[a]);
            s.candidates.get(i).copied().unwrap_or_default()
        })
        .collect();
    let mut params: Vec<AngleParams> = searches
        .par_iter()
        .zip(&picks)
        .map(|(s, &c)| s.refine(c, default_modulation))
        .collect();
    flag_uneven_angles(&mut params);
    let refined: Vec<[f64; 2]> = params.iter().map(|p| p.k0_per_um).collect();
    if chosen.is_some() && agree(&refined) {
        for p in params.iter_mut() {
            if p.peak_ratio >= CONSISTENT_PEAK_RATIO {
                p.flags.no_stripes = false;
            }
        }
    } else if params.len() > 1 {
        // Flag the directions whose |k₀| is off the median, and all when the angles are uneven.
        let mut ks: Vec<f64> = refined.iter().map(|k| k[0].hypot(k[1])).collect();
        let all = ks.clone();
        ks.sort_by(f64::total_cmp);
        let median = ks[ks.len() / 2];
        for (p, k) in params.iter_mut().zip(all) {
            p.flags.inconsistent = (k / median - 1.0).abs() > K0_TOLERANCE || p.flags.uneven_angles;
        }
    }
    params
}

/// Whether wave vectors `k` (cycles/µm) form one pattern: |k| within [`K0_TOLERANCE`] of
/// their mean and directions evenly spaced over 180° within [`ANGLE_TOLERANCE_DEG`].
pub fn agree(k: &[[f64; 2]]) -> bool {
    let n = k.len();
    if n < 2 {
        return true;
    }
    let mags: Vec<f64> = k.iter().map(|v| v[0].hypot(v[1])).collect();
    let mean = mags.iter().sum::<f64>() / n as f64;
    if mags.iter().any(|m| (m / mean - 1.0).abs() > K0_TOLERANCE) {
        return false;
    }
    let mut a: Vec<f64> = k
        .iter()
        .map(|v| v[1].atan2(v[0]).to_degrees().rem_euclid(180.0))
        .collect();
    a.sort_by(f64::total_cmp);
    let expected = 180.0 / n as f64;
    (0..n).all(|i| {
        let next = if i + 1 < n { a[i + 1] } else { a[0] + 180.0 };
        (next - a[i] - expected).abs() <= ANGLE_TOLERANCE_DEG
    })
}

/// The combination of candidates (one index per direction into `candidates[a]`, wave vectors
/// in cycles/µm) that [`agree`]s and has the largest Σ ln(ratio); `None` when none agrees.
fn consistent_choice(
    candidates: &[Vec<[f64; 2]>],
    ratio: impl Fn(usize, usize) -> f64,
) -> Option<Vec<usize>> {
    let n = candidates.len();
    if candidates.iter().any(|c| c.is_empty()) {
        return None;
    }
    // At most (8 + predicted)^3 combinations for 3 directions; fewer candidates per direction
    // beyond that.
    let per = if n <= 3 { 24 } else { 6 };
    let counts: Vec<usize> = candidates.iter().map(|c| c.len().min(per)).collect();
    let mut idx = vec![0usize; n];
    let mut best: Option<(f64, Vec<usize>)> = None;
    loop {
        let k: Vec<[f64; 2]> = idx
            .iter()
            .enumerate()
            .map(|(a, &i)| candidates[a][i])
            .collect();
        if agree(&k) {
            let score: f64 = idx
                .iter()
                .enumerate()
                .map(|(a, &i)| ratio(a, i).max(1e-12).ln())
                .sum();
            if best.as_ref().is_none_or(|(s, _)| score > *s) {
                best = Some((score, idx.clone()));
            }
        }
        // next combination (odometer)
        let mut d = 0;
        loop {
            if d == n {
                return best.map(|(_, i)| i);
            }
            idx[d] += 1;
            if idx[d] < counts[d] {
                break;
            }
            idx[d] = 0;
            d += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreement_and_the_consistent_choice() {
        let polar = |k: f64, deg: f64| {
            let (s, c) = deg.to_radians().sin_cos();
            [k * c, k * s]
        };
        assert!(agree(&[
            polar(3.8, 10.0),
            polar(3.82, 70.0),
            polar(3.79, 130.0)
        ]));
        assert!(!agree(&[
            polar(3.8, 10.0),
            polar(3.2, 70.0),
            polar(3.79, 130.0)
        ]));
        assert!(!agree(&[
            polar(3.8, 10.0),
            polar(3.8, 80.0),
            polar(3.8, 130.0)
        ]));
        // Directions may come in any order and k₀ with either sign.
        assert!(agree(&[
            polar(3.8, 130.0),
            polar(3.8, -170.0),
            polar(3.8, 70.0)
        ]));
        // Direction 2's strongest peak is a sample periodicity at 100°: its second one is
        // taken because it agrees with the others.
        let cands = vec![
            vec![polar(3.8, 10.0)],
            vec![polar(3.3, 100.0), polar(3.8, 70.5)],
            vec![polar(3.8, 129.0), polar(2.0, 40.0)],
        ];
        let ratio = |a: usize, i: usize| [[20.0, 0.0], [40.0, 9.0], [18.0, 30.0]][a][i];
        assert_eq!(consistent_choice(&cands, ratio), Some(vec![0, 1, 0]));
        let none = vec![vec![polar(3.8, 10.0)], vec![polar(3.3, 100.0)]];
        assert_eq!(consistent_choice(&none, ratio), None);
    }
}
