#!/usr/bin/env python3
"""Deep-STORM vs single-emitter fitting on the same simulated stacks: fluorecon Deep-STORM
(bundled model), fluorecon MLE, and Picasso's gaussmle (when picassosr is installed).

Simulates SMLM-challenge-like stacks with `fluorecon simulate-smlm` (known ground truth: low
density ~1 and high density ~20 molecules per 64×64-pixel frame, EMCCD), localizes them with each
tool and scores every result with the SMLM Challenge 2016 protocol (per-frame greedy nearest
matching within 250 nm, Jaccard, lateral RMSE; `smlm_bench.assess`). fluorecon times are the CLI's
wall time (TIFF read and CSV write included); Picasso's are `localize_frames` on the stack in
memory, numba warmed up first, its minimum net gradient chosen for its best Jaccard.

    python3 -m venv /tmp/picasso-venv && /tmp/picasso-venv/bin/pip install picassosr tifffile
    cargo build --release
    /tmp/picasso-venv/bin/python bench/deepstorm_bench.py      # --frames 200
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from smlm_bench import CAMERA, CLI, assess, run_fluorecon, run_picasso, simulate  # noqa: E402


def run_deepstorm(stack_path):
    out = stack_path + ".deepstorm.csv"
    t0 = time.perf_counter()
    subprocess.run([CLI, "deepstorm", "localize", stack_path, "--offset", str(CAMERA["offset"]),
                    "--e-per-adu", str(CAMERA["e_per_adu"]), "--em-gain", str(CAMERA["em_gain"]),
                    "-o", out], check=True, capture_output=True)
    secs = time.perf_counter() - t0
    locs = np.loadtxt(out, delimiter=",", skiprows=1, ndmin=2)
    return locs[:, [1, 2, 3]], secs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=200)
    a = ap.parse_args()
    try:
        import warnings
        warnings.filterwarnings("ignore")
        import picasso
        have_picasso = True
    except ImportError:
        have_picasso = False
        print("picassosr is not installed: Picasso rows left out", file=sys.stderr)
    tmp = tempfile.mkdtemp(prefix="deepstorm-bench-")
    if have_picasso:
        warm, _ = simulate(os.path.join(tmp, "warm"), "low-density", 50, 99)
        run_picasso(warm, "gaussmle", 1000)
    rows = []
    for name, preset, seed in (("low density", "low-density", 5), ("high density", "high-density", 6)):
        d = os.path.join(tmp, preset)
        stack, truth = simulate(d, preset, a.frames, seed)
        path = os.path.join(d, "stack.tif")
        tools = [("fluorecon Deep-STORM (bundled model)", lambda: run_deepstorm(path)),
                 ("fluorecon MLE", lambda: run_fluorecon(path, "mle"))]
        if have_picasso:
            best = max((assess(run_picasso(stack, "gaussmle", ng)[0], truth)[0], ng)
                       for ng in (1000, 2000, 3000, 4000, 6000))[1]
            tools.append((f"Picasso gaussmle (min. net gradient {best})",
                          lambda: run_picasso(stack, "gaussmle", best)))
        for label, fn in tools:
            found, secs = fn()
            jac, rmse = assess(found, truth)
            rows.append((name, a.frames, label, secs, a.frames / secs, len(found), len(truth), jac, rmse))
            print(f"{name}: {label}: {secs:.2f} s, JAC {jac:.3f}, RMSE {rmse:.1f} nm", file=sys.stderr,
                  flush=True)
    print(f"\n{'Picasso ' + picasso.__version__ + ', ' if have_picasso else ''}{os.cpu_count()} CPUs\n")
    print("| data | frames | tool | time (s) | frames/s | localizations | true | Jaccard | RMSE (nm) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, frames, label, t, fps, n, nt, jac, rmse in rows:
        print(f"| {name} | {frames} | {label} | {t:.2f} | {fps:.1f} | {n} | {nt} | {jac:.3f} | {rmse:.1f} |")


if __name__ == "__main__":
    main()
