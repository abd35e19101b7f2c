//! Total-variation term of RL-TV (Dey et al. 2006, Microsc. Res. Tech. 69:260):
//! x ← x · correction / (1 − λ · div(∇x / |∇x|)).
//!
//! ∇ uses forward differences, div backward differences (its adjoint), with zero-flux
//! (Neumann) edges; the z step is scaled by the voxel aspect ratio dz/dx. Where |∇x| = 0 the
//! unit vector is taken as 0.

use rayon::prelude::*;

/// The smallest denominator allowed: keeps the update positive and bounded for large λ.
pub(crate) const MIN_DENOMINATOR: f32 = 0.1;

/// Writes 1 − λ·div(∇x/|∇x|) for every voxel of `x` (shape `grid` = (nz, ny, nx)) into `out`.
/// `z_aspect` = plane spacing / lateral pixel size.
pub fn tv_denominator(
    x: &[f32],
    grid: (usize, usize, usize),
    lambda: f32,
    z_aspect: f32,
    out: &mut [f32],
) {
    let (nz, ny, nx) = grid;
    let plane = ny * nx;
    // Unit gradient direction at (z, y, xx): forward differences, 0 past the last voxel.
    let unit = |z: usize, y: usize, xx: usize| -> [f32; 3] {
        let i = z * plane + y * nx + xx;
        let v = x[i];
        let gx = if xx + 1 < nx { x[i + 1] - v } else { 0.0 };
        let gy = if y + 1 < ny { x[i + nx] - v } else { 0.0 };
        let gz = if z + 1 < nz {
            (x[i + plane] - v) / z_aspect
        } else {
            0.0
        };
        let norm = (gx * gx + gy * gy + gz * gz).sqrt();
        if norm > 0.0 {
            [gx / norm, gy / norm, gz / norm]
        } else {
            [0.0; 3]
        }
    };
    out.par_chunks_mut(plane).enumerate().for_each(|(z, o)| {
        for y in 0..ny {
            for xx in 0..nx {
                let n = unit(z, y, xx);
                let mut div = n[0] + n[1] + n[2] / z_aspect;
                if xx > 0 {
                    div -= unit(z, y, xx - 1)[0];
                }
                if y > 0 {
                    div -= unit(z, y - 1, xx)[1];
                }
                if z > 0 {
                    div -= unit(z - 1, y, xx)[2] / z_aspect;
                }
                o[y * nx + xx] = (1.0 - lambda * div).max(MIN_DENOMINATOR);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_image_has_unit_denominator() {
        let x = vec![3.0f32; 4 * 5 * 6];
        let mut out = vec![0f32; x.len()];
        tv_denominator(&x, (4, 5, 6), 0.01, 2.0, &mut out);
        assert!(out.iter().all(|&d| (d - 1.0).abs() < 1e-7));
    }

    #[test]
    fn isolated_peak_is_pulled_down() {
        // A single bright voxel: the unit gradients point inwards all around it, so
        // div < 0 at the peak (denominator > 1, damping it) and > 0 just outside.
        let (nz, ny, nx) = (5, 5, 5);
        let mut x = vec![1.0f32; nz * ny * nx];
        let c = (2 * ny + 2) * nx + 2;
        x[c] = 10.0;
        let mut out = vec![0f32; x.len()];
        let lambda = 0.01;
        tv_denominator(&x, (nz, ny, nx), lambda, 1.0, &mut out);
        // At the peak: forward differences all point down (−1 each after normalisation,
        // n = (−1,−1,−1)/√3), the backward neighbours point up into it (+1 each):
        // div = −√3 − 3.
        let expected = 1.0 + lambda * (3f32.sqrt() + 3.0);
        assert!((out[c] - expected).abs() < 1e-6, "{} vs {expected}", out[c]);
        assert!(out[c - 1] < 1.0 && out[c + 1] < 1.0);
    }
}
