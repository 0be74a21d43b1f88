"""gunicorn settings; the port comes from PORT (default 8000)."""

# pylint: disable=invalid-name  # gunicorn reads these lower-case module names

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
# Threads let a page wait on a slow backend (bounded by BACKEND_TIMEOUT)
# without blocking the health probe.
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = 4
timeout = 30
accesslog = "-"
errorlog = "-"
# Worker heartbeats in memory: works with a read-only root filesystem.
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"
# gunicorn >= 25.1 opens a control socket under $HOME by default; the image's
# numeric user has no writable home, and nothing here uses gunicornc.
control_socket_disable = True
