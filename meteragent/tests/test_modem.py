"""The real modem driver against the fake modem, byte for byte through a pseudo-terminal."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
import serial

from meteragent.modem import (
    CmeError,
    CmsError,
    GsmModem,
    ModemError,
    ModemTimeout,
    NotRegisteredError,
    SimError,
)
from meteragent.modem.fake import FakeModem
from meteragent.protocol import pdu as sms

SERVER = "+447700900123"


@pytest.fixture
def fake():
    with FakeModem() as f:
        yield f


def connect(fake: FakeModem, **kwargs) -> GsmModem:
    kwargs.setdefault("command_timeout", 1.0)
    kwargs.setdefault("send_timeout", 1.0)
    return GsmModem(serial.Serial(fake.path, timeout=0), **kwargs)


@pytest.fixture
def modem(fake):
    m = connect(fake)
    m.initialise()
    yield m
    m.close()


def test_initialise_dialogue(fake, modem):
    assert fake.commands[:5] == ["ATE0", "AT+CMEE=1", "AT+CPIN?", "AT+CMGF=0", "AT+CNMI=2,1,0,2,0"]
    assert fake.echo is False and fake.cmee == 1 and fake.cmgf == 0


def test_status_queries(fake, modem):
    assert modem.registration().registered
    fake.registration = 5
    assert modem.registration().registered  # roaming counts
    fake.registration = 2
    assert not modem.registration().registered
    fake.csq = (31, 0)
    q = modem.signal_quality()
    assert (q.rssi, q.ber, q.dbm) == (31, 0, -51)


def test_send_goes_through_cmgs_and_is_decoded_by_the_fake(fake, modem):
    frame = bytes(range(140))
    mr = modem.send(sms.encode_submit(SERVER, frame))
    assert mr == 0
    # 14 header octets (first, MR, DA 1+1+6, PID, DCS, VP, UDL) + 140 data
    assert fake.commands[-1] == "AT+CMGS=154"
    sent = fake.sent[-1]
    assert sent.submit.destination.number == SERVER
    assert sent.submit.data == frame and sent.submit.concat is None
    assert modem.send(sms.encode_submit(SERVER, b"x")) == 1


def test_send_payload_concatenates_long_payloads(fake, modem):
    payload = bytes(range(256)) * 2
    refs = modem.send_payload(SERVER, payload, ref=77)
    assert len(refs) == 4
    r = sms.Reassembler()
    out = [r.add(SERVER, m.submit.concat, m.submit.data, now=0) for m in fake.sent]
    assert out[-1] == payload
    assert {m.submit.concat.ref for m in fake.sent} == {77}


def test_on_submit_callback_sees_the_tpdu():
    seen: list[bytes] = []
    with FakeModem(on_submit=seen.append) as f:
        m = connect(f)
        m.initialise()
        sub = sms.encode_submit(SERVER, b"abc")
        m.send(sub)
        m.close()
    assert seen == [sub.tpdu]


def test_incoming_sms_raises_cmti_and_can_be_read_and_deleted(fake, modem):
    ts = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    index = fake.inject_sms(SERVER, b"\x01\x02ack", timestamp=ts)
    urc = modem.wait_for_urc(timeout=2)
    assert urc is not None and urc.name == "+CMTI"
    assert urc.args == ["SM", str(index)]
    msg = modem.read_message(int(urc.args[1]))
    d = msg.deliver()
    assert (d.originator.number, d.data, d.timestamp) == (SERVER, b"\x01\x02ack", ts)
    assert msg.stat == 0  # it was unread
    assert modem.read_message(index).stat == 1
    modem.delete_message(index)
    assert fake.inbox == {}
    with pytest.raises(CmsError) as err:
        modem.read_message(index)
    assert err.value.code == 321


def test_list_messages(fake, modem):
    fake.inject_sms(SERVER, b"one", urc="none")
    fake.inject_sms("+15550001", b"two", urc="none")
    # A 7-bit message is listed too; the agent sees its DCS and ignores it.
    fake.deliver("07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07")
    msgs = modem.list_messages()
    assert [m.index for m in msgs] == [1, 2, 3]
    decoded = [m.deliver() for m in msgs]
    assert [d.data for d in decoded[:2]] == [b"one", b"two"]
    assert not decoded[2].is_8bit and decoded[2].text == "How are you?"
    assert modem.list_messages(stat=0) == []  # listing marked them read


def test_urc_interleaved_with_a_command_response_is_queued(fake, modem):
    fake.inject_sms(SERVER, b"hi", urc="with_next_response")
    q = modem.signal_quality()  # +CMTI arrives before +CSQ
    assert q.rssi == 20
    urc = modem.wait_for_urc(timeout=0)
    assert urc is not None and urc.name == "+CMTI"


def test_noise_and_stray_lines_while_idle_are_ignored(fake, modem):
    fake.send_raw(b"\r\nOK\r\n\r\n+CSQ: 1,1\r\n")
    fake.inject_sms(SERVER, b"x")
    urc = modem.wait_for_urc(timeout=2)
    assert urc is not None and urc.name == "+CMTI"


def test_wait_for_urc_times_out_quietly(modem):
    assert modem.wait_for_urc(timeout=0.05) is None


# ------------------------------------------------------------------ failures


def test_no_sim():
    with FakeModem() as f:
        f.sim_present = False
        m = connect(f)
        with pytest.raises(SimError, match="no SIM"):
            m.initialise()
        m.close()


def test_pin_unlock_and_wrong_pin():
    with FakeModem(pin_state="SIM PIN", pin="4321") as f:
        m = connect(f)
        with pytest.raises(SimError, match="SIM PIN"):
            m.initialise()  # no PIN given
        with pytest.raises(CmeError) as err:
            m.unlock_sim("1111")
        assert err.value.code == 16
        assert f.commands.count('AT+CPIN="1111"') == 1  # never retried
        m.initialise(pin="4321")
        assert f.pin_state == "READY"
        m.close()


def test_not_registered_send_fails_with_cms_331(fake, modem):
    fake.registration = 3
    with pytest.raises(NotRegisteredError):
        modem.wait_registered(timeout=0.05, interval=0.01)
    with pytest.raises(CmsError) as err:
        modem.send(sms.encode_submit(SERVER, b"x"))
    assert err.value.code == 331


def test_cms_error_on_send_carries_the_code(fake, modem):
    fake.cms_error_on_send = 500
    with pytest.raises(CmsError) as err:
        modem.send(sms.encode_submit(SERVER, b"x"))
    assert err.value.code == 500
    fake.cms_error_on_send = None
    assert modem.send(sms.encode_submit(SERVER, b"x")) == 0  # the channel is still in step


def test_dropped_send_times_out(fake, modem):
    fake.drop_send = True
    with pytest.raises(ModemTimeout):
        modem.send(sms.encode_submit(SERVER, b"x"))
    assert fake.sent == []


def test_mute_modem_times_out_after_retries(fake):
    m = connect(fake, command_timeout=0.1, retries=2)
    fake.mute = True
    with pytest.raises(ModemTimeout):
        m.signal_quality()
    # Three attempts: the command, then a probe before each retry, which is not answered either.
    assert fake.commands == ["AT+CSQ", "AT", "AT"]
    fake.mute = False
    assert m.signal_quality().rssi == 20  # recovers afterwards
    m.close()


def test_timeout_then_retry_succeeds(fake):
    m = connect(fake, command_timeout=0.2, retries=1)
    fake.fail_next["AT+CSQ"] = ""  # the first attempt gets no answer
    assert m.signal_quality().rssi == 20
    assert fake.commands.count("AT+CSQ") == 2
    m.close()


def test_error_result_is_not_retried(fake):
    m = connect(fake, command_timeout=0.2, retries=1)
    fake.fail_next["AT+CSQ"] = "+CME ERROR: 100"
    with pytest.raises(CmeError) as err:
        m.signal_quality()  # an error result is final, not retried
    assert err.value.code == 100
    assert fake.commands.count("AT+CSQ") == 1
    m.close()


def test_prompt_timeout_cancels_with_escape(fake, modem):
    fake.mute = True
    with pytest.raises(ModemTimeout, match="prompt"):
        modem.send(sms.encode_submit(SERVER, b"x"))
    fake.mute = False
    assert modem.signal_quality().rssi == 20


def test_plain_error_without_cmee(fake):
    m = connect(fake)
    with pytest.raises(ModemError, match="ERROR"):
        m.command("AT+BOGUS")
    m.close()


def test_invalid_pdu_is_rejected_by_the_fake(fake, modem):
    with pytest.raises(CmsError) as err:
        modem.at.send_pdu(5, "00FFFF", prompt_timeout=1, timeout=1)
    assert err.value.code == 304


# ------------------------------------------------------------------ noise and late answers


def test_an_overlong_line_is_discarded_with_a_logged_reason(fake, modem, caplog):
    fake.send_raw(b"\r\n" + b"\x7fNOISE" * 2000 + b"\r\n")  # 12 000 bytes without a newline
    fake.inject_sms(SERVER, b"x")
    urc = modem.wait_for_urc(timeout=2)
    assert urc is not None and urc.name == "+CMTI"
    assert modem.at.discarded_lines == 1
    assert "discarded a line of more than 4096 bytes" in caplog.text
    assert modem.registration().registered  # the dialogue goes on


def test_a_late_answer_does_not_leave_the_dialogue_one_command_behind(fake):
    m = connect(fake, command_timeout=0.5, retries=1)
    m.initialise()
    fake.csq = (7, 0)
    fake.late_next["AT+CSQ"] = 0.8  # the first try is answered 0.3 s after its timeout
    assert m.signal_quality().rssi == 7
    time.sleep(0.5)  # whatever was still coming has come
    fake.csq = (9, 0)
    assert m.signal_quality().rssi == 9  # its own answer, not one left over
    assert m.registration().registered  # a different command gets its own answer
    assert fake.commands.count("AT") == 1  # one probe resynchronised the dialogue
    m.close()


def test_a_command_that_never_answers_is_given_up_and_the_next_one_works(fake):
    m = connect(fake, command_timeout=0.3, retries=0)
    m.initialise()
    fake.fail_next["AT+CSQ"] = ""  # swallowed: no answer ever
    with pytest.raises(ModemTimeout):
        m.signal_quality()
    assert m.registration().registered
    m.close()
