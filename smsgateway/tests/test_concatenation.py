"""Parts of a concatenated SMS the gateway did not combine are reassembled, within limits."""

from urllib.parse import quote_from_bytes

import pytest

from smsgateway.models import InboundMessage

from .conftest import hours_back


def udh(ref: int, total: int, seq: int) -> bytes:
    return bytes([5, 0x00, 3, ref, total, seq])


@pytest.mark.django_db
def test_parts_in_any_order_make_one_message(test_meter, post_sms):
    meter = test_meter()
    frame = meter.report(hours_back(10))
    parts = [frame[:70], frame[70:]]
    assert post_sms(meter.msisdn, parts[1], udh=udh(9, 2, 2)).text == "part"
    response = post_sms(meter.msisdn, parts[0], udh=udh(9, 2, 1))
    assert response.text == "accepted"
    statuses = sorted(InboundMessage.objects.values_list("status", flat=True))
    assert statuses == ["accepted", "accepted"]


@pytest.mark.django_db
def test_too_many_parts_are_refused(test_meter, post_sms):
    meter = test_meter()
    response = post_sms(meter.msisdn, b"x" * 10, udh=udh(1, 40, 1))
    assert response.text == "rejected too_many_parts"


def test_udh_travels_as_raw_bytes_in_the_query():
    assert quote_from_bytes(udh(255, 2, 1)) == "%05%00%03%FF%02%01"


@pytest.mark.django_db
def test_a_part_whose_siblings_never_come_is_rejected_as_incomplete(test_meter, post_sms):
    from datetime import timedelta

    from django.utils import timezone

    from smsgateway.ingest import expire_parts

    meter = test_meter()
    post_sms(meter.msisdn, b"half", udh=udh(3, 2, 1))
    assert expire_parts(now=timezone.now()) == 0
    assert expire_parts(now=timezone.now() + timedelta(hours=2)) == 1
    part = InboundMessage.objects.get()
    assert (part.status, part.reason) == ("rejected", "incomplete")
