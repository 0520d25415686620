# gunicorn settings for the ingest service (the SMS gateway's webhook), an ASGI application on
# uvicorn workers. Each worker runs an event loop and its own group commit. One keeps up with
# a whole Kannel smsbox, and every further one splits the group commit into smaller groups,
# each costing the database (and the worker) a statement and a commit: so half the cores, the
# rest left to Kannel and PostgreSQL on the same host (on two cores, one worker took 15-25 %
# less CPU per message than two, bench/ingest_cpu.py). WEB_CONCURRENCY overrides.
import multiprocessing
import os

bind = "127.0.0.1:8001"
workers = int(os.environ.get("WEB_CONCURRENCY") or max(1, multiprocessing.cpu_count() // 2))
worker_class = "utility.ingest_worker.IngestWorker"
timeout = 30
graceful_timeout = 30
keepalive = 30  # Kannel's smsbox reuses its connections
max_requests = 200000
max_requests_jitter = 20000
accesslog = None  # one line per SMS would be the busiest log on the host; smsgateway logs refusals
