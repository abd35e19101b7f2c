#!/usr/bin/env python3
"""2D SIM side by side: Fluorecon (CLI, CPU) vs napari-sim-processor (numpy, CPU).

The same simulated raw data (fluorecon simulate-sim: 512x512, 80 nm pixels, NA 1.2, 525 nm,
3 angles x 3 phases, modulation 0.8, 1000 photons peak + 100 background, Poisson + read
noise; known object) goes through both tools in one run. Time includes parameter estimation
(napari-sim-processor: calibrate() + reconstruct_rfftw() on the frames in memory;
fluorecon: the same in process, `examples/sim_speed.rs` on the frames in memory, and the
whole CLI run with start-up, TIFF reading and writing). Median of --repeats runs after a warm-up. Quality: PSNR against the
known object after a Fourier downsampling of the 2x result to the raw grid and a
least-squares affine intensity fit, over the interior (16 px margin), each tool at its best
Wiener parameter of a small scan (the tools define w differently).

    python3 -m venv /tmp/simbench
    /tmp/simbench/bin/pip install numpy scipy matplotlib tifffile
    /tmp/simbench/bin/pip install --no-deps napari-sim-processor   # the processor, not napari
    cargo build --release && cargo build --release --example sim_speed
    /tmp/simbench/bin/python bench/sim_bench.py
"""

import argparse
import csv
import glob
import math
import importlib.util
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import tifffile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = os.path.join(ROOT, "target", "release", "fluorecon")
SPEED = os.path.join(ROOT, "target", "release", "examples", "sim_speed")
NA, WAVELENGTH_NM, PIXEL_NM, BACKGROUND = 1.2, 525.0, 80.0, 100.0


def conv_sim_processor():
    """napari-sim-processor's ConvSimProcessor, imported without napari and Qt."""
    spec = importlib.util.find_spec("napari_sim_processor")
    if spec is None:
        sys.exit("napari-sim-processor is not installed (see the docstring)")
    pkg_dir = os.path.dirname(spec.origin)
    sys.path.insert(0, pkg_dir)
    from processors.convSimProcessor import ConvSimProcessor  # noqa: E402
    return ConvSimProcessor


def downsample(img):
    """2x Fourier downsampling (spectrum crop) of a (2n, 2n) image to (n, n)."""
    fy, fx = img.shape
    ny, nx = fy // 2, fx // 2
    s = np.fft.fft2(img)
    rows = np.r_[0:ny // 2, fy - ny // 2:fy]
    cols = np.r_[0:nx // 2, fx - nx // 2:fx]
    return np.fft.ifft2(s[np.ix_(rows, cols)] / 4).real


def fitted_psnr(img, truth, margin=16):
    n = truth.shape[0]
    e = img[margin:n - margin, margin:n - margin].astype(np.float64)
    t = truth[margin:n - margin, margin:n - margin].astype(np.float64)
    me, mt = e.mean(), t.mean()
    a = ((e - me) * (t - mt)).sum() / ((e - me) ** 2).sum()
    fit = a * (e - me) + mt
    rng = t.max() - t.min()
    return 10 * np.log10(rng * rng / np.mean((fit - t) ** 2))


def timed(fn, repeats):
    fn()  # warm-up
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def run_fluorecon(raw, out, wiener):
    cmd = [CLI, "sim", raw, "--na", str(NA), "--wavelength", str(WAVELENGTH_NM),
           "--background", str(BACKGROUND), "--wiener", str(wiener), "-o", out]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return tifffile.imread(out)


def napari_processor(cls, n, wiener):
    p = cls(angleSteps=3, phaseSteps=3)
    p.debug = False
    p.N = n
    p.pixelsize = 6.5  # camera pixel, µm
    p.magnification = 6.5 / (PIXEL_NM * 1e-3)  # 80 nm in the sample
    p.NA = NA
    p.n = 1.33
    p.wavelength = WAVELENGTH_NM * 1e-3
    p.w = wiener
    p.eta = 0.65  # carrier search: |k| > 1.9·eta in units of NA/λ (its widget's default)
    return p


def run_napari(cls, frames, wiener):
    p = napari_processor(cls, frames.shape[1], wiener)
    p.calibrate(frames)
    return p.reconstruct_rfftw(frames), p


def register(img, truth, window=3):
    """img shifted (Fourier shift) onto truth by the sub-pixel peak of their phase
    correlation within +-window pixels (the same for every tool: grids may differ by a
    fraction of a pixel)."""
    fi, ft = np.fft.fft2(img), np.fft.fft2(truth)
    r = fi.conj() * ft
    r /= np.abs(r) + 1e-12
    c = np.fft.ifft2(r).real
    ny, nx = c.shape
    best, pos = -np.inf, (0, 0)
    for dy in range(-window, window + 1):
        for dx in range(-window, window + 1):
            if c[dy % ny, dx % nx] > best:
                best, pos = c[dy % ny, dx % nx], (dy, dx)

    def parabola(m, z, p):
        d = m - 2 * z + p
        return 0.0 if d == 0 else 0.5 * (m - p) / d
    dy, dx = pos
    sy = dy + parabola(c[(dy - 1) % ny, dx % nx], c[dy % ny, dx % nx], c[(dy + 1) % ny, dx % nx])
    sx = dx + parabola(c[dy % ny, (dx - 1) % nx], c[dy % ny, dx % nx], c[dy % ny, (dx + 1) % nx])
    ky = np.fft.fftfreq(ny)[:, None]
    kx = np.fft.fftfreq(nx)[None, :]
    return np.fft.ifft2(fi * np.exp(-2j * np.pi * (ky * sy + kx * sx))).real


def affine_fit(img, truth):
    e, t = img.astype(np.float64), truth.astype(np.float64)
    me, mt = e.mean(), t.mean()
    a = ((e - me) * (t - mt)).sum() / max(((e - me) ** 2).sum(), 1e-30)
    return a * (e - me) + mt


def ssim(x, y, data_range):
    from scipy.ndimage import gaussian_filter
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = gaussian_filter(x, 1.5), gaussian_filter(y, 1.5)
    sxx = gaussian_filter(x * x, 1.5) - mx * mx
    syy = gaussian_filter(y * y, 1.5) - my * my
    sxy = gaussian_filter(x * y, 1.5) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(s.mean())


def quality(img, truth, margin=32):
    """PSNR (dB, range of the truth) and SSIM against the truth on the 2x grid after
    registration and a least-squares affine intensity fit, over the interior."""
    img = register(np.asarray(img, np.float64), truth)
    m = (slice(margin, -margin), slice(margin, -margin))
    fit, t = affine_fit(img[m], truth[m]), truth[m]
    rng = t.max() - t.min()
    return 10 * np.log10(rng * rng / np.mean((fit - t) ** 2)), ssim(fit, t, rng)


def k0_errors(found_px, true_px):
    """Per true direction: the distance (Fourier pixels) to the nearest of +-found."""
    out = []
    for t in true_px:
        d = [min(math.hypot(f[0] - t[0], f[1] - t[1]), math.hypot(f[0] + t[0], f[1] + t[1])) for f in found_px]
        out.append(min(d))
    return out


def read_pattern(case):
    with open(os.path.join(case, "pattern.csv")) as f:
        rows = list(csv.DictReader(f))
    return ([(float(r["k0_x [px]"]), float(r["k0_y [px]"])) for r in rows],
            float(rows[0]["offset [ADU]"]), int(rows[0]["phases"]),
            [float(r["phase at centre [rad]"]) for r in rows], [float(r["modulation"]) for r in rows])


def fluorecon_case(case, tmp, extra=()):
    raw = os.path.join(case, "raw.tif")
    out, params = os.path.join(tmp, "sim.tif"), os.path.join(tmp, "params.csv")
    _, _, phases, _, _ = read_pattern(case)
    cmd = [CLI, "sim", raw, "--na", str(NA), "--wavelength", str(WAVELENGTH_NM), "--phases", str(phases),
           "-o", out, "--params", params, *extra]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    t = time.perf_counter() - t0
    if r.returncode != 0:
        return None, t, None, r.stderr.strip().splitlines()[-1:]
    with open(params) as f:
        rows = list(csv.DictReader(f))
    k = [(float(r["k0_x [px]"]), float(r["k0_y [px]"])) for r in rows]
    return tifffile.imread(out).astype(np.float64), t, k, [r["flags"] for r in rows]


def napari_case(cls, case, frames, wiener, defaults):
    ny, nx = frames.shape[1:]
    _, _, phases, _, _ = read_pattern(case)
    p = cls(angleSteps=3, phaseSteps=phases)
    p.debug = False
    p.pixelsize = 6.5
    p.magnification = 6.5 / (PIXEL_NM * 1e-3)
    p.NA, p.n, p.wavelength = NA, 1.33, WAVELENGTH_NM * 1e-3
    p.w = wiener
    if defaults:  # the napari widget's initial values
        p.eta, p.alpha, p.beta = 0.65, 0.5, 0.98
    t0 = time.perf_counter()
    p.calibrate(frames)
    img = p.reconstruct_rfftw(frames)
    t = time.perf_counter() - t0
    kc = 2 * NA / (WAVELENGTH_NM * 1e-3)
    k = [(float(kx) * kc / 2 * nx * PIXEL_NM * 1e-3, float(ky) * kc / 2 * ny * PIXEL_NM * 1e-3)
         for kx, ky in zip(p.kx.ravel(), p.ky.ravel())]
    return img, t, k


def cases_main(args):
    cls = conv_sim_processor()
    scan = [0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0]
    print(f"{'case':<12} {'tool':<34} {'PSNR':>6} {'SSIM':>6} {'time s':>6}  max k0 error [px]")
    rows = []
    for case in sorted(glob.glob(os.path.join(args.cases, "*", "raw.tif"))):
        case = os.path.dirname(case)
        name = os.path.basename(case)
        true_k, offset, phases, _, _ = read_pattern(case)
        truth = tifffile.imread(os.path.join(case, "truth.tif")).astype(np.float64)
        raw = tifffile.imread(os.path.join(case, "raw.tif")).astype(np.float32)
        frames = np.clip(raw - offset, 0, None).astype(np.float32)
        results = []
        with tempfile.TemporaryDirectory() as tmp:
            img, t, k, flags = fluorecon_case(case, tmp, args.fluorecon_args)
            if img is None:
                results.append(("fluorecon defaults", None, None, t, None, flags))
            else:
                q = quality(img[0] if img.ndim == 3 else img, truth)
                results.append(("fluorecon defaults", *q, t, max(k0_errors(k, true_k)), flags))
        img, t, k = napari_case(cls, case, frames, 0.2, True)
        results.append(("napari-sim-processor defaults", *quality(img, truth), t, max(k0_errors(k, true_k)), ""))
        best = None
        for w in scan:
            img, t, k = napari_case(cls, case, frames, w, True)
            q = quality(img, truth)
            if best is None or q[0] > best[1]:
                best = (f"napari-sim-processor best w={w}", *q, t, max(k0_errors(k, true_k)), "")
        results.append(best)
        for tool, ps, ss, t, dk, flags in results:
            if ps is None:
                print(f"{name:<12} {tool:<34} failed: {flags}")
            else:
                print(f"{name:<12} {tool:<34} {ps:6.2f} {ss:6.3f} {t:6.2f}  {dk:.3f} {flags}")
            rows.append((name, tool, ps, ss, t, dk))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cases", help="folder of cases from bench/sim_generate.py: compare at defaults")
    ap.add_argument("--fluorecon-args", nargs="*", default=[], help="extra options for fluorecon sim (--cases)")
    args = ap.parse_args()
    if args.cases:
        cases_main(args)
        return
    cls = conv_sim_processor()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([CLI, "simulate-sim", "--size", str(args.size), "--seed", str(args.seed), "-o", tmp],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        raw_path = os.path.join(tmp, "raw.tif")
        truth = tifffile.imread(os.path.join(tmp, "truth.tif")).astype(np.float64)
        raw = tifffile.imread(raw_path).astype(np.float32)
        frames = np.clip(raw - BACKGROUND, 0, None).astype(np.float32)  # same background removal
        with open(os.path.join(tmp, "pattern.csv")) as f:
            print("true pattern:", *f.read().strip().splitlines()[1:], sep="\n  ")

        wf = downsample(np.kron(frames.mean(0), np.ones((2, 2))))
        print(f"widefield (mean frame): PSNR {fitted_psnr(wf, truth):.2f} dB")

        results = {}
        out = os.path.join(tmp, "sim.tif")
        for name, scan, run in [
            ("fluorecon", [0.02, 0.05, 0.1, 0.2],
             lambda w: run_fluorecon(raw_path, out, w)),
            ("napari-sim-processor", [0.05, 0.1, 0.3, 0.5, 1.0],
             lambda w: run_napari(cls, frames, w)[0]),
        ]:
            best = max(((fitted_psnr(downsample(run(w)), truth), w) for w in scan))
            t, img = timed(lambda: run(best[1]), args.repeats)
            results[name] = (t, best[0], best[1])
            what = "CLI: start-up, TIFF in and out" if name == "fluorecon" else "in process"
            print(f"{name} ({what}): {t * 1000:.0f} ms (incl. parameter estimation), "
                  f"PSNR {best[0]:.2f} dB at w = {best[1]}")
        _, p = run_napari(cls, frames, results["napari-sim-processor"][2])
        k = np.hypot(p.kx.ravel(), p.ky.ravel())
        kc = 2 * NA / (WAVELENGTH_NM * 1e-3)
        print("napari-sim-processor carriers |k0| (1/µm):", np.round(k * kc / 2, 4))

        w = results["fluorecon"][2]
        out = subprocess.run([SPEED, raw_path, str(NA), str(WAVELENGTH_NM), str(BACKGROUND), str(w),
                              str(args.repeats)], check=True, capture_output=True, text=True).stdout
        t_engine = float(out.split()[1]) / 1000
        print(f"fluorecon engine in process: {t_engine * 1000:.0f} ms (median of {args.repeats})")

    tf, pf, _ = results["fluorecon"]
    tn, pn, _ = results["napari-sim-processor"]
    print(f"\nspeed-up in process {tn / t_engine:.1f}x, CLI end to end {tn / tf:.1f}x; "
          f"PSNR {pf:.2f} vs {pn:.2f} dB")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; numpy {np.__version__}")


if __name__ == "__main__":
    main()
