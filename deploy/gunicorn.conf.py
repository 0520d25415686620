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


def when_ready(server) -> None:
    """Before the first worker is forked: resolve the URLs, compile every template and load
    the static files' manifest in the master, so that each worker, and each one recycled by
    max_requests, serves its first requests warm instead of spending them (hundreds of
    milliseconds on a busy box) on what every worker would otherwise do for itself. Nothing
    here opens a database or Redis connection: the workers must not share one."""
    if not server.cfg.preload_app:
        return
    try:
        _warm_up()
    except Exception:  # a warm-up that fails must not keep the portal from starting
        server.log.exception("warm-up failed; the workers warm up on their first requests")
    else:
        server.log.info("application warmed up before forking the workers")


def _warm_up() -> None:
    from contextlib import suppress
    from pathlib import Path

    from django import forms
    from django.contrib.staticfiles.storage import staticfiles_storage
    from django.template import TemplateDoesNotExist, TemplateSyntaxError, engines
    from django.urls import get_resolver

    get_resolver().reverse_dict  # noqa: B018 - imports every URLconf and builds the lookups
    for engine in engines.all():
        for folder in map(Path, engine.template_dirs):
            for path in folder.rglob("*.html"):
                # A template meant for another engine or only for inclusion may not compile.
                with suppress(TemplateDoesNotExist, TemplateSyntaxError):
                    engine.get_template(path.relative_to(folder).as_posix())
    staticfiles_storage.hashed_files  # noqa: B018 - reads the manifest

    class Sample(forms.Form):  # the form renderer's templates and the usual widgets
        text = forms.CharField()
        day = forms.DateField(widget=forms.DateInput({"type": "date"}))

    Sample().as_p()
