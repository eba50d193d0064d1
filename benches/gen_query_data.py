#!/usr/bin/env python3
"""Writes ~10k series x 1h at 15s as OpenMetrics with timestamps, ending
END_UNIX (an integer), for the query benchmark against Prometheus.

Series: http_requests_total{job,instance,method,code} counters (4000),
http_request_duration_seconds_bucket{job,instance,le} histograms (5000),
node_memory_bytes{instance} gauges (500), up{job,instance} (400) and
node_info{instance,node} (100): about 10,000 series.
Usage: gen_query_data.py END_UNIX > data.om   (deterministic)
"""
import random
import sys

end = int(sys.argv[1])
steps = 240
start = end - steps * 15
rng = random.Random(7)
LE = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"]
out = sys.stdout

def ts(k):
    return f"{start + k * 15}.{rng.randint(0, 20):03d}"

out.write("# TYPE http_requests counter\n")
for i in range(4000):
    inst, method, code = i // 40, ["GET", "POST", "PUT", "DELETE"][i % 4], ["200", "201", "204", "301", "304", "400", "401", "404", "500", "503"][(i // 4) % 10]
    job = ["api", "web", "worker", "auth"][inst % 4]
    v, rate = rng.randint(0, 10000), rng.uniform(0.1, 20)
    lbl = f'code="{code}",instance="10.0.{inst // 256}.{inst % 256}:8080",job="{job}",method="{method}"'
    for k in range(steps):
        v += int(rng.expovariate(1 / rate) * 15)
        out.write(f"http_requests_total{{{lbl}}} {v} {ts(k)}\n")
out.write("# TYPE http_request_duration_seconds histogram\n")
for inst in range(500):
    job = ["api", "web", "worker", "auth"][inst % 4]
    counts = [0] * len(LE)
    lines = [[] for _ in LE]
    for k in range(steps):
        for _ in range(rng.randint(5, 40)):
            d = rng.lognormvariate(-3, 1.2)
            for b, le in enumerate(LE):
                if le == "+Inf" or d <= float(le):
                    counts[b] += 1
        t = ts(k)
        for b, le in enumerate(LE):
            lines[b].append(f'http_request_duration_seconds_bucket{{instance="10.0.{inst // 256}.{inst % 256}:8080",job="{job}",le="{le}"}} {counts[b]} {t}\n')
    for l in lines:
        out.writelines(l)
out.write("# TYPE node_memory_bytes gauge\n")
for i in range(500):
    v = rng.randint(1, 64) * 2**30
    for k in range(steps):
        v += rng.randint(-100, 100) * 4096
        out.write(f'node_memory_bytes{{instance="10.0.{i // 256}.{i % 256}:9100"}} {v} {ts(k)}\n')
out.write("# TYPE up gauge\n")
for i in range(400):
    job = ["api", "web", "worker", "auth"][i % 4]
    for k in range(steps):
        out.write(f'up{{instance="10.0.{i // 256}.{i % 256}:8080",job="{job}"}} 1 {ts(k)}\n')
out.write("# TYPE node_info gauge\n")
for i in range(100):
    for k in range(steps):
        out.write(f'node_info{{instance="10.0.{i // 256}.{i % 256}:8080",node="node-{i % 20}"}} 1 {ts(k)}\n')
out.write("# EOF\n")
