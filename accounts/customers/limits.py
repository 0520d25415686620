"""Rate-limit counters for customer actions keyed by what the visitor typed (a meter number, an
e-mail address) rather than who they are, so guessing across addresses is limited too.

Counters live in the shared cache (Redis in production). The key is a keyed hash of the value, so
the cache never holds e-mail addresses or meter numbers in clear. A limit hit looks the same
whether or not the meter or address exists: it is counted on the text submitted.
"""

from __future__ import annotations

from django.core.cache import cache
from django.utils.crypto import salted_hmac

from accounts.conf import setting


def key_for(name: str, value: str) -> str:
    """A cache key for `value` that does not hold it in clear."""
    return _key(name, value.strip().lower())


def _key(name: str, value: str) -> str:
    digest = salted_hmac("accounts.customer_limits", f"{name}:{value}").hexdigest()[:32]
    return f"customer-limit:{name}:{digest}"


def hit(name: str, value: str) -> bool:
    """Count one attempt; True if it is over the limit in `settings.CUSTOMER_LIMITS[name]`."""
    limit, window = setting("CUSTOMER_LIMITS")[name]
    key = _key(name, value.strip().lower())
    cache.add(key, 0, timeout=window)  # starts the window; no-op if it is already running
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window)
        count = 1
    return count > limit


def count(name: str, value: str) -> int:
    return int(cache.get(_key(name, value.strip().lower()), 0))


def reached(name: str, value: str) -> bool:
    """True if the limit is already used up (without counting an attempt)."""
    limit, _ = setting("CUSTOMER_LIMITS")[name]
    return count(name, value) >= limit
