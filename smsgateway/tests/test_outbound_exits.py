"""A message out of retries waits for staff (it shows on the operations home), who send it again
from the admin, audited and capped."""

import pytest
from django.utils import timezone

from accounts.roles import PROVISIONING, SUPPORT
from audit.caps import CapExceeded
from audit.models import AuditEvent
from smsgateway.models import OutboundMessage, OutboundStatus
from smsgateway.outbox import sending

from .test_outbox import kannel_sendsms, queued  # noqa: F401  (fixtures)

OUTBOX = "/admin/smsgateway/outboundmessage/"


def _failed(queued, kannel, n: int = 1) -> list[OutboundMessage]:  # noqa: F811
    kannel.status = 403  # the gateway refuses: failed at once, no retries left
    _, messages = queued(n)
    for message in messages:
        sending.send(message.pk, now=timezone.now())  # unless the queued task already tried
        message.refresh_from_db()
        assert message.status == OutboundStatus.FAILED
    kannel.status = 202
    return messages


def _staff(make_staff, verified_client, role: str):
    user, device = make_staff(f"{role.replace(' ', '')}@utility.example", roles=[role])
    return verified_client(user, device)


def _send_again(client, messages):
    return client.post(
        OUTBOX, {"action": "send_again", "_selected_action": [m.pk for m in messages]}, follow=True
    )


@pytest.mark.django_db(transaction=True)
def test_staff_send_a_failed_message_again_and_it_goes_out(
    queued,  # noqa: F811
    kannel_sendsms,  # noqa: F811
    make_staff,
    verified_client,
):
    [message] = _failed(queued, kannel_sendsms)
    client = _staff(make_staff, verified_client, PROVISIONING)
    page = _send_again(client, [message]).content.decode()
    assert "1 messages queued to send again." in page

    message.refresh_from_db()
    assert message.status == OutboundStatus.SENT and message.attempts == 1
    assert len(kannel_sendsms.requests) == 2  # refused once, sent once
    event = AuditEvent.objects.get(action="sms.sent_again")
    assert event.actor_label == "provisioning@utility.example"
    assert event.target.startswith(f"outbound:{message.pk}")


@pytest.mark.django_db
def test_only_failed_messages_are_sent_again_and_the_request_is_refused_whole(
    queued,  # noqa: F811
    kannel_sendsms,  # noqa: F811
    make_staff,
    verified_client,
):
    [failed] = _failed(queued, kannel_sendsms)
    _, [pending] = queued()
    client = _staff(make_staff, verified_client, PROVISIONING)
    assert (
        "only failed messages are sent again"
        in _send_again(client, [failed, pending]).content.decode()
    )
    failed.refresh_from_db()
    assert failed.status == OutboundStatus.FAILED
    assert not AuditEvent.objects.filter(action="sms.sent_again").exists()


@pytest.mark.django_db
def test_sending_again_beyond_the_cap_is_refused_and_alerted(
    queued,  # noqa: F811
    kannel_sendsms,  # noqa: F811
    settings,
):
    messages = _failed(queued, kannel_sendsms, n=3)
    settings.ANOMALY_CAPS = {**settings.ANOMALY_CAPS, "sms.sent_again": (2, 3600)}
    with pytest.raises(CapExceeded):
        sending.send_again(messages, by="test", now=timezone.now())
    assert set(OutboundMessage.objects.values_list("status", flat=True)) == {"failed"}
    assert AuditEvent.objects.get(action="cap.exceeded").outcome == "alert"


@pytest.mark.django_db
def test_support_is_not_offered_sending_again(make_staff, verified_client, client):
    _staff(make_staff, verified_client, SUPPORT)
    assert client.get(OUTBOX).status_code == 403
