"""gunicorn settings for flask_app.py in prometheus_client multiprocess mode.

The app is imported in each worker (no preload), so every worker writes its
own metric files in PROMETHEUS_MULTIPROC_DIR. When a worker exits (the test
stops one mid-traffic; max_requests, timeouts and crashes do the same in
production) its counter files stay and keep counting, while the child_exit
hook below removes its live gauges, as prometheus_client documents.
"""

from prometheus_client import multiprocess

workers = 4
worker_class = "sync"
preload_app = False
timeout = 30
graceful_timeout = 5
# No control socket: its default path is shared by every gunicorn of the user.
control_socket_disable = True


def child_exit(server, worker):
    multiprocess.mark_process_dead(worker.pid)
