#!/usr/bin/env bash
# Installs what building the engine for every desktop platform needs, skipping what is there:
# the Rust standard libraries of the targets (rustup), MinGW-w64 (Debian) to link Windows,
# Zig and cargo-zigbuild (PyPI, in a venv under ~/.cache/fluorecon-cross) to link macOS and
# Linux against an old glibc, Wine (Debian) to run the Windows CLI in the checks. No GPU, no
# Apple SDK needed (the engine links only libSystem on macOS).
#
#   scripts/cross-toolchains.sh            install
#   scripts/cross-toolchains.sh --present  exit 0 when everything is there, 1 otherwise
set -euo pipefail

P="$HOME/.cache/fluorecon-cross"
export PATH="$HOME/.cargo/bin:$P/venv/bin:$PATH"
TARGETS=(x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu x86_64-pc-windows-gnu
         x86_64-apple-darwin aarch64-apple-darwin)
PKGS=(gcc-mingw-w64-x86-64 wine64 binutils python3-venv)

present() {
  local installed
  installed=$(rustup target list --installed 2>/dev/null) || return 1
  for t in "${TARGETS[@]}"; do grep -qx "$t" <<<"$installed" || return 1; done
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || return 1
  done
  command -v cargo-zigbuild >/dev/null && python3 -m ziglang version >/dev/null 2>&1 ||
    "$P/venv/bin/python" -m ziglang version >/dev/null 2>&1 || return 1
}

if [ "${1:-}" = "--present" ]; then
  present && exit 0 || exit 1
fi
present && exit 0

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
echo "Adding the Rust targets: ${TARGETS[*]}"
rustup target add "${TARGETS[@]}" >/dev/null
if ! "$P/venv/bin/python" -m ziglang version >/dev/null 2>&1 || [ ! -x "$P/venv/bin/cargo-zigbuild" ]; then
  echo "Installing Zig and cargo-zigbuild (PyPI) into $P/venv"
  mkdir -p "$P"
  [ -x "$P/venv/bin/pip" ] || python3 -m venv "$P/venv"
  "$P/venv/bin/pip" install -q ziglang cargo-zigbuild
fi
present || { echo "cross toolchains incomplete after installing" >&2; exit 1; }
