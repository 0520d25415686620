"""The client's address, decided in one place for every caller: the portal's views and staff
lockout, allauth's rate limits (through the account adapter), the audit log, and the gateway's
address allow-list in both the Django view and the ingest service.

X-Forwarded-For is believed only from a peer whose own address is one of our proxies
(`TRUSTED_PROXIES`), and only as far back as the chain keeps passing through our proxies: the
first address from the right that is not one of them is the client. A peer that is not a proxy
is the client, whatever it claims. (Counting proxies instead would believe any direct peer.)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@lru_cache(maxsize=16)
def networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """Parsed networks ("10.0.0.0/8", "::1", a bare address is its own /32 or /128)."""
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


def parse_address(text: str | None) -> Address | None:
    try:
        return ipaddress.ip_address((text or "").strip())
    except ValueError:
        return None


def address_in(address: str | None, allowed: Iterable[str]) -> bool:
    """Whether `address` is a valid IP address inside one of the `allowed` networks."""
    ip = parse_address(address)
    return ip is not None and any(ip in net for net in networks(tuple(allowed)))


def client_address_from_meta(meta: Mapping[str, Any]) -> str | None:
    """The client's address from a WSGI environ (Django's `request.META` is one)."""
    trusted = networks(tuple(settings.TRUSTED_PROXIES))
    peer = parse_address(meta.get("REMOTE_ADDR"))
    if peer is None:
        return None
    forwarded = [part for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    hop = peer
    while any(hop in net for net in trusted) and forwarded:
        previous = parse_address(forwarded.pop())
        if previous is None:
            break  # a proxy passed on something that is no address: stop at that proxy
        hop = previous
    return str(hop)


def client_address(request: HttpRequest) -> str | None:
    return client_address_from_meta(request.META)
