#!/bin/bash
# Cold 200 MB blob GETs with curl, each on a fresh server process (as in bench scenario 3), against an
# upstream CNCF distribution holding the blob; targets alternate run by run (issue 12; docs/cold-path-cpu.md
# section 4). Run after `npm run build`:
#   bench/cpu/cold-get.sh [runs] [targets]
# targets (default "wharf distribution"): wharf, distribution (its proxy), and relay-floor variants
# floor (bare relay), floor-hash, floor-hash-file (bench/cpu/relay-floor.mjs). Prints MB/s (curl's
# figure) and the CPU the server process used for the fill (user + system, all threads, from /proc).
set -euo pipefail
runs=${1:-4}
targets=${2:-wharf distribution}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
registry_config() { # <root dir> <port> [proxy url]
  printf 'version: 0.1\nlog: {level: error, accesslog: {disabled: true}}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: 127.0.0.1:%s, secret: bench-only}\n' "$1" "$2"
  if [ -n "${3:-}" ]; then printf 'proxy: {remoteurl: %s}\n' "$3"; fi
}
wait_for() { for _ in $(seq 200); do curl -sf -o /dev/null "$1" && return 0; sleep 0.05; done; echo "no answer at $1" >&2; exit 1; }

head -c 200000000 /dev/urandom > "$work/blob"
digest=sha256:$(sha256sum "$work/blob" | cut -d' ' -f1)
registry_config "$work/upstream" 46000 > "$work/upstream.yml"
docker-registry serve "$work/upstream.yml" > /dev/null 2>&1 &
pids+=($!)
wait_for http://127.0.0.1:46000/v2/
location=$(curl -s -D - -o /dev/null -X POST http://127.0.0.1:46000/v2/x/blobs/uploads/ | tr -d '\r' | awk 'tolower($1) == "location:" { print $2 }')
curl -sf -o /dev/null -X PUT "$location&digest=$digest" -H 'Content-Type: application/octet-stream' --data-binary @"$work/blob"
rm "$work/blob"

for run in $(seq "$runs"); do
  for target in $targets; do
    data=$(mktemp -d -p "$work")
    case $target in
      wharf)
        node "$root/dist/cli/main.js" serve --listen 127.0.0.1:46001 --data "$data" --log-level warn \
          --upstream u.test=http://127.0.0.1:46000 > /dev/null 2>&1 &
        url=http://127.0.0.1:46001/v2/u.test/x/blobs/$digest ;;
      distribution)
        registry_config "$data/store" 46001 http://127.0.0.1:46000 > "$data/config.yml"
        docker-registry serve "$data/config.yml" > /dev/null 2>&1 &
        url=http://127.0.0.1:46001/v2/x/blobs/$digest ;;
      floor | floor-hash | floor-hash-file)
        HASH=$([[ $target == floor-hash* ]] && echo 1 || echo 0) FILE=$([ $target = floor-hash-file ] && echo 1 || echo 0) \
          PORT=46001 node "$here/relay-floor.mjs" > /dev/null 2>&1 &
        url=http://127.0.0.1:46001/$digest ;;
      *) echo "unknown target $target" >&2; exit 2 ;;
    esac
    pid=$!
    pids+=("$pid")
    for _ in $(seq 200); do curl -s -o /dev/null http://127.0.0.1:46001/v2/ && break; sleep 0.05; done
    before=$(cut -d' ' -f14,15 "/proc/$pid/stat")
    speed=$(curl -s -o /dev/null -w '%{speed_download}' "$url")
    sleep 0.3 # the fsync and commit after the last byte
    after=$(cut -d' ' -f14,15 "/proc/$pid/stat")
    echo "$before $after" | awk -v t="$target" -v r="$run" -v s="$speed" \
      '{ printf "%-16s run %d: %5.0f MB/s, server CPU %.2f s\n", t, r, s / 1e6, ($3 + $4 - $1 - $2) / 100 }'
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    rm -rf "$data"
  done
done
