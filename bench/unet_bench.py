"""CPU speed of fluorecon's U-Net against the same network in PyTorch (issue 3).

The network (src/nn/unet.rs with the config of examples/nn_speed.rs): 2D, depth 2,
32 base filters (32/64/128 channels), 3x3 'same' convolutions with bias, two per level,
each followed by (optional batch norm and) ReLU; 2x2 max pooling; nearest-neighbour 2x
upsampling, then concatenation [upsampled, skip] along the channels; a 1x1 convolution
head with linear output; no residual.

Measured: forward of one 1x1x512x512 image (eval, no_grad) and one training step
(forward + backward + Adam, MSE loss) on 16x1x64x64; with and without batch norm;
PyTorch in NCHW and channels_last. The same run also runs fluorecon's
`target/release/examples/nn_speed THREADS` and parses its output.

    cargo build --release --example nn_speed
    python3 -m venv /tmp/torchbench && /tmp/torchbench/bin/pip install torch numpy
    /tmp/torchbench/bin/python bench/unet_bench.py [--threads 2] [--reps 7]
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Sequential):
    def __init__(self, cin, cout, bn, convs=2, k=3):
        layers = []
        for i in range(convs):
            layers.append(nn.Conv2d(cin if i == 0 else cout, cout, k, padding=k // 2, bias=True))
            if bn:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.ReLU(inplace=False))
        super().__init__(*layers)


class UNet(nn.Module):
    def __init__(self, bn, depth=2, base=32, cin=1, cout=1):
        super().__init__()
        f = lambda level: base << level
        self.down = nn.ModuleList()
        c = cin
        for level in range(depth):
            self.down.append(Block(c, f(level), bn))
            c = f(level)
        self.middle = Block(c, f(depth), bn)
        self.up = nn.ModuleList(Block(f(level + 1) + f(level), f(level), bn) for level in range(depth))
        self.head = nn.Conv2d(f(0), cout, 1)

    def forward(self, x):
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.middle(x)
        for level in reversed(range(len(self.up))):
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = torch.cat([x, skips[level]], 1)
            x = self.up[level](x)
        return self.head(x)


def median_time(fn, reps, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_torch(bn, channels_last, reps):
    torch.manual_seed(1)
    net = UNet(bn)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    x = torch.randn(1, 1, 512, 512).to(memory_format=fmt)
    xb = torch.randn(16, 1, 64, 64).to(memory_format=fmt)

    net.eval()

    def fwd():
        with torch.no_grad():
            net(x)

    t_fwd = median_time(fwd, reps)

    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=4e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(net(xb), xb)
        loss.backward()
        opt.step()

    t_train = median_time(step, reps)
    params = sum(p.numel() for p in net.parameters())
    buffers = sum(b.numel() for n, b in net.named_buffers() if "running" in n)
    return params, buffers, t_fwd, t_train


def bench_ours(exe, threads, runs):
    """Runs nn_speed `runs` times (each reports the median of 3 after 1 warm-up); medians."""
    res = {}
    for _ in range(runs):
        out = subprocess.run([exe, str(threads)], check=True, capture_output=True, text=True).stdout
        for m in re.finditer(r"batch norm (\w+): parameters (\d+) \(\+ (\d+)", out):
            res.setdefault(m.group(1) == "true", {})["params"] = (int(m.group(2)), int(m.group(3)))
        for m in re.finditer(r"batch norm (\w+): forward 512² ([\d.]+) s.*?; training step 16×64² ([\d.]+) s", out):
            d = res.setdefault(m.group(1) == "true", {})
            d.setdefault("fwd", []).append(float(m.group(2)))
            d.setdefault("train", []).append(float(m.group(3)))
    return {
        bn: (d["params"][0], d["params"][1], statistics.median(d["fwd"]), statistics.median(d["train"]))
        for bn, d in res.items()
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=7, help="timed PyTorch repetitions (median)")
    ap.add_argument("--ours-runs", type=int, default=3, help="runs of nn_speed (median)")
    ap.add_argument("--exe", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "examples", "nn_speed"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, mkldnn {torch.backends.mkldnn.is_available()}, "
          f"cpu count {os.cpu_count()}")
    ours = bench_ours(a.exe, a.threads, a.ours_runs)
    rows = []
    for bn in (False, True):
        op, ob, of, ot = ours[bn]
        rows.append((bn, "fluorecon (candle 0.9.2)", op, ob, of, ot))
        for cl in (False, True):
            tp, tb, tf, tt = bench_torch(bn, cl, a.reps)
            rows.append((bn, "torch " + ("channels_last" if cl else "NCHW"), tp, tb, tf, tt))
            if tp != op or tb != ob:
                print(f"PARAMETER COUNT MISMATCH: ours {op}+{ob}, torch {tp}+{tb}", file=sys.stderr)
    print()
    print("| batch norm | implementation | parameters (+running stats) | forward 1×512² (s) | ours/this | train step 16×64² (s) | ours/this |")
    print("|---|---|---|---|---|---|---|")
    for bn, name, p, b, f, t in rows:
        of, ot = ours[bn][2], ours[bn][3]
        print(f"| {'yes' if bn else 'no'} | {name} | {p} (+{b}) | {f:.3f} | {of / f:.2f} | {t:.3f} | {ot / t:.2f} |")
    print("\nours/this < 1: fluorecon faster; > 1: fluorecon slower.")


if __name__ == "__main__":
    main()
