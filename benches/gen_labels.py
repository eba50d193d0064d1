#!/usr/bin/env python3
"""Writes N label sets in promtool's bench file format (one JSON object per line).

The label sets resemble a fleet of node-exporter and application targets, so
both `promtool tsdb bench write` and `hearth tsdb bench write` ingest the same
series. Usage: gen_labels.py N > labels.json
"""
import json
import sys

NAMES = ["node_cpu_seconds_total", "node_memory_MemAvailable_bytes", "node_network_receive_bytes_total",
         "http_requests_total", "http_request_duration_seconds_bucket", "process_resident_memory_bytes",
         "go_goroutines", "node_filesystem_avail_bytes", "container_cpu_usage_seconds_total", "kube_pod_status_phase"]

n = int(sys.argv[1])
for i in range(n):
    t = i // 200
    print(json.dumps({
        "__name__": NAMES[i % len(NAMES)],
        "job": ["node", "api", "kubelet"][t % 3],
        "instance": f"10.{t // 65536 % 256}.{t // 256 % 256}.{t % 256}:9100",
        "namespace": f"team-{t % 17}",
        "series": str(i % 200),
    }))
