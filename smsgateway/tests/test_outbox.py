"""The outbox: sending through each backend, retries with backoff, caps, delivery reports."""

import http.server
import stat
import threading
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from smsgateway.acks import queue_ack
from smsgateway.models import DeliveryReport, OutboundMessage, OutboundStatus
from smsgateway.outbox import sending
from smsgateway.tasks import send_due


@pytest.fixture
def queued(test_meter):
    def make(n: int = 1):
        meter = test_meter()
        now = timezone.now()
        return meter, [queue_ack(meter.meter, answers_counter=i + 1, now=now) for i in range(n)]

    return make


@pytest.mark.django_db
def test_a_meter_gets_no_more_than_its_daily_cap(queued, settings):
    settings.SMS_OUTBOUND_DAILY_CAP = 3
    _, messages = queued(5)
    assert [m.status for m in messages] == ["pending"] * 3 + ["capped"] * 2
    alerts = AuditEvent.objects.filter(action="cap.exceeded")
    assert alerts.count() == 2 and alerts.first().outcome == "alert"


@pytest.mark.django_db
def test_downlink_counters_never_repeat(queued):
    meter, messages = queued(4)
    assert [m.counter for m in messages] == [1, 2, 3, 4]
    assert len({bytes(m.payload) for m in messages}) == 4
    assert [meter.open_downlink(bytes(m.payload)).answers_counter for m in messages] == [1, 2, 3, 4]


class _Kannel(http.server.BaseHTTPRequestHandler):
    """A stand-in for Kannel's sendsms endpoint: records requests, answers as Kannel does."""

    requests: list[str] = []
    status = 202

    def do_GET(self):
        type(self).requests.append(self.path)
        body = b"0: Accepted for delivery" if self.status == 202 else b"Authorization failed"
        self.send_response(self.status)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def kannel_sendsms(settings):
    server = http.server.HTTPServer(("127.0.0.1", 0), _Kannel)
    _Kannel.requests, _Kannel.status = [], 202
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.SMS_BACKEND = "smsgateway.backends.KannelBackend"
    settings.KANNEL_SENDSMS_URL = f"http://127.0.0.1:{server.server_port}/cgi-bin/sendsms"
    settings.KANNEL_SENDSMS_PASSWORD = "pw"
    settings.KANNEL_DLR_URL = "https://portal.example/sms/kannel/dlr?secret=s&id={id}"
    yield _Kannel
    server.shutdown()


@pytest.mark.django_db
def test_kannel_backend_sends_the_frame_as_binary_with_a_delivery_report(queued, kannel_sendsms):
    meter, [message] = queued()
    assert sending.send(message.pk, now=timezone.now()) == OutboundStatus.SENT
    [path] = kannel_sendsms.requests
    query = parse_qs(urlparse(path).query, encoding="latin-1")
    assert query["coding"] == ["1"] and query["to"] == [meter.msisdn]
    assert query["text"][0].encode("latin-1") == bytes(message.payload)
    assert query["dlr-url"] == [
        f"https://portal.example/sms/kannel/dlr?secret=s&id={message.pk}&status=%d"
    ]
    message.refresh_from_db()
    assert message.gateway_ref.startswith("0: Accepted")


@pytest.mark.django_db
def test_a_refused_request_is_not_retried(queued, kannel_sendsms):
    _, [message] = queued()
    kannel_sendsms.status = 403
    assert sending.send(message.pk, now=timezone.now()) == OutboundStatus.FAILED
    assert AuditEvent.objects.filter(action="sms.send_failed").exists()


@pytest.mark.django_db
def test_an_unreachable_gateway_is_retried_with_backoff_then_failed(queued, settings):
    settings.SMS_BACKEND = "smsgateway.backends.KannelBackend"
    settings.KANNEL_SENDSMS_URL = "http://127.0.0.1:1/cgi-bin/sendsms"  # nothing listens
    settings.SMS_MAX_ATTEMPTS = 3
    _, [message] = queued()
    now = timezone.now()
    assert sending.send(message.pk, now=now) == OutboundStatus.PENDING
    message.refresh_from_db()
    assert message.next_attempt_at == now + timedelta(seconds=30)
    assert sending.send(message.pk, now=now) == "not due"  # not before its time
    later = now + timedelta(seconds=31)
    assert sending.send(message.pk, now=later) == OutboundStatus.PENDING
    message.refresh_from_db()
    assert message.next_attempt_at == later + timedelta(seconds=60)
    assert sending.send(message.pk, now=later + timedelta(hours=1)) == OutboundStatus.FAILED


@pytest.mark.django_db
def test_the_sweeper_sends_what_is_due(queued, settings, tmp_path):
    settings.SMS_BACKEND = "smsgateway.backends.FileBackend"
    settings.SMS_FILE_BACKEND_PATH = str(tmp_path / "out.jsonl")
    queued(2)
    assert send_due() == 2
    assert set(OutboundMessage.objects.values_list("status", flat=True)) == {"sent"}


@pytest.mark.django_db
def test_the_send_command_backend_runs_the_operators_tool(queued, settings, tmp_path):
    log = tmp_path / "sent.txt"
    tool = tmp_path / "send"
    tool.write_text(f'#!/bin/sh\necho "$1 $2" >> {log}\necho ref-42\n')
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    settings.SMS_BACKEND = "smsgateway.backends.SendCommandBackend"
    settings.SMS_SEND_COMMAND = str(tool)
    meter, [message] = queued()
    assert sending.send(message.pk, now=timezone.now()) == OutboundStatus.SENT
    assert log.read_text().split() == [meter.msisdn, bytes(message.payload).hex()]
    message.refresh_from_db()
    assert message.gateway_ref == "ref-42"


@pytest.mark.django_db
def test_delivery_reports_are_recorded(client, queued, settings, tmp_path):
    settings.SMS_BACKEND = "smsgateway.backends.FileBackend"
    settings.SMS_FILE_BACKEND_PATH = str(tmp_path / "out.jsonl")
    _, [message] = queued()
    sending.send(message.pk, now=timezone.now())
    secret = settings.SMS_GATEWAY_SECRET
    assert (
        client.get(f"/sms/kannel/dlr?secret={secret}&id={message.pk}&status=8").status_code == 200
    )
    assert (
        client.get(f"/sms/kannel/dlr?secret={secret}&id={message.pk}&status=1").status_code == 200
    )
    message.refresh_from_db()
    assert message.status == OutboundStatus.DELIVERED
    assert list(DeliveryReport.objects.values_list("status_code", flat=True)) == [8, 1]
    assert client.get(f"/sms/kannel/dlr?secret=nope&id={message.pk}&status=2").status_code == 403


@pytest.mark.django_db
def test_a_display_code_reaches_the_meter_outside_the_report_cycle(test_meter, post_sms):
    from smsgateway.acks import queue_display_code

    from .conftest import hours_back

    meter = test_meter()
    post_sms(meter.msisdn, meter.report(hours_back(2)))
    meter.meter.refresh_from_db()
    outbound = queue_display_code(meter.meter, "048213", now=timezone.now())
    ack = meter.open_downlink(bytes(outbound.payload))
    assert ack.display_code.code == "048213"
    assert ack.answers_counter == meter.counter
    assert ack.acked_through_hour == hours_back(1)[0][0]
