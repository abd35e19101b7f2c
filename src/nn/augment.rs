//! Training patches: a grid of patch positions split into training and validation sets, and
//! the 8-fold rotate/flip augmentation (the dihedral group of the square, applied in the
//! y-x plane).

use crate::{invalid, Result};
use ndarray::{s, Array3, ArrayView3, Axis};
use rand::seq::SliceRandom;
use rand::Rng;

/// One of the 8 symmetries of the square, `0..8`: bit 0 flips x, bit 1 flips y, bit 2 swaps
/// y and x (transpose). Together they are the 4 rotations and their mirror images.
pub fn dihedral(patch: ArrayView3<f32>, t: u8) -> Array3<f32> {
    let mut v = patch;
    if t & 1 != 0 {
        v.invert_axis(Axis(2));
    }
    if t & 2 != 0 {
        v.invert_axis(Axis(1));
    }
    if t & 4 != 0 {
        v = v.permuted_axes([0, 2, 1]);
    }
    v.as_standard_layout().into_owned()
}

/// Where a patch lies: index of the image in the training list and its corner (z, y, x).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchAt {
    pub image: usize,
    pub corner: (usize, usize, usize),
}

/// The non-overlapping patches of `shape` (z, y, x) (all images of `shapes`), shuffled with
/// `rng` and split: `validation_fraction` of them (at least one) are held out. Fails when an
/// image is smaller than one patch or there are too few patches to hold one out.
pub fn split_patches(
    shapes: &[(usize, usize, usize)],
    patch: (usize, usize, usize),
    validation_fraction: f64,
    rng: &mut impl Rng,
) -> Result<(Vec<PatchAt>, Vec<PatchAt>)> {
    let mut all = Vec::new();
    for (image, &(nz, ny, nx)) in shapes.iter().enumerate() {
        if nz < patch.0 || ny < patch.1 || nx < patch.2 {
            return invalid!(
                "the training image ({nx}×{ny}×{nz} pixels) is smaller than one training patch \
                 ({}×{}×{}); use a smaller patch size or a larger image",
                patch.2,
                patch.1,
                patch.0
            );
        }
        for z in (0..=nz - patch.0).step_by(patch.0) {
            for y in (0..=ny - patch.1).step_by(patch.1) {
                for x in (0..=nx - patch.2).step_by(patch.2) {
                    all.push(PatchAt {
                        image,
                        corner: (z, y, x),
                    });
                }
            }
        }
    }
    if all.len() < 2 {
        return invalid!(
            "the training data give only {} patch(es) of {}×{} pixels; at least 2 are needed \
             (one is held out for validation): use a smaller patch size or more data",
            all.len(),
            patch.2,
            patch.1
        );
    }
    all.shuffle(rng);
    let n_val = ((all.len() as f64 * validation_fraction).round() as usize).clamp(1, all.len() - 1);
    let train = all.split_off(n_val);
    Ok((train, all))
}

/// The patch of `data` at `corner` of size `patch`, transformed by [`dihedral`] `t`.
pub fn cut(
    data: &Array3<f32>,
    corner: (usize, usize, usize),
    patch: (usize, usize, usize),
    t: u8,
) -> Array3<f32> {
    let (z, y, x) = corner;
    let view = data.slice(s![z..z + patch.0, y..y + patch.1, x..x + patch.2]);
    dihedral(view, t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use std::collections::HashSet;

    #[test]
    fn eight_distinct_symmetries_that_permute_pixels() {
        let p = Array3::from_shape_fn((1, 4, 4), |(_, y, x)| (4 * y + x) as f32);
        let mut seen = HashSet::new();
        for t in 0..8 {
            let q = dihedral(p.view(), t);
            let mut v: Vec<i32> = q.iter().map(|&a| a as i32).collect();
            seen.insert(v.clone());
            v.sort();
            assert_eq!(v, (0..16).collect::<Vec<_>>(), "t={t} is not a permutation");
        }
        assert_eq!(seen.len(), 8);
        // t = 4 is the transpose.
        assert_eq!(dihedral(p.view(), 4)[[0, 1, 2]], p[[0, 2, 1]]);
    }

    #[test]
    fn split_holds_out_disjoint_patches() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (train, val) =
            split_patches(&[(1, 64, 96), (1, 32, 32)], (1, 32, 32), 0.1, &mut rng).unwrap();
        assert_eq!(train.len() + val.len(), 6 + 1);
        assert_eq!(val.len(), 1);
        assert!(val.iter().all(|v| !train.contains(v)));
        assert!(split_patches(&[(1, 16, 64)], (1, 32, 32), 0.1, &mut rng).is_err());
        assert!(split_patches(&[(1, 32, 32)], (1, 32, 32), 0.1, &mut rng).is_err());
    }
}
