#!/usr/bin/env python3
"""Richardson-Lucy side by side: Fluorecon (CPU) vs scikit-image vs RedLionfish (CPU).

The same simulated 3D volume (beads and filaments, Born & Wolf PSF, Poisson noise, known
truth) goes through each tool with the same PSF and iteration count, in one run. Reports
the median wall time of --repeats runs after a warm-up, and PSNR against the truth on an
interior crop (the PSF half-size is cut from every side, so each tool's boundary model
is scored fairly).

    pip install scikit-image tifffile redlionfish
    cargo build --release
    python3 bench/deconv_bench.py            # 64x256x256, 50 iterations
"""

import argparse
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


def psnr(est, truth, margin):
    mz, my, mx = margin
    region = (slice(mz, truth.shape[0] - mz), slice(my, truth.shape[1] - my),
              slice(mx, truth.shape[2] - mx))
    e, t = est[region].astype(np.float64), truth[region].astype(np.float64)
    rng = t.max() - t.min()
    return 10 * np.log10(rng * rng / np.mean((e - t) ** 2))


def timed(fn, repeats):
    fn()  # warm-up
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def run_fluorecon(data_dir, out, iterations, extra=()):
    cmd = [CLI, "deconvolve", os.path.join(data_dir, "blurred.tif"), "--psf",
           os.path.join(data_dir, "psf.tif"), "-n", str(iterations), "-o", out, *extra]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return tifffile.imread(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="64x256x256", help="NZxNYxNX")
    ap.add_argument("--psf-size", default="63,63,31", help="PSF NX,NY,NZ")
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--skip", default="", help="comma-separated tools to skip")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    tmp = tempfile.mkdtemp(prefix="fluorecon-bench-")
    subprocess.run([CLI, "simulate", "--shape", args.shape, "--psf-size", args.psf_size,
                    "--photons", "1000", "--background", "10", "--seed", "1", "-o", tmp],
                   check=True, stderr=subprocess.DEVNULL)
    blurred = tifffile.imread(os.path.join(tmp, "blurred.tif")).astype(np.float32)
    truth = tifffile.imread(os.path.join(tmp, "truth.tif")).astype(np.float32)
    psf = tifffile.imread(os.path.join(tmp, "psf.tif")).astype(np.float32)
    if blurred.ndim == 2:
        blurred, truth = blurred[None], truth[None]
    if psf.ndim == 2:
        psf = psf[None]
    margin = tuple(s // 2 for s in psf.shape)
    n = args.iterations
    rows = []

    def add(name, threads, seconds, est):
        rows.append((name, threads, seconds, psnr(est, truth, margin)))
        print(f"  {name}: {seconds:.2f} s, PSNR {rows[-1][3]:.2f} dB", file=sys.stderr, flush=True)

    print(f"data {blurred.shape}, PSF {psf.shape}, {n} iterations", file=sys.stderr)
    add("input (no deconvolution)", "-", 0.0, blurred)
    cores = os.cpu_count()
    out = os.path.join(tmp, "out.tif")
    t, est = timed(lambda: run_fluorecon(tmp, out, n), args.repeats)
    add("fluorecon RL, non-circulant (wall time incl. TIFF I/O)", cores, t, est)
    t, est = timed(lambda: run_fluorecon(tmp, out, n, ["--boundary", "circulant"]), args.repeats)
    add("fluorecon RL, circulant", cores, t, est)
    half = max(1, n * 2 // 5)
    t, est = timed(lambda: run_fluorecon(tmp, out, half, ["--accelerate"]), args.repeats)
    add(f"fluorecon RL accelerated, {half} it", cores, t, est)

    if "skimage" not in skip:
        import skimage
        from skimage.restoration import richardson_lucy
        t, est = timed(lambda: richardson_lucy(blurred, psf, num_iter=n, clip=False), args.repeats)
        add(f"scikit-image {skimage.__version__} richardson_lucy(clip=False)", 1, t, est)
    if "redlionfish" not in skip:
        import RedLionfishDeconv as rlf
        t, est = timed(lambda: rlf.doRLDeconvolutionFromNpArrays(blurred, psf, niter=n, method="cpu"),
                       args.repeats)
        add("RedLionfish 0.10 (method=cpu)", 1, t, est)

    base = rows[1][2]
    print(f"\n{platform.processor() or platform.machine()}, {cores} cores; "
          f"{blurred.shape[0]}x{blurred.shape[1]}x{blurred.shape[2]} (z,y,x), PSF "
          f"{psf.shape[0]}x{psf.shape[1]}x{psf.shape[2]}, {n} iterations, median of {args.repeats}\n")
    print("| tool | threads | time (s) | time / fluorecon | PSNR (dB, interior) |")
    print("|---|---|---|---|---|")
    for name, threads, sec, p in rows:
        ratio = "-" if sec == 0 else f"{sec / base:.2f}"
        print(f"| {name} | {threads} | {sec:.2f} | {ratio} | {p:.2f} |")


if __name__ == "__main__":
    main()
