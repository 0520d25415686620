"""Lockout against password guessing at the staff login (S10): failures are counted per
account and per client address in the shared cache; past the limit, sign-in is refused for a
while without even checking the password."""

from __future__ import annotations

import hashlib

from django.core.cache import cache

from accounts.conf import setting


def _keys(email: str, address: str | None) -> list[str]:
    digest = hashlib.sha256(email.encode()).hexdigest()[:32]
    keys = [f"staff-login-fail:account:{digest}"]
    if address:
        keys.append(f"staff-login-fail:ip:{address}")
    return keys


def staff_login_locked(email: str, address: str | None) -> bool:
    limit_account, limit_ip, _ = setting("STAFF_LOGIN_LOCKOUT")
    keys = _keys(email, address)
    counts = cache.get_many(keys)
    account = counts.get(keys[0], 0)
    ip = counts.get(keys[1], 0) if len(keys) > 1 else 0
    return account >= limit_account or ip >= limit_ip


def note_staff_login_failure(email: str, address: str | None) -> None:
    _, _, window = setting("STAFF_LOGIN_LOCKOUT")
    for key in _keys(email, address):
        if cache.add(key, 1, timeout=window):
            continue
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=window)
