//! Spot detection as ThunderSTORM's default: an undecimated B-spline wavelet transform
//! (order 3, scale 2; "à trous"), 8-connected local maxima of the second wavelet plane
//! Wave.F2 above `factor · std(Wave.F1)`, the first plane being mostly noise.
//!
//! V₁ = I ⊛ K₁, V₂ = V₁ ⊛ K₂, F₁ = I − V₁, F₂ = V₁ − V₂ with the separable kernel
//! K₁ = [1, 4, 6, 4, 1]/16 and K₂ the same with holes (taps 2 pixels apart); borders mirrored.

/// Mirrors an index into 0..n (n ≥ 1).
#[inline]
fn mirror(mut i: isize, n: isize) -> usize {
    if n == 1 {
        return 0;
    }
    loop {
        if i < 0 {
            i = -i;
        } else if i >= n {
            i = 2 * n - 2 - i;
        } else {
            return i as usize;
        }
    }
}

const TAPS: [f32; 5] = [1.0 / 16.0, 4.0 / 16.0, 6.0 / 16.0, 4.0 / 16.0, 1.0 / 16.0];

/// Mirrored indices of the 5 taps around each position of an axis of `n` pixels.
fn tap_indices(n: usize, step: isize) -> Vec<[usize; 5]> {
    (0..n as isize)
        .map(|i| std::array::from_fn(|k| mirror(i + (k as isize - 2) * step, n as isize)))
        .collect()
}

/// Separable B3-spline smoothing with taps `step` pixels apart.
fn smooth(img: &[f32], w: usize, h: usize, step: isize, tmp: &mut [f32], out: &mut [f32]) {
    let ix = tap_indices(w, step);
    let iy = tap_indices(h, step);
    for y in 0..h {
        let row = &img[y * w..(y + 1) * w];
        for (x, t) in tmp[y * w..(y + 1) * w].iter_mut().enumerate() {
            let i = &ix[x];
            *t = TAPS[0] * row[i[0]]
                + TAPS[1] * row[i[1]]
                + TAPS[2] * row[i[2]]
                + TAPS[3] * row[i[3]]
                + TAPS[4] * row[i[4]];
        }
    }
    for (y, j) in iy.iter().enumerate() {
        let rows: [&[f32]; 5] = std::array::from_fn(|k| &tmp[j[k] * w..(j[k] + 1) * w]);
        for (x, o) in out[y * w..(y + 1) * w].iter_mut().enumerate() {
            *o = TAPS[0] * rows[0][x]
                + TAPS[1] * rows[1][x]
                + TAPS[2] * rows[2][x]
                + TAPS[3] * rows[3][x]
                + TAPS[4] * rows[4][x];
        }
    }
}

/// Candidate molecule positions (column, row) in an image of photons, `w`×`h` pixels.
/// `factor` scales the threshold std(Wave.F1) (1 = ThunderSTORM's default; 0.5–2 typical).
pub fn detect(img: &[f32], w: usize, h: usize, factor: f64) -> Vec<(usize, usize)> {
    let n = w * h;
    let mut tmp = vec![0.0f32; n];
    let mut v1 = vec![0.0f32; n];
    let mut v2 = vec![0.0f32; n];
    smooth(img, w, h, 1, &mut tmp, &mut v1);
    smooth(&v1, w, h, 2, &mut tmp, &mut v2);
    // std(F1), F1 = I − V1.
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for (a, b) in img.iter().zip(&v1) {
        let f = (a - b) as f64;
        s1 += f;
        s2 += f * f;
    }
    let mean = s1 / n as f64;
    let threshold = (factor * (s2 / n as f64 - mean * mean).max(0.0).sqrt()) as f32;
    // F2 = V1 − V2, kept in v1.
    for (a, b) in v1.iter_mut().zip(&v2) {
        *a -= b;
    }
    let f2 = &v1;
    let mut found = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let v = f2[y * w + x];
            if v <= threshold {
                continue;
            }
            let mut is_max = true;
            'nb: for dy in -1isize..=1 {
                for dx in -1isize..=1 {
                    let (nx, ny) = (x as isize + dx, y as isize + dy);
                    if (dx == 0 && dy == 0)
                        || nx < 0
                        || ny < 0
                        || nx >= w as isize
                        || ny >= h as isize
                    {
                        continue;
                    }
                    let u = f2[ny as usize * w + nx as usize];
                    // Ties: the first pixel in scan order wins.
                    let before = dy < 0 || (dy == 0 && dx < 0);
                    if u > v || (before && u == v) {
                        is_max = false;
                        break 'nb;
                    }
                }
            }
            if is_max {
                found.push((x, y));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, Poisson};

    #[test]
    fn finds_bright_spots_and_not_the_noise() {
        let (w, h) = (48, 40);
        let spots = [(10.3, 12.6), (30.5, 8.2), (25.0, 30.7), (2.2, 37.5)];
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut img = vec![0.0f32; w * h];
        for y in 0..h {
            for x in 0..w {
                let mut mu = 15.0;
                for &(sx, sy) in &spots {
                    let r2 = (x as f64 + 0.5 - sx).powi(2) + (y as f64 + 0.5 - sy).powi(2);
                    mu += 1000.0 / (2.0 * std::f64::consts::PI * 1.44) * (-r2 / 2.88).exp();
                }
                img[y * w + x] = Poisson::new(mu).unwrap().sample(&mut rng) as f32;
            }
        }
        let found = detect(&img, w, h, 1.0);
        assert_eq!(found.len(), spots.len(), "found {found:?}");
        for &(sx, sy) in &spots {
            assert!(
                found
                    .iter()
                    .any(|&(x, y)| (x as f64 + 0.5 - sx).abs() <= 1.0
                        && (y as f64 + 0.5 - sy).abs() <= 1.0),
                "spot at ({sx}, {sy}) missed: {found:?}"
            );
        }
        // A flat image has no candidates.
        assert!(detect(&vec![5.0; w * h], w, h, 1.0).is_empty());
    }
}
