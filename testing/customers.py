"""Test helpers for the customer flows: read the code a meter would show, follow e-mail links,
and make customers with a meter (for the tests of several apps and the browser test)."""

from __future__ import annotations

import re
from datetime import datetime

from allauth.account.models import EmailAddress
from django.core import mail
from django.core.cache import cache
from django.utils import timezone

from accounts.models import MeterOccupancy, User
from smsgateway.models import OutboundMessage
from testing.sms import hours_back

CUSTOMER_PASSWORD = "correct horse battery staple 42"  # noqa: S105 (tests only)
LINK_RE = re.compile(r"https?://\S+")


def display_code(test_meter) -> str | None:
    """Open the newest downlink frame to the meter as the meter would; its display code."""
    outbound = OutboundMessage.objects.filter(meter=test_meter.meter).order_by("-pk").first()
    if outbound is None:
        return None
    ack = test_meter.open_downlink(bytes(outbound.payload))
    return ack.display_code.code if ack.display_code else None


def links_in_mail(to: str, outbox=None) -> list[str]:
    outbox = mail.outbox if outbox is None else outbox
    return [link for m in outbox if to in m.to for link in LINK_RE.findall(m.body)]


def make_customer(email: str, meter=None, *, start: datetime | None = None) -> User:
    """A customer with a password, a verified address and (optionally) an open occupancy."""
    user = User.objects.create_user(email, CUSTOMER_PASSWORD)
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    if meter is not None:
        MeterOccupancy.objects.create(user=user, meter=meter, start=start or timezone.now())
    return user


def heard_from(test_meter, post_sms, readings=()) -> None:
    """Have the test meter send one real report through the webhook (a meter that has never
    sent anything cannot be sent a display code: the ack answers its last uplink)."""
    response = post_sms(test_meter.msisdn, test_meter.report(readings or hours_back(3)))
    assert response.status_code == 200, response.content


def clear_customer_limits() -> None:
    """Forget rate-limit counters (ours and allauth's) without flushing the whole cache, which
    other test suites may share."""
    if not hasattr(cache, "_cache") or not hasattr(cache._cache, "get_client"):
        cache.clear()  # a per-process cache (locmem)
        return
    client = cache._cache.get_client(write=True)
    for pattern in ("*customer-limit:*", "*allauth:rl:*", "*throttle_api_token*"):
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            client.delete(*keys)
