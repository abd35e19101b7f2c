#!/usr/bin/env bash
# Loads the plugin jar's Linux library in ImageJ on an older Linux than this build machine:
# a Debian 11 root (glibc 2.31, its own JDK and ImageJ) made with debootstrap, where the
# jar's engine (built against glibc 2.28) must load and deconvolve. Run after `make release`.
#
#   sudo scripts/check-old-linux.sh [JAR] [ROOT]
set -euo pipefail
cd "$(dirname "$0")/.."
JAR="${1:-java/target/Fluorecon_-0.1.0.jar}"
ROOT="${2:-/var/tmp/fluorecon-bullseye}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
[ "$(id -u)" -eq 0 ] || { echo "run as root (debootstrap, chroot)" >&2; exit 2; }
[ -f "$JAR" ] || { echo "no $JAR" >&2; exit 2; }

cleanup() { for m in dev/pts dev proc sys; do umount -l "$ROOT/$m" 2>/dev/null || true; done; }
trap cleanup EXIT
cleanup
if [ ! -x "$ROOT/usr/bin/imagej" ]; then
  rm -rf "$ROOT"
  debootstrap --variant=minbase --include=openjdk-11-jre-headless,imagej,xvfb,xauth bullseye "$ROOT" "$MIRROR"
fi
mount -t proc proc "$ROOT/proc"
mount -t sysfs sys "$ROOT/sys"
mount --bind /dev "$ROOT/dev"
mount --bind /dev/pts "$ROOT/dev/pts"
rm -rf "$ROOT/root/check"
mkdir -p "$ROOT/root/check/plugins"
cp "$JAR" "$ROOT/root/check/plugins/"
cp samples/blurred.tif samples/psf.tif "$ROOT/root/check/"
cat >"$ROOT/root/check/check.ijm" <<'EOF'
setBatchMode(true);
run("About Fluorecon...");
open("/root/check/psf.tif");
open("/root/check/blurred.tif");
run("Deconvolve (Richardson-Lucy)...", "psf=psf.tif iterations=5");
print("deconvolved: " + getTitle() + " " + getWidth() + "x" + getHeight() + "x" + nSlices);
EOF
glibc=$(chroot "$ROOT" ldd --version | head -1)
echo "root: Debian $(cat "$ROOT/etc/debian_version"), $glibc"
out=$(chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  timeout 600 xvfb-run -a java -Dplugins.dir=/root/check -cp /usr/share/java/ij.jar ij.ImageJ \
  -batch /root/check/check.ijm 2>&1 || true)
echo "$out" | grep -E "Fluorecon|Library|deconvolved|error|Error" | head -20
if echo "$out" | grep -q "^deconvolved: blurred-RL"; then
  echo "check-old-linux: the engine loads and runs on $glibc"
else
  echo "check-old-linux: FAILED"
  exit 1
fi
