#!/usr/bin/env python3
"""Times PromQL range queries against two Prometheus-API servers.

Each query runs twice on each server to warm up, then ROUNDS times (more for
fast queries, see `rounds_for`) alternating between them (in blocks for
sub-millisecond queries, see `block_for`); prints the median
latency per server, the ratio, and whether both returned the same number of
series (a sanity check on equal data).
Usage: query_latency.py HEARTH_URL PROMETHEUS_URL START END STEP [ROUNDS]

The client is a raw HTTP/1.1 socket kept alive per server, as Grafana keeps
its connections: a query's time is from sending the request to the last
byte of the answer. A general-purpose client (http.client) spends about
0.3 ms of its own per request, which would be counted against both servers
and hide their difference on small queries.

Series counts can differ for topk: Prometheus 2.42 selects ranges closed at
both ends ([t-r, t]) while Hearth follows Prometheus 3.x (left-open, (t-r, t]),
so rates differ slightly and ties at the top-10 boundary change.
"""
import json
import socket
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


class Connection:
    """One kept-alive HTTP/1.1 connection; reads exactly one answer per request."""

    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.host = u.hostname
        self.sock = socket.create_connection((u.hostname, u.port), timeout=120)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Received bytes not yet consumed, and one reused read buffer: a
        # fresh large buffer per read (recv(1 << 20)) cost about 50 us of
        # the client's own per request, counted against both servers.
        self.buf = bytearray()
        self.chunk = memoryview(bytearray(1 << 16))

    def _more(self):
        n = self.sock.recv_into(self.chunk)
        if not n:
            raise RuntimeError(f"{self.host}: connection closed")
        self.buf += self.chunk[:n]

    def _take(self, n):
        while len(self.buf) < n:
            self._more()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def _line(self):
        while (i := self.buf.find(b"\r\n")) < 0:
            self._more()
        line = bytes(self.buf[:i])
        del self.buf[: i + 2]
        return line

    def post(self, path, body):
        """Sends a form POST; returns the answer's body."""
        b = body.encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(b)}\r\n\r\n"
        )
        self.sock.sendall(head.encode() + b)
        self._line()  # status line; the JSON body says success or error
        headers = {}
        while line := self._line():
            k, _, v = line.partition(b":")
            headers[k.strip().lower()] = v.strip()
        if b"content-length" in headers:
            return self._take(int(headers[b"content-length"]))
        if headers.get(b"transfer-encoding", b"").lower() != b"chunked":
            raise RuntimeError(f"{self.host}: answer without length: {headers}")
        parts = []
        while size := int(self._line().split(b";")[0], 16):
            parts.append(self._take(size))
            self._take(2)
        while self._line():
            pass
        return b"".join(parts)


CONNECTIONS = {}


def run(url, q, start, end, step):
    body = urllib.parse.urlencode({"query": q, "start": start, "end": end, "step": step})
    conn = CONNECTIONS.get(url)
    if conn is None:
        conn = CONNECTIONS[url] = Connection(url)
    t0 = time.perf_counter()
    raw = conn.post("/api/v1/query_range", body)
    # Until the last byte arrived: decoding the JSON here, in Python, would
    # add the same tens of milliseconds to both servers on large results.
    dt = time.perf_counter() - t0
    data = json.loads(raw)
    if data.get("status") != "success":
        raise RuntimeError(f"{url}: {q}: {data}")
    return dt, len(data["data"]["result"])


def rounds_for(seconds_per_round, rounds):
    """At least `rounds`; for fast queries as many as fit in about 2 s (at
    most 1000), since the median of a few sub-millisecond timings moves with
    every scheduling hiccup."""
    return max(rounds, min(1000, int(2.0 / max(seconds_per_round, 1e-6))))


def block_for(seconds_per_round):
    """Requests sent to one server before switching to the other: one for
    queries that take milliseconds, 50 for sub-millisecond ones. Strictly
    alternating sub-millisecond requests times each server right after the
    other one answered, so what a server does between its requests is
    credited to the other: Hearth's busy-polling (--web.busy-poll) keeps a
    CPU awake, which also spares Prometheus the wake-up of a sleeping CPU
    on a virtual machine. In blocks, each server is timed in its own steady
    state under a client sending requests back to back, as a dashboard does;
    the blocks still alternate, so drift of the machine hits both."""
    return 1 if seconds_per_round > 0.005 else 50


def main():
    h, p, start, end, step = sys.argv[1:6]
    rounds = int(sys.argv[6]) if len(sys.argv) > 6 else 15
    print(f"{'query':<20} {'hearth ms':>10} {'prometheus ms':>14} {'ratio':>7}  series(h/p)")
    ratios = []
    for name, q in QUERIES:
        warm = []
        for _ in range(2):
            warm.append(run(h, q, start, end, step)[0] + run(p, q, start, end, step)[0])
        th, tp = [], []
        block = block_for(min(warm))
        for _ in range(max(1, rounds_for(min(warm), rounds) // block)):
            for _ in range(block):
                dh, nh = run(h, q, start, end, step)
                th.append(dh)
            for _ in range(block):
                dp, np_ = run(p, q, start, end, step)
                tp.append(dp)
        mh, mp = statistics.median(th) * 1000, statistics.median(tp) * 1000
        ratios.append(mh / mp)
        same = "same" if nh == np_ else "DIFFERENT"
        print(f"{name:<20} {mh:>10.2f} {mp:>14.2f} {mh / mp:>7.2f}  {nh}/{np_} {same}")
    print(f"geometric mean ratio {statistics.geometric_mean(ratios):.2f}, worst {max(ratios):.2f}")


main()
