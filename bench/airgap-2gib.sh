#!/usr/bin/env bash
# One-off measurement for issue 10, scenario 4 (not part of the test suite: it writes ~12 GiB).
# A 2 GiB single-layer image as an OCI layout directory; then, timed with /usr/bin/time (elapsed s,
# peak RSS KiB):
#   wharf import  <layout dir>  → store A         skopeo copy oci:<dir>        → oci-archive:<tar>
#   wharf export  store A       → <tar>           skopeo copy oci-archive:<tar> → oci:<dir2>
#   wharf import  <tar>         → store B (a tar read once, the usual air-gap path)
# Usage: bash bench/airgap-2gib.sh [work dir, default a temp dir on the same disk as /tmp]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$(mktemp -d /tmp/wharf-2gib-XXXXXX)}"
size=$((2 * 1024 * 1024 * 1024))
cd "$here" # tsx resolves from the repository
wharf=(node --import tsx "$here/src/cli/main.ts")
measure() { # label, command…: prints "label: N s, peak RSS M MiB, R MB/s"
  local label="$1"
  shift
  /usr/bin/time -f '%e %M' -o "$work/time.txt" "$@" >/dev/null 2>"$work/err.txt" || {
    cat "$work/err.txt"
    exit 1
  }
  read -r seconds kib <"$work/time.txt"
  awk -v l="$label" -v s="$seconds" -v k="$kib" -v b="$size" \
    'BEGIN { printf "%-40s %6.1f s  peak RSS %5.0f MiB  %6.0f MB/s\n", l, s, k / 1024, b / s / 1e6 }'
}

echo "work dir: $work"
layout="$work/layout"
mkdir -p "$layout/blobs/sha256"
# The layer: 2 GiB of AES-CTR keystream (incompressible, as a real layer's gzip is).
head -c "$size" /dev/zero | openssl enc -aes-256-ctr -nosalt -K "$(printf 'wharf-2gib' | sha256sum | cut -c1-64)" \
  -iv 00000000000000000000000000000000 >"$work/layer"
layer_digest="$(sha256sum "$work/layer" | cut -c1-64)"
mv "$work/layer" "$layout/blobs/sha256/$layer_digest"
config="{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:$layer_digest\"]}}"
printf '%s' "$config" >"$work/config"
config_digest="$(sha256sum "$work/config" | cut -c1-64)"
mv "$work/config" "$layout/blobs/sha256/$config_digest"
manifest="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$config_digest\",\"size\":${#config}},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$layer_digest\",\"size\":$size}]}"
printf '%s' "$manifest" >"$work/manifest"
manifest_digest="$(sha256sum "$work/manifest" | cut -c1-64)"
mv "$work/manifest" "$layout/blobs/sha256/$manifest_digest"
printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"bench/big:v1","io.wharf.local-name":"true"}}]}' \
  "$manifest_digest" "${#manifest}" >"$layout/index.json"
sync

measure "wharf import (layout dir → store)" "${wharf[@]}" import "$layout" --data "$work/a" --quiet
measure "skopeo copy oci: → oci-archive:" skopeo copy "oci:$layout:bench/big:v1" "oci-archive:$work/skopeo.tar:bench/big:v1"
measure "wharf export (store → tar)" "${wharf[@]}" export bench/big:v1 -o "$work/wharf.tar" --data "$work/a" --quiet
measure "skopeo copy oci-archive: → oci:" skopeo copy "oci-archive:$work/wharf.tar:bench/big:v1" "oci:$work/skopeo-dir:bench/big:v1"
measure "wharf import (tar → store)" "${wharf[@]}" import "$work/wharf.tar" --data "$work/b" --quiet
measure "wharf import again (tar → same store)" "${wharf[@]}" import "$work/wharf.tar" --data "$work/b" --quiet
if [ -z "${1:-}" ]; then rm -rf "$work"; fi
