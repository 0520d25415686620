"""Parts of a concatenated SMS the gateway did not combine are reassembled, within limits."""

from urllib.parse import quote_from_bytes

import pytest

from readings.models import Reading
from smsgateway.models import InboundMessage

from .conftest import hours_back, outcome


def udh(ref: int, total: int, seq: int) -> bytes:
    return bytes([5, 0x00, 3, ref, total, seq])


@pytest.mark.django_db
def test_parts_in_any_order_make_one_message(test_meter, post_sms):
    meter = test_meter()
    frame = meter.report(hours_back(10))
    parts = [frame[:70], frame[70:]]
    assert outcome(post_sms(meter.msisdn, parts[1], udh=udh(9, 2, 2))) == "part"
    response = post_sms(meter.msisdn, parts[0], udh=udh(9, 2, 1))
    assert outcome(response) == "accepted"
    statuses = sorted(InboundMessage.objects.values_list("status", flat=True))
    assert statuses == ["accepted", "accepted"]


@pytest.mark.django_db
def test_too_many_parts_are_refused(test_meter, post_sms):
    meter = test_meter()
    response = post_sms(meter.msisdn, b"x" * 10, udh=udh(1, 40, 1))
    assert outcome(response) == "rejected too_many_parts"


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


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parts_processed_at_the_same_time_by_two_drains_still_make_one_message(test_meter):
    """The first drain's transaction stays open after it has looked for its siblings; the
    second drain, processing the other part meanwhile, must still end up with both."""
    import threading
    import time

    from django.db import connection, transaction
    from django.utils import timezone

    from smsgateway.adapters import InboundSms
    from smsgateway.ingest import process
    from smsgateway.rawstore import store_raw

    meter = test_meter()
    frame = meter.report(hours_back(10))
    ids = [
        store_raw(
            InboundSms("kannel", f"c-{seq}", meter.msisdn, "", part, udh(7, 2, seq), 1, "t", None),
            now=timezone.now(),
        )
        for seq, part in ((1, frame[:70]), (2, frame[70:]))
    ]
    first_looked = threading.Event()

    def first_drain() -> None:
        try:
            with transaction.atomic():
                process(InboundMessage.objects.get(pk=ids[0]), now=timezone.now())
                first_looked.set()
                time.sleep(0.5)  # still uncommitted while the second drain works
        finally:
            connection.close()

    worker = threading.Thread(target=first_drain)
    worker.start()
    assert first_looked.wait(timeout=10)
    with transaction.atomic():
        process(InboundMessage.objects.get(pk=ids[1]), now=timezone.now())
    worker.join(timeout=10)
    assert not worker.is_alive()
    statuses = sorted(InboundMessage.objects.values_list("status", flat=True))
    assert statuses == ["accepted", "accepted"]
    assert Reading.objects.filter(meter=meter.meter).count() == 10
