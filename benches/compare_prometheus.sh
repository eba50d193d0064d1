#!/usr/bin/env bash
# Storage benchmarks, Hearth beside Prometheus 2.42 (promtool + prometheus),
# on identical data, on this machine, in one run. Prints a summary table.
#
#   benches/compare_prometheus.sh [WORKDIR]       (default /tmp/hearth-bench)
#
# Installs prometheus and prometheus-node-exporter from Debian if missing.
# Takes ~15 minutes on 2 cores; needs ~8 GB disk and ~6 GB RAM.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
work="${1:-/tmp/hearth-bench}"
rounds="${ROUNDS:-5}"
mkdir -p "$work"
cd "$work"

if ! command -v promtool >/dev/null || ! command -v prometheus-node-exporter >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus prometheus-node-exporter >/dev/null
fi
(cd "$repo" && cargo build --release -q)
hearth="$repo/target/release/hearth"
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
strip() { sed 's/\x1b\[[0-9;]*m//g'; }

echo "== data"
[ -s labels10k.json ] || python3 "$here/gen_labels.py" 10000 > labels10k.json
[ -s labels100k.json ] || python3 "$here/gen_labels.py" 100000 > labels100k.json
[ -s labels1m.json ] || python3 "$here/gen_labels.py" 1000000 > labels1m.json
[ -s app.om ] || python3 "$here/gen_openmetrics.py" 100 960 > app.om
if [ ! -s node.om ]; then
  prometheus-node-exporter --web.listen-address=127.0.0.1:19100 >/dev/null 2>&1 &
  ne=$!
  sleep 1
  python3 "$here/record_node_exporter.py" http://127.0.0.1:19100/metrics 480 0.25 > node.om
  kill "$ne"
fi

echo "== disk (create-blocks-from openmetrics)"
disk() { # file
  rm -rf p_out h_out
  promtool tsdb create-blocks-from openmetrics "$1" p_out >/dev/null
  "$hearth" tsdb create-blocks-from openmetrics "$1" h_out >/dev/null
  local samples p h
  samples=$("$hearth" tsdb analyze h_out | awk '/^blocks:/ {print $4}')
  p=$(du -sb p_out | cut -f1); h=$(du -sb h_out | cut -f1)
  awk -v s="$samples" -v p="$p" -v h="$h" -v f="$1" 'BEGIN {printf "%-8s samples %d  promtool %.3f B/sample  hearth %.3f B/sample  ratio %.2fx\n", f, s, p/s, h/s, h/p}'
}
disk app.om
disk node.om

echo "== append (bench write, 10000 series x 3000 scrapes, $rounds interleaved rounds)"
: > p_rate; : > h_rate
for _ in $(seq "$rounds"); do
  rm -rf pb; promtool tsdb bench write --out pb --metrics 10000 --scrapes 3000 labels10k.json 2>&1 | awk '/samples\/sec/ {print $3}' >> p_rate
  rm -rf hb; "$hearth" tsdb bench write --out hb --metrics 10000 --scrapes 3000 --values promtool --replay labels10k.json 2>/dev/null | awk '/samples\/sec/ {print $3}' >> h_rate
done
pm=$(median < p_rate); hm=$(median < h_rate)
awk -v p="$pm" -v h="$hm" 'BEGIN {printf "median samples/s  promtool %.0f  hearth %.0f  ratio %.2fx\n", p, h, h/p}'
echo "promtool runs: $(tr '\n' ' ' < p_rate)"; echo "hearth runs:   $(tr '\n' ' ' < h_rate)"

echo "== memory (100000 series x 120 samples: one full head chunk each)"
rm -rf hb pb
"$hearth" tsdb bench write --out hb --metrics 100000 --scrapes 120 --values realistic --replay labels100k.json 2>/dev/null | grep "memory per series"
/usr/bin/time -f "%M" -o h_rss "$hearth" tsdb bench write --out hb --metrics 100000 --scrapes 120 --values promtool labels100k.json >/dev/null 2>&1
/usr/bin/time -f "%M" -o p_rss promtool tsdb bench write --out pb --metrics 100000 --scrapes 120 labels100k.json >/dev/null 2>&1
awk -v h="$(cat h_rss)" -v p="$(cat p_rss)" 'BEGIN {printf "peak RSS per series (whole process)  promtool %.0f B  hearth %.0f B\n", p*1024/100000, h*1024/100000}'

echo "== restart (WAL replay, 1000000 series x 120 samples)"
rm -rf hb1m pb1m
"$hearth" tsdb bench write --out hb1m --metrics 1000000 --scrapes 120 --values realistic --replay labels1m.json 2>/dev/null | grep "WAL replay"
: > h_replay
for _ in 1 2 3; do "$hearth" tsdb bench replay hb1m 2>/dev/null | awk '/WAL replay/ {print $4}' >> h_replay; done
promtool tsdb bench write --out pb1m --metrics 1000000 --scrapes 120 labels1m.json >/dev/null 2>&1
printf 'global:\n  scrape_interval: 1h\n' > empty.yml
prometheus --config.file=empty.yml --storage.tsdb.path=pb1m/storage --web.listen-address=127.0.0.1:19390 --storage.tsdb.retention.time=100y > prom.log 2>&1 &
pp=$!
for _ in $(seq 600); do grep -q "TSDB started" prom.log && break; sleep 1; done
kill "$pp" || true
prom=$(grep -o 'total_replay_duration=[^ ]*' prom.log | head -1 | cut -d= -f2)
echo "median replay  hearth $(median < h_replay) s  (runs: $(tr '\n' ' ' < h_replay))  prometheus $prom"
rm -rf hb1m pb1m hb pb p_out h_out
