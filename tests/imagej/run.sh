#!/usr/bin/env bash
# Runs Fluorecon in a real, headless ImageJ 1.x with the built jar as the only plugin.
#
#   tests/imagej/run.sh test   every tests/imagej/test_*.ijm (each prints PASS:/FAIL: lines)
#                              and every bad_*.ijm (each must abort with the message named
#                              in its "// expect:" line, without a Java stack trace)
#                              (ONLY=sim runs only the macros whose names contain "sim")
#   tests/imagej/run.sh demo   tests/imagej/demo.ijm on samples/, results in demo-output/
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
mode=${1:-test}

jar=$(ls java/target/Fluorecon_-*.jar 2>/dev/null | head -1)
[ -n "$jar" ] || { echo "no plugin jar: run 'make jar' first"; exit 1; }
ij=${IJ_JAR:-/usr/share/java/ij.jar}
[ -f "$ij" ] || { echo "ImageJ not found at $ij (apt-get install imagej)"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/ij/plugins"
cp "$jar" "$work/ij/plugins/"

# run_macro MACRO ARGUMENT: ImageJ in batch mode under a virtual display, output to stdout.
run_macro() {
  timeout "${MACRO_TIMEOUT:-300}" xvfb-run -a java -Xmx6g -Dplugins.dir="$work/ij" -Duser.home="$work" \
    -cp "$ij" ij.ImageJ -batch "$1" "$2" 2>&1 || true
}

if [ "$mode" = demo ]; then
  out="$root/demo-output"
  rm -rf "$out"
  mkdir -p "$out"
  target/release/fluorecon simulate-sim --size 512 --seed 1 -o "$out/sim-input" >/dev/null 2>&1 \
    || { echo "fluorecon simulate-sim failed"; exit 1; }
  target/release/fluorecon simulate-smlm --frames 500 --seed 1 -o "$out/smlm-input" >/dev/null 2>&1 \
    || { echo "fluorecon simulate-smlm failed"; exit 1; }
  MACRO_TIMEOUT=1200 run_macro tests/imagej/demo.ijm "$root/samples/|$out/" | tee "$out/log.txt"
  grep -q "^Demo finished" "$out/log.txt" || { echo "demo failed"; exit 1; }
  echo "Results in $out:"
  ls -l "$out"
  exit 0
fi

passed=0
failed=0
data="$work/data/"
mkdir -p "$data"
cp samples/*.tif "$data"
# Raw 2D SIM frames with known pattern (k0 3.886 /µm, directions 12°, 72°, 132°, m 0.8).
target/release/fluorecon simulate-sim --size 256 --seed 2 -o "$data/sim" >/dev/null 2>&1 \
  || { echo "FAIL: fluorecon simulate-sim"; exit 1; }
# A high-density SMLM stack with its truth (EMCCD as in the SMLM Challenge 2016).
target/release/fluorecon simulate-smlm --preset high-density --frames 16 --seed 3 -o "$data/smlm-hd" \
  >/dev/null 2>&1 || { echo "FAIL: fluorecon simulate-smlm"; exit 1; }
for macro in tests/imagej/test_*${ONLY:-}*.ijm; do
  echo "== $macro"
  output=$(run_macro "$macro" "$data")
  echo "$output" | grep -E "^(PASS|FAIL|Fluorecon|Warning)" || true
  p=$(echo "$output" | grep -c "^PASS" || true)
  f=$(echo "$output" | grep -c "^FAIL" || true)
  if [ "$p" -eq 0 ] || echo "$output" | grep -qE "^\s+at [a-z]+\.|Exception in"; then
    echo "$output" | tail -40
    echo "FAIL: $macro did not run to the end, or threw"
    f=$((f + 1))
  fi
  # "// expect-output: TEXT" lines: TEXT must appear in what ImageJ printed (IJ.log goes
  # to stdout in batch mode, where the macro cannot read the Log window).
  while IFS= read -r want; do
    if echo "$output" | grep -qF -- "$want"; then
      echo "PASS: $macro prints \"$want\""
      p=$((p + 1))
    else
      echo "FAIL: $macro does not print \"$want\""
      f=$((f + 1))
    fi
  done < <(sed -n 's#^// expect-output: ##p' "$macro")
  passed=$((passed + p))
  failed=$((failed + f))
done
for macro in tests/imagej/bad_*${ONLY:-}*.ijm; do
  expect=$(sed -n 's#^// expect: ##p' "$macro")
  output=$(run_macro "$macro" "$data")
  if echo "$output" | grep -qF -- "$expect" && ! echo "$output" | grep -q "^REACHED" \
     && ! echo "$output" | grep -qE "^\s+at [a-z]+\."; then
    echo "PASS: $macro: \"$expect\""
    passed=$((passed + 1))
  else
    echo "$output" | tail -20
    echo "FAIL: $macro: expected an abort with \"$expect\""
    failed=$((failed + 1))
  fi
done
echo "imagej: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
