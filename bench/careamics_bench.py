"""Noise2Void on the CPU: fluorecon against CAREamics (issue 3), in one run.

Both sides train N2V on the same seeded simulated noisy image (the generator of
tests/denoise.rs, written by `examples/denoise_sample.rs`: beads and filaments, 20 photons
peak over 5 background, Poisson + Gaussian read noise σ = 2) with the same configuration:
2D U-Net of depth 2, 32 base filters, 3×3 convolutions, batch norm, 16 patches of 64² per
step, the same number of steps (epochs × steps per epoch), Adam at the same learning rate,
0.2 % masked pixels replaced from an 11×11 neighbourhood, flips/rotations, mean/std
normalisation; 2 threads each (RAYON_NUM_THREADS / torch.set_num_threads). Then each
predicts the whole image, and the script reports

- training steps per second: over the wall clock of the training call (fluorecon: the
  `n2v train` process, TIFF reading and model writing included; CAREamics: `train()`,
  Lightning's set-up and sanity check included) and over the training loop alone (start to
  end of the steps and the per-epoch validation: fluorecon's `history.seconds` in
  model.json, a Lightning callback for CAREamics),
- prediction megapixels per second (wall clock of the prediction call),
- PSNR of the prediction against the noise-free image (as `fluorecon::metrics::psnr`),

for each of `--runs` alternating runs (fluorecon, CAREamics, fluorecon, …).

CAREamics uses its own U-Net (bilinear upsampling, a bottleneck and decoder blocks with
doubled intermediate channels), so the parameter counts differ; both are printed. The
fluorecon side runs the `fluorecon` binary (reading and writing TIFFs is part of its
times); the CAREamics side calls its Python API on arrays.

    cargo build --release --bin fluorecon --example denoise_sample
    python3 -m venv /tmp/careamics-venv && /tmp/careamics-venv/bin/pip install careamics tifffile
    /tmp/careamics-venv/bin/python bench/careamics_bench.py [--size 1024] [--epochs 6 --steps 16]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import tifffile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
EXE = os.path.join(ROOT, "target", "release", "fluorecon")
SAMPLE = os.path.join(ROOT, "target", "release", "examples", "denoise_sample")


def psnr(estimate, truth):
    """As fluorecon::metrics::psnr: data range max(truth) − min(truth)."""
    t = truth.astype(np.float64)
    mse = np.mean((estimate.astype(np.float64) - t) ** 2)
    rng = t.max() - t.min()
    return 10 * np.log10(rng * rng / max(mse, np.finfo(float).tiny))


def run_fluorecon(a, noisy_path, truth, work):
    model = os.path.join(work, "fluorecon-model")
    out = os.path.join(work, "fluorecon-denoised.tif")
    shutil.rmtree(model, ignore_errors=True)
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads))
    train = [EXE, "n2v", "train", noisy_path, "-o", model,
             "--depth", "2", "--filters", "32", "--kernel", "3",
             "--epochs", str(a.epochs), "--steps", str(a.steps), "--batch", "16",
             "--patch", "64", "--learning-rate", str(a.lr), "--masked", "0.2",
             "--radius", "5", "--seed", str(a.seed)]
    t = time.perf_counter()
    subprocess.run(train, check=True, env=env, capture_output=True)
    train_s = time.perf_counter() - t
    t = time.perf_counter()
    subprocess.run([EXE, "n2v", "predict", noisy_path, "--model", model, "-o", out],
                   check=True, env=env, capture_output=True)
    predict_s = time.perf_counter() - t
    info = json.load(open(os.path.join(model, "model.json")))
    steps = len(info["history"]["history"]) * a.steps
    params = sum(int(np.prod(s)) for s in tensor_shapes(os.path.join(model, "model.safetensors")))
    pred = tifffile.imread(out).astype(np.float32).reshape(truth.shape)
    return dict(steps=steps, train_s=train_s, loop_s=info["history"]["seconds"],
                predict_s=predict_s, psnr=psnr(pred, truth), params=params)


def tensor_shapes(path):
    """Shapes of the trainable tensors in a safetensors file (running statistics left out)."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    return [v["shape"] for k, v in header.items()
            if k != "__metadata__" and "running" not in k]


def run_careamics(a, noisy, truth, work):
    import torch
    from careamics import CAREamist
    from careamics.config import create_advanced_n2v_config

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    cfg = create_advanced_n2v_config(
        experiment_name="bench", data_type="array", axes="YX", patch_size=[64, 64],
        batch_size=16, num_epochs=a.epochs, num_steps=a.steps,
        augmentations=["x_flip", "y_flip", "rotate_90"], roi_size=11,
        masked_pixel_percentage=0.2, num_workers=0,
        model_params={"depth": 2, "num_channels_init": 32, "use_batch_norm": True},
        optimizer="Adam", optimizer_params={"lr": a.lr},
        trainer_params={"enable_progress_bar": False, "accelerator": "cpu"},
        seed=a.seed,
    )
    from lightning.pytorch.callbacks import Callback

    class LoopTimer(Callback):
        """Time from the start to the end of the fit loop (validation included, set-up and
        sanity check left out), as fluorecon's `history.seconds`."""

        def on_train_start(self, trainer, module):
            self.start = time.perf_counter()

        def on_train_end(self, trainer, module):
            self.seconds = time.perf_counter() - self.start

    timer = LoopTimer()
    careamist = CAREamist(cfg, work_dir=os.path.join(work, "careamics"), callbacks=[timer],
                          enable_progress_bar=False)
    t = time.perf_counter()
    careamist.train(train_data=noisy)
    train_s = time.perf_counter() - t
    steps = careamist.trainer.global_step
    t = time.perf_counter()
    pred = careamist.predict(noisy, axes="YX")
    predict_s = time.perf_counter() - t
    if isinstance(pred, tuple):
        pred = pred[0]
    if isinstance(pred, list):
        pred = pred[0]
    pred = np.asarray(pred, dtype=np.float32).reshape(truth.shape)
    params = sum(p.numel() for p in careamist.model.parameters())
    return dict(steps=steps, train_s=train_s, loop_s=timer.seconds, predict_s=predict_s,
                psnr=psnr(pred, truth), params=params)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1024, help="image side, pixels")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--steps", type=int, default=16,
                    help="steps per epoch (CAREamics draws size²/64² patches per epoch: at most "
                         "size²/64²/16 steps)")
    ap.add_argument("--lr", type=float, default=4e-4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=2, help="alternating runs of each side")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    import careamics
    import torch

    work = tempfile.mkdtemp(prefix="careamics-bench-")
    subprocess.run([SAMPLE, work, str(a.size), str(a.size)], check=True, capture_output=True)
    noisy_path = os.path.join(work, "noisy.tif")
    noisy = tifffile.imread(noisy_path).astype(np.float32).reshape(a.size, a.size)
    truth = tifffile.imread(os.path.join(work, "truth.tif")).astype(np.float32).reshape(a.size, a.size)
    version = subprocess.run([EXE, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"{version}; careamics {careamics.__version__}, torch {torch.__version__}; "
          f"{a.threads} threads; image {a.size}², noisy PSNR {psnr(noisy, truth):.2f} dB; "
          f"{a.epochs} epochs × {a.steps} steps, lr {a.lr}; load average {os.getloadavg()[0]:.2f}")
    mp = a.size * a.size / 1e6
    rows = []
    for run in range(1, a.runs + 1):
        for name, fn, arg in (("fluorecon", run_fluorecon, noisy_path), ("CAREamics", run_careamics, noisy)):
            load = os.getloadavg()[0]
            r = fn(a, arg, truth, work)
            r.update(name=name, run=run, load=load)
            rows.append(r)
            print(f"run {run} {name}: {r['steps']} steps in {r['train_s']:.1f} s, predict {r['predict_s']:.2f} s, "
                  f"{r['psnr']:.2f} dB (load {load:.2f})", file=sys.stderr, flush=True)
    print()
    print("| run | implementation | parameters | steps | steps/s (call) | steps/s (loop) | prediction MP/s | PSNR (dB) | load before |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['run']} | {r['name']} | {r['params']} | {r['steps']} | {r['steps'] / r['train_s']:.2f} | "
              f"{r['steps'] / r['loop_s']:.2f} | {mp / r['predict_s']:.3f} | {r['psnr']:.2f} | {r['load']:.2f} |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
