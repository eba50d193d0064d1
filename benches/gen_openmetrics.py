#!/usr/bin/env python3
"""Writes realistic scrape data as OpenMetrics with timestamps, for comparing
bytes per sample of `promtool tsdb create-blocks-from openmetrics` and
`hearth tsdb create-blocks-from openmetrics` on identical input.

Per target: counters with varying rates, gauges with a few decimals, and a
request-duration histogram (cumulative buckets, _sum, _count). Scrapes are 15s
apart with millisecond jitter, as real scrape timestamps have.
Usage: gen_openmetrics.py TARGETS SCRAPES > data.om   (deterministic)
"""
import random
import sys

targets, scrapes = int(sys.argv[1]), int(sys.argv[2])
rng = random.Random(42)
BUCKETS = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]
START = 1_700_000_000  # seconds

state = []
for t in range(targets):
    state.append({
        "rate": [rng.uniform(0.1, 50) for _ in range(8)],
        "cnt": [rng.randint(0, 10**6) for _ in range(8)],
        "gauge": [rng.uniform(0, 100) for _ in range(6)],
        "mem": rng.randint(50, 500) * 2**20,
        "hist": [0] * len(BUCKETS),
        "hsum": 0.0,
        "reqrate": rng.uniform(1, 30),
    })

out = sys.stdout
families = {}
for k in range(scrapes):
    for t, s in enumerate(state):
        inst = f'instance="10.0.{t // 256}.{t % 256}:8080",job="app"'
        ts = START + k * 15 + rng.randint(0, 20) / 1000.0
        lines = families.setdefault("lines", [])
        for c in range(8):
            s["cnt"][c] += int(rng.expovariate(1 / s["rate"][c]) * 15) if rng.random() < 0.9 else 0
            lines.append(("app_requests_total", f'{{{inst},route="/r{c}"}}', str(s["cnt"][c]), ts))
        for g in range(6):
            s["gauge"][g] = max(0.0, s["gauge"][g] + rng.gauss(0, 1.5))
            lines.append(("app_queue_depth", f'{{{inst},queue="q{g}"}}', f'{s["gauge"][g]:.2f}', ts))
        s["mem"] += rng.choice([-1, 0, 0, 1]) * 4096 * rng.randint(0, 64)
        lines.append(("process_resident_memory_bytes", f'{{{inst}}}', str(s["mem"]), ts))
        n = int(s["reqrate"] * 15 * rng.uniform(0.7, 1.3))
        for _ in range(n):
            d = rng.lognormvariate(-3, 1.2)
            s["hsum"] += d
            for b, le in enumerate(BUCKETS):
                if le == "+Inf" or d <= float(le):
                    s["hist"][b] += 1
        for b, le in enumerate(BUCKETS):
            lines.append(("app_request_duration_seconds_bucket", f'{{{inst},le="{le}"}}', str(s["hist"][b]), ts))
        lines.append(("app_request_duration_seconds_sum", f'{{{inst}}}', f'{s["hsum"]:.6f}', ts))
        lines.append(("app_request_duration_seconds_count", f'{{{inst}}}', str(s["hist"][-1]), ts))

# OpenMetrics wants each family's samples together.
by_family = {}
for name, labels, value, ts in families["lines"]:
    fam = name.removesuffix("_total").removesuffix("_bucket").removesuffix("_sum").removesuffix("_count")
    by_family.setdefault(fam, []).append(f"{name}{labels} {value} {ts:.3f}\n")
types = {"app_requests": "counter", "app_queue_depth": "gauge", "process_resident_memory_bytes": "gauge",
         "app_request_duration_seconds": "histogram"}
for fam, lines in by_family.items():
    out.write(f"# TYPE {fam} {types[fam]}\n")
    out.writelines(lines)
out.write("# EOF\n")
