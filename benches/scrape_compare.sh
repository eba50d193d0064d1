#!/usr/bin/env bash
# Ingestion cost, Hearth beside Prometheus 2.42, scraping the same exporters on
# this machine in one run: 20 targets x 10k series every 5s (200k active
# series, 40k samples/s) served by benches/scrape_exporter.py. Each server
# runs alone (one after the other, same config file, fresh storage) for a
# warm-up and then a measured window, and the script prints:
#   CPU s per million samples   utime+stime delta of the server process over
#                               the window / prometheus_tsdb_head_samples_appended_total delta
#   RSS                         VmRSS at the end of the window, and VmHWM (peak)
#   head series                 prometheus_tsdb_head_series at the end (should be 200k + a few)
# plus scrape health (targets up, scrape duration), the exporter's own CPU and
# the CPU everything else on the machine used meanwhile (a busy machine skews
# the comparison: rerun when that row is not near 0).
#
#   benches/scrape_compare.sh [WORKDIR]          (default /tmp/hearth-scrape-bench)
#
# Environment: WARMUP (s, default 120), WINDOW (s, default 180), TARGETS (20),
# SERIES (per target, 10000), INTERVAL (5s), SERVERS ("prometheus hearth"),
# EXPORTER_PORT (19500, uses TARGETS ports), PROM_PORT (19390), HEARTH_PORT (19391).
# Takes about 2 x (WARMUP + WINDOW) + 1 min: ~11 minutes with the defaults.
# The windows are short next to a head chunk (120 samples = 10 min at 5s), so
# this measures the open-chunk, pre-compaction steady state of the head.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
work="${1:-/tmp/hearth-scrape-bench}"
warmup="${WARMUP:-120}"
window="${WINDOW:-180}"
targets="${TARGETS:-20}"
series="${SERIES:-10000}"
interval="${INTERVAL:-5s}"
servers="${SERVERS:-prometheus hearth}"
eport="${EXPORTER_PORT:-19500}"
pport="${PROM_PORT:-19390}"
hport="${HEARTH_PORT:-19391}"
mkdir -p "$work"
cd "$work"
tck=$(getconf CLK_TCK)

command -v prometheus >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; }
hearth="$repo/target/release/hearth"
case " $servers " in *" hearth "*) (cd "$repo" && cargo build --release -q) ;; esac

pids=()
stop() { # pid: TERM, up to 30 s, then KILL
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 60); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.5; done
  kill -9 "$1" 2>/dev/null || true
}
cleanup() { for p in "${pids[@]}"; do stop "$p"; done; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# utime+stime of a process in clock ticks (fields 14 and 15 of /proc/PID/stat, counted after "comm)")
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
# busy ticks of the whole machine (user nice system irq softirq steal), to spot other load
busy_ticks() { awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
# the sum of a metric's samples (all label sets) on a server's /metrics
metric() { curl -sf --max-time 10 "127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m || index($1, m "{") == 1 {s += $NF; n++} END {if (n) printf "%.0f\n", s; else print "nan"}'; }
# an instant query's single scalar result, or nan
query() {
  curl -sf --max-time 10 "127.0.0.1:$1/api/v1/query" --data-urlencode "query=$2" 2>/dev/null |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "nan")' 2>/dev/null || echo nan
}
now() { date +%s.%N; }

echo "== exporter: $targets targets x $series series on 127.0.0.1:$eport-$((eport + targets - 1)), every $interval"
python3 "$here/scrape_exporter.py" --port "$eport" --targets "$targets" --series "$series" > exporter.out 2> exporter.log &
ep=$!
pids+=("$ep")
for _ in $(seq 120); do grep -q ready exporter.out && break; kill -0 "$ep" || { cat exporter.log; exit 1; }; sleep 0.5; done
grep -q ready exporter.out || { echo "exporter did not start in 60 s"; exit 1; }
n=$(curl -sf --max-time 10 "127.0.0.1:$eport/metrics" | grep -vc '^#')
echo "target 0 serves $n series, $(curl -sf --max-time 10 "127.0.0.1:$eport/metrics" | wc -c) bytes (gzip when asked)"

{
  printf 'global:\n  scrape_interval: %s\n  scrape_timeout: %s\nscrape_configs:\n  - job_name: bench\n    static_configs:\n      - targets:\n' "$interval" "$interval"
  for t in $(seq 0 $((targets - 1))); do printf '          - 127.0.0.1:%d\n' $((eport + t)); done
} > scrape.yml

run() { # name port command...
  local name=$1 port=$2
  shift 2
  rm -rf "data-$name"
  "$@" > "$name.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  local ok=
  for _ in $(seq 240); do
    curl -sf --max-time 2 "127.0.0.1:$port/-/ready" >/dev/null && { ok=1; break; }
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if [ -z "$ok" ]; then echo "$name did not become ready in 120 s; log:"; tail -20 "$name.log"; stop "$pid"; return 1; fi
  echo "== $name (pid $pid): warm-up ${warmup}s"
  sleep "$warmup"
  local t0 c0 s0 e0 b0 t1 c1 s1 e1 b1
  t0=$(now); c0=$(cpu_ticks "$pid"); e0=$(cpu_ticks "$ep"); b0=$(busy_ticks); s0=$(metric "$port" prometheus_tsdb_head_samples_appended_total)
  echo "== $name: measuring ${window}s"
  sleep "$window"
  t1=$(now); c1=$(cpu_ticks "$pid"); e1=$(cpu_ticks "$ep"); b1=$(busy_ticks); s1=$(metric "$port" prometheus_tsdb_head_samples_appended_total)
  {
    echo "secs $(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')"
    echo "cpu $(awk -v a="$c0" -v b="$c1" -v t="$tck" 'BEGIN {print (b - a) / t}')"
    echo "samples $(awk -v a="$s0" -v b="$s1" 'BEGIN {print b - a}')"
    echo "rss $(status_kb "$pid" VmRSS)"
    echo "hwm $(status_kb "$pid" VmHWM)"
    echo "series $(metric "$port" prometheus_tsdb_head_series)"
    echo "up $(query "$port" 'count(up{job="bench"} == 1)')"
    echo "scrape $(query "$port" 'avg(scrape_duration_seconds{job="bench"})')"
    echo "exporter $(awk -v a="$e0" -v b="$e1" -v t="$tck" 'BEGIN {print (b - a) / t}')"
    echo "other $(awk -v a="$b0" -v b="$b1" -v t="$tck" -v s=$((c1 - c0 + e1 - e0)) 'BEGIN {print (b - a - s) / t}')"
  } > "$name.res"
  stop "$pid"
}

rm -f prometheus.res hearth.res
for s in $servers; do
  case $s in
    prometheus)
      run prometheus "$pport" prometheus --config.file=scrape.yml --storage.tsdb.path=data-prometheus \
        --web.listen-address="127.0.0.1:$pport" || true ;;
    hearth)
      if ! "$hearth" server --help 2>/dev/null | grep -q -- '--config.file'; then
        echo "== hearth: 'hearth server' has no --config.file (no scraping yet), skipped"
        continue
      fi
      run hearth "$hport" "$hearth" server --config.file scrape.yml --storage.tsdb.path data-hearth \
        --web.listen-address "127.0.0.1:$hport" || true ;;
    *) echo "unknown server $s"; exit 1 ;;
  esac
done

get() { [ -s "$1.res" ] && awk -v k="$2" '$1 == k {print $2}' "$1.res" || echo nan; }
row() { # label prometheus hearth format [noratio]
  awk -v l="$1" -v p="$2" -v h="$3" -v f="$4" -v nr="${5:-}" 'BEGIN {
    ps = (p == "nan" || p == "") ? "n/a" : sprintf(f, p); hs = (h == "nan" || h == "") ? "n/a" : sprintf(f, h)
    r = (nr != "" || ps == "n/a" || hs == "n/a" || p + 0 == 0) ? "" : sprintf("%.2fx", h / p)
    printf "%-36s %14s %14s %8s\n", l, ps, hs, r }'
}
per() { awk -v a="$1" -v b="$2" -v k="$3" 'BEGIN {print (a == "nan" || b == "nan" || b + 0 == 0) ? "nan" : a * k / b}'; }
for s in prometheus hearth; do
  eval "${s}_cpu=$(get $s cpu) ${s}_samples=$(get $s samples) ${s}_secs=$(get $s secs)"
done
echo
echo "== $targets targets x $series series every $interval; warm-up ${warmup}s, window ${window}s; $(nproc) cores"
printf '%-36s %14s %14s %8s\n' metric Prometheus Hearth ratio
row "head series (end)" "$(get prometheus series)" "$(get hearth series)" "%.0f"
row "targets up (end)" "$(get prometheus up)" "$(get hearth up)" "%.0f"
row "samples/s ingested" "$(per "$prometheus_samples" "$prometheus_secs" 1)" "$(per "$hearth_samples" "$hearth_secs" 1)" "%.0f"
row "CPU s in window" "$prometheus_cpu" "$hearth_cpu" "%.2f"
row "CPU s per M samples   (target 0.5x)" "$(per "$prometheus_cpu" "$prometheus_samples" 1e6)" "$(per "$hearth_cpu" "$hearth_samples" 1e6)" "%.3f"
row "RSS MiB, end          (target 0.5x)" "$(per "$(get prometheus rss)" 1024 1)" "$(per "$(get hearth rss)" 1024 1)" "%.1f"
row "peak RSS MiB (VmHWM)" "$(per "$(get prometheus hwm)" 1024 1)" "$(per "$(get hearth hwm)" 1024 1)" "%.1f"
row "avg scrape duration ms (end)" "$(per "$(get prometheus scrape)" 1 1000)" "$(per "$(get hearth scrape)" 1 1000)" "%.1f"
row "exporter CPU % in window" "$(per "$(get prometheus exporter)" "$prometheus_secs" 100)" "$(per "$(get hearth exporter)" "$hearth_secs" 100)" "%.1f" noratio
row "other processes CPU % (want ~0)" "$(per "$(get prometheus other)" "$prometheus_secs" 100)" "$(per "$(get hearth other)" "$hearth_secs" 100)" "%.1f" noratio
