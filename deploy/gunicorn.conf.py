# gunicorn settings for the portal's web workers (behind nginx).
import multiprocessing

bind = "127.0.0.1:8000"
workers = multiprocessing.cpu_count() * 2 + 1
worker_class = "sync"
timeout = 30
graceful_timeout = 30
max_requests = 2000
max_requests_jitter = 200
# Workers forked from a master that has loaded the application: a worker recycled by
# max_requests starts serving at once instead of importing Django again (about a second of
# CPU on a small box, taken from the requests in flight).
preload_app = True
accesslog = "-"
forwarded_allow_ips = "127.0.0.1"
# Never log query strings: the SMS gateway's shared secret travels in the webhook's URL.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(b)s %(D)sus'
