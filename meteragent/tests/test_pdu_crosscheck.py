"""Our PDUs against independent decoders (smspdudecoder, python-gsmmodem-new).

Both are development dependencies only (requirements-dev.txt), never the meter's.
(smspdudecoder 2.2.0 fails to import with bitstring 5, hence the pin there.)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from io import StringIO

import gsmmodem.pdu as gsmpdu
import smspdudecoder.fields as smsfields
from hypothesis import given, settings
from hypothesis import strategies as st

from meteragent.protocol.pdu import Concat, decode_deliver, encode_deliver, encode_submit

numbers = st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True)
concats = st.one_of(
    st.none(),
    st.builds(
        lambda ref, total, seq, wide: Concat(
            ref if wide else ref & 0xFF, total, min(seq, total), wide
        ),
        st.integers(0, 0xFFFF),
        st.integers(1, 255),
        st.integers(1, 255),
        st.booleans(),
    ),
)


def concat_of_smspdudecoder(ud: dict) -> Concat | None:
    for el in (ud.get("header") or {}).get("elements") or []:
        if el["iei"] in (0x00, 0x08):
            d = el["data"]
            return Concat(d["reference"], d["parts_count"], d["part_number"], el["iei"] == 0x08)
    return None


@settings(max_examples=150, deadline=None)
@given(
    number=numbers,
    data=st.binary(max_size=130),
    concat=concats,
    srr=st.booleans(),
    vp=st.one_of(st.none(), st.integers(0, 255)),
)
def test_submit_matches_independent_decoders(number, data, concat, srr, vp):
    sub = encode_submit(number, data, concat=concat, status_report=srr, validity=vp)
    hexpdu = sub.pdu_hex()

    s = smsfields.SMSSubmit.decode(StringIO(hexpdu))
    assert "+" + s["recipient"]["number"] == number
    assert s["recipient"]["toa"]["ton"] == "international"
    assert s["dcs"]["encoding"] == "binary"
    assert s["header"]["srr"] == srr
    assert s["user_data"]["data"] == data
    assert concat_of_smspdudecoder(s["user_data"]) == concat
    if vp is not None:
        assert s["vp"] == vp

    g = gsmpdu.decodeSmsPdu(hexpdu)
    assert g["type"] == "SMS-SUBMIT"
    assert g["number"] == number
    assert g["tpdu_length"] == sub.tpdu_length  # the AT+CMGS length
    assert g["text"].encode("latin-1") == data  # it decodes 8-bit as latin-1


@settings(max_examples=150, deadline=None)
@given(
    number=numbers,
    data=st.binary(max_size=130),
    concat=concats,
    # gsmmodem reads the 2-digit year with strptime("%y"), i.e. 69..99 as 19xx; we read 20xx.
    ts=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2068, 12, 31)),
    quarters=st.integers(-48, 56),
)
def test_deliver_matches_independent_decoders(number, data, concat, ts, quarters):
    when = ts.replace(microsecond=0, tzinfo=timezone(timedelta(minutes=15 * quarters)))
    raw = encode_deliver(number, data, when, concat=concat)

    s = smsfields.SMSDeliver.decode(StringIO(raw.hex()))
    assert "+" + s["sender"]["number"] == number
    assert s["user_data"]["data"] == data
    assert concat_of_smspdudecoder(s["user_data"]) == concat
    assert s["scts"] == when.astimezone(UTC)

    g = gsmpdu.decodeSmsPdu(raw.hex())
    assert g["type"] == "SMS-DELIVER"
    assert g["number"] == number
    assert g["time"].replace(tzinfo=None) == when.replace(tzinfo=None)
    assert g["time"].utcoffset() == when.utcoffset()

    ours = decode_deliver(raw)
    assert (ours.originator.number, ours.data, ours.timestamp) == (number, data, when)


def test_classic_deliver_time_zone_agrees():
    # The dreamfabric vector's TZ octet 0x08; both decoders must agree with ours (UTC-0).
    hexpdu = "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07"
    s = smsfields.SMSDeliver.decode(StringIO(hexpdu))
    ours = decode_deliver(bytes.fromhex(hexpdu))
    assert s["scts"] == ours.timestamp
    g = gsmpdu.decodeSmsPdu(hexpdu)
    assert g["text"] == ours.text == "How are you?"
