//! Direct 3×3 convolution with AVX-512 register tiles: the fast path of [`super::conv`]
//! for 3×3 kernels on CPUs with AVX-512 (forward, input gradient and kernel gradient), with
//! no im2col matrix and no packing.
//!
//! Every image is first copied into a *padded plane* per channel: rows of `wp = w + 2`
//! floats (one zero column each side), one zero row above and below, then zero slack, so
//! that the whole plane is one run of memory. In it, output pixel (y, x) sits at the flat
//! position q = y·wp + x, and kernel tap (dy, dx) reads the plane at q + dy·wp + dx: every
//! tap of every output pixel is a contiguous, shifted read. The outputs are computed on the
//! padded grid (the 2 extra columns per row, 2/wp of the work, are discarded), 16 pixels per
//! AVX-512 vector, in tiles of [`OB`] output channels × [`XB`] vectors held in registers
//! while the sum runs over every input channel and tap.
//!
//! The input gradient is the same convolution of the padded output gradient with the
//! flipped, transposed kernel. The kernel gradient Σ_pixels g[o, y, x]·x[c, y+dy−1, x+dx−1]
//! keeps [`GB`] output channels × 9 taps of vector sums in registers per input channel,
//! over chunks of the padded planes sized for the L2 cache.
//!
//! Layouts are channels-first (n, c, h, w), stride 1, zero padding 1 ("same").
//!
//! Where [`super::winograd::available`] (even image sizes, ≥ 4 input channels), the
//! forward convolution and the kernel gradient run instead by Winograd's F(2×2, 3×3) over
//! the same padded planes, with this module's register tiles for its matrix products.

// The AVX-512 intrinsics are stable since Rust 1.89, which the `gemm` crate's AVX-512
// kernels need as well; the declared rust-version is older only for clippy's sake.
#![allow(clippy::incompatible_msrv)]

use super::conv::Epilogue;
use crate::parallel::SharedMut;
use rayon::prelude::*;
use std::arch::x86_64::*;
use std::mem::MaybeUninit;

/// Output channels per forward tile.
const OB: usize = 6;
/// 16-float vectors (consecutive flat positions) per forward tile.
const XB: usize = 4;
/// Flat positions per forward tile.
const QB: usize = 16 * XB;
/// The other tile shape, for output channel counts that are multiples of 8 but not of 6
/// (16, 32, 64, 128: the U-Net's): 8 channels × 3 vectors, the same 24 accumulators, and no
/// partial last tile (32 channels as 6 + 6 + 6 + 6 + 6 + 2 spent a sixth of its time on the
/// last tile's loads).
const OB8: usize = 8;
const XB3: usize = 3;
/// Forward tiles per parallel task.
const TILES_PER_TASK: usize = 16;
/// Input channels per kernel-gradient tile (× 9 taps = 27 accumulators of 16 output
/// channels).
const CB: usize = 3;

/// Images in padded planes (see the module comment): `data[(b·c + ci)·ps + r·wp + col]`
/// holds pixel (r − 1, col − 1) of channel ci of image b, zero outside the image.
pub(super) struct Padded {
    pub data: Vec<f32>,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    /// Padded row length, floats.
    pub wp: usize,
    /// Plane stride, floats (≥ (h + 2)·wp plus slack for the over-reads of partial tiles).
    pub ps: usize,
}

impl Padded {
    /// Padded row length and plane stride for h × w images.
    fn geometry(h: usize, w: usize) -> (usize, usize) {
        let wp = w + 2;
        (wp, ((h + 2) * wp + QB + 16).next_multiple_of(16))
    }

    /// The padded copy of `x` (n, c, h, w).
    pub fn new(x: &[f32], n: usize, c: usize, h: usize, w: usize) -> Self {
        Self::from_rows(n, c, h, w, |p, y, dst| {
            let src = &x[(p * h + y) * w..][..w];
            // SAFETY: `dst` has w slots, `src` w floats.
            unsafe {
                std::ptr::copy_nonoverlapping(src.as_ptr(), dst.as_mut_ptr().cast::<f32>(), w)
            }
        })
    }

    /// The padded copy of cat([upsample2(low), skip], channels), `low` (n, c1, h/2, w/2) and
    /// `skip` (n, c − c1, h, w): the input of a U-Net's up block without the concatenated
    /// tensor.
    pub fn upsample_cat(
        low: &[f32],
        skip: &[f32],
        n: usize,
        c: usize,
        c1: usize,
        h: usize,
        w: usize,
    ) -> Self {
        let (hl, wl, c2) = (h / 2, w / 2, c - c1);
        Self::from_rows(n, c, h, w, |p, y, dst| {
            let (b, ch) = (p / c, p % c);
            if ch < c1 {
                let src = &low[((b * c1 + ch) * hl + y / 2) * wl..][..wl];
                for (pair, &v) in dst.chunks_exact_mut(2).zip(src) {
                    pair[0].write(v);
                    pair[1].write(v);
                }
            } else {
                let src = &skip[((b * c2 + ch - c1) * h + y) * w..][..w];
                for (d, &v) in dst.iter_mut().zip(src) {
                    d.write(v);
                }
            }
        })
    }

    /// Padded planes of n·c (h, w) images whose row y of plane p `row(p, y, slots)` writes
    /// into its w slots; planes in parallel.
    fn from_rows(
        n: usize,
        c: usize,
        h: usize,
        w: usize,
        row: impl Fn(usize, usize, &mut [MaybeUninit<f32>]) + Sync,
    ) -> Self {
        let (wp, ps) = Self::geometry(h, w);
        let mut data: Vec<f32> = Vec::with_capacity(n * c * ps);
        crate::image::advise_huge_pages(data.as_ptr(), n * c * ps);
        data.spare_capacity_mut()
            .par_chunks_mut(ps)
            .enumerate()
            .for_each(|(p, plane)| padded_plane(plane, h, w, |y, dst| row(p, y, dst)));
        // SAFETY: `padded_plane` wrote every float of every plane.
        unsafe { data.set_len(n * c * ps) };
        Padded {
            data,
            c,
            h,
            w,
            wp,
            ps,
        }
    }

    /// Number of images.
    pub fn n(&self) -> usize {
        self.data.len() / (self.c * self.ps).max(1)
    }
}

/// Writes one padded plane (`ps` slots): zeros, with row y of the image written by
/// `row(y, slots)` into the w slots of padded row y + 1 from column 1.
fn padded_plane(
    plane: &mut [MaybeUninit<f32>],
    h: usize,
    w: usize,
    mut row: impl FnMut(usize, &mut [MaybeUninit<f32>]),
) {
    let wp = w + 2;
    let zero = |s: &mut [MaybeUninit<f32>]| {
        s.iter_mut().for_each(|v| {
            v.write(0.0);
        })
    };
    // Row 0 and the left pad of row 1; then per image row its pixels, its right pad and
    // the next row's left pad; then the rest.
    zero(&mut plane[..wp + 1]);
    for y in 0..h {
        let at = (y + 1) * wp + 1;
        row(y, &mut plane[at..at + w]);
        zero(&mut plane[at + w..at + wp]);
    }
    zero(&mut plane[(h + 1) * wp + 1..]);
}

/// The output gradient `g` (n, o, h, w), zeroed where `mask` ≤ 0 (the ReLU's output) when
/// there is a mask, in both layouts the backward pass reads — padded planes (for the input
/// gradient) and channels-last (for the kernel gradient) — and its sum per channel (the
/// bias gradient), in one pass over it, one image row of every channel at a time.
fn gradient_layouts(
    g: &[f32],
    mask: Option<&[f32]>,
    n: usize,
    o: usize,
    h: usize,
    w: usize,
) -> (Padded, ChannelsLast, Vec<f32>) {
    let (wp, ps) = Padded::geometry(h, w);
    let o16 = o.next_multiple_of(16);
    let mut planes: Vec<f32> = Vec::with_capacity(n * o * ps);
    let mut last: Vec<f32> = Vec::with_capacity(n * h * w * o16);
    crate::image::advise_huge_pages(planes.as_ptr(), n * o * ps);
    crate::image::advise_huge_pages(last.as_ptr(), n * h * w * o16);
    let (pp, lp) = (
        SharedMut::new(planes.as_mut_ptr()),
        SharedMut::new(last.as_mut_ptr()),
    );
    let (pp, lp) = (&pp, &lp);
    // The padding of the planes: rows 0 and h + 1, the first column of row 1, the slack.
    (0..n * o).into_par_iter().for_each(|p| {
        // SAFETY: parts of plane p that no image row below writes.
        unsafe {
            let plane = pp.get().add(p * ps);
            std::ptr::write_bytes(plane, 0, wp + 1);
            std::ptr::write_bytes(plane.add((h + 1) * wp + 1), 0, ps - (h + 1) * wp - 1);
        }
    });
    let sums = super::ordered_sum(
        n * h,
        super::GRADIENT_RUNS,
        o,
        || vec![0f32; o16 * w],
        |sums: &mut [f64], rows, by| {
            let (b, y) = (by / h, by % h);
            // Every channel's row, masked, into `rows` (o16 × w, padding channels zero)
            // and into the padded planes with its right pad and the next row's left pad.
            for oc in 0..o {
                let at = ((b * o + oc) * h + y) * w;
                let row = &mut rows[oc * w..(oc + 1) * w];
                match mask {
                    Some(m) => super::relu_mask::mask_row(row, &g[at..at + w], &m[at..at + w]),
                    None => row.copy_from_slice(&g[at..at + w]),
                }
                sums[oc] += super::batch_norm::sum(row);
                // SAFETY: padded row y + 1 of plane (b, oc) from column 1, and the two
                // pads after it, written by this row only.
                unsafe {
                    let dst = pp.get().add((b * o + oc) * ps + (y + 1) * wp + 1);
                    std::ptr::copy_nonoverlapping(row.as_ptr(), dst, w);
                    std::ptr::write_bytes(dst.add(w), 0, 2);
                }
            }
            // SAFETY: pixels (b, y, ..) of the channels-last copy, this row's only.
            let dst =
                unsafe { std::slice::from_raw_parts_mut(lp.get().add(by * w * o16), w * o16) };
            // SAFETY: this module runs only where AVX-512F is available (`available`).
            unsafe { transpose_rows(rows, o16, w, dst) };
        },
    );
    // SAFETY: every float of every plane and of the channels-last copy was written above.
    unsafe {
        planes.set_len(n * o * ps);
        last.set_len(n * h * w * o16);
    }
    (
        Padded {
            data: planes,
            c: o,
            h,
            w,
            wp,
            ps,
        },
        ChannelsLast { data: last, o16 },
        sums.into_iter().map(|v| v as f32).collect(),
    )
}

/// The backward pass of a convolution through this module, from ∂L/∂out `g` (n, o, h, w),
/// zeroed where `mask` ≤ 0 (the ReLU's output) when there is a mask, the weights `wt`
/// (o, c, 3, 3) and the padded input `xp`: ∂L/∂x when `need_input`, ∂L/∂weight and the
/// per-channel sums of the (masked) gradient, the bias gradient.
pub(super) fn backward(
    g: &[f32],
    mask: Option<&[f32]>,
    wt: &[f32],
    xp: &Padded,
    o: usize,
    need_input: bool,
) -> (Option<Vec<f32>>, Vec<f32>, Vec<f32>) {
    let (n, c, h, w) = (xp.n(), xp.c, xp.h, xp.w);
    let (gp, gt, sums) = gradient_layouts(g, mask, n, o, h, w);
    let none = Epilogue {
        bias: None,
        relu: false,
    };
    let gx = need_input.then(|| convolve(&gp, wt, o, c, true, none));
    drop(gp);
    let gw = if super::winograd::available(c, h, w) {
        super::winograd::kernel_grad(xp, &gt, o)
    } else {
        kernel_grad(xp, &gt, o)
    };
    (gx, gw, sums)
}

/// `dst[x·o16 + c] = rows[c·w + x]` for o16 (a multiple of 16) channel rows of w pixels:
/// 16 × 16 blocks transposed in registers (64 shuffles per block instead of 256 scalar
/// loads and stores), the last w mod 16 pixels one by one.
///
/// # Safety
/// AVX-512F must be available.
#[target_feature(enable = "avx512f")]
unsafe fn transpose_rows(rows: &[f32], o16: usize, w: usize, dst: &mut [f32]) {
    assert!(rows.len() >= o16 * w && dst.len() >= o16 * w && o16 % 16 == 0);
    let full = w / 16 * 16;
    for ob in (0..o16).step_by(16) {
        for x0 in (0..full).step_by(16) {
            let mut r: [__m512; 16] =
                std::array::from_fn(|i| _mm512_loadu_ps(rows.as_ptr().add((ob + i) * w + x0)));
            transpose16(&mut r);
            for (j, v) in r.iter().enumerate() {
                _mm512_storeu_ps(dst.as_mut_ptr().add((x0 + j) * o16 + ob), *v);
            }
        }
        for x in full..w {
            for c in ob..ob + 16 {
                dst[x * o16 + c] = rows[c * w + x];
            }
        }
    }
}

/// Transposes the 16 × 16 matrix whose rows are `r`.
#[target_feature(enable = "avx512f")]
fn transpose16(r: &mut [__m512; 16]) {
    let pd = _mm512_castps_pd;
    let ps = _mm512_castpd_ps;
    let mut t = [_mm512_setzero_ps(); 16];
    for i in 0..8 {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for i in 0..4 {
        let (a, b, c, d) = (t[4 * i], t[4 * i + 1], t[4 * i + 2], t[4 * i + 3]);
        r[4 * i] = ps(_mm512_unpacklo_pd(pd(a), pd(c)));
        r[4 * i + 1] = ps(_mm512_unpackhi_pd(pd(a), pd(c)));
        r[4 * i + 2] = ps(_mm512_unpacklo_pd(pd(b), pd(d)));
        r[4 * i + 3] = ps(_mm512_unpackhi_pd(pd(b), pd(d)));
    }
    for i in 0..2 {
        for j in 0..4 {
            let (a, b) = (r[8 * i + j], r[8 * i + 4 + j]);
            t[8 * i + j] = _mm512_shuffle_f32x4::<0x88>(a, b);
            t[8 * i + 4 + j] = _mm512_shuffle_f32x4::<0xdd>(a, b);
        }
    }
    for j in 0..8 {
        r[j] = _mm512_shuffle_f32x4::<0x88>(t[j], t[8 + j]);
        r[8 + j] = _mm512_shuffle_f32x4::<0xdd>(t[j], t[8 + j]);
    }
}

/// The 3×3 kernel (taps row-major) from input channel `inp` to output channel `out` of the
/// weights `wt` (o, c, 3, 3) — or, with `flip`, of the input gradient's kernel: the weights
/// read as (c, o, 3, 3) flipped in both axes, i.e. out channel ci takes w[oc, ci, 2 − dy,
/// 2 − dx] from in channel oc.
pub(super) fn kernel_taps(wt: &[f32], c: usize, flip: bool, out: usize, inp: usize) -> [f32; 9] {
    std::array::from_fn(|t| {
        if flip {
            wt[(inp * c + out) * 9 + 8 - t]
        } else {
            wt[(out * c + inp) * 9 + t]
        }
    })
}

/// The weights (o, c, 3, 3) — or, with `flip`, the input gradient's kernel (see
/// [`kernel_taps`]) — in tiles of `ob` output channels: `[tile][ci][tap][ob]`, the last tile
/// zero-filled to ob; with the output and input counts.
fn pack_weights(wt: &[f32], o: usize, c: usize, flip: bool, ob: usize) -> (Vec<f32>, usize, usize) {
    let (outs, ins) = if flip { (c, o) } else { (o, c) };
    let tiles = outs.div_ceil(ob);
    let mut packed = vec![0f32; tiles * ins * 9 * ob];
    for out in 0..outs {
        for inp in 0..ins {
            for (t, v) in kernel_taps(wt, c, flip, out, inp).into_iter().enumerate() {
                packed[((out / ob * ins + inp) * 9 + t) * ob + out % ob] = v;
            }
        }
    }
    (packed, outs, ins)
}

/// One forward tile: the sums over `cin` input channels and TAPS taps for NO ≤ ob output
/// channels at XBN vectors of flat positions starting at `inp` (input channel 0's plane,
/// already offset to the tile's first position), written to `out + i·stride` (16·XBN
/// floats for output channel i); the weights (`[ci][tap][ob]`) of the tile's channels are
/// `ob` apart. TAPS = 9 is the 3×3 convolution; TAPS = 1 with offset 0 is a plain matrix
/// product, the inner step of [`super::winograd`].
///
/// # Safety
/// AVX-512F must be available; `inp` must be readable at every q + tap offset of the tile
/// in each of the `cin` planes `ps` apart; `wts` must hold cin·TAPS·ob floats; `out` must
/// be writable at i·stride + 0..16·XBN for i < NO.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn forward_tile<const NO: usize, const XBN: usize, const TAPS: usize>(
    inp: *const f32,
    ps: usize,
    cin: usize,
    offs: &[usize; TAPS],
    (wts, ob): (*const f32, usize),
    (out, stride): (*mut f32, usize),
) {
    let mut acc = [[_mm512_setzero_ps(); XBN]; NO];
    for ci in 0..cin {
        let plane = inp.add(ci * ps);
        let wc = wts.add(ci * TAPS * ob);
        for (t, &off) in offs.iter().enumerate() {
            let p = plane.add(off);
            let mut v = [_mm512_setzero_ps(); XBN];
            for (j, vj) in v.iter_mut().enumerate() {
                *vj = _mm512_loadu_ps(p.add(16 * j));
            }
            let wv = wc.add(t * ob);
            for (i, acc_i) in acc.iter_mut().enumerate() {
                let b = _mm512_set1_ps(*wv.add(i));
                for (a, &vj) in acc_i.iter_mut().zip(&v) {
                    *a = _mm512_fmadd_ps(b, vj, *a);
                }
            }
        }
    }
    for (i, acc_i) in acc.iter().enumerate() {
        for (j, a) in acc_i.iter().enumerate() {
            _mm512_storeu_ps(out.add(i * stride + 16 * j), *a);
        }
    }
}

/// The same-padded 3×3 convolution of the padded images `x` with `wt` (o, c, 3, 3) — or,
/// with `flip`, with the input gradient's kernel of `wt` (c, o, 3, 3), see [`pack_weights`]
/// — plus the epilogue: (n, outs, h, w), channels-first.
pub(super) fn convolve(
    x: &Padded,
    wt: &[f32],
    o: usize,
    c: usize,
    flip: bool,
    epi: Epilogue,
) -> Vec<f32> {
    if super::winograd::available(if flip { o } else { c }, x.h, x.w) {
        return super::winograd::convolve(x, wt, o, c, flip, epi);
    }
    let outs = if flip { c } else { o };
    let (ob, qb) = if outs % OB8 == 0 && outs % OB != 0 {
        (OB8, 16 * XB3)
    } else {
        (OB, QB)
    };
    let (packed, outs, ins) = pack_weights(wt, o, c, flip, ob);
    debug_assert_eq!(ins, x.c);
    let (n, h, w, wp, ps) = (x.n(), x.h, x.w, x.wp, x.ps);
    let q_len = h * wp;
    let tiles_per_image = q_len.div_ceil(qb);
    let tasks_per_image = tiles_per_image.div_ceil(TILES_PER_TASK);
    let offs: [usize; 9] = std::array::from_fn(|t| (t / 3) * wp + t % 3);
    let mut out: Vec<f32> = Vec::with_capacity(n * outs * h * w);
    crate::image::advise_huge_pages(out.as_ptr(), n * outs * h * w);
    let ptr = SharedMut::new(out.as_mut_ptr());
    let ptr = &ptr;
    (0..n * tasks_per_image).into_par_iter().for_each(|task| {
        let (b, first) = (
            task / tasks_per_image,
            task % tasks_per_image * TILES_PER_TASK,
        );
        let img = &x.data[b * ins * ps..(b + 1) * ins * ps];
        let mut tile = [[0f32; QB]; OB8];
        for t in first..(first + TILES_PER_TASK).min(tiles_per_image) {
            let q0 = t * qb;
            for ot in 0..outs.div_ceil(ob) {
                let no = (outs - ot * ob).min(ob);
                let (inp, wts) = (
                    img.as_ptr().wrapping_add(q0),
                    (packed.as_ptr().wrapping_add(ot * ins * 9 * ob), ob),
                );
                let tile_out = (tile.as_mut_ptr().cast::<f32>(), QB);
                // SAFETY: the tile reads q0 + tap offset + 0..qb < h·wp + QB + 2·wp + 2 ≤ ps
                // floats into each plane of this image; the weights tile holds ins·9·ob; it
                // writes qb ≤ QB floats of rows i < no ≤ OB8 of `tile`.
                unsafe {
                    match (ob, no) {
                        (OB8, _) => forward_tile::<OB8, XB3, 9>(inp, ps, ins, &offs, wts, tile_out),
                        (_, 6) => forward_tile::<6, XB, 9>(inp, ps, ins, &offs, wts, tile_out),
                        (_, 5) => forward_tile::<5, XB, 9>(inp, ps, ins, &offs, wts, tile_out),
                        (_, 4) => forward_tile::<4, XB, 9>(inp, ps, ins, &offs, wts, tile_out),
                        (_, 3) => forward_tile::<3, XB, 9>(inp, ps, ins, &offs, wts, tile_out),
                        (_, 2) => forward_tile::<2, XB, 9>(inp, ps, ins, &offs, wts, tile_out),
                        _ => forward_tile::<1, XB, 9>(inp, ps, ins, &offs, wts, tile_out),
                    }
                }
                // The tile's valid pixels (x < w, y < h) into the output, with the epilogue.
                for (i, row) in tile.iter().enumerate().take(no) {
                    let oc = ot * ob + i;
                    let bias = epi.bias.map_or(0.0, |b| b[oc]);
                    let mut q = q0;
                    let end = (q0 + qb).min(q_len);
                    while q < end {
                        let (y, xx) = (q / wp, q % wp);
                        let run = (wp - xx).min(end - q);
                        if xx < w {
                            let valid = run.min(w - xx);
                            let src = &row[q - q0..q - q0 + valid];
                            // SAFETY: pixel (y, xx..xx + valid) of channel oc of image b, written
                            // by this tile only.
                            let dst = unsafe {
                                std::slice::from_raw_parts_mut(
                                    ptr.get().add(((b * outs + oc) * h + y) * w + xx),
                                    valid,
                                )
                            };
                            if epi.relu {
                                for (d, &s) in dst.iter_mut().zip(src) {
                                    *d = (s + bias).max(0.0);
                                }
                            } else {
                                for (d, &s) in dst.iter_mut().zip(src) {
                                    *d = s + bias;
                                }
                            }
                        }
                        q += run;
                    }
                }
            }
        }
    });
    // SAFETY: the tiles cover every q < h·wp, so every pixel (y < h, x < w) of every output
    // channel of every image was written above.
    unsafe { out.set_len(n * outs * h * w) };
    out
}

/// The output gradient channels-last for the kernel gradient: `data[((b·h + y)·w + x)·o16 +
/// oc]` = g[b, oc, y, x] (zeroed where `mask` ≤ 0, the ReLU's output), the channels padded
/// with zeros to `o16`, a multiple of 16.
pub(super) struct ChannelsLast {
    pub data: Vec<f32>,
    pub o16: usize,
}

/// One kernel-gradient tile: 16 output channels (one vector, `g` at the first pixel's,
/// pixels `gs` apart) × NC ≤ CB input channels (planes `x`, `xs` apart, at the first pixel's
/// padded position) × 9 taps, Σ over `rows` rows of `w` pixels (`wp` apart in `x`, `w·gs` in
/// `g`) of g[pixel]·x[pixel + tap offset], added to `acc[j][tap]` (16 floats each).
///
/// # Safety
/// AVX-512F must be available; every pixel's 16 gradient floats and every x read at offsets
/// −wp − 1 ..= wp + 1 around each pixel must be readable.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel_grad_tile<const NC: usize>(
    g: *const f32,
    gs: usize,
    x: *const f32,
    xs: usize,
    offs: &[isize; 9],
    rows: usize,
    w: usize,
    wp: usize,
    out: *mut f32,
) {
    let mut acc = [[_mm512_setzero_ps(); 9]; NC];
    for r in 0..rows {
        let gr = g.add(r * w * gs);
        let xr = x.add(r * wp);
        for p in 0..w {
            let gv = _mm512_loadu_ps(gr.add(p * gs));
            for (j, acc_j) in acc.iter_mut().enumerate() {
                let xp = xr.add(j * xs + p);
                for (a, &off) in acc_j.iter_mut().zip(offs) {
                    *a = _mm512_fmadd_ps(gv, _mm512_set1_ps(*xp.offset(off)), *a);
                }
            }
        }
    }
    for (j, acc_j) in acc.iter().enumerate() {
        for (t, a) in acc_j.iter().enumerate() {
            let o = out.add((j * 9 + t) * 16);
            _mm512_storeu_ps(o, _mm512_add_ps(_mm512_loadu_ps(o), *a));
        }
    }
}

/// ∂L/∂weight (o, c, 3, 3) from the padded input `x` (c channels) and the channels-last
/// output gradient `g` (o channels) of the same images.
fn kernel_grad(x: &Padded, g: &ChannelsLast, o: usize) -> Vec<f32> {
    let (n, c, h, w, wp, ps, o16) = (x.n(), x.c, x.h, x.w, x.wp, x.ps, g.o16);
    // Rows per task: a tile's 16 channels of the gradient over them fit in L1 (32 KB).
    let rows = (512 / w.max(1)).clamp(1, h.max(1));
    let tasks_per_image = h.div_ceil(rows);
    let offs: [isize; 9] =
        std::array::from_fn(|t| ((t / 3) as isize - 1) * wp as isize + (t % 3) as isize - 1);
    // Sums per run in [oc block][ci][tap][16 channels] order.
    let total = super::ordered_sum(
        n * tasks_per_image,
        super::GRADIENT_RUNS,
        o16 * c * 9,
        || (),
        |dw: &mut [f32], _, task| {
            let (b, y0) = (task / tasks_per_image, task % tasks_per_image * rows);
            let nrows = rows.min(h - y0);
            let xi = &x.data[b * c * ps..(b + 1) * c * ps];
            let gi = &g.data[(b * h + y0) * w * o16..];
            for ob in 0..o16 / 16 {
                for ct in 0..c.div_ceil(CB) {
                    let nc = (c - ct * CB).min(CB);
                    let gp = gi[ob * 16..].as_ptr();
                    // Pixel (y0, 0) of channel ct·CB in the padded planes.
                    let xp = xi[ct * CB * ps + (y0 + 1) * wp + 1..].as_ptr();
                    let out = dw[(ob * c + ct * CB) * 9 * 16..].as_mut_ptr();
                    // SAFETY: the tile reads nrows·w pixels of 16 floats of the gradient of
                    // image b, and x within the padded planes (offsets ±(wp + 1) around
                    // pixels inside the image); it adds to nc·9·16 floats of `dw`.
                    unsafe {
                        match nc {
                            3 => kernel_grad_tile::<3>(gp, o16, xp, ps, &offs, nrows, w, wp, out),
                            2 => kernel_grad_tile::<2>(gp, o16, xp, ps, &offs, nrows, w, wp, out),
                            _ => kernel_grad_tile::<1>(gp, o16, xp, ps, &offs, nrows, w, wp, out),
                        }
                    }
                }
            }
        },
    );
    let mut dw = vec![0f32; o * c * 9];
    for oc in 0..o {
        for ci in 0..c {
            for t in 0..9 {
                dw[(oc * c + ci) * 9 + t] = total[((oc / 16 * c + ci) * 9 + t) * 16 + oc % 16];
            }
        }
    }
    dw
}

#[cfg(test)]
mod tests {
    /// The register transpose against the definition, with a remainder of pixels.
    #[test]
    fn transpose_rows_matches_definition() {
        if !super::super::dispatch().avx512f() {
            eprintln!("no AVX-512: not used here");
            return;
        }
        for (o16, w) in [(16, 16), (32, 37), (48, 5), (16, 64)] {
            let rows: Vec<f32> = (0..o16 * w).map(|i| i as f32 * 0.5 - 3.0).collect();
            let mut dst = vec![f32::NAN; o16 * w];
            // SAFETY: AVX-512F was checked above.
            unsafe { super::transpose_rows(&rows, o16, w, &mut dst) };
            for x in 0..w {
                for c in 0..o16 {
                    assert_eq!(dst[x * o16 + c], rows[c * w + x], "{o16}×{w}: x {x} c {c}");
                }
            }
        }
    }
}
