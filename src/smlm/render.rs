//! Super-resolved images from localizations: a histogram (each localization adds 1 to the
//! pixel it falls in) or a sum of normalised Gaussians, each with its own localization
//! uncertainty as σ (ThunderSTORM's "Normalized Gaussian"). Either way every localization
//! inside the image adds exactly 1 to the image's sum, so the image counts molecules.

use super::Localization;
use crate::special::erf;
use crate::{invalid, Result};
use ndarray::Array2;

/// How each localization is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RenderMode {
    /// A Gaussian with the localization's uncertainty as σ, integrating to 1.
    #[default]
    Gaussian,
    /// A count in the pixel that holds the localization.
    Histogram,
}

/// Settings of [`render`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RenderOptions {
    /// Field of view in camera pixels (the localized stack's frame size).
    pub width_px: usize,
    pub height_px: usize,
    /// Camera pixel size, nm.
    pub camera_pixel_nm: f64,
    /// Rendered pixels per camera pixel (5–10 typical).
    pub magnification: f64,
    pub mode: RenderMode,
    /// σ used for localizations without an uncertainty (0 or missing), nm.
    pub default_sigma_nm: f64,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            width_px: 64,
            height_px: 64,
            camera_pixel_nm: 100.0,
            magnification: 8.0,
            mode: RenderMode::Gaussian,
            default_sigma_nm: 20.0,
        }
    }
}

impl RenderOptions {
    /// Rendered pixel size, nm.
    pub fn pixel_nm(&self) -> f64 {
        self.camera_pixel_nm / self.magnification
    }

    /// Rendered image size (columns, rows).
    pub fn size(&self) -> (usize, usize) {
        (
            (self.width_px as f64 * self.magnification).round() as usize,
            (self.height_px as f64 * self.magnification).round() as usize,
        )
    }
}

/// Largest Gaussian σ drawn, rendered pixels: a localization whose uncertainty is larger (a
/// failed fit, a corrupt CSV) is drawn with this σ, so that its kernel (8σ + 1 pixels on a
/// side) stays small. See [`oversized_uncertainties`] for the warning.
pub const MAX_SIGMA_PX: f64 = 100.0;

/// How many of `locs` [`render`] draws with a σ clamped to [`MAX_SIGMA_PX`] (Gaussian mode),
/// for the warning the caller gives.
pub fn oversized_uncertainties(locs: &[Localization], opts: &RenderOptions) -> usize {
    if opts.mode != RenderMode::Gaussian {
        return 0;
    }
    let max_nm = MAX_SIGMA_PX * opts.pixel_nm();
    locs.iter()
        .filter(|l| l.uncertainty_nm.is_finite() && l.uncertainty_nm as f64 > max_nm)
        .count()
}

/// The field of view (camera pixels, columns × rows) that holds every localization.
pub fn field_of_view(locs: &[Localization], camera_pixel_nm: f64) -> (usize, usize) {
    let (mut mx, mut my) = (0.0f32, 0.0f32);
    for l in locs {
        mx = mx.max(l.x_nm);
        my = my.max(l.y_nm);
    }
    let px = |v: f32| ((v as f64 / camera_pixel_nm).floor() as usize + 1).max(1);
    (px(mx), px(my))
}

/// Renders `locs` into an image of `opts.size()` pixels (rows, columns), each pixel
/// `opts.pixel_nm()` wide. Localizations outside the field are left out.
pub fn render(locs: &[Localization], opts: &RenderOptions) -> Result<Array2<f32>> {
    if !(opts.magnification.is_finite() && opts.magnification > 0.0) {
        return invalid!("magnification must be positive, not {}", opts.magnification);
    }
    if !(opts.camera_pixel_nm.is_finite() && opts.camera_pixel_nm > 0.0) {
        return invalid!(
            "pixel size must be a positive number of nm, not {}",
            opts.camera_pixel_nm
        );
    }
    let (w, h) = opts.size();
    if w == 0 || h == 0 {
        return invalid!("the rendered image would be empty ({w}×{h} pixels)");
    }
    // ImageJ images hold at most 2³¹ − 1 pixels.
    if (w as u64) * (h as u64) > i32::MAX as u64 {
        return invalid!(
            "the rendered image would be {w}×{h} pixels, more than an image can hold; \
             choose a smaller magnification (at most {:.1})",
            opts.magnification * ((i32::MAX as f64) / (w as f64 * h as f64)).sqrt()
        );
    }
    let mut img =
        Array2::from_shape_vec((h, w), crate::memory::try_vec(w * h, 0f32)?).expect("w·h values");
    let pix = opts.pixel_nm();
    match opts.mode {
        RenderMode::Histogram => {
            for l in locs {
                let (x, y) = (l.x_nm as f64 / pix, l.y_nm as f64 / pix);
                if x >= 0.0 && y >= 0.0 && (x as usize) < w && (y as usize) < h {
                    img[[y as usize, x as usize]] += 1.0;
                }
            }
        }
        RenderMode::Gaussian => {
            let mut wx = Vec::new();
            let mut wy = Vec::new();
            for l in locs {
                let (x, y) = (l.x_nm as f64 / pix, l.y_nm as f64 / pix);
                if !(x >= 0.0 && y >= 0.0 && x < w as f64 && y < h as f64) {
                    continue;
                }
                let s_nm = if l.uncertainty_nm.is_finite() && l.uncertainty_nm > 0.0 {
                    l.uncertainty_nm as f64
                } else {
                    opts.default_sigma_nm
                };
                let s = (s_nm / pix).clamp(1e-3, MAX_SIGMA_PX);
                let r = (4.0 * s).ceil() as isize;
                let (x0, y0) = (x.floor() as isize - r, y.floor() as isize - r);
                weights(x, s, x0, 2 * r + 1, &mut wx);
                weights(y, s, y0, 2 * r + 1, &mut wy);
                for (j, &vy) in wy.iter().enumerate() {
                    let row = y0 + j as isize;
                    if row < 0 || row >= h as isize {
                        continue;
                    }
                    let mut line = img.row_mut(row as usize);
                    for (i, &vx) in wx.iter().enumerate() {
                        let col = x0 + i as isize;
                        if col >= 0 && col < w as isize {
                            line[col as usize] += (vx * vy) as f32;
                        }
                    }
                }
            }
        }
    }
    Ok(img)
}

/// Pixel integrals of a Gaussian at `x` (σ = `s` pixels) over pixels x0..x0+n, normalised to
/// sum 1 over those pixels.
fn weights(x: f64, s: f64, x0: isize, n: isize, out: &mut Vec<f64>) {
    out.clear();
    let k = 1.0 / (std::f64::consts::SQRT_2 * s);
    let mut prev = erf((x0 as f64 - x) * k);
    for i in 0..n {
        let next = erf(((x0 + i + 1) as f64 - x) * k);
        out.push(0.5 * (next - prev));
        prev = next;
    }
    let total: f64 = out.iter().sum();
    if total > 0.0 {
        out.iter_mut().for_each(|v| *v /= total);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random_locs(n: usize, margin_nm: f32) -> Vec<Localization> {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        (0..n)
            .map(|k| Localization {
                frame: k as u32 + 1,
                x_nm: rng.gen_range(margin_nm..6400.0 - margin_nm),
                y_nm: rng.gen_range(margin_nm..6400.0 - margin_nm),
                uncertainty_nm: rng.gen_range(3.0..30.0),
                ..Localization::default()
            })
            .collect()
    }

    /// Both modes conserve the number of localizations; the Gaussian peaks where it should.
    #[test]
    fn rendering_conserves_localizations() {
        let locs = random_locs(5000, 200.0);
        for mode in [RenderMode::Gaussian, RenderMode::Histogram] {
            let opts = RenderOptions {
                mode,
                ..RenderOptions::default()
            };
            let img = render(&locs, &opts).unwrap();
            assert_eq!(img.dim(), (512, 512));
            let sum: f64 = img.iter().map(|&v| v as f64).sum();
            assert!((sum - 5000.0).abs() < 1e-2, "{mode:?}: sum {sum}");
        }
        // One localization at the centre of pixel (10, 20) of 12.5 nm.
        let one = [Localization {
            x_nm: 10.5 * 12.5,
            y_nm: 20.5 * 12.5,
            uncertainty_nm: 12.5,
            ..Localization::default()
        }];
        let img = render(&one, &RenderOptions::default()).unwrap();
        let (mut best, mut at) = (0.0, (0, 0));
        for ((r, c), &v) in img.indexed_iter() {
            if v > best {
                best = v;
                at = (r, c);
            }
        }
        assert_eq!(at, (20, 10));
        // 1D integral of a σ = 1 px Gaussian over the central pixel is 0.3829.
        assert!(
            (best as f64 - 0.3829f64.powi(2)).abs() < 1e-3,
            "peak {best}"
        );
    }

    /// An uncertainty of 1e9 nm once asked for a kernel of 6·10⁸ pixels a side (an abort);
    /// it is drawn with σ = MAX_SIGMA_PX, still adding exactly 1, and counted for the
    /// warning.
    #[test]
    fn huge_uncertainties_are_clamped_and_counted() {
        let mut locs = random_locs(3, 200.0);
        locs[1].uncertainty_nm = 1e9;
        let opts = RenderOptions::default();
        assert_eq!(oversized_uncertainties(&locs, &opts), 1);
        let sum = |img: &Array2<f32>| img.iter().map(|&v| v as f64).sum::<f64>();
        let all = sum(&render(&locs, &opts).unwrap());
        // The clamped one spreads as a Gaussian of σ = 100 px around its position (what
        // falls outside the 512-pixel field is lost); its pixel holds 1/(2π·100²) of it.
        let (x, y) = (locs[1].x_nm / 12.5, locs[1].y_nm / 12.5);
        let alone = render(&locs[1..2], &opts).unwrap();
        assert!((all - sum(&alone) - 2.0).abs() < 1e-3, "{all}");
        assert!(sum(&alone) > 0.2 && sum(&alone) <= 1.0 + 1e-6);
        let peak = alone[[y as usize, x as usize]] as f64;
        let expected = 1.0 / (2.0 * std::f64::consts::PI * 1e4);
        assert!((peak / expected - 1.0).abs() < 0.01, "peak {peak}");
        let hist = RenderOptions {
            mode: RenderMode::Histogram,
            ..opts
        };
        assert_eq!(oversized_uncertainties(&locs, &hist), 0);
    }

    #[test]
    fn huge_images_are_refused() {
        let opts = RenderOptions {
            width_px: 4096,
            height_px: 4096,
            magnification: 20.0,
            ..RenderOptions::default()
        };
        let e = render(&[], &opts).unwrap_err().to_string();
        assert!(e.contains("smaller magnification"), "{e}");
    }
}
