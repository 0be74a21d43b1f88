"""gunicorn settings; the port comes from PORT (default 8000)."""

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
