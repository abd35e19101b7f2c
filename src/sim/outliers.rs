//! Hot (cosmic-ray, defective) pixels in raw SIM frames: found and replaced before the pattern
//! estimate and the reconstruction, where a single bright pixel spreads over the whole
//! spectrum and can hide the stripe pattern's correlation peak.
//!
//! A pixel is hot when it stands above the brightest of its 8 neighbours by more than both
//! 10 σ (σ the frame's noise, from the median absolute deviation of the pixel-to-neighbours
//! difference) and that neighbour's own height above the frame's floor (5th percentile): an
//! image blurred by the optics cannot have a pixel twice as high above the floor as all its
//! neighbours (at Nyquist sampling a point's neighbours keep about 70 % of its peak). Hot
//! pixels are replaced by the median of their 8 neighbours. Border pixels are kept.

/// Replaces the hot pixels of a (ny, nx) row-major frame by the median of their 8
/// neighbours; returns how many were replaced.
pub fn replace_hot_pixels(frame: &mut [f32], (ny, nx): (usize, usize)) -> usize {
    if ny < 3 || nx < 3 {
        return 0;
    }
    let at = |f: &[f32], y: usize, x: usize| f[y * nx + x];
    // Noise: MAD of v − mean of the 4 neighbours; that difference has 1.118 σ for white noise.
    let mut diffs = Vec::with_capacity((ny - 2) * (nx - 2));
    for y in 1..ny - 1 {
        for x in 1..nx - 1 {
            let m4 = 0.25
                * (at(frame, y - 1, x)
                    + at(frame, y + 1, x)
                    + at(frame, y, x - 1)
                    + at(frame, y, x + 1));
            diffs.push(at(frame, y, x) - m4);
        }
    }
    let median = |v: &mut [f32]| -> f32 {
        let mid = v.len() / 2;
        *v.select_nth_unstable_by(mid, f32::total_cmp).1
    };
    let m = median(&mut diffs);
    diffs.iter_mut().for_each(|d| *d = (*d - m).abs());
    let sigma = 1.4826 * median(&mut diffs) / 1.118;
    let mut sorted: Vec<f32> = frame.to_vec();
    let floor = *sorted
        .select_nth_unstable_by(frame.len() / 20, f32::total_cmp)
        .1;
    let mut hot = Vec::new();
    for y in 1..ny - 1 {
        for x in 1..nx - 1 {
            let v = at(frame, y, x);
            let mut n = [0f32; 8];
            let mut i = 0;
            for dy in 0..3 {
                for dx in 0..3 {
                    if dy != 1 || dx != 1 {
                        n[i] = at(frame, y + dy - 1, x + dx - 1);
                        i += 1;
                    }
                }
            }
            let max8 = n.iter().copied().fold(f32::MIN, f32::max);
            if v - max8 > (10.0 * sigma).max(max8 - floor) {
                n.sort_by(f32::total_cmp);
                hot.push((y * nx + x, 0.5 * (n[3] + n[4])));
            }
        }
    }
    for &(i, v) in &hot {
        frame[i] = v;
    }
    hot.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, Poisson};

    #[test]
    fn a_cosmic_ray_is_replaced_and_a_bead_is_kept() {
        // Poisson background of 20 photons, a bead (Gaussian, σ 1.2 px, 2000 photons peak) and
        // one hot pixel of 5000.
        let (ny, nx) = (40, 48);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut f: Vec<f32> = (0..ny * nx)
            .map(|i| {
                let (y, x) = ((i / nx) as f64, (i % nx) as f64);
                let bead = 2000.0 * (-((x - 20.3).powi(2) + (y - 15.6).powi(2)) / 2.88).exp();
                Poisson::new(20.0 + bead).unwrap().sample(&mut rng) as f32
            })
            .collect();
        let clean = f.clone();
        f[30 * nx + 35] = 5000.0;
        assert_eq!(replace_hot_pixels(&mut f, (ny, nx)), 1);
        assert!((f[30 * nx + 35] - 20.0).abs() < 10.0, "{}", f[30 * nx + 35]);
        f[30 * nx + 35] = clean[30 * nx + 35];
        assert_eq!(f, clean);
    }
}
