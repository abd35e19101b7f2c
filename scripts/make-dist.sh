#!/usr/bin/env bash
# Writes dist/ after `make release` has built the all-platform jar and the CLIs:
#   dist/Fluorecon_-VERSION.jar                    the plugin: drop it into Fiji.app/plugins/
#   dist/fluorecon-VERSION-<platform>.tar.gz|.zip   the CLI of each platform, with README and LICENSE
#   dist/SHA256SUMS
#   dist/update-site/                               a Fiji update site (plugins/, db.xml.gz) to host
#
#   scripts/make-dist.sh VERSION
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION="$1"
JAR="java/target/Fluorecon_-$VERSION.jar"
[ -f "$JAR" ] || { echo "no $JAR: run make release" >&2; exit 1; }
rm -rf dist
mkdir -p dist
cp "$JAR" dist/
for dir in target-cross/cli/*/; do
  platform=$(basename "$dir")
  name="fluorecon-$VERSION-$platform"
  stage=$(mktemp -d)
  mkdir "$stage/$name"
  cp "$dir"/* README.md LICENSE "$stage/$name/"
  case "$platform" in
    windows_*) (cd "$stage" && python3 -m zipfile -c "$OLDPWD/dist/$name.zip" "$name") ;;
    *) tar -C "$stage" -czf "dist/$name.tar.gz" "$name" ;;
  esac
  rm -rf "$stage"
done
(cd dist && sha256sum -- * >SHA256SUMS)
python3 scripts/update-site.py "$JAR" dist/update-site
echo "dist/:"
ls -l dist
