"""Each app keeps the defaults of its settings in its own `conf.py`, as module constants, and
reads them through `setting(name)` made here: the project's setting wins over the default."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings


def defaults_reader(defaults: Mapping[str, Any], *, prefix: str = "") -> Callable[[str], Any]:
    """`setting(name)`: the project's setting `prefix + name`, else `defaults[name]` (pass the
    conf module's `globals()`)."""

    def setting(name: str) -> Any:
        return getattr(settings, prefix + name, defaults[name])

    return setting
