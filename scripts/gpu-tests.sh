#!/usr/bin/env bash
# Every GPU check of Fluorecon in one go, on a Linux x86-64 machine with an NVIDIA GPU and driver:
#   1. finds the CUDA 13 runtime libraries (libcudart.so.13, libcublas.so.13, libcufft.so.12,
#      libcurand.so.10, libnvrtc.so.13) and puts their folders on LD_LIBRARY_PATH;
#   2. `fluorecon info` of the CUDA build: must name the driver and a GPU;
#   3. the Rust tests built with `--features cuda` (GPU-vs-CPU comparisons run instead of being
#      skipped, because a GPU is there: tests/gpu_rl.rs and tests/gpu_sim.rs fail if RL or SIM
#      did not run on the GPU);
#   4. the CLI's `deconvolve --device cuda` must log "RL on CUDA device 0 (<name>)", `sim
#      --device cuda` "SIM on CUDA device 0 (<name>)";
#   5. benchmarks: RL deconvolution with --device cpu and --device cuda on the same simulated data
#      (CLI), and examples/rl_gpu_bench: RL 3D 64×512×512, 100 iterations, per-iteration time
#      against its memory-bandwidth floor (bytes moved per iteration ÷ measured D2D bandwidth);
#      examples/fit_gpu_bench: MLE spot fits/s on the GPU and the CPU (7×7, 9×9, 11×11 windows);
#      examples/sim_gpu_bench: SIM Wiener reconstruction per plane on the GPU and the CPU
#      (512×512 and 1024×1024 raw frames, 3 × 3 per plane);
#      examples/nn_gpu_bench: U-Net 2048² prediction, N2V training steps/s and Deep-STORM
#      frames/s on the GPU and the CPU, and bench/unet_gpu_bench.py the same U-Net in PyTorch
#      on the same GPU (when PyTorch with CUDA is there); Deep-STORM and MLE localization
#      through the CLI on both devices;
#   6. prints a summary, and exits non-zero when any step failed.
#
# Usage:
#   scripts/gpu-tests.sh                  build with cargo (needs the crates; no CUDA toolkit
#                                         needed: the engine opens CUDA at run time), then run
#   scripts/gpu-tests.sh --package [DIR]  only build, and copy the binaries to DIR (default
#                                         target-cuda/gpu-tests) to carry to a GPU machine
#   scripts/gpu-tests.sh --prebuilt DIR   run binaries made by --package, without cargo
# Environment: CUDA_LIBS=dir1:dir2 adds folders searched first for the CUDA libraries;
# BENCH_SHAPE (default 64x256x256), BENCH_PSF (default 63,63,31), BENCH_ITERATIONS (default 50) for the
# CLI runs; RL_BENCH_SHAPE (default 64x512x512), RL_BENCH_ITERATIONS (default 100) for rl_gpu_bench;
# FIT_BENCH_SPOTS (default 1000000) for fit_gpu_bench; SIM_BENCH_PLANES (default 12) and
# SIM_BENCH_SIZES (default 512,1024) for sim_gpu_bench; NN_BENCH_SIZE (default 2048) for nn_gpu_bench and
# bench/unet_gpu_bench.py; SMLM_BENCH_FRAMES (default 2000) for the localization runs;
# OUT (default target-cuda/gpu-results) receives the logs.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODE=build
PKG=target-cuda/gpu-tests
case "${1:-}" in
  --package) MODE=package; PKG=${2:-$PKG} ;;
  --prebuilt) MODE=prebuilt; PKG=${2:?usage: scripts/gpu-tests.sh --prebuilt DIR} ;;
  "") ;;
  *) sed -n '2,31p' "$0"; exit 2 ;;
esac
OUT=${OUT:-$ROOT/target-cuda/gpu-results}
mkdir -p "$OUT"
declare -a SUMMARY=()
FAILED=0
step() { # step NAME COMMAND...: runs it, logs to $OUT/NAME.log, records PASS/FAIL
  local name=$1; shift
  echo "== $name: $*"
  if "$@" > >(tee "$OUT/$name.log") 2>&1; then SUMMARY+=("PASS  $name"); else
    SUMMARY+=("FAIL  $name (log: $OUT/$name.log)"); FAILED=1; fi
}

# -- build (or take prebuilt binaries) --------------------------------------------------------
if [ "$MODE" != prebuilt ]; then
  export CARGO_TARGET_DIR=$ROOT/target-cuda
  cargo build --release --features cuda --bins --examples || exit 1
  # the test executables, as cargo lists them
  mapfile -t TESTS < <(cargo test --release --features cuda --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("profile", {}).get("test") and m.get("executable"):
        print(m["executable"])')
  [ ${#TESTS[@]} -gt 0 ] || { echo "no test executables were built"; exit 1; }
  rm -rf "$PKG"; mkdir -p "$PKG/tests"
  cp target-cuda/release/fluorecon target-cuda/release/examples/rl_speed \
    target-cuda/release/examples/rl_gpu_bench target-cuda/release/examples/fit_gpu_bench \
    target-cuda/release/examples/sim_gpu_bench target-cuda/release/examples/nn_gpu_bench "$PKG/"
  for t in "${TESTS[@]}"; do cp "$t" "$PKG/tests/"; done
  if [ "$MODE" = package ]; then
    echo "GPU test binaries in $PKG; run: scripts/gpu-tests.sh --prebuilt $PKG"; exit 0
  fi
fi
PKG=$(cd "$PKG" && pwd)
CLI=$PKG/fluorecon

# -- the NVIDIA driver and the CUDA 13 runtime ---------------------------------------------------
NEEDED="libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcufft.so.12 libcurand.so.10 libnvrtc.so.13 libnvrtc-builtins.so.13.0"
SEARCH=${CUDA_LIBS:-}
for d in "$HOME/.cache/fluorecon-cuda13/cuda/lib64" /usr/local/cuda/lib64 /usr/local/cuda-13*/lib64 \
  /usr/local/cuda/targets/x86_64-linux/lib; do [ -d "$d" ] && SEARCH+=":$d"; done
# pip wheels (PyTorch, nvidia-* packages): nvidia/cu13/lib or nvidia/<lib>/lib in site-packages
for py in python3 /usr/bin/python3; do
  command -v "$py" >/dev/null || continue
  for sp in $("$py" -c 'import site,sys; print(" ".join(site.getsitepackages()+[site.getusersitepackages()]))' 2>/dev/null); do
    for d in "$sp"/nvidia/cu13/lib "$sp"/nvidia/*/lib "$sp"/torch/lib; do [ -d "$d" ] && SEARCH+=":$d"; done
  done
done
LIBDIRS=""
for lib in $NEEDED; do
  found=""
  IFS=: read -ra dirs <<<"$SEARCH"
  for d in "${dirs[@]}"; do [ -n "$d" ] && [ -e "$d/$lib" ] && { found=$d; break; }; done
  if [ -z "$found" ]; then # last resort: the system's loader cache, then a bounded search
    ldconfig -p 2>/dev/null | grep -q "$lib " && { echo "  $lib: system (ld.so.cache)"; continue; }
    found=$(find / -xdev -name "$lib" -not -path '/proc/*' 2>/dev/null | head -1 | xargs -r dirname)
  fi
  if [ -n "$found" ]; then
    echo "  $lib: $found"
    case ":$LIBDIRS:" in *":$found:"*) ;; *) LIBDIRS+=":$found" ;; esac
  else echo "  $lib: NOT FOUND"; fi
done
export LD_LIBRARY_PATH="${LIBDIRS#:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/nvidia-smi.log"

# -- 1. info: the CUDA build sees the driver and a GPU -------------------------------------------
info_sees_gpu() {
  "$CLI" info || return 1
  "$CLI" info | grep -q '^Library flavour: cuda$' || { echo "not the CUDA build"; return 1; }
  "$CLI" info | grep -q '^CUDA driver: none' && { echo "the CUDA build found no usable driver"; return 1; }
  "$CLI" info | grep -q '^Device: CUDA:[0-9]' || { echo "no GPU listed"; return 1; }
}
step info info_sees_gpu

# -- 2. Rust tests with the cuda feature ----------------------------------------------------------
for t in "$PKG"/tests/*; do
  name=test-$(basename "$t") # cargo's hash tells the library's unit tests from the binary's
  # integration tests find the CLI through CARGO_BIN_EXE_fluorecon at build time; the prebuilt
  # binary is handed over the same way at run time
  step "$name" env FLUORECON_CLI="$CLI" "$t" --show-output
done

# -- 3. the CLI runs RL on the GPU and says so ----------------------------------------------------
rl_cli_on_gpu() {
  local data=$OUT/cli-data
  "$CLI" simulate --shape 16x64x64 --psf-size 15,15,9 --seed 2 -o "$data" >/dev/null || return 1
  "$CLI" deconvolve "$data/blurred.tif" --psf "$data/psf.tif" -n 10 --device cuda \
    -o "$data/rl.tif" 2>&1 | tee "$OUT/rl-cli.log"
  grep -q 'RL on CUDA device 0 (' "$OUT/rl-cli.log" || { echo "RL did not run on the GPU"; return 1; }
  ! grep -q 'Warning' "$OUT/rl-cli.log" || { echo "a CUDA failure was reported"; return 1; }
}
step rl-cli-gpu rl_cli_on_gpu

sim_cli_on_gpu() {
  local data=$OUT/cli-data/sim
  "$CLI" simulate-sim --size 256 --seed 3 -o "$data" >/dev/null || return 1
  "$CLI" sim "$data/raw.tif" --na 1.2 --wavelength 525 --background 100 --device cuda \
    -o "$data/sim.tif" 2>&1 | tee "$OUT/sim-cli.log"
  grep -q 'SIM on CUDA device 0 (' "$OUT/sim-cli.log" || { echo "SIM did not run on the GPU"; return 1; }
  ! grep -q 'Warning' "$OUT/sim-cli.log" || { echo "a CUDA failure was reported"; return 1; }
}
step sim-cli-gpu sim_cli_on_gpu

# -- 3b. the networks and the spot fitter run on the GPU and say so --------------------------------
nn_cli_on_gpu() {
  local data=$OUT/cli-data
  "$CLI" simulate --shape 4x128x128 --psf-size 15,15,9 --seed 3 -o "$data" >/dev/null || return 1
  "$CLI" n2v denoise "$data/blurred.tif" --epochs 2 --steps 10 --device cuda -o "$data/n2v.tif" \
    2>&1 | tee "$OUT/n2v-cli.log"
  grep -q 'on CUDA:0 (' "$OUT/n2v-cli.log" || { echo "Noise2Void did not run on the GPU"; return 1; }
  ! grep -q 'Warning' "$OUT/n2v-cli.log" || { echo "a CUDA failure was reported"; return 1; }
}
step n2v-cli-gpu nn_cli_on_gpu

# -- 4. benchmarks -------------------------------------------------------------------------------
bench() {
  local data=$OUT/bench-data n=${BENCH_ITERATIONS:-50}
  "$CLI" simulate --shape "${BENCH_SHAPE:-64x256x256}" --psf-size "${BENCH_PSF:-63,63,31}" --photons 1000 \
    --background 10 --seed 1 -o "$data" >/dev/null || return 1
  for dev in cpu cuda; do
    local t0=$EPOCHREALTIME
    "$CLI" deconvolve "$data/blurred.tif" --psf "$data/psf.tif" -n "$n" --device "$dev" \
      -o "$data/rl-$dev.tif" 2>&1 | grep -iE 'device|cuda|deconvolved|cpu' || true
    awk -v a="$t0" -v b="$EPOCHREALTIME" -v n="$n" -v d="$dev" \
      'BEGIN { printf "BENCH  RL %s iterations (CLI wall time incl. TIFF I/O), --device %s: %.2f s\n", n, d, b - a }'
  done
  echo "BENCH  rl_speed (engine only, no I/O, 64×256×256, device auto): $("$PKG/rl_speed" "$n")"
  "$PKG/rl_gpu_bench" "${RL_BENCH_ITERATIONS:-100}" "${RL_BENCH_SHAPE:-64x512x512}" 31 63 3
  "$PKG/fit_gpu_bench" "${FIT_BENCH_SPOTS:-1000000}" 100000
  "$PKG/sim_gpu_bench" "${SIM_BENCH_PLANES:-12}" "${SIM_BENCH_SIZES:-512,1024}"
  "$PKG/nn_gpu_bench" "${NN_BENCH_SIZE:-2048}" 10 512
  # the same U-Net in PyTorch on the same GPU, where PyTorch with CUDA is installed
  if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    python3 "$ROOT/bench/unet_gpu_bench.py" --size "${NN_BENCH_SIZE:-2048}" --reps 10
  else echo "BENCH  PyTorch with CUDA not installed here: no side-by-side U-Net run"; fi
  # Deep-STORM and MLE localization end to end (CLI: TIFF read, network/fits, CSV write)
  "$CLI" simulate-smlm --preset high-density --frames "${SMLM_BENCH_FRAMES:-2000}" --seed 4 \
    -o "$data/smlm" >/dev/null || return 1
  for dev in cpu cuda; do
    for cmd in "deepstorm localize" localize; do
      local t0=$EPOCHREALTIME
      # shellcheck disable=SC2086
      "$CLI" $cmd "$data/smlm/stack.tif" --offset 100 --e-per-adu 45 --em-gain 300 \
        --device "$dev" -o "$data/smlm/$dev.csv" 2>&1 | grep -iE 'cuda|cpu|localiz' | tail -3
      awk -v a="$t0" -v b="$EPOCHREALTIME" -v n="${SMLM_BENCH_FRAMES:-2000}" -v d="$dev" -v c="$cmd" \
        'BEGIN { printf "BENCH  %s, %d frames 64×64 (CLI wall time incl. I/O), --device %s: %.2f s (%.0f frames/s)\n", c, n, d, b - a, n / (b - a) }'
    done
  done
}
step bench bench

echo
echo "== summary ($(date -u +%F\ %T) UTC, $(uname -n))"
grep -h '^BENCH' "$OUT/bench.log" 2>/dev/null
printf '%s\n' "${SUMMARY[@]}"
exit $FAILED
