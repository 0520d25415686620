"""The request an audit record is written under, so deep code need not pass it along."""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpRequest


@dataclass(frozen=True)
class AuditContext:
    source_ip: str | None = None


_current: contextvars.ContextVar[AuditContext | None] = contextvars.ContextVar(
    "audit_context", default=None
)


def client_ip(request: HttpRequest) -> str | None:
    """The client's address, trusting X-Forwarded-For only from our own proxies."""
    return client_ip_from_meta(request.META)


def client_ip_from_meta(meta: Mapping[str, Any]) -> str | None:
    """`client_ip` from a request's META, or from the WSGI environ it is made of."""
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies > 0:
        forwarded = [
            part.strip() for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()
        ]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return meta.get("REMOTE_ADDR") or None


def current() -> AuditContext:
    return _current.get() or AuditContext()


def activate(context: AuditContext) -> contextvars.Token:
    return _current.set(context)


def reset(token: contextvars.Token) -> None:
    _current.reset(token)
