//! Measured PSFs: a bead image turned into a PSF ready for deconvolution.

use super::Psf;
use crate::image::check_finite;
use crate::{invalid, Result};
use ndarray::{s, Array3, Axis};

/// Background level of a bead image: the median of the voxels on its lateral border
/// (first/last row and column of every plane), or 0 when the image is narrower than 5 pixels
/// (then nearly everything is border and the median would eat the bead).
pub(super) fn border_background(data: &Array3<f32>) -> f32 {
    let (nz, ny, nx) = data.dim();
    if ny < 5 || nx < 5 {
        return 0.0;
    }
    let mut border = Vec::with_capacity(nz * 2 * (ny + nx));
    for plane in data.axis_iter(Axis(0)) {
        border.extend(plane.row(0).iter().chain(plane.row(ny - 1).iter()));
        border.extend(plane.slice(s![1..ny - 1, 0]).iter());
        border.extend(plane.slice(s![1..ny - 1, nx - 1]).iter());
    }
    let mid = border.len() / 2;
    *border.select_nth_unstable_by(mid, f32::total_cmp).1
}

/// [1, 2, 1] smoothing along `axis` (missing neighbours at the edges count as 0).
fn binomial3(a: &Array3<f64>, axis: usize) -> Array3<f64> {
    let mut out = a * 2.0;
    let n = a.len_of(Axis(axis));
    if n > 1 {
        let mut head = out.slice_axis_mut(Axis(axis), (0..n - 1).into());
        head += &a.slice_axis(Axis(axis), (1..n).into());
        let mut tail = out.slice_axis_mut(Axis(axis), (1..n).into());
        tail += &a.slice_axis(Axis(axis), (0..n - 1).into());
    }
    out
}

/// Index of the bead centre: the brightest voxel after a 3×3×3 binomial ([1, 2, 1]ⁿ)
/// smoothing, so that one hot pixel does not win; the first one in (z, y, x) order on ties.
pub(super) fn bead_centre(clean: &Array3<f64>) -> (usize, usize, usize) {
    let smooth = binomial3(&binomial3(&binomial3(clean, 0), 1), 2);
    let mut best = ((0, 0, 0), f64::NEG_INFINITY);
    for (idx, &v) in smooth.indexed_iter() {
        if v > best.1 {
            best = (idx, v);
        }
    }
    best.0
}

impl Psf {
    /// Prepares a measured PSF (an image of one sub-resolution bead, 2D or a z-stack).
    ///
    /// 1. Rejects empty, non-finite, all-zero and nowhere-positive images.
    /// 2. Subtracts the background, the median of the lateral border voxels (not done for
    ///    images narrower than 5 pixels), and clips at 0.
    /// 3. Finds the bead centre: the brightest voxel after a light 3×3×3 ([1, 2, 1]) smoothing.
    /// 4. Shifts by whole voxels (no interpolation) so that the centre lands on the centre
    ///    index n/2 of an odd-sized array, padding with zeros and cropping nothing: along each
    ///    axis the size becomes 2·max(c, n−1−c)+1 for a centre at index c, so a centred odd
    ///    image keeps its size, a centred even one grows by 1, an off-centre bead grows the
    ///    PSF up to 2n−1 (the deconvolution crops PSFs larger than the image).
    /// 5. Normalises to sum 1.
    pub fn from_measured(data: &Array3<f32>) -> Result<Psf> {
        let (nz, ny, nx) = data.dim();
        if data.is_empty() {
            return invalid!(
                "the PSF image is empty ({nx}×{ny}×{nz} pixels): select the bead image (PSF)"
            );
        }
        check_finite(data, "the PSF")?;
        let max = data.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        if data.iter().all(|&v| v == 0.0) {
            return invalid!(
                "the PSF image is all zero: select the bead image (PSF), not an empty one"
            );
        }
        if max <= 0.0 {
            return invalid!(
                "the PSF image has no positive pixel (largest value {max}): a PSF is a bright bead \
                 on a dark background; select the bead image, and if it was inverted, invert it back"
            );
        }
        let background = border_background(data);
        let clean = data.mapv(|v| f64::from((v - background).max(0.0)));
        let total: f64 = clean.sum();
        if total <= 0.0 {
            return invalid!(
                "the PSF image has nothing above its background level ({background}): select an \
                 image of a single bright bead with a dark margin around it"
            );
        }
        let (cz, cy, cx) = bead_centre(&clean);
        let grown = |n: usize, c: usize| 2 * c.max(n - 1 - c) + 1;
        let (mz, my, mx) = (grown(nz, cz), grown(ny, cy), grown(nx, cx));
        // Input index i lands at i + (m/2 − c).
        let (oz, oy, ox) = (mz / 2 - cz, my / 2 - cy, mx / 2 - cx);
        let mut out = Array3::<f32>::zeros((mz, my, mx));
        out.slice_mut(s![oz..oz + nz, oy..oy + ny, ox..ox + nx])
            .assign(&clean.mapv(|v| (v / total) as f32));
        Ok(Psf { data: out })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, Poisson};

    fn message(r: Result<Psf>) -> String {
        match r {
            Err(Error::InvalidInput(m)) => m,
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }

    /// A Gaussian bead of `photons` at `centre` on a flat `background`, with Poisson noise.
    fn noisy_bead(
        shape: (usize, usize, usize),
        centre: (usize, usize, usize),
        seed: u64,
    ) -> Array3<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (sz, sxy) = (1.5, 1.3);
        Array3::from_shape_fn(shape, |(z, y, x)| {
            let d = |a: usize, b: usize, s: f64| (a as f64 - b as f64).powi(2) / (2.0 * s * s);
            let mean = 100.0
                + 2000.0 * (-d(z, centre.0, sz) - d(y, centre.1, sxy) - d(x, centre.2, sxy)).exp();
            Poisson::new(mean).unwrap().sample(&mut rng) as f32
        })
    }

    #[test]
    fn recentres_an_off_centre_noisy_bead_exactly() {
        let (shape, centre) = ((21, 33, 40), (8, 11, 27));
        let psf = Psf::from_measured(&noisy_bead(shape, centre, 3)).unwrap();
        // z: 2·max(8, 12)+1, y: 2·max(11, 21)+1, x: 2·max(27, 12)+1.
        assert_eq!(psf.shape(), (25, 43, 55));
        let (nz, ny, nx) = psf.shape();
        let (argmax, _) =
            psf.data.indexed_iter().fold(
                ((0, 0, 0), f32::MIN),
                |b, (i, &v)| if v > b.1 { (i, v) } else { b },
            );
        assert_eq!(argmax, (nz / 2, ny / 2, nx / 2));
        assert!((psf.data.iter().map(|&v| f64::from(v)).sum::<f64>() - 1.0).abs() < 1e-5);
        assert!(psf.data.iter().all(|&v| v >= 0.0));
    }

    #[test]
    fn subtracts_the_background() {
        let data = noisy_bead((1, 41, 41), (0, 20, 20), 11);
        let psf = Psf::from_measured(&data).unwrap();
        assert_eq!(psf.shape(), (1, 41, 41));
        let peak = psf.data[[0, 20, 20]];
        // Far from the bead only clipped noise is left: ~σ/√(2π) ≈ 4 photons of 100.
        let corner = psf.data.slice(s![0, 0..8, 0..8]).mean().unwrap();
        assert!(corner < 0.003 * peak, "corner {corner} vs peak {peak}");
        // The raw image's corner would be ~5 % of the peak.
        let raw = data.slice(s![0, 0..8, 0..8]).mean().unwrap() / data[[0, 20, 20]];
        assert!(raw > 0.04, "{raw}");
        // Background median of the border: Poisson(100) → within a few photons.
        let bg = border_background(&data);
        assert!((bg - 100.0).abs() < 3.0, "{bg}");
    }

    #[test]
    fn even_sizes_become_odd_and_a_centred_odd_psf_is_unchanged() {
        let mut even = Array3::<f32>::zeros((4, 6, 8));
        even[[2, 3, 4]] = 1.0; // index n/2 of each even axis
        let psf = Psf::from_measured(&even).unwrap();
        assert_eq!(psf.shape(), (5, 7, 9));
        assert_eq!(psf.data[[2, 3, 4]], 1.0);

        let mut odd = Array3::<f32>::zeros((3, 7, 9));
        odd[[1, 3, 4]] = 3.0;
        odd[[1, 3, 5]] = 1.0;
        let psf = Psf::from_measured(&odd).unwrap();
        assert_eq!(psf.shape(), (3, 7, 9));
        assert_eq!(psf.data[[1, 3, 4]], 0.75);
        assert_eq!(psf.data[[1, 3, 5]], 0.25);

        // Tiny images (no border to estimate a background from) work too.
        let one = Array3::from_elem((1, 1, 1), 5.0f32);
        assert_eq!(Psf::from_measured(&one).unwrap().data[[0, 0, 0]], 1.0);
    }

    #[test]
    fn a_hot_pixel_does_not_move_the_centre() {
        let mut data = noisy_bead((1, 31, 31), (0, 15, 15), 5);
        data[[0, 3, 27]] = 6000.0; // brighter than the bead's peak (~2100)
        let psf = Psf::from_measured(&data).unwrap();
        assert_eq!(psf.shape(), (1, 31, 31));
        let (argmax, _) =
            psf.data.indexed_iter().fold(
                ((0, 0, 0), f32::MIN),
                |b, (i, &v)| if v > b.1 { (i, v) } else { b },
            );
        assert_eq!(argmax, (0, 3, 27)); // still the brightest voxel, but not the centre
    }

    #[test]
    fn bad_images_are_rejected_with_clear_messages() {
        let m = message(Psf::from_measured(&Array3::zeros((0, 5, 5))));
        assert!(m.contains("empty"), "{m}");
        let m = message(Psf::from_measured(&Array3::zeros((3, 9, 9))));
        assert!(m.contains("all zero") && m.contains("bead image"), "{m}");
        let mut nan = Array3::from_elem((1, 9, 9), 1.0f32);
        nan[[0, 4, 2]] = f32::NAN;
        let m = message(Psf::from_measured(&nan));
        assert!(m.contains("PSF") && m.contains("not numbers"), "{m}");
        let m = message(Psf::from_measured(&Array3::from_elem((1, 9, 9), -2.0f32)));
        assert!(m.contains("no positive pixel"), "{m}");
        let m = message(Psf::from_measured(&Array3::from_elem((1, 9, 9), 7.0f32)));
        assert!(m.contains("nothing above its background"), "{m}");
    }
}
