# gunicorn settings for the ingest service (the SMS gateway's webhook), an ASGI application on
# uvicorn workers. One worker per core: each runs an event loop and its own group commit.
import multiprocessing

bind = "127.0.0.1:8001"
workers = multiprocessing.cpu_count()
worker_class = "utility.ingest_worker.IngestWorker"
timeout = 30
graceful_timeout = 30
keepalive = 30  # Kannel's smsbox reuses its connections
max_requests = 200000
max_requests_jitter = 20000
accesslog = None  # one line per SMS would be the busiest log on the host; smsgateway logs refusals
