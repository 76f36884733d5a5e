#!/usr/bin/env bash
# Load on the real `upres serve` binary from other processes: CLIENTS curl clients each send
# REQUESTS image requests at a server with --max-jobs 2 and its default queue, while 200 idle
# sockets and 50 sockets that send a header a byte at a time hold connections open. Prints how
# many requests were served, refused and failed, and the server's resident memory before and
# after. docs/RELIABILITY.md records its results.
# Usage: scripts/load-serve.sh [build dir] [clients] [requests each]   (default: build 16 10)
set -euo pipefail
build=${1:-build}
clients=${2:-16}
each=${3:-10}
work=$(mktemp -d)
trap 'kill $server $idlers 2>/dev/null || true; rm -rf "$work"' EXIT
"$build/upres" sample -o "$work/pic.png" --size 48x32 >/dev/null
"$build/upres" serve --port 0 --root "$work" --quiet --max-jobs 2 >"$work/banner" 2>"$work/log" &
server=$!
for _ in $(seq 100); do grep -q listening "$work/banner" && break; sleep 0.1; done
url=$(grep -o 'http://[^ ]*' "$work/banner")
port=${url##*:}
rss() { awk '/VmRSS/ {print $2 " kB"}' "/proc/$server/status"; }

# Misbehaving neighbours: idle sockets, and headers sent a byte at a time.
python3 - "$port" <<'PY' &
import socket, sys, time
port = int(sys.argv[1])
idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(200)]
slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(50)]
header = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 1000
for i in range(len(header)):
    for s in slow:
        try:
            s.send(header[i:i + 1])
        except OSError:
            pass
    time.sleep(0.2)
PY
idlers=$!
sleep 1

url_image="$url/v1/image/upscale?model=upres-compact-x2"
curl -s -o /dev/null --data-binary @"$work/pic.png" -H 'Content-Type: image/png' "$url_image"  # warm-up
before=$(rss)
start=$(date +%s%N)
seq $((clients * each)) | xargs -P "$clients" -I{} curl -s -o /dev/null -w '%{http_code}\n' \
  --data-binary @"$work/pic.png" -H 'Content-Type: image/png' "$url_image" >"$work/codes"
millis=$((($(date +%s%N) - start) / 1000000))
after=$(rss)
health=$(curl -s -o /dev/null -w '%{http_code}' "$url/healthz")
echo "clients x requests: $clients x $each; served (200): $(grep -c '^200$' "$work/codes"); refused (429/503):" \
  "$(grep -cE '^(429|503)$' "$work/codes" || true); other: $(grep -cvE '^(200|429|503)$' "$work/codes" || true);" \
  "in $((millis / 1000)).$(printf %03d $((millis % 1000))) s"
echo "server RSS before: $before, after: $after; /healthz during the neighbours' attack: $health"
