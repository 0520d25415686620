"""The portal's and API's usage figures per meter in the shared cache (Redis).

An entry is a pure function of its key: the meter, the period of it the viewer may see (two
occupants of one meter share an entry only when they see the same period), the question asked
(resolution and window, or the hour of the comparisons) and the meter's data generation. Storing
readings for a meter ends its generation once the transaction commits (`forget_meters`), so the
next read computes afresh from what was committed: a reader takes the generation before it reads
the database, and an entry written under a generation that has since ended is never returned.
Any cache failure is logged and the figures computed, never shown stale or refused.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

from django.core.cache import cache
from django.db import transaction
from redis.exceptions import RedisError

from .conf import setting

if TYPE_CHECKING:
    from .selectors import Access

logger = logging.getLogger(__name__)
T = TypeVar("T")

# The cached values' layout: change it and every old entry is ignored.
FORMAT = 1
_ERRORS = (RedisError, OSError)


def _generation_key(meter_id: int) -> str:
    return f"readings:gen:{meter_id}"


def _entry_key(access: Access, question: tuple) -> str:
    parts = (
        FORMAT,
        access.meter.pk,
        access.start.isoformat(),
        access.end.isoformat() if access.end else "",
        *(p.isoformat() if hasattr(p, "isoformat") else str(p) for p in question),
    )
    digest = hashlib.sha256(repr(parts).encode()).hexdigest()[:32]
    return f"readings:usage:{access.meter.pk}:{digest}"


def _current_generation(key: str, found: str | None) -> str | None:
    if found is not None:
        return found
    cache.add(key, secrets.token_hex(8), timeout=None)
    return cache.get(key)  # None only if a writer ended it in between


def cached(access: Access, question: tuple, compute: Callable[[], T]) -> T:
    """`compute()`'s value for this viewer's period of the meter and `question` (a tuple of
    strings, numbers and datetimes), from the cache when the meter's data has not changed."""
    timeout = setting("READINGS_USAGE_CACHE_SECONDS")
    if not timeout:
        return compute()
    generation_key, entry_key = _generation_key(access.meter.pk), _entry_key(access, question)
    try:
        found = cache.get_many([generation_key, entry_key])
        generation = _current_generation(generation_key, found.get(generation_key))
    except _ERRORS:
        logger.warning("usage cache unavailable; computing", exc_info=True)
        return compute()
    entry = found.get(entry_key)
    if generation is not None and entry is not None and entry[0] == generation:
        return entry[1]
    value = compute()  # after taking the generation: see the module's docstring
    if generation is None:
        return value
    try:
        cache.set(entry_key, (generation, value), timeout=timeout)
    except _ERRORS:
        logger.warning("usage cache unavailable; not stored", exc_info=True)
    return value


def forget_meters(meter_ids: Iterable[int]) -> None:
    """End the meters' generations: their cached figures are not used again."""
    keys = [_generation_key(meter_id) for meter_id in set(meter_ids)]
    if not keys:
        return
    try:
        cache.delete_many(keys)
    except _ERRORS:
        # The entries' timeout bounds how long the portal may show the figures before these.
        logger.error("usage cache: could not forget %d meters", len(keys), exc_info=True)


def forget_meters_on_commit(meter_ids: Iterable[int]) -> None:
    """`forget_meters` once the current transaction commits (at once outside one)."""
    ids = set(meter_ids)
    if ids:
        transaction.on_commit(lambda: forget_meters(ids), robust=True)
