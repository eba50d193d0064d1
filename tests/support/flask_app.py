"""Flask app for gunicorn with several workers, using prometheus_client's
multiprocess mode (see gunicorn_conf.py), as tests/real_targets.rs runs it.

PROMETHEUS_MULTIPROC_DIR must be set (to an empty directory) before this
module is imported: metric objects then write to per-process files there,
and /internal/metrics merges every process' files with MultiProcessCollector,
so the counters of all workers, live or already exited, add up.

Each response names the worker (its pid) so the test can check that the
traffic really was spread over several processes.
"""

import os
import time

from flask import Flask, request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app, multiprocess
from werkzeug.middleware.dispatcher import DispatcherMiddleware

if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
    raise RuntimeError("PROMETHEUS_MULTIPROC_DIR must be set for the multiprocess setup")

REQUESTS = Counter("app_requests", "Requests handled, by route and method.", ["route", "method"])
LATENCY = Histogram(
    "app_request_duration_seconds",
    "Request latency.",
    ["route"],
    buckets=(0.001, 0.01, 0.1, 1.0, 10.0),
)
# livesum gauges add up the live processes' values only: a dead worker's
# files are removed by mark_process_dead (gunicorn_conf.child_exit).
IN_PROGRESS = Gauge("app_requests_in_progress", "Requests being handled.", multiprocess_mode="livesum")
WORKERS = Gauge("app_workers", "Live worker processes.", multiprocess_mode="livesum")
WORKERS.set(1)  # this module is imported once in each worker

app = Flask(__name__)


def _metrics_app():
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return make_wsgi_app(registry)


_metrics = _metrics_app()
_record_dir = os.environ.get("SCRAPE_RECORD_DIR")


def metrics_endpoint(environ, start_response):
    # Remember how the monitoring server asked for the exposition (its Accept
    # header), so the test can fetch the same format for its comparison.
    if _record_dir and "real-targets-test" not in environ.get("HTTP_USER_AGENT", ""):
        path = os.path.join(_record_dir, f"scrape-accept.{os.getpid()}")
        with open(path + ".tmp", "w") as f:
            f.write(environ.get("HTTP_ACCEPT", ""))
        os.replace(path + ".tmp", path)
    return _metrics(environ, start_response)


app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/internal/metrics": metrics_endpoint})


def _handle(route):
    REQUESTS.labels(route=route, method=request.method).inc()
    with IN_PROGRESS.track_inprogress(), LATENCY.labels(route=route).time():
        ms = int(request.args.get("sleep_ms", "0"))
        if ms:
            time.sleep(ms / 1000.0)
    return {"pid": os.getpid(), "route": route}


@app.route("/work", methods=["GET"])
def work():
    return _handle("/work")


@app.route("/submit", methods=["POST"])
def submit():
    return _handle("/submit")
