"""Transports: Kannel-style webhook URLs, the HTTP transport's queue, the modem transport's
filtering of incoming SMS."""

from __future__ import annotations

import itertools
import threading
import urllib.parse

import pytest
import serial

from meteragent.clock import FakeClock, SystemClock
from meteragent.modem import GsmModem
from meteragent.modem.fake import FakeModem
from meteragent.transport import HttpGatewayTransport, ModemTransport, TransportError

UTILITY = "+447700900123"


def test_webhook_url_is_kannel_post_url_with_percent_encoding() -> None:
    t = HttpGatewayTransport("http://portal/sms/in/", "a b&c=/d", "+447700900201", SystemClock())
    url = t.url_for(UTILITY)
    query = urllib.parse.urlsplit(url).query
    assert "secret=a%20b%26c%3D%2Fd" in query and "from=%2B447700900201" in query
    parsed = urllib.parse.parse_qs(query)
    assert parsed["secret"] == ["a b&c=/d"] and parsed["to"] == [UTILITY]
    assert parsed["coding"] == ["1"] and parsed["smsc"] == ["demo"] and len(parsed["id"][0]) == 36
    with pytest.raises(ValueError):
        HttpGatewayTransport("file:///etc/passwd", "s", "+1", SystemClock())


def test_http_send_failure_is_a_transport_error() -> None:
    t = HttpGatewayTransport("http://127.0.0.1:9/", "s", "+447700900201", SystemClock(), timeout=2)
    with pytest.raises(TransportError):
        t.send(UTILITY, bytes(140))


def test_http_wait_returns_deliveries_interrupts_and_deadlines() -> None:
    clock = FakeClock(1_767_225_600, settle=0.01)
    t = HttpGatewayTransport("http://x/", "s", "+1", clock)
    start = clock.monotonic()
    assert t.wait(start + 3600) is None
    assert clock.monotonic() == start + 3600  # virtual time jumped to the deadline
    t.deliver(UTILITY, b"frame")
    assert t.wait(clock.monotonic() + 10) == (UTILITY, b"frame")
    threading.Timer(0.05, t.interrupt).start()
    real = SystemClock()
    assert HttpGatewayTransport("http://x/", "s", "+1", real).wait(real.monotonic() + 0.01) is None
    t.interrupt()
    assert t.wait(clock.monotonic() + 10**6) is None


@pytest.fixture
def modem_transport():
    clock = FakeClock(1_767_225_600, settle=0.5)
    with FakeModem() as fake:
        modem = GsmModem(serial.Serial(fake.path, timeout=0), command_timeout=2, send_timeout=2)
        fake.inject_sms(UTILITY, b"waiting since before start", urc="none")
        t = ModemTransport(modem, UTILITY, clock)
        t.open()
        yield fake, t, clock
        t.close()


def test_modem_transport_passes_only_8bit_sms_from_the_utility(modem_transport) -> None:
    fake, t, clock = modem_transport
    # Stored before start: collected by open() and deleted from the SIM.
    assert t.wait(clock.monotonic() + 60) == (UTILITY, b"waiting since before start")
    fake.inject_sms("+447700900999", b"stranger")
    fake.deliver(b"\x00\x04\x02\x81\x10")  # truncated SMS-DELIVER
    fake.inject_sms(UTILITY, b"genuine")
    assert t.wait(clock.monotonic() + 60) == (UTILITY, b"genuine")
    assert t.rejected == 2
    assert fake.inbox == {}  # everything read was deleted


def test_modem_transport_sends_an_8bit_submit(modem_transport) -> None:
    fake, t, _clock = modem_transport
    t.send(UTILITY, bytes(range(140)))
    sent = fake.sent[-1].submit
    assert sent.destination.number == UTILITY and sent.data == bytes(range(140))
    assert sent.dcs == 0x04 and sent.concat is None


def test_modem_transport_wait_is_interruptible(modem_transport) -> None:
    _fake, t, clock = modem_transport
    assert t.wait(clock.monotonic() + 60) is not None  # the message from before start
    t.interrupt()
    before = clock.monotonic()
    assert t.wait(before + 3600) is None
    assert clock.monotonic() == before  # returned at once, time did not jump


def _alphanumeric_deliver(text: str, payload: bytes) -> bytes:
    """An 8-bit SMS-DELIVER whose sender is the alphanumeric ID ``text`` (TOA D0), as any
    bulk-SMS provider lets a customer set - ``text`` may well be digits and a ``+``."""
    bits = 0
    for i, c in enumerate(text):  # GSM 7-bit: '+' and digits have their ASCII codes
        bits |= ord(c) << (7 * i)
    packed = bits.to_bytes((7 * len(text) + 7) // 8, "little")
    semi_octets = (7 * len(text) + 3) // 4
    scts = bytes.fromhex("62105021000000")
    return (
        bytes([0x00, 0x04, semi_octets, 0xD0])
        + packed
        + bytes([0x00, 0x04])
        + scts
        + bytes([len(payload)])
        + payload
    )


def test_an_alphanumeric_sender_spelling_the_utility_number_is_rejected() -> None:
    utility = "+447700900"  # short enough to be spelled by an alphanumeric sender ID
    clock = FakeClock(1_767_225_600, settle=0.05)
    with FakeModem() as fake:
        modem = GsmModem(serial.Serial(fake.path, timeout=0), command_timeout=2, send_timeout=2)
        t = ModemTransport(modem, utility, clock)
        t.open()
        fake.deliver(_alphanumeric_deliver(utility, b"forged"))
        fake.inject_sms(utility, b"genuine")
        assert t.wait(clock.monotonic() + 60) == (utility, b"genuine")
        assert t.rejected == 1
        t.close()


def test_the_sender_check_compares_the_type_of_number() -> None:
    from meteragent.protocol import pdu as sms
    from meteragent.transport import is_number

    assert is_number(sms.Address("+447700900123", sms.TOA_INTERNATIONAL), "+447700900123")
    assert not is_number(sms.Address("+447700900123", 0xD0), "+447700900123")  # alphanumeric
    assert is_number(sms.Address("80111", sms.TOA_UNKNOWN), "80111")
    assert is_number(sms.Address("80111", sms.TOA_NATIONAL), "80111")
    assert not is_number(sms.Address("80111", sms.TOA_INTERNATIONAL), "80111")
    assert not is_number(sms.Address("447700900123", sms.TOA_UNKNOWN), "+447700900123")


def test_a_serial_error_reopens_the_port_with_backoff() -> None:
    clock = FakeClock(1_767_225_600, settle=0.05)
    first = FakeModem().start()
    second = FakeModem().start()
    attempts: list[float] = []

    def reopen() -> GsmModem:
        attempts.append(clock.monotonic())
        if len(attempts) < 3:  # the device is not back yet
            raise serial.SerialException("could not open port /dev/ttyUSB2")
        return GsmModem(serial.Serial(second.path, timeout=0), command_timeout=2, send_timeout=2)

    modem = GsmModem(serial.Serial(first.path, timeout=0), command_timeout=2, send_timeout=2)
    t = ModemTransport(modem, UTILITY, clock, reopen=reopen)
    t.open()
    first.stop()  # the USB modem resets: reads fail with an I/O error
    second.inject_sms(UTILITY, b"after the reset", urc="none")
    assert t.wait(clock.monotonic() + 3600) == (UTILITY, b"after the reset")
    assert t.reopened == 1
    assert [b - a for a, b in itertools.pairwise(attempts)] == [1.0, 2.0]  # backoff doubles
    t.send(UTILITY, bytes(140))
    assert len(second.sent) == 1
    t.close()
    second.stop()
