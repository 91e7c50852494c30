#!/usr/bin/env bash
# Makes the release artefacts in dist/ (what `make dist` runs):
#   aws-lambda-native-<v>.tar.gz          the source: every file git tracks, as in the work tree
#   aws-lambda-native-<v>.tar.gz.sha256   its checksum (sha256sum -c)
#   aws-lambda-native-<v>-1.rockspec      the rockspec with the tarball's md5 (luarocks' checksum)
#   aws-lambda-native-<v>-1.src.rock      the source rock: rockspec and tarball in one zip;
#                                         `luarocks install <it>` checks the md5 and builds
#                                         with cargo, as from a rocks server
# The binary rock is `luarocks pack` of an installed tree (README, "Install").
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

version=$(awk -F'"' '/^\[/ { pkg = ($0 == "[package]") } pkg && /^version *=/ { print $2; exit }' \
              Cargo.toml)
name=aws-lambda-native-$version
rockspec=rockspec/$name-1.rockspec
[ -f "$rockspec" ] || { echo "dist: $rockspec is missing (Cargo.toml says $version)" >&2; exit 1; }
grep -qF "url = \"$name.tar.gz\"" "$rockspec" \
    || { echo "dist: $rockspec's source url is not \"$name.tar.gz\"" >&2; exit 1; }

mkdir -p dist
rm -f "dist/$name".*
git ls-files -z | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done \
    >"dist/$name.files"
# Fixed owner, mode bits and times: the same tree gives the same tarball (and md5).
tar --create --null -T "dist/$name.files" --transform "s,^,$name/," \
    --owner=0 --group=0 --numeric-owner --mtime='2000-01-01 00:00Z' --sort=name \
    | gzip -n >"dist/$name.tar.gz"
rm -f "dist/$name.files"
(cd dist && sha256sum "$name.tar.gz" >"$name.tar.gz.sha256")
md5=$(md5sum "dist/$name.tar.gz" | cut -d' ' -f1)
sed "s|^\\( *\\)url = \"$name.tar.gz\",|&\n\\1md5 = \"$md5\",|" "$rockspec" >"dist/$name-1.rockspec"
grep -q "md5 = \"$md5\"" "dist/$name-1.rockspec" || { echo "dist: md5 not written" >&2; exit 1; }
# A source rock is a zip of the rockspec and the source archive, as `luarocks pack
# <rockspec>` makes it. pack itself cannot be used: it fetches the url from a temporary
# directory, where a relative url finds nothing. Installing a source rock takes the
# archive inside it by the url's file name, whatever the url's directory.
python3 - "dist/$name-1.src.rock" "dist/$name-1.rockspec" "dist/$name.tar.gz" <<'PY'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as rock:
    for path in sys.argv[2:]:
        rock.write(path, os.path.basename(path))
PY
ls -l "dist/$name.tar.gz" "dist/$name-1.rockspec" "dist/$name-1.src.rock" | sed "s|$root/||"
cat "dist/$name.tar.gz.sha256"
