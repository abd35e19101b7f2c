//! Intensity normalisation before a network and its undo after it.
//!
//! Both kinds are affine maps `x ↦ (x − offset) / scale`; the same map normalises the
//! input (and, in training, the target) and its inverse brings the output back to the
//! input's units.

use crate::{invalid, Result};
use serde::{Deserialize, Serialize};

/// How images are normalised, stored in `model.json`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Normalization {
    /// Per image: the `low` percentile maps to 0 and the `high` percentile to 1
    /// (CSBDeep: 2 / 99.8; the CSBDeep Fiji plugin: 3 / 99.8).
    Percentile { low: f64, high: f64 },
    /// Fixed: subtract `mean`, divide by `std` (Noise2Void: statistics of the training
    /// data, stored in the model).
    MeanStd { mean: f64, std: f64 },
}

/// The affine map of one image: normalised = (x − offset) / scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    pub offset: f32,
    pub scale: f32,
}

impl Affine {
    pub fn apply(&self, x: f32) -> f32 {
        (x - self.offset) / self.scale
    }
    pub fn undo(&self, y: f32) -> f32 {
        y * self.scale + self.offset
    }
}

/// Largest |mean| and std a `model.json` may give (image units): beyond, the normalised
/// values of any f32 image overflow or lose every digit.
pub const MAX_MEAN_STD: f64 = 1e30;
/// Smallest std a `model.json` may give (image units), relative to max(|mean|, 1): below,
/// normalised values leave f32's range.
pub const MIN_RELATIVE_STD: f64 = 1e-6;

impl Normalization {
    /// Checks the values read from a `model.json` (or computed from training data):
    /// percentiles with 0 ≤ low < high ≤ 100; a finite mean with |mean| ≤ [`MAX_MEAN_STD`]
    /// and a std with max(|mean|, 1)·[`MIN_RELATIVE_STD`] ≤ std ≤ [`MAX_MEAN_STD`]. A std
    /// of 0 (constant training data) is refused, not repaired.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Normalization::Percentile { low, high } => {
                if !(0.0..=100.0).contains(&low) || !(0.0..=100.0).contains(&high) || low >= high {
                    return invalid!(
                        "normalisation percentiles must satisfy 0 ≤ low < high ≤ 100, \
                         got {low} and {high}"
                    );
                }
            }
            Normalization::MeanStd { mean, std } => {
                if !mean.is_finite() || mean.abs() > MAX_MEAN_STD {
                    return invalid!(
                        "normalisation mean {mean} is not a usable number (|mean| ≤ {MAX_MEAN_STD:e})"
                    );
                }
                let min_std = mean.abs().max(1.0) * MIN_RELATIVE_STD;
                if !std.is_finite() || std < min_std || std > MAX_MEAN_STD {
                    return invalid!(
                        "normalisation standard deviation {std} is not usable (it must be \
                         between {min_std:e} and {MAX_MEAN_STD:e} for mean {mean}): the model \
                         was trained on constant images or its model.json was edited"
                    );
                }
            }
        }
        Ok(())
    }

    /// The map for `data` (percentiles are computed on `data`).
    pub fn affine(&self, data: &[f32]) -> Result<Affine> {
        let (offset, scale) = match *self {
            Normalization::Percentile { low, high } => {
                if !(0.0..=100.0).contains(&low) || !(0.0..=100.0).contains(&high) || low >= high {
                    return invalid!(
                        "normalisation percentiles must satisfy 0 ≤ low < high ≤ 100, \
                         got {low} and {high}"
                    );
                }
                let p = percentiles(data, &[low, high]);
                (p[0], p[1] - p[0])
            }
            Normalization::MeanStd { mean, std } => (mean as f32, std as f32),
        };
        // A flat image has no contrast to scale: keep its units.
        let scale = if scale.is_finite() && scale > f32::EPSILON * offset.abs().max(1.0) {
            scale
        } else {
            1.0
        };
        Ok(Affine { offset, scale })
    }

    /// Mean and standard deviation of `data` (one pass, Welford's update in f64, no copy),
    /// as a [`Normalization::MeanStd`].
    pub fn mean_std_of(data: impl IntoIterator<Item = f32>) -> Normalization {
        let (mut n, mut mean, mut m2) = (0f64, 0f64, 0f64);
        for v in data {
            n += 1.0;
            let d = v as f64 - mean;
            mean += d / n;
            m2 += d * (v as f64 - mean);
        }
        Normalization::MeanStd {
            mean,
            std: (m2 / n.max(1.0)).sqrt(),
        }
    }
}

/// Percentiles (0–100) of `data` by linear interpolation between order statistics
/// (numpy's default). Large inputs are subsampled to at most ~4 million values.
pub fn percentiles(data: &[f32], ps: &[f64]) -> Vec<f32> {
    if data.is_empty() {
        return vec![0.0; ps.len()];
    }
    let step = data.len().div_ceil(1 << 22).max(1);
    let mut v: Vec<f32> = data.iter().step_by(step).copied().collect();
    v.sort_unstable_by(|a, b| a.total_cmp(b));
    ps.iter()
        .map(|&p| {
            let pos = p.clamp(0.0, 100.0) / 100.0 * (v.len() - 1) as f64;
            let (i, f) = (pos.floor() as usize, pos - pos.floor());
            let j = (i + 1).min(v.len() - 1);
            (v[i] as f64 * (1.0 - f) + v[j] as f64 * f) as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_match_numpy() {
        // numpy.percentile(range(101), [2, 99.8]) = [2.0, 99.8]
        let data: Vec<f32> = (0..=100).rev().map(|v| v as f32).collect();
        let p = percentiles(&data, &[2.0, 99.8, 0.0, 100.0]);
        assert!((p[0] - 2.0).abs() < 1e-5 && (p[1] - 99.8).abs() < 1e-4);
        assert_eq!((p[2], p[3]), (0.0, 100.0));
    }

    #[test]
    fn affine_round_trip() {
        let data: Vec<f32> = (0..1000).map(|v| (v as f32).sin() * 50.0 + 100.0).collect();
        for norm in [
            Normalization::Percentile {
                low: 2.0,
                high: 99.8,
            },
            Normalization::mean_std_of(data.iter().copied()),
        ] {
            let a = norm.affine(&data).unwrap();
            for &x in &data[..20] {
                assert!((a.undo(a.apply(x)) - x).abs() < 1e-4);
            }
        }
        let Normalization::MeanStd { mean, std } = Normalization::mean_std_of(data.iter().copied())
        else {
            unreachable!()
        };
        assert!((mean - 100.0).abs() < 2.0 && (std - 50.0 / 2f64.sqrt()).abs() < 1.0);
    }

    #[test]
    fn flat_image_keeps_units_and_bad_percentiles_fail() {
        let a = Normalization::Percentile {
            low: 1.0,
            high: 99.0,
        }
        .affine(&[5.0; 10])
        .unwrap();
        assert_eq!(a.scale, 1.0);
        assert!(Normalization::Percentile {
            low: 50.0,
            high: 10.0
        }
        .affine(&[1.0])
        .is_err());
    }
}
