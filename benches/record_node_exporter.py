#!/usr/bin/env python3
"""Records a real node exporter as OpenMetrics with timestamps.

Scrapes URL SCRAPES times, SLEEP seconds apart, and stamps scrape k with
START + 15*k seconds, so a few minutes of real node-exporter output become
hours of 15s-interval history for backfill comparisons.
Usage: record_node_exporter.py URL SCRAPES SLEEP > node.om
"""
import re
import sys
import time
import urllib.request

url, scrapes, sleep = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
START = 1_700_000_000
families = {}
order = []
types = {}
for k in range(scrapes):
    body = urllib.request.urlopen(url, timeout=10).read().decode()
    ts = START + 15 * k
    fam = None
    for line in body.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            fam = name
            types[name] = typ if typ in ("counter", "gauge", "histogram", "summary") else "unknown"
            if name not in families:
                families[name] = []
                order.append(name)
            continue
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)$", line)
        if not m or fam is None:
            continue
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        if types.get(fam) == "counter" and not name.endswith("_total"):
            continue  # OpenMetrics counters must end in _total
        families[fam].append(f"{name}{labels} {value} {ts}\n")
    time.sleep(sleep)
out = sys.stdout
for fam in order:
    typ = types[fam]
    if typ == "counter":
        out.write(f"# TYPE {fam.removesuffix('_total')} counter\n")
    else:
        out.write(f"# TYPE {fam} {typ}\n")
    out.writelines(families[fam])
out.write("# EOF\n")
