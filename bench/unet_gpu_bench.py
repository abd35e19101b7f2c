"""GPU speed of the U-Net of examples/nn_gpu_bench.rs in PyTorch, on the same GPU (issue 24).

The network is bench/unet_bench.py's (depth 2, 32 base filters, 3x3 convolutions, batch norm,
ReLU, max pooling, nearest upsampling, 1x1 head: N2V's network). Measured: prediction of one
1x1xSxS image (eval, no_grad) and one training step (forward + backward + Adam, MSE loss) on
16x1x64x64, each the median of --reps runs after two warm-ups, ending with
torch.cuda.synchronize(). Four settings: NCHW and channels_last, each with PyTorch's default
precision (cuDNN convolutions in TF32) and in strict float32 (as fluorecon, whose candle
convolutions are float32).

    python3 bench/unet_gpu_bench.py [--size 2048] [--reps 10]
"""

import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from unet_bench import UNet  # noqa: E402


def median_time(fn, reps):
    for _ in range(2):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench(size, reps, channels_last, tf32):
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(1)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = UNet(True).cuda().to(memory_format=fmt)
    x = torch.randn(1, 1, size, size, device="cuda").to(memory_format=fmt)
    xb = torch.randn(16, 1, 64, 64, device="cuda").to(memory_format=fmt)
    net.eval()

    def fwd():
        with torch.no_grad():
            net(x)

    t_fwd = median_time(fwd, reps)
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=4e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        F.mse_loss(net(xb), xb).backward()
        opt.step()

    return t_fwd, median_time(step, reps)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--reps", type=int, default=10)
    a = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}, cuDNN {torch.backends.cudnn.version()}")
    for channels_last in (False, True):
        for tf32 in (True, False):
            f, s = bench(a.size, a.reps, channels_last, tf32)
            what = f"{'channels_last' if channels_last else 'NCHW'}, {'TF32 (default)' if tf32 else 'float32'}"
            print(f"BENCH  PyTorch U-Net (N2V network, batch norm), {what}: prediction {a.size}² {f:.4f} s "
                  f"({a.size * a.size / f / 1e6:.1f} Mpixel/s); training step 16×64² {s:.4f} s ({1 / s:.1f} steps/s)")


if __name__ == "__main__":
    main()
