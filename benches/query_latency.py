#!/usr/bin/env python3
"""Times PromQL range queries against two Prometheus-API servers.

Each query runs WARMUP times on each server, then ROUNDS times alternating
between them; prints the median latency per server, the ratio, and whether
both returned the same number of series (a sanity check on equal data).
Usage: query_latency.py HEARTH_URL PROMETHEUS_URL START END STEP [ROUNDS]

Series counts can differ for topk: Prometheus 2.42 selects ranges closed at
both ends ([t-r, t]) while Hearth follows Prometheus 3.x (left-open, (t-r, t]),
so rates differ slightly and ties at the top-10 boundary change.
"""
import http.client
import json
import statistics
import sys
import time
import urllib.parse

QUERIES = [
    ("sum by rate", "sum by (job) (rate(http_requests_total[5m]))"),
    ("histogram_quantile", "histogram_quantile(0.9, sum by (le, job) (rate(http_request_duration_seconds_bucket[5m])))"),
    ("topk", "topk(10, rate(http_requests_total[5m]))"),
    ("avg_over_time", "avg_over_time(node_memory_bytes[10m])"),
    ("label_replace", 'label_replace(up, "host", "$1", "instance", "(.*):.*")'),
    ("group_left join", "sum by (instance) (rate(http_requests_total[5m])) * on(instance) group_left(node) node_info"),
    ("count by", "count by (code) (http_requests_total)"),
    ("subquery", "max_over_time(sum(rate(http_requests_total[5m]))[30m:1m])"),
    ("absent", "absent(nonexistent_metric)"),
]


# One kept-alive connection per server, as Grafana and other API clients
# use: a new TCP connection per query would add the same fixed cost to both
# sides and hide the servers' own difference on small queries.
CONNECTIONS = {}


def connection(url):
    if url not in CONNECTIONS:
        u = urllib.parse.urlsplit(url)
        CONNECTIONS[url] = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    return CONNECTIONS[url]


def run(url, q, start, end, step):
    body = urllib.parse.urlencode({"query": q, "start": start, "end": end, "step": step})
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    conn = connection(url)
    t0 = time.perf_counter()
    conn.request("POST", "/api/v1/query_range", body, headers)
    raw = conn.getresponse().read()
    # Until the last byte arrived: decoding the JSON here, in Python, would
    # add the same tens of milliseconds to both servers on large results.
    dt = time.perf_counter() - t0
    data = json.loads(raw)
    if data.get("status") != "success":
        raise RuntimeError(f"{url}: {q}: {data}")
    return dt, len(data["data"]["result"])


def main():
    h, p, start, end, step = sys.argv[1:6]
    rounds = int(sys.argv[6]) if len(sys.argv) > 6 else 15
    print(f"{'query':<20} {'hearth ms':>10} {'prometheus ms':>14} {'ratio':>7}  series(h/p)")
    ratios = []
    for name, q in QUERIES:
        for _ in range(2):
            run(h, q, start, end, step)
            run(p, q, start, end, step)
        th, tp = [], []
        for _ in range(rounds):
            dh, nh = run(h, q, start, end, step)
            dp, np_ = run(p, q, start, end, step)
            th.append(dh)
            tp.append(dp)
        mh, mp = statistics.median(th) * 1000, statistics.median(tp) * 1000
        ratios.append(mh / mp)
        same = "same" if nh == np_ else "DIFFERENT"
        print(f"{name:<20} {mh:>10.2f} {mp:>14.2f} {mh / mp:>7.2f}  {nh}/{np_} {same}")
    print(f"geometric mean ratio {statistics.geometric_mean(ratios):.2f}, worst {max(ratios):.2f}")


main()
