//! Tiled prediction: applies a U-Net to an image of any size, tile by tile, with the same
//! result as one pass over the whole image.
//!
//! Along each axis the image lives in one global frame that starts `halo` pixels before
//! the first pixel; outside the image it is mirror-padded (reflection without repeating the
//! edge pixel). Tiles are `core + 2·halo` long; cores, halos and so tile starts are
//! multiples of 2^depth, so every tile sees the pooling grid aligned as in a single pass,
//! and `halo` ≥ the receptive radius keeps the zero padding of the convolutions out of the
//! cores. Only cores are kept: no seams, no blending.
//!
//! Memory: a tile's working memory is estimated per pixel ([`bytes_per_pixel`]); before
//! anything image-sized is allocated, [`check_memory`] compares what a restore needs with
//! the memory available ([`Error::OutOfMemory`] instead of an abort), and the tile side is
//! chosen so that one tile fits both `memory_mib` and what is left.

use super::UNet;
use crate::progress::{check_cancel, Progress};
use crate::{Error, Result};
use candle_core::{ModuleT, Tensor};
use ndarray::Array3;

/// How to cut the image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TileOptions {
    /// Tile side in pixels (rounded down to a multiple of 2^depth, at least 3·halo so that
    /// at least a third of every tile is kept); `None`: the largest that fits `memory_mib`.
    pub tile: Option<usize>,
    /// Memory for one tile's activations, MiB.
    pub memory_mib: usize,
    /// Memory the whole prediction may use, bytes (output arrays and one tile); `None`: the
    /// memory this process may still use ([`crate::memory::available_memory`]: MemAvailable,
    /// cgroup and address-space limits; unchecked where unknown).
    pub memory_limit: Option<u64>,
}

impl Default for TileOptions {
    fn default() -> Self {
        TileOptions {
            tile: None,
            memory_mib: 1024,
            memory_limit: None,
        }
    }
}

/// Bytes of `copies` f32 arrays of `dim`.
fn array_bytes(dim: (usize, usize, usize), copies: usize) -> u64 {
    (dim.0 as u64) * (dim.1 as u64) * (dim.2 as u64) * 4 * copies as u64
}

/// The smallest tile side the network can use: three halos (at least a third of every
/// tile is kept), and the halo a multiple of 2^depth.
fn halo_and_min_tile(net: &UNet) -> (usize, usize) {
    let c = net.config();
    let m = c.size_multiple();
    let halo = c.receptive_radius().div_ceil(m) * m;
    (halo, 3 * halo.max(m))
}

/// Pixels of one tile of side `tile` on an image of `dim` (tiles are capped by the image's
/// extent along each axis the network sees).
fn tile_pixels(net: &UNet, dim: (usize, usize, usize), tile: usize) -> usize {
    let c = net.config();
    let (halo, _) = halo_and_min_tile(net);
    let axes = [dim.0, dim.1, dim.2];
    axes[3 - c.dims..]
        .iter()
        .map(|&n| AxisPlan::new(n, c.size_multiple(), halo, tile).len())
        .product()
}

/// Fails with [`Error::OutOfMemory`] if restoring an image of `dim` (z, y, x) with `net`
/// cannot fit: `extra_copies` image-sized f32 arrays of the caller (e.g. the normalised
/// input and the result), one per output channel, and one tile (the requested side, or
/// the smallest) must fit in `options.memory_limit` or the memory available now. Allocates
/// nothing, so a caller can check before it copies the image.
pub fn check_memory(
    net: &UNet,
    dim: (usize, usize, usize),
    extra_copies: usize,
    options: &TileOptions,
) -> Result<()> {
    let Some(available) = options
        .memory_limit
        .or_else(crate::memory::available_memory)
    else {
        return Ok(());
    };
    let (_, min_tile) = halo_and_min_tile(net);
    let tile = options.tile.map_or(min_tile, |t| t.max(min_tile));
    let arrays = array_bytes(dim, extra_copies + net.config().out_channels);
    let needed = arrays + (tile_pixels(net, dim, tile) * bytes_per_pixel(net)) as u64;
    if needed > available {
        return Err(Error::OutOfMemory {
            needed_mib: needed.div_ceil(1 << 20),
            available_mib: available >> 20,
        });
    }
    Ok(())
}

/// Bytes of working memory per tile pixel, an over-estimate for the CPU path. 2D: the
/// activations alive at once in a prediction network (no graph: the skip connections, the
/// widest concatenation, its padded copy and the output; measured: ≈ 1.1–1.3 kB per pixel
/// for 32 filters, estimated 1.34 kB). 3D networks convolve slab by slab with more
/// temporaries: the im2col-era estimate stays.
pub fn bytes_per_pixel(net: &UNet) -> usize {
    let c = net.config();
    if c.dims == 2 {
        return 4 * c.base_filters * 10 + 64;
    }
    let taps = c.kernel_size.pow(c.dims as u32);
    4 * c.base_filters * (2 * taps + 12) + 64
}

/// Reflects index `i` (may be negative or ≥ n) into `0..n` (mirror without repeating the
/// edge: …, 2, 1, 0, 1, 2, …, n−1, n−2, …).
pub fn mirror(i: isize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n as isize - 1);
    let j = i.rem_euclid(period);
    (if j < n as isize { j } else { period - j }) as usize
}

/// One axis: `count` tiles whose cores of `core` pixels start at `k·core`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct AxisPlan {
    core: usize,
    count: usize,
    halo: usize,
}

impl AxisPlan {
    fn new(n: usize, multiple: usize, halo: usize, tile: usize) -> Self {
        let whole = n.div_ceil(multiple) * multiple;
        let core = (tile.saturating_sub(2 * halo) / multiple * multiple)
            .max(multiple)
            .min(whole);
        let count = n.div_ceil(core);
        // The same number of tiles, balanced: the smallest core that still covers the axis
        // (e.g. 2 cores of 512 for 1024 pixels, not 2 of 800).
        let core = n.div_ceil(count).div_ceil(multiple) * multiple;
        AxisPlan { core, count, halo }
    }
    fn len(&self) -> usize {
        self.core + 2 * self.halo
    }
}

/// Applies `net` (inference mode) to the normalised `image` (z, y, x): a 2D network plane
/// by plane, a 3D one to the volume. Returns one array of the image's shape per output
/// channel. On a GPU ([`super::device()`] not the CPU), a failed pass (e.g. out of GPU
/// memory) is logged and run again with tiles of half the side, down to the smallest tile;
/// the caller ([`super::run_on_device`]) falls back to the CPU after that.
pub fn predict(
    net: &UNet,
    image: &Array3<f32>,
    options: &TileOptions,
    progress: &mut dyn Progress,
) -> Result<Vec<Array3<f32>>> {
    check_memory(net, image.dim(), 0, options)?;
    let layout = Layout::new(net, image.dim());
    let mut tile = layout.tile_side(net, image.dim(), options);
    loop {
        match predict_tiles(net, image, &layout, tile, progress) {
            Err(e)
                if !super::device().is_cpu()
                    && crate::device::worth_retrying_on_cpu(&e)
                    && tile > layout.min_tile =>
            {
                let smaller = (tile / 2 / layout.m * layout.m).max(layout.min_tile);
                progress.log(&format!(
                    "Warning: prediction with tiles of {tile} px failed on {} ({e}); trying \
                     tiles of {smaller} px",
                    super::device_name()
                ));
                tile = smaller;
            }
            r => return r,
        }
    }
}

/// How an image is cut for a network, apart from the tile side.
struct Layout {
    /// Size multiple of the network (2^depth), pixels.
    m: usize,
    /// Halo on each side of a tile's core, pixels.
    halo: usize,
    /// Smallest tile side (3 halos), pixels.
    min_tile: usize,
    /// Planes processed as separate 2D images (1 for a 3D network), and the (z, y, x) axes
    /// the network sees.
    planes: usize,
    axes: [usize; 3],
    dims: usize,
}

impl Layout {
    fn new(net: &UNet, (nz, ny, nx): (usize, usize, usize)) -> Layout {
        let c = net.config();
        let (halo, min_tile) = halo_and_min_tile(net);
        let (planes, axes) = if c.dims == 2 {
            (nz, [1, ny, nx])
        } else {
            (1, [nz, ny, nx])
        };
        Layout {
            m: c.size_multiple(),
            halo,
            min_tile,
            planes,
            axes,
            dims: c.dims,
        }
    }

    /// The tile side of `options`: the one asked for (at least [`Layout::min_tile`]), else the
    /// largest whose tile (capped by each axis' whole extent) fits both `memory_mib` and what
    /// the output arrays leave of the memory limit.
    fn tile_side(&self, net: &UNet, dim: (usize, usize, usize), options: &TileOptions) -> usize {
        let (m, halo) = (self.m, self.halo);
        let mut budget = (options.memory_mib as u64) << 20;
        if let Some(available) = options
            .memory_limit
            .or_else(crate::memory::available_memory)
        {
            let left = available.saturating_sub(array_bytes(dim, net.config().out_channels));
            budget = budget.min(left);
        }
        let budget_pixels = (budget / bytes_per_pixel(net) as u64) as usize;
        let spatial = &self.axes[3 - self.dims..];
        match options.tile {
            Some(t) => t.max(self.min_tile),
            None => {
                let mut t = self.min_tile;
                loop {
                    let next = t + m;
                    // One tile per axis already: a larger side changes nothing.
                    let capped = spatial
                        .iter()
                        .all(|&n| AxisPlan::new(n, m, halo, t).count == 1);
                    if capped || tile_pixels(net, dim, next) > budget_pixels {
                        break t;
                    }
                    t = next;
                }
            }
        }
    }
}

/// One pass of [`predict`] with tiles of side `tile`.
fn predict_tiles(
    net: &UNet,
    image: &Array3<f32>,
    layout: &Layout,
    tile: usize,
    progress: &mut dyn Progress,
) -> Result<Vec<Array3<f32>>> {
    let _heap = super::reuse_freed_memory();
    let c = net.config();
    let (m, halo, planes, axes) = (layout.m, layout.halo, layout.planes, layout.axes);
    let mut outputs = vec![Array3::<f32>::zeros(image.dim()); c.out_channels];
    let plans: Vec<AxisPlan> = axes
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            if i < 3 - c.dims {
                AxisPlan {
                    core: 1,
                    count: 1,
                    halo: 0,
                }
            } else {
                AxisPlan::new(n, m, halo, tile)
            }
        })
        .collect();
    let tiles = planes * plans.iter().map(|p| p.count).product::<usize>();
    let mut done = 0;
    for plane in 0..planes {
        let src = if c.dims == 2 {
            image.slice(ndarray::s![plane..plane + 1, .., ..])
        } else {
            image.view()
        };
        for tz in 0..plans[0].count {
            for ty in 0..plans[1].count {
                for tx in 0..plans[2].count {
                    check_cancel(progress)?;
                    let corner = [tz, ty, tx];
                    let lens = [plans[0].len(), plans[1].len(), plans[2].len()];
                    // Global coordinate of the tile's first pixel along each axis.
                    let start: Vec<isize> = (0..3)
                        .map(|a| (corner[a] * plans[a].core) as isize - plans[a].halo as isize)
                        .collect();
                    let dims = src.dim();
                    let input = Array3::from_shape_fn((lens[0], lens[1], lens[2]), |(z, y, x)| {
                        src[[
                            mirror(start[0] + z as isize, dims.0),
                            mirror(start[1] + y as isize, dims.1),
                            mirror(start[2] + x as isize, dims.2),
                        ]]
                    });
                    let shape: Vec<usize> = if c.dims == 2 {
                        vec![1, 1, lens[1], lens[2]]
                    } else {
                        vec![1, 1, lens[0], lens[1], lens[2]]
                    };
                    let x = Tensor::from_vec(
                        input.into_raw_vec_and_offset().0,
                        shape,
                        &super::device(),
                    )?;
                    let y = net.forward_t(&x, false)?;
                    for (ch, out) in outputs.iter_mut().enumerate() {
                        let values = y.narrow(1, ch, 1)?.flatten_all()?.to_vec1::<f32>()?;
                        let tile_out = Array3::from_shape_vec((lens[0], lens[1], lens[2]), values)
                            .expect("network keeps the tile shape");
                        // Copy the core, clipped to the image.
                        let core_start: Vec<usize> =
                            (0..3).map(|a| corner[a] * plans[a].core).collect();
                        let core_len: Vec<usize> = (0..3)
                            .map(|a| plans[a].core.min(axes[a] - core_start[a]))
                            .collect();
                        let from = tile_out.slice(ndarray::s![
                            plans[0].halo..plans[0].halo + core_len[0],
                            plans[1].halo..plans[1].halo + core_len[1],
                            plans[2].halo..plans[2].halo + core_len[2]
                        ]);
                        let z0 = if c.dims == 2 { plane } else { core_start[0] };
                        out.slice_mut(ndarray::s![
                            z0..z0 + core_len[0],
                            core_start[1]..core_start[1] + core_len[1],
                            core_start[2]..core_start[2] + core_len[2]
                        ])
                        .assign(&from);
                    }
                    done += 1;
                    progress.fraction(done as f32 / tiles as f32);
                }
            }
        }
    }
    Ok(outputs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{new_unet, UNetConfig};
    use crate::NoProgress;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn mirror_reflects_without_repeating_edges() {
        let got: Vec<usize> = (-4..9).map(|i| mirror(i, 4)).collect();
        assert_eq!(got, vec![2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1, 2]);
        assert_eq!(mirror(-7, 1), 0);
    }

    fn random_image(shape: (usize, usize, usize), seed: u64) -> Array3<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Array3::from_shape_fn(shape, |_| rng.gen_range(-1.0..1.0))
    }

    fn max_diff(a: &Array3<f32>, b: &Array3<f32>) -> f32 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn tiled_equals_untiled_2d_any_size() {
        for n2v2 in [false, true] {
            let cfg = UNetConfig {
                depth: 2,
                base_filters: 4,
                kernel_size: 3,
                batch_norm: true,
                n2v2,
                residual: !n2v2,
                ..Default::default()
            };
            let (_, net) = new_unet(&cfg, 3).unwrap();
            // Odd sizes, two planes.
            let img = random_image((2, 75, 101), 1);
            let whole = TileOptions {
                tile: Some(4096),
                memory_mib: 1024,
                ..Default::default()
            };
            let small = TileOptions {
                tile: Some(96),
                memory_mib: 1024,
                ..Default::default()
            };
            let a = predict(&net, &img, &whole, &mut NoProgress).unwrap();
            let b = predict(&net, &img, &small, &mut NoProgress).unwrap();
            let d = max_diff(&a[0], &b[0]);
            assert!(d < 1e-4, "n2v2={n2v2}: tiled differs by {d}");
            // Not trivially zero.
            assert!(a[0].iter().map(|v| v.abs()).sum::<f32>() > 1.0);
            // Smaller than one tile (and than the halo).
            let tiny = random_image((1, 5, 3), 2);
            let t = predict(&net, &tiny, &small, &mut NoProgress).unwrap();
            assert_eq!(t[0].dim(), (1, 5, 3));
            assert!(t[0].iter().all(|v| v.is_finite()));
        }
    }

    #[test]
    fn tiled_equals_untiled_3d() {
        let cfg = UNetConfig {
            dims: 3,
            depth: 1,
            base_filters: 2,
            kernel_size: 3,
            ..Default::default()
        };
        let (_, net) = new_unet(&cfg, 5).unwrap();
        let img = random_image((9, 30, 21), 4);
        let whole = predict(
            &net,
            &img,
            &TileOptions {
                tile: Some(1024),
                memory_mib: 1024,
                ..Default::default()
            },
            &mut NoProgress,
        )
        .unwrap();
        let tiled = predict(
            &net,
            &img,
            &TileOptions {
                tile: Some(40),
                memory_mib: 1024,
                ..Default::default()
            },
            &mut NoProgress,
        )
        .unwrap();
        let d = max_diff(&whole[0], &tiled[0]);
        assert!(d < 1e-4, "3D tiled differs by {d}");
    }

    #[test]
    fn memory_budget_picks_smaller_tiles() {
        let cfg = UNetConfig {
            depth: 2,
            base_filters: 8,
            kernel_size: 3,
            ..Default::default()
        };
        let (_, net) = new_unet(&cfg, 3).unwrap();
        let img = random_image((1, 200, 200), 1);
        let a = predict(&net, &img, &TileOptions::default(), &mut NoProgress).unwrap();
        let b = predict(
            &net,
            &img,
            &TileOptions {
                tile: None,
                memory_mib: 16,
                ..Default::default()
            },
            &mut NoProgress,
        )
        .unwrap();
        assert!(max_diff(&a[0], &b[0]) < 1e-4);
    }

    /// Counts the fraction reports: one per tile.
    struct CountTiles(usize);

    impl Progress for CountTiles {
        fn fraction(&mut self, _: f32) {
            self.0 += 1;
        }
    }

    fn net8() -> UNet {
        let cfg = UNetConfig {
            depth: 2,
            base_filters: 8,
            kernel_size: 3,
            ..Default::default()
        };
        new_unet(&cfg, 3).unwrap().1
    }

    fn limited(bytes: u64) -> TileOptions {
        TileOptions {
            memory_limit: Some(bytes),
            ..Default::default()
        }
    }

    /// The memory check against hand-computed needs, without allocating the image: depth
    /// 2, 8 filters, 3×3 → receptive radius 26, halo 28, smallest tile 84² pixels of
    /// 4·8·10 + 64 = 384 bytes.
    #[test]
    fn memory_check_counts_arrays_and_one_tile() {
        let net = net8();
        assert_eq!(bytes_per_pixel(&net), 384);
        let tile = 84 * 84 * 384;
        // 1000² pixels, 2 caller copies + 1 output channel.
        let needed = 1000 * 1000 * 4 * 3 + tile;
        assert!(check_memory(&net, (1, 1000, 1000), 2, &limited(needed)).is_ok());
        match check_memory(&net, (1, 1000, 1000), 2, &limited(needed - 1)) {
            Err(Error::OutOfMemory {
                needed_mib,
                available_mib,
            }) => assert_eq!((needed_mib, available_mib), (needed.div_ceil(1 << 20), 14)),
            other => panic!("{other:?}"),
        }
        // A 200 000² image (160 GB per copy) against 64 GiB: a clear error, nothing
        // allocated.
        let e = check_memory(&net, (1, 200_000, 200_000), 2, &limited(64 << 30)).unwrap_err();
        let needed_mib = (200_000u64 * 200_000 * 4 * 3 + tile).div_ceil(1 << 20);
        assert!(
            matches!(e, Error::OutOfMemory { needed_mib: n, available_mib: 65536 } if n == needed_mib),
            "{e:?}"
        );
        assert!(e.to_string().contains("not enough memory"), "{e}");
        // A requested tile counts at its size: 500² pixels of 384 bytes.
        let big_tile = TileOptions {
            tile: Some(500),
            ..limited(needed)
        };
        assert!(check_memory(&net, (1, 1000, 1000), 2, &big_tile).is_err());
    }

    /// Under a memory limit prediction cuts smaller tiles (same result), and fails cleanly
    /// when not even the smallest tile fits.
    #[test]
    fn memory_limit_shrinks_tiles_or_fails() {
        let net = net8();
        let img = random_image((1, 300, 300), 6);
        let mut count = CountTiles(0);
        let whole = predict(&net, &img, &TileOptions::default(), &mut count).unwrap();
        assert_eq!(count.0, 1);
        // The output (360 000 bytes) and 7 MB for a tile: at most 135² pixels.
        let mut count = CountTiles(0);
        let tiled = predict(&net, &img, &limited(360_000 + 7_000_000), &mut count).unwrap();
        assert!(count.0 > 4, "{} tiles", count.0);
        assert!(max_diff(&whole[0], &tiled[0]) < 1e-4);
        let e = predict(&net, &img, &limited(1 << 20), &mut NoProgress).unwrap_err();
        assert!(matches!(e, Error::OutOfMemory { .. }), "{e:?}");
    }
}
