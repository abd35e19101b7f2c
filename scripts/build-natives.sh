#!/usr/bin/env bash
# Builds the engine (library and CLI) for every desktop platform the plugin jar carries, into
# target-cross/ (its own target folder: the host build in target/ is not rebuilt):
#   target-cross/natives/<platform>/<library>   the libraries the jar packs (natives/<platform>/)
#   target-cross/cli/<platform>/<executable>    the CLI of each platform
# Platforms: linux_64 (glibc 2.28, so RHEL 8 and most clusters load it), linux_arm64 (glibc
# 2.28), windows_64 (MinGW-w64), macos_64 and macos_arm64 (Zig's linker; built, not run here).
# Needs scripts/cross-toolchains.sh first.
#
#   scripts/build-natives.sh [platform...]      default: all five
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="$HOME/.cargo/bin:$HOME/.cache/fluorecon-cross/venv/bin:$PATH"
mkdir -p target-cross
export CARGO_TARGET_DIR="$(realpath target-cross)"
OUT="$CARGO_TARGET_DIR"
GLIBC=2.28

# platform  rust target  builder  library  executable
PLATFORMS=(
  "linux_64    x86_64-unknown-linux-gnu  zig   libfluorecon.so    fluorecon"
  "linux_arm64 aarch64-unknown-linux-gnu zig   libfluorecon.so    fluorecon"
  "windows_64  x86_64-pc-windows-gnu     mingw fluorecon.dll      fluorecon.exe"
  "macos_64    x86_64-apple-darwin       zig   libfluorecon.dylib fluorecon"
  "macos_arm64 aarch64-apple-darwin      zig   libfluorecon.dylib fluorecon"
)

wanted=("$@")
for line in "${PLATFORMS[@]}"; do
  read -r platform target builder lib exe <<<"$line"
  if [ ${#wanted[@]} -gt 0 ] && [[ ! " ${wanted[*]} " == *" $platform "* ]]; then
    continue
  fi
  echo "== $platform ($target)"
  case "$builder" in
    zig)
      spec="$target"
      [[ "$target" == *linux-gnu ]] && spec="$target.$GLIBC"
      cargo zigbuild --release --lib --bins --target "$spec"
      ;;
    mingw)
      CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc \
        cargo build --release --lib --bins --target "$target"
      ;;
  esac
  mkdir -p "$OUT/natives/$platform" "$OUT/cli/$platform"
  cp "$OUT/$target/release/$lib" "$OUT/natives/$platform/$lib"
  cp "$OUT/$target/release/$exe" "$OUT/cli/$platform/$exe"
done
echo "Built: $(cd "$OUT" && ls natives/*/* | tr '\n' ' ')"
