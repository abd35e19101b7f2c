#!/usr/bin/env bash
# Installs what Fluorecon's build, demo and tests need on Debian/Ubuntu, skipping what is
# already there: a C compiler and linker (Rust links with it), curl and CA certificates
# (rustup), Python's venv (the CUDA compiler for the lint, from PyPI), a JDK, Maven with the
# Debian repository of plugins (offline builds), ImageJ 1.x, Xvfb (headless ImageJ), and Rust
# (via rustup) when cargo is missing. A fresh Debian 12 needs only `make` and this folder
# (scripts/fresh-machine-check.sh proves it in a debootstrap root).
set -euo pipefail

pkgs=(gcc libc6-dev curl ca-certificates python3-venv unzip
      default-jdk-headless imagej xvfb xauth maven junit4 libmaven-compiler-plugin-java
      libmaven-jar-plugin-java libsurefire-java libmaven-resources-plugin-java
      libmaven-install-plugin-java maven-debian-helper)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "Installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/cargo" ]; then
  echo "Installing Rust (rustup)"
  command -v curl >/dev/null 2>&1 || $sudo apt-get install -y -qq curl >/dev/null
  curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt -c clippy
fi
