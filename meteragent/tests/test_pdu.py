"""3GPP TS 23.040 PDUs: hand-checked vectors, round trips and garbage."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meteragent.protocol import pdu
from meteragent.protocol.pdu import (
    Alphabet,
    Concat,
    PduError,
    Reassembler,
    decode_deliver,
    decode_status_report,
    decode_submit,
    encode_address,
    encode_deliver,
    encode_submit,
    encode_submit_parts,
    split_payload,
    split_smsc,
)


def pack7(text: str) -> str:
    """GSM 7-bit packing for ASCII letters (whose GSM codes equal their ASCII codes)."""
    bits = 0
    for i, c in enumerate(text):
        bits |= ord(c) << (7 * i)
    return bits.to_bytes((7 * len(text) + 7) // 8, "little").hex()


# --------------------------------------------------------------------------- SMS-SUBMIT

# The classic "hellohello" example (dreamfabric.com "SMS and the PDU format"): 7-bit,
#   00 SMSC from SIM | 11 SUBMIT+VPF relative | 00 MR | 0B 91 6407281553F8 -> +46708251358
#   00 PID | 00 DCS 7-bit | AA VP 4 days | 0A UDL 10 septets | E8329BFD4697D9EC37 packed text
HELLO_7BIT = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37"
# The same message adjusted to 8-bit: DCS 04, UDL counts octets, the text is plain ASCII.
HELLO_8BIT = "0011000B916407281553F80004AA0A68656C6C6F68656C6C6F"


def test_hellohello_8bit_submit_is_byte_exact():
    sub = encode_submit("+46708251358", b"hellohello", validity=0xAA)
    assert sub.pdu_hex() == HELLO_8BIT
    assert sub.tpdu_length == len(bytes.fromhex(HELLO_8BIT)) - 1  # SMSC octet excluded
    assert sub.tpdu_length == 24


def test_classic_7bit_hellohello_decodes():
    smsc, tpdu = split_smsc(bytes.fromhex(HELLO_7BIT))
    assert smsc is None
    sub = decode_submit(tpdu)
    assert sub.destination.number == "+46708251358"
    assert sub.alphabet is Alphabet.GSM7
    assert sub.text == "hellohello"
    assert sub.validity == 0xAA


def test_submit_flags_udh_status_report_and_16bit_ref():
    sub = encode_submit(
        "0170123456",
        b"\x00\xff",
        concat=Concat(0x1234, 3, 2, wide=True),
        status_report=True,
        validity=None,
        message_ref=7,
        national=True,
    )
    # 61 = SUBMIT | SRR (0x20) | UDHI (0x40), no VPF | MR 07 | 0A A1 1007214365 (10 digits,
    # national) | PID 00 | DCS 04 | UDL 09 | UDHL 06, IEI 08, len 04, ref 1234, total 03, seq 02
    assert sub.tpdu.hex().upper() == "61070AA1100721436500040906080412340302" + "00FF"
    back = decode_submit(sub.tpdu)
    assert back.concat == Concat(0x1234, 3, 2, wide=True)
    assert back.data == b"\x00\xff"
    assert back.status_report and back.message_ref == 7 and back.validity is None
    assert back.destination.number == "0170123456"


def test_submit_with_explicit_smsc_and_odd_digit_count():
    sub = encode_submit("+4412345", b"x", validity=timedelta(hours=24))
    # SMSC +447785016005: 07 octets follow, 91, 4477 5810 0650 swapped
    assert sub.pdu_hex("+447785016005").startswith("079144775810065011000791442143F5")
    assert sub.validity == 0xA7


def test_single_frame_fills_140_bytes_without_udh():
    frame = bytes(range(140))
    sub = encode_submit("+1555", frame)
    assert sub.tpdu[0] & 0x40 == 0
    assert decode_submit(sub.tpdu).data == frame
    with pytest.raises(PduError):
        encode_submit("+1555", frame + b"!")


@pytest.mark.parametrize("bad", ["", "+", "12a4x", "+" + "1" * 21, "12 34"])
def test_bad_addresses_are_refused(bad):
    with pytest.raises(PduError):
        encode_address(bad)


@pytest.mark.parametrize(
    "period, vp",
    [
        (timedelta(minutes=5), 0),
        (timedelta(hours=12), 143),
        (timedelta(hours=24), 167),
        (timedelta(days=4), 170),
        (timedelta(weeks=5), 197),
        (timedelta(weeks=100), 255),
    ],
)
def test_relative_validity(period, vp):
    assert pdu.encode_relative_validity(period) == vp


# --------------------------------------------------------------------------- SMS-DELIVER

# dreamfabric's classic SMS-DELIVER: SMSC +31624000000, from +31641600986, 7-bit
# "How are you?", SCTS 02-08-26 19:37:41, TZ octet 08 (per 9.2.3.11: sign bit set, 0 quarters).
HOW_ARE_YOU = "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07"


def test_classic_deliver_7bit_reports_dcs_and_text():
    d = decode_deliver(bytes.fromhex(HOW_ARE_YOU))
    assert d.smsc.number == "+31624000000"
    assert d.originator.number == "+31641600986"
    assert d.dcs == 0 and d.alphabet is Alphabet.GSM7 and not d.is_8bit
    assert d.text == "How are you?"
    assert d.udl == 12
    assert d.timestamp == datetime(2002, 8, 26, 19, 37, 41, tzinfo=UTC)
    assert not d.more_messages


# Hand-built 8-bit DELIVER with a concatenation header and a negative time zone:
#   00 no SMSC | 44 DELIVER, MMS (no more), UDHI | 0B 91 5155215143F7 -> +15551215347
#   00 PID | 04 DCS 8-bit | 42 30 21 01 32 54 8A -> 2024-03-12 10:23:45, TZ 8A: sign, 2|8 ->
#   -28 quarters = -07:00 | 09 UDL | 05 00 03 2A 02 01 (ref 42, 2 parts, part 1) | DE AD BE
DELIVER_8BIT_CONCAT = "00440B915155215143F70004423021013254" + "8A" + "09" + "0500032A0201DEADBE"


def test_8bit_deliver_with_concat_and_negative_tz():
    d = decode_deliver(bytes.fromhex(DELIVER_8BIT_CONCAT))
    assert d.smsc is None
    assert d.originator.number == "+15551215347" and d.originator.international
    assert d.is_8bit and d.dcs == 0x04
    assert d.timestamp == datetime(2024, 3, 12, 10, 23, 45, tzinfo=timezone(timedelta(hours=-7)))
    assert d.concat == Concat(42, 2, 1)
    assert d.data == b"\xde\xad\xbe"
    assert d.user_data.hex() == "0500032a0201deadbe"


def test_encode_deliver_reproduces_the_hand_vector():
    ts = datetime(2024, 3, 12, 10, 23, 45, tzinfo=timezone(timedelta(hours=-7)))
    out = encode_deliver("+15551215347", b"\xde\xad\xbe", ts, concat=Concat(42, 2, 1))
    assert out.hex().upper() == DELIVER_8BIT_CONCAT


def test_ucs2_deliver_reports_raw_and_text():
    # 00 | 04 | 04 81 2143 (unknown type "1234") | 00 | 08 UCS-2 | SCTS +01:00 | 04 | 00E9 20AC
    raw = "0004048121430008" + "42300201000040" + "04" + "00E920AC"
    d = decode_deliver(bytes.fromhex(raw))
    assert d.alphabet is Alphabet.UCS2 and not d.is_8bit
    assert d.text == "é€"
    assert d.data == b"\x00\xe9\x20\xac"
    assert d.originator.number == "1234" and not d.originator.international
    assert d.timestamp.utcoffset() == timedelta(hours=1)


def test_alphanumeric_originator():
    # "InfoMsg": 7 septets = 49 bits packed into 7 octets; the length counts the 13 useful
    # semi-octets (9.1.2.5), TOA D0 = alphanumeric.
    packed = pack7("InfoMsg")
    raw = "00" + "04" + "0DD0" + packed + "0004" + "42300201000000" + "01" + "FF"
    d = decode_deliver(bytes.fromhex(raw))
    assert d.originator.alphanumeric
    assert d.originator.number == "InfoMsg"


def test_7bit_with_udh_skips_fill_bits():
    # Concatenated 7-bit: UDH 050003010201 (6 octets = 48 bits -> 7 septets incl. 1 fill bit),
    # then "Hi". UDL = 7 + 2 = 9 septets, 8 octets of UD.
    # Bits: header occupies septets 0..6; 'H'=0x48 is septet 7, 'i'=0x69 is septet 8.
    bits = int.from_bytes(bytes.fromhex("050003010201"), "little")
    bits |= 0x48 << 49
    bits |= 0x69 << 56
    ud = bits.to_bytes(8, "little")
    raw = "0044" + "0481" + "2143" + "0000" + "42300201000000" + "09" + ud.hex()
    d = decode_deliver(bytes.fromhex(raw))
    assert d.concat == Concat(1, 2, 1)
    assert d.text == "Hi"


@pytest.mark.parametrize(
    "dcs, alphabet",
    [(0x00, "gsm7"), (0x04, "8bit"), (0x08, "ucs2"), (0xF4, "8bit"), (0xF0, "gsm7"),
     (0xE0, "ucs2"), (0x15, "8bit"), (0x0C, "gsm7")],
)  # fmt: skip
def test_alphabet_of(dcs, alphabet):
    assert pdu.alphabet_of(dcs)[0].value == alphabet


def test_out_of_range_concat_ie_is_ignored_not_fatal():
    # seq 3 of total 2: 9.2.3.24.1 says ignore the IE.
    raw = "0044" + "04812143" + "0004" + "42300201000000" + "07" + "050003070203" + "AA"
    d = decode_deliver(bytes.fromhex(raw))
    assert d.concat is None
    assert d.data == b"\xaa"


# --------------------------------------------------------------------------- STATUS-REPORT


def test_status_report():
    # 00 | 06 STATUS-REPORT | 2A MR | 0B 91 5155215143F7 | SCTS | DT | 00 delivered
    raw = "00062A0B915155215143F7" + "42300201000040" * 2 + "00"
    r = decode_status_report(bytes.fromhex(raw))
    assert r.message_ref == 42 and r.delivered and not r.failed
    assert r.recipient.number == "+15551215347"
    assert r.discharge_time == datetime(2024, 3, 20, 10, 0, 0, tzinfo=timezone(timedelta(hours=1)))


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "hexpdu",
    [
        "",
        "00",
        "0004",  # truncated address
        HOW_ARE_YOU[:-2],  # user data shorter than UDL
        HOW_ARE_YOU + "00",  # trailing garbage
        "00040481214300044230021300000001AA",  # hour 31
        "0004048121430004423002010000FF01AA",  # bad BCD in time zone
        "00440481214300044230020100000001" + "05",  # UDHL longer than UD
        "000404812143000442300201000000" + "8D" + "00" * 141,  # UDL 141 for 8-bit
    ],
)
def test_malformed_deliver_raises_pdu_error(hexpdu):
    with pytest.raises(PduError):
        decode_deliver(bytes.fromhex(hexpdu))


def test_wrong_message_type_raises():
    with pytest.raises(PduError, match="not an SMS-DELIVER"):
        decode_deliver(bytes.fromhex(HELLO_8BIT))
    with pytest.raises(PduError, match="not an SMS-SUBMIT"):
        decode_submit(bytes.fromhex(DELIVER_8BIT_CONCAT)[1:])


@settings(max_examples=400)
@given(st.binary(max_size=200))
def test_garbage_only_ever_raises_pdu_error(data):
    for fn in (
        decode_deliver,
        decode_status_report,
        lambda b: decode_deliver(b, has_smsc=False),
        decode_submit,
        split_smsc,
        pdu.parse_udh,
    ):
        with contextlib.suppress(PduError):
            fn(data)


@settings(max_examples=200)
@given(st.binary(min_size=1, max_size=60))
def test_mutated_valid_pdu_only_raises_pdu_error(noise):
    base = bytearray(bytes.fromhex(DELIVER_8BIT_CONCAT))
    for i, b in enumerate(noise):
        base[(i * 7 + b) % len(base)] ^= b
    with contextlib.suppress(PduError):
        decode_deliver(bytes(base))


# --------------------------------------------------------------------------- round trips


@given(
    number=st.from_regex(r"\+?[0-9]{1,20}", fullmatch=True),
    data=st.binary(max_size=140),
    ts=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
    ),
)
def test_deliver_round_trip(number, data, ts):
    d = decode_deliver(encode_deliver(number, data, ts.replace(microsecond=0)))
    assert d.originator.number == number
    assert d.data == data
    assert d.timestamp == ts.replace(microsecond=0)


@given(payload=st.binary(max_size=134 * 6), ref=st.integers(0, 255))
def test_split_and_reassemble(payload, ref):
    parts = encode_submit_parts("+15550001", payload, ref)
    r = Reassembler()
    out = None
    for p in reversed(parts):  # order of arrival does not matter
        d = decode_submit(p.tpdu)
        assert len(d.data) <= (140 if d.concat is None else 134)
        out = r.add("+15550001", d.concat, d.data, now=0.0)
    assert out == payload
    assert len(r) == 0


def test_split_sizes():
    assert split_payload(b"x" * 140, 1) == [(None, b"x" * 140)]
    parts = split_payload(b"x" * 141, 9)
    assert [(c.seq, c.total, c.ref, len(d)) for c, d in parts] == [(1, 2, 9, 134), (2, 2, 9, 7)]
    sub = encode_submit("+1", parts[0][1], concat=parts[0][0])
    assert sub.tpdu[-141] == 140  # UDL: 6 header + 134 data


def test_reassembler_limits_and_timeout():
    r = Reassembler(max_parts=4, max_pending=2, timeout=60)
    assert r.add("a", Concat(1, 5, 1), b"x", now=0) is None  # too many parts: dropped
    assert len(r) == 0 and r.dropped == 1
    r.add("a", Concat(1, 2, 1), b"a1", now=0)
    r.add("b", Concat(1, 2, 1), b"b1", now=1)
    r.add("c", Concat(1, 2, 1), b"c1", now=2)  # evicts the oldest ("a")
    assert sorted(k[0] for k in r) == ["b", "c"] and r.dropped == 2
    assert r.add("a", Concat(1, 2, 2), b"a2", now=3) is None  # part 1 was evicted
    assert sorted(k[0] for k in r) == ["a", "c"]  # ... and "b" made room for it
    assert r.add("c", Concat(1, 2, 1), b"XX", now=4) is None  # duplicate keeps first copy
    assert r.add("c", Concat(1, 2, 2), b"c2", now=5) == b"c1c2"
    assert r.expire(now=62) == 0
    assert r.expire(now=64) == 1  # "a" first seen at 3, older than 60 s
    assert r.add("a", Concat(1, 2, 1), b"a1", now=64) is None
    # same ref from a different sender or with another width is a different message
    r2 = Reassembler()
    r2.add("x", Concat(5, 2, 1), b"1", now=0)
    assert r2.add("y", Concat(5, 2, 2), b"2", now=0) is None
    assert r2.add("x", Concat(5, 2, 2, wide=True), b"2", now=0) is None
    assert r2.add("x", Concat(5, 2, 2), b"2", now=0) == b"12"
