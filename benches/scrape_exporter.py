#!/usr/bin/env python3
"""A cheap, many-target metrics exporter for scrape benchmarks.

Serves TARGETS targets on ports PORT..PORT+TARGETS-1 (any path), each with
SERIES series in the Prometheus text format 0.0.4, from one asyncio process.
Each target looks like a Kubernetes node running an instrumented service:
node_exporter-style families (cpu, memory, disks, network, filesystems with
per-pod mount points), Go/process metrics, HTTP and gRPC request counters, a
request-duration histogram with `le` buckets, and kube-state-style pod gauges,
padded to exactly SERIES with a cache counter family.

Values move the way real ones do: counters only go up, each at its own rate
(a third of them idle), histogram buckets stay cumulative, gauges wander, and
info-style series and sizes stay constant. Every scrape of a target advances
that target's clock by one step, so consecutive scrapes always differ.

Cheap by construction: the text between values is pre-rendered once per
target, so a scrape only formats the moving values and joins (a few ms of
CPU for 10k series); the response is gzipped (level 1) when the client
accepts it, like client_golang does. With --variants K the bodies of K
consecutive steps are rendered up front and served in rotation instead
(no per-scrape work at all, but counters then reset every K scrapes).

Usage: scrape_exporter.py [--port 19500] [--targets 20] [--series 10000]
                          [--gzip auto|never] [--variants 0]
Prints "ready" on stdout once every port listens. Stop with SIGTERM.
"""
import argparse
import asyncio
import gzip
import random
import signal
import sys

BUCKETS = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]
HANDLERS = ["/", "/healthz", "/readyz", "/metrics", "/login", "/logout", "/search", "/static/*filepath",
            "/api/v1/users", "/api/v1/users/:id", "/api/v1/users/:id/settings", "/api/v1/orders",
            "/api/v1/orders/:id", "/api/v1/orders/:id/items", "/api/v1/carts/:id", "/api/v1/payments",
            "/api/v1/payments/:id/refund", "/api/v1/products", "/api/v1/products/:id", "/api/v1/inventory",
            "/api/v2/graphql", "/api/v2/events", "/api/v2/sessions/:id", "/api/v2/notifications",
            "/admin/reports", "/admin/audit", "/webhooks/stripe", "/webhooks/github"]
METHODS = ["GET", "POST", "PUT", "DELETE"]
CODES = ["200", "201", "204", "301", "400", "401", "403", "404", "409", "429", "500", "502", "503"]
GRPC_SERVICES = ["orders.v1.OrderService", "users.v1.UserService", "billing.v1.BillingService",
                 "catalog.v1.CatalogService", "grpc.health.v1.Health"]
GRPC_METHODS = ["Get", "List", "Create", "Update", "Delete", "Watch", "Check", "BatchGet"]
GRPC_CODES = ["OK", "Canceled", "InvalidArgument", "NotFound", "AlreadyExists", "PermissionDenied",
              "ResourceExhausted", "Unavailable", "DeadlineExceeded", "Internal", "Unauthenticated"]
NAMESPACES = ["default", "kube-system", "monitoring", "payments", "checkout", "search", "ingress-nginx",
              "cert-manager", "logging", "data"]
PHASES = ["Pending", "Running", "Succeeded", "Failed", "Unknown"]
CPU_MODES = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"]


class Target:
    """One target's exposition: fixed text pieces with value slots between them.

    `pieces[i]` is the text before slot i (a series' name and labels plus a
    space, preceded by any HELP/TYPE lines and constant series), `pieces[-1]`
    the text after the last slot. Slot i's value at step n is
    `int(base + rate * n)` for integer counters, `base + rate * n` rounded
    for float counters, and a bounded wobble around a centre for gauges.
    """

    def __init__(self, index: int, series: int):
        self.rng = random.Random(1000 + index)
        self.index = index
        self.series = 0
        self.pieces = []  # text before each slot
        self.pending = []  # text accumulated since the last slot
        self.slots = []  # (kind, a, b, c)
        self.build(series)
        self.pieces.append("".join(self.pending))
        self.pending = []
        self.step = 0

    # -- building -------------------------------------------------------
    def family(self, name, kind, help_text):
        self.pending.append(f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n")

    def const(self, name, labels, value):
        self.series += 1
        self.pending.append(f"{name}{labels} {value}\n")

    def slot(self, name, labels, kind, a, b=0.0, c=0.0):
        self.series += 1
        self.pending.append(f"{name}{labels} ")
        self.pieces.append("".join(self.pending))
        self.pending = ["\n"]
        self.slots.append((kind, a, b, c))

    def counter(self, name, labels, per_step, start=None, floaty=False):
        """A counter rising by about per_step a scrape (0 = idle)."""
        start = self.rng.randint(0, 10**7) if start is None else start
        self.slot(name, labels, "cf" if floaty else "ci", start, per_step)

    def gauge(self, name, labels, center, spread, decimals=0):
        self.slot(name, labels, "g", center, spread, decimals)

    def rate(self):
        r = self.rng.random()
        return 0.0 if r < 0.33 else self.rng.expovariate(1 / 40) if r < 0.9 else self.rng.uniform(200, 5000)

    def build(self, want):
        rng = self.rng
        ncpu = 16
        # node_exporter -------------------------------------------------
        self.family("node_cpu_seconds_total", "counter", "Seconds the CPUs spent in each mode.")
        for cpu in range(ncpu):
            for mode in CPU_MODES:
                per = {"idle": 3.1, "user": 1.2, "system": 0.4, "iowait": 0.05}.get(mode, 0.0 if mode == "steal" else 0.01)
                self.counter("node_cpu_seconds_total", f'{{cpu="{cpu}",mode="{mode}"}}', per * rng.uniform(0.5, 1.5),
                             rng.randint(10**5, 10**7), floaty=True)
        mem = ["Active", "Active_anon", "Active_file", "AnonHugePages", "AnonPages", "Bounce", "Buffers", "Cached",
               "CommitLimit", "Committed_AS", "DirectMap1G", "DirectMap2M", "DirectMap4k", "Dirty", "HugePages_Free",
               "HugePages_Rsvd", "HugePages_Total", "Hugepagesize", "Inactive", "Inactive_anon", "Inactive_file",
               "KernelStack", "Mapped", "MemAvailable", "MemFree", "MemTotal", "Mlocked", "NFS_Unstable",
               "PageTables", "Percpu", "SReclaimable", "SUnreclaim", "Shmem", "ShmemHugePages", "Slab", "SwapCached",
               "SwapFree", "SwapTotal", "Unevictable", "VmallocChunk", "VmallocTotal", "VmallocUsed", "Writeback",
               "WritebackTmp"]
        for m in mem:
            name = f"node_memory_{m}_bytes"
            self.family(name, "gauge", f"Memory information field {m}_bytes.")
            if m.endswith("Total") or m.startswith(("DirectMap", "Huge", "Commit", "Vmalloc")):
                self.const(name, "", rng.randint(1, 64) * 2**30)
            else:
                self.gauge(name, "", rng.randint(1, 32) * 2**28, 2**20 * rng.randint(1, 64))
        disks = ["nvme0n1", "nvme1n1", "sda", "sdb", "dm-0", "dm-1"]
        for f in ["reads_completed", "writes_completed", "read_bytes", "written_bytes", "io_time_seconds",
                  "read_time_seconds", "write_time_seconds", "discards_completed"]:
            name = f"node_disk_{f}_total"
            self.family(name, "counter", f"The total number of {f.replace('_', ' ')}.")
            for d in disks:
                per = self.rate() * (4096 if "bytes" in f else 1)
                self.counter(name, f'{{device="{d}"}}', per, floaty="seconds" in f)
        devs = ["eth0", "eth1", "lo", "cni0", "flannel.1", "docker0"] + [f"veth{rng.getrandbits(32):08x}" for _ in range(24)]
        for f in ["receive_bytes", "transmit_bytes", "receive_packets", "transmit_packets", "receive_errs",
                  "transmit_errs", "receive_drop", "transmit_drop", "receive_multicast", "transmit_colls"]:
            name = f"node_network_{f}_total"
            self.family(name, "counter", f"Network device statistic {f}.")
            for d in devs:
                per = 0.0 if ("errs" in f or "colls" in f) else self.rate() * (900 if "bytes" in f else 1)
                self.counter(name, f'{{device="{d}"}}', per)
        mounts = [("/dev/nvme0n1p1", "ext4", "/"), ("/dev/nvme0n1p2", "ext4", "/var/lib/containerd"),
                  ("/dev/nvme1n1", "xfs", "/var/lib/kubelet"), ("tmpfs", "tmpfs", "/run"), ("tmpfs", "tmpfs", "/dev/shm")]
        for _ in range(40):  # per-pod volumes: long, node-unique label values
            uid = "%08x-%04x-%04x-%04x-%012x" % (rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(16),
                                                rng.getrandbits(16), rng.getrandbits(48))
            vol = rng.choice(["kube-api-access-", "config-", "secrets-", "tls-"]) + "%05x" % rng.getrandbits(20)
            mounts.append(("tmpfs", "tmpfs", f"/var/lib/kubelet/pods/{uid}/volumes/kubernetes.io~projected/{vol}"))
        for f in ["size_bytes", "free_bytes", "avail_bytes", "files", "files_free", "readonly", "device_error"]:
            name = f"node_filesystem_{f}"
            self.family(name, "gauge", f"Filesystem {f.replace('_', ' ')}.")
            for dev, fs, mp in mounts:
                lab = f'{{device="{dev}",fstype="{fs}",mountpoint="{mp}"}}'
                if f in ("free_bytes", "avail_bytes", "files_free") and fs != "tmpfs":
                    self.gauge(name, lab, rng.randint(2**30, 2**36), 2**16 * rng.randint(1, 256))
                else:
                    self.const(name, lab, 0 if f in ("readonly", "device_error") else rng.randint(2**20, 2**36))
        for f in ["Tcp_ActiveOpens", "Tcp_PassiveOpens", "Tcp_RetransSegs", "Tcp_InSegs", "Tcp_OutSegs",
                  "Udp_InDatagrams", "Udp_OutDatagrams", "Udp_InErrors", "TcpExt_ListenDrops", "TcpExt_SyncookiesSent",
                  "Icmp_InMsgs", "Icmp_OutMsgs", "Ip_Forwarding", "IpExt_InOctets", "IpExt_OutOctets"]:
            name = f"node_netstat_{f}"
            self.family(name, "untyped", f"Statistic {f}.")
            self.counter(name, "", self.rate())
        for f, c, s in [("node_load1", 2.0, 0.8), ("node_load5", 1.8, 0.3), ("node_load15", 1.7, 0.1),
                        ("node_procs_running", 3, 3), ("node_procs_blocked", 0, 1), ("node_entropy_available_bits", 3800, 100),
                        ("node_filefd_allocated", 12000, 300), ("node_sockstat_TCP_inuse", 800, 40)]:
            self.family(f, "gauge", f"{f} gauge.")
            self.gauge(f, "", c, s, 2 if isinstance(s, float) else 0)
        self.family("node_uname_info", "gauge", "Labeled system information as provided by the uname system call.")
        self.const("node_uname_info", f'{{domainname="(none)",machine="x86_64",nodename="ip-10-0-{self.index // 256}-{self.index % 256}.ec2.internal",release="6.1.0-18-cloud-amd64",sysname="Linux",version="#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)"}}', 1)

        # Go runtime and process ---------------------------------------
        self.family("go_gc_duration_seconds", "summary", "A summary of the pause duration of garbage collection cycles.")
        for q in ["0", "0.25", "0.5", "0.75", "1"]:
            self.gauge("go_gc_duration_seconds", f'{{quantile="{q}"}}', 0.0001 * (1 + float(q) * 5), 0.00005, 6)
        self.counter("go_gc_duration_seconds_sum", "", 0.002, 100, floaty=True)
        self.counter("go_gc_duration_seconds_count", "", 0.3, 10000)
        for f, c, s in [("go_goroutines", 420, 30), ("go_threads", 18, 1), ("go_memstats_alloc_bytes", 2**27, 2**24),
                        ("go_memstats_heap_inuse_bytes", 2**27, 2**23), ("go_memstats_heap_objects", 600000, 50000),
                        ("go_memstats_stack_inuse_bytes", 2**21, 2**16), ("process_resident_memory_bytes", 2**28, 2**22),
                        ("process_open_fds", 90, 10), ("process_virtual_memory_bytes", 2**31, 2**22)]:
            self.family(f, "gauge", f"{f}.")
            self.gauge(f, "", c, s)
        for f, per in [("go_memstats_alloc_bytes_total", 2**21), ("go_memstats_mallocs_total", 40000),
                       ("go_memstats_frees_total", 39000), ("process_cpu_seconds_total", 0.35)]:
            self.family(f, "counter", f"{f}.")
            self.counter(f, "", per, floaty=f.startswith("process_cpu"))
        self.family("go_info", "gauge", "Information about the Go environment.")
        self.const("go_info", '{version="go1.21.6"}', 1)

        # application --------------------------------------------------
        # what is left is split: histogram 55%, request counters 15%, gRPC 10%, pods 10%, padding the rest
        left = want - self.series
        hist_pairs = max(1, int(left * 0.55) // (len(BUCKETS) + 2))
        req_series = max(1, int(left * 0.15))
        grpc_series = max(1, int(left * 0.10))
        pod_count = max(1, int(left * 0.10) // (len(PHASES) + 3))
        routes = [(HANDLERS[i] if i < len(HANDLERS) else f"/api/v3/resource{i}/:id", m)
                  for i in range(hist_pairs // len(METHODS) + 1) for m in METHODS][:hist_pairs]
        self.family("http_request_duration_seconds", "histogram", "Latency of HTTP requests.")
        for handler, method in routes:
            lab = f'handler="{handler}",method="{method}"'
            reqs = self.rate() * 3
            shape = sorted(rng.random() for _ in BUCKETS[:-1]) + [1.0]  # cumulative fractions
            start = rng.randint(0, 10**6)
            for le, frac in zip(BUCKETS, shape):
                self.counter("http_request_duration_seconds_bucket", f'{{{lab},le="{le}"}}', reqs * frac, int(start * frac))
            self.counter("http_request_duration_seconds_sum", f"{{{lab}}}", reqs * 0.08, start * 0.08, floaty=True)
            self.counter("http_request_duration_seconds_count", f"{{{lab}}}", reqs, start)
        self.family("http_requests_total", "counter", "Total HTTP requests by status code, handler and method.")
        n = 0
        for i in range(10**6):
            for code in CODES:
                if n == req_series:
                    break
                handler, method = routes[i % len(routes)]
                if i >= len(routes):  # more status codes than routes can carry: versioned copies
                    handler = f"/v{i // len(routes) + 1}{handler}"
                self.counter("http_requests_total", f'{{code="{code}",handler="{handler}",method="{method}"}}',
                             self.rate() * (5 if code == "200" else 0.1))
                n += 1
            if n == req_series:
                break
        self.family("grpc_server_handled_total", "counter", "Total RPCs completed on the server.")
        n = 0
        for i in range(10**6):
            svc, meth = GRPC_SERVICES[i % len(GRPC_SERVICES)], GRPC_METHODS[(i // len(GRPC_SERVICES)) % len(GRPC_METHODS)]
            if i >= len(GRPC_SERVICES) * len(GRPC_METHODS):
                meth += str(i // (len(GRPC_SERVICES) * len(GRPC_METHODS)))
            for code in GRPC_CODES:
                if n == grpc_series:
                    break
                self.counter("grpc_server_handled_total",
                             f'{{grpc_code="{code}",grpc_method="{meth}",grpc_service="{svc}",grpc_type="unary"}}',
                             self.rate() * (1 if code == "OK" else 0.02))
                n += 1
            if n == grpc_series:
                break
        pods = []
        for i in range(pod_count):
            ns = NAMESPACES[i % len(NAMESPACES)]
            app = rng.choice(["api", "worker", "web", "cron", "db-proxy", "cache", "ingest"])
            pod = f"{app}-{rng.getrandbits(40):010x}-{rng.getrandbits(25):05x}"
            uid = "%08x-%04x-%04x-%04x-%012x" % (rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(16),
                                                rng.getrandbits(16), rng.getrandbits(48))
            pods.append((ns, pod, uid))
        self.family("kube_pod_status_phase", "gauge", "The pods current phase.")
        for ns, pod, uid in pods:
            for ph in PHASES:
                self.const("kube_pod_status_phase", f'{{namespace="{ns}",phase="{ph}",pod="{pod}",uid="{uid}"}}',
                           1 if ph == "Running" else 0)
        self.family("kube_pod_container_status_restarts_total", "counter", "Number of container restarts.")
        for ns, pod, uid in pods:
            self.counter("kube_pod_container_status_restarts_total",
                         f'{{container="{pod.split("-")[0]}",namespace="{ns}",pod="{pod}",uid="{uid}"}}',
                         0.0 if rng.random() < 0.95 else 0.01, rng.randint(0, 3))
        self.family("container_memory_working_set_bytes", "gauge", "Current working set in bytes.")
        for ns, pod, uid in pods:
            self.gauge("container_memory_working_set_bytes",
                       f'{{container="{pod.split("-")[0]}",namespace="{ns}",pod="{pod}"}}', rng.randint(2**24, 2**31), 2**18)
        self.family("container_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed.")
        for ns, pod, uid in pods:
            self.counter("container_cpu_usage_seconds_total",
                         f'{{container="{pod.split("-")[0]}",cpu="total",namespace="{ns}",pod="{pod}"}}',
                         rng.uniform(0, 2), floaty=True)
        if self.series < want:
            self.family("app_cache_operations_total", "counter", "Cache operations by cache, shard and result.")
        i = 0
        while self.series < want:
            self.counter("app_cache_operations_total",
                         f'{{cache="{["sessions", "users", "catalog", "prices"][i % 4]}",result="{["hit", "miss"][i // 4 % 2]}",shard="{i // 8}"}}',
                         self.rate())
            i += 1
        if self.series > want:
            raise SystemExit(f"--series {want} is too small: the fixed families alone have {self.series}")

    # -- serving ----------------------------------------------------------
    def render(self, n: int) -> bytes:
        out = []
        push = out.append
        pieces = self.pieces
        for i, (kind, a, b, c) in enumerate(self.slots):
            push(pieces[i])
            if kind == "ci":
                push(str(int(a + b * n)))
            elif kind == "cf":
                push(str(round(a + b * n, 3)))
            else:  # a bounded wobble around the centre, its phase differing per series
                w = ((n * 7 + i * 13) % 29) - 14
                push(str(round(a + b * w / 14, c)) if c else str(int(a + b * w / 14)))
        push(pieces[-1])
        return "".join(out).encode()


async def serve(target: Target, gzip_mode: str, variants: list, reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lower = head.lower()
            accept = lower.partition(b"\r\naccept-encoding:")[2].partition(b"\r\n")[0]
            want_gzip = gzip_mode == "auto" and b"gzip" in accept
            if variants:
                raw, z = variants[target.step % len(variants)]
                body = z if want_gzip else raw
            else:
                body = target.render(target.step)
                if want_gzip:
                    body = gzip.compress(body, 1, mtime=0)
            target.step += 1
            enc = b"Content-Encoding: gzip\r\n" if want_gzip else b""
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n" + enc +
                         b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
            writer.write(body)
            await writer.drain()
            if b"connection: close" in lower:
                break
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=19500)
    ap.add_argument("--targets", type=int, default=20)
    ap.add_argument("--series", type=int, default=10000)
    ap.add_argument("--gzip", choices=["auto", "never"], default="auto")
    ap.add_argument("--variants", type=int, default=0)
    ap.add_argument("--dump", type=int, metavar="TARGET", help="print TARGET's first body and exit")
    args = ap.parse_args()
    targets = [Target(t, args.series) for t in range(args.targets)]
    if args.dump is not None:
        sys.stdout.write(targets[args.dump].render(0).decode())
        return
    servers = []
    for t, target in enumerate(targets):
        variants = []
        for k in range(args.variants):
            raw = target.render(k)
            variants.append((raw, gzip.compress(raw, 1, mtime=0)))
        handler = (lambda tg, vs: lambda r, w: serve(tg, args.gzip, vs, r, w))(target, variants)
        servers.append(await asyncio.start_server(handler, "127.0.0.1", args.port + t, limit=1 << 16))
    print("ready", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for s in servers:
        s.close()


if __name__ == "__main__":
    asyncio.run(main())
