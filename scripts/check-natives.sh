#!/usr/bin/env bash
# Checks the engine built for every desktop platform (scripts/build-natives.sh, or the
# libraries inside a plugin jar), and fails on anything missing:
#  - each of the five platform libraries is there, in the right format and architecture
#    (ELF x86-64/aarch64, PE x86-64, Mach-O x86-64/arm64: llvm-readobj);
#  - each exports every JNI function that the jar's Java classes declare `native` (read from
#    the compiled classes with javap, not from a list kept by hand);
#  - each needs nothing outside the operating system's own libraries (no libgcc_s-seh,
#    winpthread or libstdc++ DLL on Windows; only libSystem and system frameworks on macOS);
#  - the Linux libraries need no glibc symbol newer than GLIBC_2.28;
#  - with Wine: the Windows CLI reproduces the Linux CLI's deconvolution (samples/), SIM
#    reconstruction, localization and Noise2Void prediction on simulated data (tolerances
#    below). macOS binaries cannot run here: they are checked statically only.
#
#   scripts/check-natives.sh [--jar JAR] [--no-run]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

JAR="" RUN=yes
while [ $# -gt 0 ]; do
  case "$1" in
    --jar) JAR="$2"; shift 2 ;;
    --no-run) RUN=no; shift ;;
    *) echo "usage: $0 [--jar JAR] [--no-run]" >&2; exit 2 ;;
  esac
done

WORK=$(mktemp -d /tmp/fluorecon-natives.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok:   $*"; }

if [ -n "$JAR" ]; then
  (cd "$WORK" && unzip -q -o "$OLDPWD/$JAR" 'natives/*' 'fluorecon/*.class' 2>/dev/null || true)
  NATIVES="$WORK/natives" CLASSES="$WORK"
else
  NATIVES=target-cross/natives CLASSES=java/target/classes
fi
[ -d "$CLASSES/fluorecon" ] || { echo "no compiled Java classes in $CLASSES (make jar first)" >&2; exit 2; }

# The JNI function of every `native` method of the jar's classes (JNI short names: '_' in a
# method name is written '_1'; the plugin has no overloaded native methods).
classes=$(cd "$CLASSES" && ls fluorecon/*.class | sed 's/\.class$//; s#/#.#g')
javap -p -cp "$CLASSES" $classes 2>/dev/null | awk '
  /^[a-z ]*(class|interface) fluorecon\./ { match($0, /fluorecon\.[A-Za-z0-9$]+/); cls = substr($0, RSTART + 10, RLENGTH - 10) }
  / native / { sub(/\(.*/, ""); n = split($0, w, " "); m = w[n]; gsub(/_/, "_1", m); print "Java_fluorecon_" cls "_" m }
' | sort -u >"$WORK/jni.txt"
echo "JNI functions declared by the Java classes: $(wc -l <"$WORK/jni.txt")"
[ -s "$WORK/jni.txt" ] || fail "no native methods found in the Java classes"

# platform  library  llvm-readobj Format  Arch
PLATFORMS=(
  "linux_64    libfluorecon.so    elf64-x86-64            x86_64"
  "linux_arm64 libfluorecon.so    elf64-littleaarch64     aarch64"
  "windows_64  fluorecon.dll      COFF-x86-64             x86_64"
  "macos_64    libfluorecon.dylib Mach-O_64-bit_x86-64    x86_64"
  "macos_arm64 libfluorecon.dylib Mach-O_arm64            aarch64"
)
GLIBC_MAX=2.28
for line in "${PLATFORMS[@]}"; do
  read -r platform lib format arch <<<"$line"
  f="$NATIVES/$platform/$lib"
  if [ ! -f "$f" ]; then
    fail "$platform: $f is missing"
    continue
  fi
  headers=$(llvm-readobj --file-headers "$f")
  got_format=$(sed -n 's/^Format: //p' <<<"$headers" | head -1 | tr ' ' '_')
  got_arch=$(sed -n 's/^Arch: //p' <<<"$headers" | head -1)
  if [ "$got_format" = "$format" ] && [ "$got_arch" = "$arch" ]; then
    ok "$platform: $lib is $format $arch ($(du -h "$f" | cut -f1))"
  else
    fail "$platform: $lib is '$got_format' '$got_arch', expected $format $arch"
  fi
  case "$platform" in
    windows_*)
      llvm-readobj --coff-exports "$f" | sed -n 's/^ *Name: //p' | sort -u >"$WORK/exports.txt"
      deps=$(llvm-readobj --coff-imports "$f" | sed -n 's/^ *Name: //p' | sort -u)
      bad=$(grep -viE '^(kernel32|ntdll|msvcrt|advapi32|bcrypt|bcryptprimitives|userenv|ws2_32|shell32|ole32|oleaut32|secur32|user32|synchronization|crypt32|ncrypt|psapi|dbghelp|powrprof|api-ms-win-.*)\.dll$' <<<"$deps" || true)
      ;;
    macos_*)
      llvm-nm --extern-only --defined-only "$f" | awk '{print $NF}' | sed 's/^_//' | sort -u >"$WORK/exports.txt"
      deps=$(llvm-objdump --macho --dylibs-used "$f" | tail -n +2 | awk '{print $1}')
      bad=$(grep -vE '^(/usr/lib/libSystem\.B\.dylib|/usr/lib/libiconv\.2\.dylib|/usr/lib/libc\+\+\.1\.dylib|/usr/lib/libresolv\.9\.dylib|/System/Library/Frameworks/.*)$' <<<"$deps" || true)
      ;;
    *)
      llvm-nm --dynamic --extern-only --defined-only "$f" | awk '{print $NF}' | sort -u >"$WORK/exports.txt"
      deps=$(llvm-readobj --needed-libs "$f" | sed -n 's/^ *\(lib.*\|ld-.*\)$/\1/p')
      bad=$(grep -vE '^(libc\.so\.6|libm\.so\.6|libpthread\.so\.0|libdl\.so\.2|librt\.so\.1|libgcc_s\.so\.1|ld-linux-x86-64\.so\.2|ld-linux-aarch64\.so\.1)$' <<<"$deps" || true)
      newest=$(llvm-objdump -T "$f" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)
      if [ "$(printf '%s\n%s\n' "$newest" "$GLIBC_MAX" | sort -V | tail -1)" = "$GLIBC_MAX" ]; then
        ok "$platform: newest glibc symbol version GLIBC_$newest (limit $GLIBC_MAX)"
      else
        fail "$platform: needs GLIBC_$newest, above the limit $GLIBC_MAX"
      fi
      ;;
  esac
  missing=$(comm -23 "$WORK/jni.txt" "$WORK/exports.txt")
  if [ -z "$missing" ]; then
    ok "$platform: exports all $(wc -l <"$WORK/jni.txt") JNI functions"
  else
    fail "$platform: does not export $(echo "$missing" | tr '\n' ' ')"
  fi
  if [ -z "$bad" ]; then
    ok "$platform: needs only system libraries ($(echo $deps | tr ' ' ','))"
  else
    fail "$platform: needs libraries that are not the system's: $(echo $bad)"
  fi
done

# The Windows CLI under Wine against the Linux CLI, on the same inputs.
LINUX_CLI=target-cross/cli/linux_64/fluorecon
WIN_CLI=target-cross/cli/windows_64/fluorecon.exe
if [ "$RUN" = yes ] && [ -z "$JAR" ] && command -v wine >/dev/null && [ -x "$LINUX_CLI" ] && [ -f "$WIN_CLI" ]; then
  export WINEPREFIX="$HOME/.cache/fluorecon-wine" WINEDEBUG=-all
  # Wine 8 lacks bcryptprimitives.dll (ProcessPrng, used by Rust's standard library; every
  # Windows 10/11 has it): the executable runs from a folder with a stand-in built here.
  mkdir -p "$WORK/win"
  cp "$WIN_CLI" "$WORK/win/"
  x86_64-w64-mingw32-gcc -shared -O2 -o "$WORK/win/bcryptprimitives.dll" scripts/wine/bcryptprimitives.c -ladvapi32
  WIN_CLI="$WORK/win/fluorecon.exe"
  cargo build -q --release --example tiff_diff
  DIFF=target/release/examples/tiff_diff
  D="$WORK/run"
  mkdir -p "$D"
  win() { wine "$WIN_CLI" "$@" >"$D/wine.log" 2>&1 || { cat "$D/wine.log"; return 1; }; }
  compare() { # what  windows.tif  linux.tif  tolerance
    local r
    if r=$("$DIFF" "$2" "$3" "$4"); then ok "wine: $1 as on Linux ($r, tolerance $4)"; else fail "wine: $1 differs from Linux: $r"; fi
  }
  if win info; then ok "wine: fluorecon.exe info: $(grep -m1 'Device: CPU' "$D/wine.log" || head -1 "$D/wine.log")"; else fail "wine: fluorecon.exe info"; fi
  # Deconvolution of the bundled sample (RL, 20 iterations).
  "$LINUX_CLI" deconvolve samples/blurred.tif --psf samples/psf.tif -n 20 -o "$D/rl-linux.tif" >/dev/null
  if win deconvolve samples/blurred.tif --psf samples/psf.tif -n 20 -o "$D/rl-win.tif"; then
    compare "deconvolution of samples/" "$D/rl-win.tif" "$D/rl-linux.tif" 1e-4
  else fail "wine: deconvolution"; fi
  # SIM: simulated raw frames (the estimate and the Wiener reconstruction).
  "$LINUX_CLI" simulate-sim -o "$D/simraw" --size 128 --seed 3 >/dev/null
  "$LINUX_CLI" sim "$D/simraw/raw.tif" -o "$D/sim-linux.tif" >/dev/null
  if win sim "$D/simraw/raw.tif" -o "$D/sim-win.tif"; then
    compare "SIM reconstruction" "$D/sim-win.tif" "$D/sim-linux.tif" 1e-4
  else fail "wine: SIM"; fi
  # Localization: a simulated EMCCD stack; every localization within 1e-3 nm and 1e-3 photons.
  "$LINUX_CLI" simulate-smlm -o "$D/smlm" --frames 20 --seed 4 >/dev/null
  cam=(--pixel-size 100 --offset 100 --e-per-adu 45 --em-gain 300)
  "$LINUX_CLI" localize "$D/smlm/stack.tif" "${cam[@]}" -o "$D/loc-linux.csv" >/dev/null
  if win localize "$D/smlm/stack.tif" "${cam[@]}" -o "$D/loc-win.csv"; then
    tr -d '\r' <"$D/loc-win.csv" >"$D/loc-win-unix.csv"
    r=$(paste -d, "$D/loc-win-unix.csv" "$D/loc-linux.csv" | awk -F, 'NR == 1 { n = NF / 2; next }
      { rows++; for (i = 1; i <= n; i++) { d = $i - $(i + n); if (d < 0) d = -d; if (d > m) m = d } }
      END { printf "%d localizations, largest difference %.2e", rows, m; exit !(m <= 1e-3) }') &&
      [ "$(wc -l <"$D/loc-win-unix.csv")" = "$(wc -l <"$D/loc-linux.csv")" ] &&
      ok "wine: localization as on Linux ($r)" || fail "wine: localization differs: $r"
  else fail "wine: localization"; fi
  # Noise2Void prediction with a model trained on Linux.
  cargo run -q --release --example denoise_sample -- "$D/n2v" 64 64 >/dev/null
  "$LINUX_CLI" n2v train "$D/n2v/noisy.tif" -o "$D/model" --epochs 1 --steps 4 --patch 32 --seed 1 >/dev/null 2>&1
  "$LINUX_CLI" n2v predict "$D/n2v/noisy.tif" --model "$D/model" -o "$D/n2v-linux.tif" --device cpu >/dev/null
  if win n2v predict "$D/n2v/noisy.tif" --model "$D/model" -o "$D/n2v-win.tif" --device cpu; then
    compare "Noise2Void prediction" "$D/n2v-win.tif" "$D/n2v-linux.tif" 1e-4
  else fail "wine: Noise2Void prediction"; fi
elif [ "$RUN" = yes ] && [ -z "$JAR" ]; then
  echo "skipped: the Wine runs (needs wine, $LINUX_CLI and $WIN_CLI)"
fi

if [ "$failures" -gt 0 ]; then
  echo "check-natives: $failures failure(s)"
  exit 1
fi
echo "check-natives: every platform library checked"
