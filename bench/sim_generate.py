#!/usr/bin/env python3
"""Raw 2D SIM frames from a forward model independent of Fluorecon's own simulator
(src/sim/synthetic.rs), for robustness tests and benchmarks: defaults are tuned on the Rust
generator and judged on this one.

What differs from src/sim/synthetic.rs:
- PSF from a pupil (NA, n = 1.33, emission wavelength) with Zernike aberrations (primary
  spherical, astigmatism, coma; waves rms), not the ideal OTF with an a^v attenuation;
- the object and the pattern live on a 4x finer grid (20 nm) and each camera pixel integrates
  4x4 of it (pixel integration: the pattern contrast and the OTF are both attenuated by it);
- out-of-focus haze: a second, blurry object 1.5 um out of focus, imaged through the defocused
  pupil and lit by the same two-beam pattern (which does not change with z);
- a non-periodic field (computed with a 32-pixel margin, then cropped), pattern directions off
  the pixel axes, wave vectors off the Fourier grid, non-square and odd frame sizes;
- a camera: Poisson photon noise, Gaussian read noise (e-), gain (ADU/e-), offset (ADU),
  16-bit integer frames clipped at 65535; optional hot (cosmic-ray) pixel and saturated patch.

Writes, per case, CASE/raw.tif (16-bit ImageJ stack, PAZ order, 0.08 um pixels),
CASE/truth.tif (the in-focus object on the 2x grid: 40 nm pixels, float32) and
CASE/pattern.csv (true k0 in Fourier-grid pixels of the raw frame, phase of the first frame at
pixel (nx/2, ny/2) in radians, modulation of the illumination, camera offset).

    /tmp/simbench-q/bin/python bench/sim_generate.py -o /tmp/simcases --seed 1
"""

import argparse
import csv
import math
import os

import numpy as np
import tifffile

NA, N_MEDIUM, WAVELENGTH_UM, PIXEL_UM = 1.2, 1.33, 0.525, 0.080
OVERSAMPLE = 4  # fine grid: 20 nm
MARGIN = 32  # raw pixels computed around the field and cropped away

# name: (ny, nx, phases, photons at object value 1, haze relative to the in-focus object,
#        hot pixel, saturated patch, periodic sample, aberration scale)
CASES = {
    "clean": (256, 256, 3, 1000.0, 0.0, False, False, False, 1.0),
    "low_photons": (256, 256, 3, 100.0, 0.0, False, False, False, 1.0),
    "haze": (256, 256, 3, 600.0, 2.0, False, False, False, 1.0),
    "haze_low": (256, 256, 3, 200.0, 2.0, False, False, False, 1.0),
    "strong_haze": (256, 256, 3, 600.0, 6.0, False, False, False, 1.0),
    "hot_pixel": (256, 256, 3, 600.0, 0.5, True, False, False, 1.0),
    "periodic": (256, 256, 3, 600.0, 0.5, False, False, True, 1.0),
    "odd_5phases": (231, 255, 5, 400.0, 1.0, False, False, False, 1.5),
}


def smooth_noise(rng, shape, sigma_px):
    f = np.fft.fft2(rng.standard_normal(shape))
    ky = np.fft.fftfreq(shape[0])[:, None]
    kx = np.fft.fftfreq(shape[1])[None, :]
    g = np.exp(-2 * (math.pi * sigma_px) ** 2 * (kx ** 2 + ky ** 2))
    out = np.fft.ifft2(f * g).real
    return out / (out.std() + 1e-12)


def draw_filaments(rng, img, count, width_px, bright):
    ny, nx = img.shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    for _ in range(count):
        # a smooth random curve: a few random-walk steps with slowly turning direction
        x, y = rng.uniform(0, nx), rng.uniform(0, ny)
        ang = rng.uniform(0, 2 * math.pi)
        pts = []
        for _ in range(int(rng.uniform(40, 120))):
            ang += rng.normal(0, 0.15)
            x += 8 * math.cos(ang)
            y += 8 * math.sin(ang)
            pts.append((x, y))
        b = bright * rng.uniform(0.5, 1.0)
        for (x0, y0), (x1, y1) in zip(pts[:-1], pts[1:]):
            lo_x, hi_x = int(max(min(x0, x1) - 4 * width_px, 0)), int(min(max(x0, x1) + 4 * width_px + 1, nx))
            lo_y, hi_y = int(max(min(y0, y1) - 4 * width_px, 0)), int(min(max(y0, y1) + 4 * width_px + 1, ny))
            if lo_x >= hi_x or lo_y >= hi_y:
                continue
            px, py = xx[lo_y:hi_y, lo_x:hi_x], yy[lo_y:hi_y, lo_x:hi_x]
            dx, dy = x1 - x0, y1 - y0
            t = np.clip(((px - x0) * dx + (py - y0) * dy) / (dx * dx + dy * dy + 1e-9), 0, 1)
            d2 = (px - x0 - t * dx) ** 2 + (py - y0 - t * dy) ** 2
            seg = b * np.exp(-d2 / (2 * width_px ** 2))
            img[lo_y:hi_y, lo_x:hi_x] = np.maximum(img[lo_y:hi_y, lo_x:hi_x], seg)


def in_focus_object(rng, shape, periodic):
    """Fine-grid object, values about 0..1: filaments (20 nm wide), beads, soft blobs;
    or a lattice of dots (period 300 nm, 12 deg) with a few filaments."""
    obj = np.zeros(shape)
    if periodic:
        yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(float)
        a = math.radians(12.0)
        u = (xx * math.cos(a) + yy * math.sin(a)) * 0.020 / 0.300
        v = (-xx * math.sin(a) + yy * math.cos(a)) * 0.020 / 0.300
        obj += 0.6 * np.exp(-((u - np.round(u)) ** 2 + (v - np.round(v)) ** 2) / (2 * 0.12 ** 2))
        draw_filaments(rng, obj, 8, 1.0, 1.0)
        return obj
    draw_filaments(rng, obj, 40, 1.0, 1.0)
    ny, nx = shape
    for _ in range(60):  # beads, 40 nm
        y, x = rng.integers(0, ny), rng.integers(0, nx)
        obj[max(y - 1, 0):y + 1, max(x - 1, 0):x + 1] += rng.uniform(0.5, 1.0)
    blobs = np.clip(smooth_noise(rng, shape, 40.0), 0, None) * 0.15
    return obj + blobs


def haze_object(rng, shape):
    return np.clip(smooth_noise(rng, shape, 60.0) + 0.8, 0, None) * 0.4


def pupil_otf(shape, defocus_um, aberr_scale, rng):
    """Incoherent OTF (FFT order, 1 at k = 0) of a pupil with aberrations and defocus on the
    fine grid."""
    ny, nx = shape
    p = PIXEL_UM / OVERSAMPLE
    ky = np.fft.fftfreq(ny, p)[:, None]
    kx = np.fft.fftfreq(nx, p)[None, :]
    k = np.hypot(kx, ky)
    kmax = NA / WAVELENGTH_UM
    rho = k / kmax
    inside = rho < 1
    theta = np.arctan2(ky, kx)
    r = np.where(inside, rho, 0)
    # Zernike (Noll-normalised), waves rms: primary spherical, astigmatism, coma
    w = aberr_scale * (0.06 * math.sqrt(5) * (6 * r ** 4 - 6 * r ** 2 + 1)
                       + 0.05 * math.sqrt(6) * r ** 2 * np.cos(2 * (theta - 0.4))
                       + 0.03 * math.sqrt(8) * (3 * r ** 3 - 2 * r) * np.cos(theta - 1.1))
    kz = np.sqrt(np.clip((N_MEDIUM / WAVELENGTH_UM) ** 2 - k ** 2, 0, None))
    phase = 2 * math.pi * (w + defocus_um * kz)
    pupil = inside * np.exp(1j * phase)
    psf = np.abs(np.fft.ifft2(pupil)) ** 2
    otf = np.fft.fft2(psf / psf.sum())
    return otf


def generate(name, spec, seed, out_dir):
    ny, nx, phases, photons, haze, hot, saturate, periodic, aberr = spec
    rng = np.random.default_rng(seed)
    fy, fx = (ny + 2 * MARGIN) * OVERSAMPLE, (nx + 2 * MARGIN) * OVERSAMPLE
    obj = in_focus_object(rng, (fy, fx), periodic)
    hz = haze_object(rng, (fy, fx)) * haze if haze > 0 else None
    otf = pupil_otf((fy, fx), 0.0, aberr, rng)
    otf_haze = pupil_otf((fy, fx), 1.5, aberr, rng)
    kc = 2 * NA / WAVELENGTH_UM
    k0 = rng.uniform(0.80, 0.88) * kc
    angle0 = rng.uniform(0, 60)
    modulation = rng.uniform(0.75, 0.95)
    # fine-grid coordinates in raw pixels relative to the centre of raw pixel (nx/2, ny/2) of
    # the cropped field
    u = (np.arange(fx) + 0.5) / OVERSAMPLE - 0.5 - MARGIN - nx // 2
    v = (np.arange(fy) + 0.5) / OVERSAMPLE - 0.5 - MARGIN - ny // 2
    angles, truth = 3, []
    gain, offset, read_noise = 0.8, 100.0, 1.6  # ADU/e-, ADU, e- rms
    frames = []
    f_obj = np.fft.fft2(obj)
    for a in range(angles):
        ang = math.radians(angle0 + 60 * a + rng.normal(0, 0.5))
        kx, ky = k0 * math.cos(ang), k0 * math.sin(ang)
        phi0 = rng.uniform(0, 2 * math.pi)
        truth.append((a + 1, math.degrees(ang), kx * nx * PIXEL_UM, ky * ny * PIXEL_UM, k0, phi0, modulation))
        arg_x = 2 * math.pi * kx * PIXEL_UM * u
        arg_y = 2 * math.pi * ky * PIXEL_UM * v
        for p in range(phases):
            phi = phi0 + 2 * math.pi * p / phases
            illum = 1 + modulation * np.cos(arg_y[:, None] + arg_x[None, :] + phi)
            img = np.fft.ifft2(np.fft.fft2(obj * illum) * otf).real
            if hz is not None:
                img += np.fft.ifft2(np.fft.fft2(hz * illum) * otf_haze).real
            img = np.clip(img, 0, None)
            # crop the margin, integrate 4x4 fine pixels per camera pixel (mean: photons per
            # pixel for object value 1 under mean light = photons)
            img = img[MARGIN * OVERSAMPLE:(MARGIN + ny) * OVERSAMPLE,
                      MARGIN * OVERSAMPLE:(MARGIN + nx) * OVERSAMPLE]
            img = img.reshape(ny, OVERSAMPLE, nx, OVERSAMPLE).mean(axis=(1, 3))
            e = rng.poisson(photons * img + 2.0) + rng.normal(0, read_noise, img.shape)
            frames.append(e * gain + offset)
    raw = np.stack(frames)
    if hot:
        raw[4, ny // 3, nx // 2 + 17] = 60000.0
    if saturate:
        raw[:, 40:48, 60:70] = 65535.0
    raw = np.clip(np.round(raw), 0, 65535).astype(np.uint16)
    # truth on the 2x grid (40 nm): 2x2 fine pixels each
    t = obj[MARGIN * OVERSAMPLE:(MARGIN + ny) * OVERSAMPLE, MARGIN * OVERSAMPLE:(MARGIN + nx) * OVERSAMPLE]
    t = t.reshape(2 * ny, 2, 2 * nx, 2).mean(axis=(1, 3)).astype(np.float32)
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    tifffile.imwrite(os.path.join(d, "raw.tif"), raw, imagej=True,
                     resolution=(1 / PIXEL_UM, 1 / PIXEL_UM), metadata={"unit": "micron", "axes": "ZYX"})
    tifffile.imwrite(os.path.join(d, "truth.tif"), t, imagej=True,
                     resolution=(2 / PIXEL_UM, 2 / PIXEL_UM), metadata={"unit": "micron"})
    with open(os.path.join(d, "pattern.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["angle", "angle [deg]", "k0_x [px]", "k0_y [px]", "k0 [1/um]", "phase at centre [rad]",
                    "modulation", "offset [ADU]", "phases"])
        for row in truth:
            w.writerow([row[0], f"{row[1]:.4f}", f"{row[2]:.5f}", f"{row[3]:.5f}", f"{row[4]:.5f}",
                        f"{(row[5] + math.pi) % (2 * math.pi) - math.pi:.5f}", f"{row[6]:.4f}", offset, phases])
    return d


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cases", nargs="*", default=list(CASES))
    args = ap.parse_args()
    for i, name in enumerate(args.cases):
        print(generate(name, CASES[name], args.seed * 1000 + i, args.output))


if __name__ == "__main__":
    main()
