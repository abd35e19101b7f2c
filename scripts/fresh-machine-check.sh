#!/usr/bin/env bash
# Proves the README's two set-up commands on a fresh Debian 12: builds a minimal Debian 12
# root with debootstrap (plus only `make` and `git`), copies a clean clone of this repository
# (HEAD) into it, and runs `make demo`, then `make test` inside it with chroot. Nothing from
# this machine is used but the Debian mirror, PyPI and crates.io, except the Rust toolchain,
# which is copied in from here when rustup's server cannot be reached.
#
#   sudo scripts/fresh-machine-check.sh [ROOT]      default ROOT: /var/tmp/fluorecon-fresh
# Writes the log to ROOT.log; exit status 0 when both commands pass.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="${1:-/var/tmp/fluorecon-fresh}"
LOG="$ROOT.log"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
[ "$(id -u)" -eq 0 ] || { echo "run as root (debootstrap, chroot)" >&2; exit 2; }
command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null

cleanup() {
  for m in dev/pts dev proc sys; do umount -l "$ROOT/$m" 2>/dev/null || true; done
}
trap cleanup EXIT
cleanup
rm -rf "$ROOT"
start=$(date +%s)
echo "== debootstrap bookworm into $ROOT" | tee "$LOG"
debootstrap --variant=minbase --include=make,git,ca-certificates bookworm "$ROOT" "$MIRROR" >>"$LOG" 2>&1
mount -t proc proc "$ROOT/proc"
mount -t sysfs sys "$ROOT/sys"
mount --bind /dev "$ROOT/dev"
mount --bind /dev/pts "$ROOT/dev/pts"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# This machine's network, not software: where HTTPS goes through an egress proxy with its own
# certificate authority (local CAs in /usr/local/share/ca-certificates, pip told to use the
# system bundle), the fresh root gets the same, as a machine on that network would.
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
  mkdir -p "$ROOT/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
  chroot "$ROOT" update-ca-certificates >>"$LOG" 2>&1
fi
[ -f /etc/pip.conf ] && cp /etc/pip.conf "$ROOT/etc/pip.conf"
git clone -q --no-local . "$ROOT/root/fluorecon"
if ! curl -sSf --max-time 20 https://sh.rustup.rs >/dev/null 2>&1; then
  echo "== rustup's server is not reachable: seeding the Rust toolchain from this machine" | tee -a "$LOG"
  cp -a "$HOME/.rustup" "$HOME/.cargo" "$ROOT/root/"
fi
run() {
  echo "== $1 ($(($(date +%s) - start)) s)" | tee -a "$LOG"
  chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 CI=true /bin/bash -c "cd /root/fluorecon && $1" >>"$LOG" 2>&1
}
status=0
run "make demo" && echo "make demo: passed" | tee -a "$LOG" || { status=1; echo "make demo: FAILED" | tee -a "$LOG"; }
if [ $status -eq 0 ]; then
  run "make test" && echo "make test: passed" | tee -a "$LOG" || { status=1; echo "make test: FAILED" | tee -a "$LOG"; }
fi
echo "== done in $(($(date +%s) - start)) s, log $LOG" | tee -a "$LOG"
exit $status
