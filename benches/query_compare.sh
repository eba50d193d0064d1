#!/usr/bin/env bash
# Query latency, Hearth beside Prometheus 2.42, on identical data (10k series,
# 1h at 15s, backfilled into both), same machine, same run.
#   benches/query_compare.sh [WORKDIR] [ROUNDS]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
work="${1:-/tmp/hearth-query-bench}"
rounds="${2:-15}"
mkdir -p "$work"
cd "$work"
# A server left over on these ports would answer instead of ours.
for port in 19390 19391; do
  if curl -s -o /dev/null "127.0.0.1:$port/"; then echo "port $port is already in use; stop what listens there" >&2; exit 1; fi
done
command -v prometheus >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; }
(cd "$repo" && cargo build --release -q)
hearth="$repo/target/release/hearth"
end=$(( $(date +%s) / 60 * 60 - 600 ))
python3 "$here/gen_query_data.py" "$end" > data.om
rm -rf prom hearth
promtool tsdb create-blocks-from openmetrics data.om prom >/dev/null
"$hearth" tsdb create-blocks-from openmetrics data.om hearth >/dev/null
printf 'global:\n  scrape_interval: 1h\n' > empty.yml
prometheus --config.file=empty.yml --storage.tsdb.path=prom --storage.tsdb.retention.time=30d --web.listen-address=127.0.0.1:19390 > prom.log 2>&1 &
pp=$!
"$hearth" server --storage.tsdb.path hearth --web.listen-address 127.0.0.1:19391 --self-scrape-interval 1h > hearth.log 2>&1 &
hp=$!
trap 'kill $pp $hp 2>/dev/null || true' EXIT
for _ in $(seq 120); do
  curl -sf 127.0.0.1:19390/-/ready >/dev/null && curl -sf 127.0.0.1:19391/-/ready >/dev/null && break
  sleep 0.5
done
kill -0 "$pp" "$hp" || { echo "a server exited; see $work/prom.log and $work/hearth.log" >&2; exit 1; }
python3 "$here/query_latency.py" http://127.0.0.1:19391 http://127.0.0.1:19390 $((end - 3000)) "$end" 30 "$rounds"
