//! Assessment against ground truth by the SMLM Challenge 2016 protocol (Sage et al. 2019):
//! in each frame, nearest pairs of localization and true emitter closer than a tolerance
//! (250 nm lateral) are matched (greedily, closest first); Jaccard = TP/(TP + FP + FN);
//! lateral RMSE over the matched pairs; efficiency E = 100 − √((100 − 100·JAC)² + α²·RMSE²)
//! with α = 1 nm⁻¹.

/// Matching outcome.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Assessment {
    pub true_positives: usize,
    pub false_positives: usize,
    pub false_negatives: usize,
    /// TP/(TP + FP + FN), 0–1.
    pub jaccard: f64,
    /// √(mean(dx² + dy²)) over the matched pairs, nm.
    pub rmse_lateral_nm: f64,
    /// Mean x and y error (found − true) of the matched pairs, nm: a bias shows here.
    pub mean_dx_nm: f64,
    pub mean_dy_nm: f64,
    /// Lateral efficiency, percent (100 = perfect).
    pub efficiency: f64,
}

/// A point: frame (from 1), x and y in nm.
pub type Point = (u32, f64, f64);

/// Matches `found` to `truth` frame by frame within `tolerance_nm`. The index pairs
/// (found, truth) are written to `pairs` when given.
pub fn assess(
    found: &[Point],
    truth: &[Point],
    tolerance_nm: f64,
    mut pairs: Option<&mut Vec<(usize, usize)>>,
) -> Assessment {
    let by_frame = |pts: &[Point]| {
        let mut idx: Vec<usize> = (0..pts.len()).collect();
        idx.sort_by_key(|&i| pts[i].0);
        idx
    };
    let (fi, ti) = (by_frame(found), by_frame(truth));
    let (mut a, mut b) = (0, 0);
    let (mut tp, mut se, mut sx, mut sy) = (0usize, 0.0, 0.0, 0.0);
    let tol2 = tolerance_nm * tolerance_nm;
    let mut cand: Vec<(f64, usize, usize)> = Vec::new();
    while a < fi.len() || b < ti.len() {
        let frame = match (fi.get(a), ti.get(b)) {
            (Some(&i), Some(&j)) => found[i].0.min(truth[j].0),
            (Some(&i), None) => found[i].0,
            (None, Some(&j)) => truth[j].0,
            (None, None) => break,
        };
        let a_end = a + fi[a..].iter().take_while(|&&i| found[i].0 == frame).count();
        let b_end = b + ti[b..].iter().take_while(|&&j| truth[j].0 == frame).count();
        cand.clear();
        for &i in &fi[a..a_end] {
            for &j in &ti[b..b_end] {
                let d2 = (found[i].1 - truth[j].1).powi(2) + (found[i].2 - truth[j].2).powi(2);
                if d2 <= tol2 {
                    cand.push((d2, i, j));
                }
            }
        }
        cand.sort_by(|p, q| p.0.total_cmp(&q.0));
        let mut used_f = std::collections::HashSet::new();
        let mut used_t = std::collections::HashSet::new();
        for &(d2, i, j) in &cand {
            if used_f.contains(&i) || used_t.contains(&j) {
                continue;
            }
            used_f.insert(i);
            used_t.insert(j);
            tp += 1;
            se += d2;
            sx += found[i].1 - truth[j].1;
            sy += found[i].2 - truth[j].2;
            if let Some(p) = pairs.as_deref_mut() {
                p.push((i, j));
            }
        }
        a = a_end;
        b = b_end;
    }
    let fp = found.len() - tp;
    let fn_ = truth.len() - tp;
    let denom = (tp + fp + fn_).max(1) as f64;
    let jaccard = tp as f64 / denom;
    let k = tp.max(1) as f64;
    let rmse = if tp > 0 { (se / k).sqrt() } else { f64::NAN };
    let efficiency = 100.0 - ((100.0 - 100.0 * jaccard).powi(2) + rmse.powi(2)).sqrt();
    Assessment {
        true_positives: tp,
        false_positives: fp,
        false_negatives: fn_,
        jaccard,
        rmse_lateral_nm: rmse,
        mean_dx_nm: sx / k,
        mean_dy_nm: sy / k,
        efficiency,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_matches_per_frame() {
        let truth = [(1, 100.0, 100.0), (1, 1000.0, 1000.0), (2, 500.0, 500.0)];
        // One exact, one 30 nm off (3-4-5), one in the wrong frame, one far away.
        let found = [
            (1, 100.0, 100.0),
            (1, 1018.0, 1024.0),
            (3, 500.0, 500.0),
            (2, 900.0, 500.0),
        ];
        let mut pairs = Vec::new();
        let r = assess(&found, &truth, 250.0, Some(&mut pairs));
        assert_eq!(
            (r.true_positives, r.false_positives, r.false_negatives),
            (2, 2, 1)
        );
        assert!((r.jaccard - 2.0 / 5.0).abs() < 1e-12);
        // √((0 + 30²)/2) = 21.21 nm.
        assert!((r.rmse_lateral_nm - (450.0f64).sqrt()).abs() < 1e-9);
        assert_eq!(pairs, vec![(0, 0), (1, 1)]);
        // Closest pairs first: two found near one truth, the nearer wins.
        let r = assess(
            &[(1, 10.0, 0.0), (1, 5.0, 0.0)],
            &[(1, 0.0, 0.0)],
            250.0,
            None,
        );
        assert_eq!(r.true_positives, 1);
        assert!((r.rmse_lateral_nm - 5.0).abs() < 1e-12);
        let e = 100.0 - ((100.0f64 - 50.0).powi(2) + 25.0).sqrt();
        assert!((r.efficiency - e).abs() < 1e-9);
    }
}
