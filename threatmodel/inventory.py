"""What the code has: URL routes, Celery tasks and queues, management commands, stores.

Read from the running configuration (Django's URL resolvers, app registry and command list,
the Celery app), not from source text, so a route or task counts wherever it is declared.
Each reader takes its source as an argument, so a test can hand it one with something added.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from django.apps import apps as django_apps
from django.conf import settings
from django.core.management import get_commands
from django.urls import URLPattern, URLResolver, get_resolver

from meteragent.config import Config
from utility.celery import app as project_celery_app

ROOT = Path(__file__).resolve().parent.parent
URLCONFS = ("utility.urls", "utility.urls_ingest")
ADMIN_NAMESPACE = "admin"


def _route_names(resolver: URLResolver, namespace: str | None = None) -> Iterator[str]:
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            inner = pattern.namespace
            if inner == ADMIN_NAMESPACE and namespace is None:
                # The admin site's pages follow its registered models (the stores).
                yield f"{ADMIN_NAMESPACE}:*"
                continue
            full = f"{namespace}:{inner}" if namespace and inner else (inner or namespace)
            yield from _route_names(pattern, full)
        elif isinstance(pattern, URLPattern):
            if pattern.name is None:
                yield f"<unnamed route {pattern.pattern}>"
            else:
                yield f"{namespace}:{pattern.name}" if namespace else pattern.name


def routes(urlconfs: Iterable[str] = URLCONFS) -> set[str]:
    names: set[str] = set()
    for urlconf in urlconfs:
        names.update(_route_names(get_resolver(urlconf)))
    return names


def tasks(celery_app=None) -> set[str]:
    if celery_app is None:
        celery_app = project_celery_app
    celery_app.loader.import_default_modules()
    return {name for name in celery_app.tasks if not name.startswith("celery.")}


def queues(celery_settings=settings) -> set[str]:
    """The default queue and every queue a route sends tasks to."""
    found = {celery_settings.CELERY_TASK_DEFAULT_QUEUE}
    for route in celery_settings.CELERY_TASK_ROUTES.values():
        found.add(route["queue"])
    return found


def _is_ours(module: str) -> bool:
    return (ROOT / module.split(".")[0]).is_dir()


def commands(command_apps: dict[str, str] | None = None) -> set[str]:
    """Management commands of this project's apps (not Django's or third parties')."""
    command_apps = get_commands() if command_apps is None else command_apps
    return {name for name, app in command_apps.items() if _is_ours(app)}


def stores(models: Iterable[type] | None = None) -> set[str]:
    """Every database table (by model label) and every file the meter agent keeps."""
    models = django_apps.get_models() if models is None else models
    found = {model._meta.label for model in models}
    paths = {
        name
        for name, value in vars(Config).items()
        if isinstance(value, property) and name.endswith("_path")
    }
    return found | {f"meteragent:{name}" for name in paths}


def collect() -> dict[str, set[str]]:
    """Everything the code has, by the kinds of `surface.SURFACES`."""
    return {
        "URL route": routes(),
        "Celery task": tasks(),
        "Celery queue": queues(),
        "management command": commands(),
        "store": stores(),
    }
