"""3GPP TS 23.040 SMS transfer-layer PDUs: what the GSM modem sends and receives in PDU mode.

Scope, chosen for the meter:

* encode SMS-SUBMIT with 8-bit data (DCS 0x04), optional user-data header (concatenation IE 0x00
  with an 8-bit reference or 0x08 with a 16-bit one), optional status-report request and a
  relative validity period;
* decode SMS-DELIVER, SMS-SUBMIT (what the fake modem receives) and SMS-STATUS-REPORT, including
  the SCTS timestamp with its time zone and the user-data header;
* 7-bit and UCS-2 messages are decoded far enough to report the DCS, the raw user data and a
  best-effort text; the meter acts only on 8-bit data;
* split a payload into concatenated parts and reassemble them with limits and a timeout (pure:
  the caller passes the time in);
* encode SMS-DELIVER too, so the fake modem and the simulated network can produce what a real
  SMSC would deliver.

Every decoder raises :class:`PduError` (a ``ValueError``) on malformed input and nothing else.
Section numbers below refer to 3GPP TS 23.040 (and TS 23.038 for the data coding scheme).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

__all__ = [
    "CONCAT_PART_BYTES",
    "MAX_UD_BYTES",
    "Address",
    "Alphabet",
    "Concat",
    "Deliver",
    "InformationElement",
    "PduError",
    "Reassembler",
    "StatusReport",
    "Submit",
    "alphabet_of",
    "decode_address",
    "decode_deliver",
    "decode_status_report",
    "decode_submit",
    "decode_validity",
    "encode_address",
    "encode_deliver",
    "encode_relative_validity",
    "encode_submit",
    "encode_submit_parts",
    "split_payload",
    "split_smsc",
]

MAX_UD_BYTES = 140  # TP-UD is at most 140 octets (9.2.3.24)
CONCAT_PART_BYTES = MAX_UD_BYTES - 6  # 6-octet UDH: UDHL, IEI 0x00, len 3, ref, total, seq
MAX_ADDRESS_DIGITS = 20  # TP-DA/OA: 2..12 octets, i.e. at most 20 digits (9.1.2.5)

IEI_CONCAT_8 = 0x00
IEI_CONCAT_16 = 0x08

TOA_INTERNATIONAL = 0x91  # ext bit, type of number 001 international, plan 0001 ISDN/E.164
TOA_UNKNOWN = 0x81  # type of number 000 unknown: the network treats the digits as dialled
TOA_NATIONAL = 0xA1
TON_ALPHANUMERIC = 0b101

MTI_DELIVER = 0b00
MTI_SUBMIT = 0b01
MTI_STATUS_REPORT = 0b10

# Semi-octet digits (9.1.2.3): 0-9, then '*', '#', 'a', 'b', 'c'; 0xF is the fill nibble.
_DIGITS = "0123456789*#abc"
_DIGIT_VALUE = {c: i for i, c in enumerate(_DIGITS)} | {"A": 12, "B": 13, "C": 14}

# GSM 7-bit default alphabet and its extension table (TS 23.038 6.2.1), for best-effort text of
# 7-bit messages and alphanumeric sender addresses only.
_GSM7 = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXT = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}
assert len(_GSM7) == 128


class PduError(ValueError):
    """The PDU is malformed or cannot be encoded as asked."""


class Alphabet(enum.Enum):
    GSM7 = "gsm7"
    DATA8 = "8bit"
    UCS2 = "ucs2"


# ------------------------------------------------------------------------------------ reader


class _Reader:
    """Bounds-checked cursor over the PDU: every overrun becomes a PduError."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self, what: str) -> int:
        if self.pos >= len(self.data):
            raise PduError(f"PDU truncated reading {what}")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise PduError(f"PDU truncated reading {what}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def rest(self) -> bytes:
        out = self.data[self.pos :]
        self.pos = len(self.data)
        return out


# ------------------------------------------------------------------------------------ addresses


@dataclass(frozen=True)
class Address:
    """An SMS address: ``number`` is digits (``+`` prefixed if international) or text."""

    number: str
    toa: int

    @property
    def international(self) -> bool:
        return (self.toa >> 4) & 0b111 == 0b001

    @property
    def alphanumeric(self) -> bool:
        return (self.toa >> 4) & 0b111 == TON_ALPHANUMERIC


def _semi_octets(digits: str) -> bytes:
    if len(digits) % 2:
        digits += "F"
    out = bytearray()
    for i in range(0, len(digits), 2):
        lo = 0xF if digits[i] == "F" else _DIGIT_VALUE[digits[i]]
        hi = 0xF if digits[i + 1] == "F" else _DIGIT_VALUE[digits[i + 1]]
        out.append((hi << 4) | lo)
    return bytes(out)


def _digits_from(octets: bytes, count: int) -> str:
    out = []
    for b in octets:
        for nib in (b & 0x0F, b >> 4):
            if len(out) == count:
                break
            if nib == 0xF:
                raise PduError("fill nibble inside an address")
            out.append(_DIGITS[nib])
    return "".join(out)


def encode_address(number: str, *, national: bool = False) -> bytes:
    """TP-DA / TP-OA (9.1.2.5): length in digits, type of address, semi-octet digits.

    ``+4670...`` is encoded international (0x91); a number without ``+`` as unknown type
    (0x81, dialled as is) or, with ``national=True``, as national (0xA1).
    """
    if not isinstance(number, str):
        raise PduError("address must be a string")
    if number.startswith("+"):
        digits, toa = number[1:], TOA_INTERNATIONAL
    else:
        digits, toa = number, TOA_NATIONAL if national else TOA_UNKNOWN
    if not digits or len(digits) > MAX_ADDRESS_DIGITS or any(c not in _DIGIT_VALUE for c in digits):
        raise PduError(f"invalid address {number!r}")
    return bytes([len(digits), toa]) + _semi_octets(digits)


def decode_address(data: bytes | _Reader) -> Address:
    r = data if isinstance(data, _Reader) else _Reader(bytes(data))
    n_digits = r.byte("address length")
    # Bit 7 of the TOA should be 1; some SMSCs get it wrong, so it is not enforced.
    toa = r.byte("type of address")
    if n_digits > 22:  # 11 octets max for an alphanumeric address
        raise PduError("address too long")
    octets = r.take((n_digits + 1) // 2, "address digits")
    if (toa >> 4) & 0b111 == TON_ALPHANUMERIC:
        # The length counts useful semi-octets; the content is GSM 7-bit packed text.
        n_septets = n_digits * 4 // 7
        return Address(_gsm7_text(_unpack_septets(octets, n_septets)), toa)
    if n_digits > MAX_ADDRESS_DIGITS:
        raise PduError("address too long")
    digits = _digits_from(octets, n_digits)
    if (toa >> 4) & 0b111 == 0b001:
        digits = "+" + digits
    return Address(digits, toa)


def _encode_smsc(smsc: str | None) -> bytes:
    """SMSC address as the modem expects it in front of the TPDU (TS 24.011 RP address)."""
    if smsc is None:
        return b"\x00"  # use the SMSC stored on the SIM
    enc = encode_address(smsc)
    body = enc[1:]  # here the length counts octets (TOA + digits), not digits
    return bytes([len(body)]) + body


def split_smsc(pdu: bytes) -> tuple[Address | None, bytes]:
    """Split a modem PDU (as in +CMGR/+CMGL/+CMGS) into its SMSC address and the TPDU."""
    r = _Reader(bytes(pdu))
    n = r.byte("SMSC length")
    if n == 0:
        return None, r.rest()
    if n > 12:
        raise PduError("SMSC address too long")
    body = r.take(n, "SMSC address")
    toa = body[0]
    digits = []
    for b in body[1:]:
        for nib in (b & 0x0F, b >> 4):
            if nib != 0xF:
                if nib > 0xE:
                    raise PduError("bad SMSC digit")
                digits.append(_DIGITS[nib])
    number = "".join(digits)
    if (toa >> 4) & 0b111 == 0b001:
        number = "+" + number
    return Address(number, toa), r.rest()


# ------------------------------------------------------------------------------------ GSM 7-bit


def _unpack_septets(data: bytes, count: int, skip_bits: int = 0) -> list[int]:
    bits = int.from_bytes(data, "little")  # septet i sits at bits 7i.. from the first octet
    out = []
    for i in range(count):
        shift = skip_bits + 7 * i
        if shift + 7 > 8 * len(data):
            raise PduError("7-bit user data shorter than its length")
        out.append((bits >> shift) & 0x7F)
    return out


def _gsm7_text(septets: list[int]) -> str:
    out = []
    esc = False
    for s in septets:
        if esc:
            out.append(_GSM7_EXT.get(s, _GSM7[s]))
            esc = False
        elif s == 0x1B:
            esc = True
        else:
            out.append(_GSM7[s])
    return "".join(out)


# ------------------------------------------------------------------------------------ DCS


def alphabet_of(dcs: int) -> tuple[Alphabet, bool]:
    """Alphabet and compression flag of a TP-DCS value (TS 23.038 section 4)."""
    group = dcs >> 4
    if group <= 0b0111:  # general data coding (00xx) and automatic deletion (01xx)
        compressed = bool(dcs & 0x20)
        coding = (dcs >> 2) & 0b11
        alpha = {0: Alphabet.GSM7, 1: Alphabet.DATA8, 2: Alphabet.UCS2}.get(coding, Alphabet.GSM7)
        return alpha, compressed
    if group in (0b1100, 0b1101):  # message waiting, GSM 7-bit
        return Alphabet.GSM7, False
    if group == 0b1110:  # message waiting, UCS-2
        return Alphabet.UCS2, False
    if group == 0b1111:  # data coding / message class
        return (Alphabet.DATA8 if dcs & 0x04 else Alphabet.GSM7), False
    return Alphabet.GSM7, False  # reserved groups: "assume the GSM 7-bit default alphabet"


# ------------------------------------------------------------------------------------ UDH


@dataclass(frozen=True)
class InformationElement:
    iei: int
    data: bytes


@dataclass(frozen=True)
class Concat:
    """Concatenated short message IE (9.2.3.24.1 and .8): reference, total parts, this part."""

    ref: int
    total: int
    seq: int
    wide: bool = False  # True: IEI 0x08 with a 16-bit reference

    def to_ie(self) -> InformationElement:
        if not 1 <= self.seq <= self.total <= 255:
            raise PduError("concatenation needs 1 <= seq <= total <= 255")
        if self.wide:
            if not 0 <= self.ref <= 0xFFFF:
                raise PduError("16-bit reference out of range")
            data = self.ref.to_bytes(2, "big") + bytes([self.total, self.seq])
            return InformationElement(IEI_CONCAT_16, data)
        if not 0 <= self.ref <= 0xFF:
            raise PduError("8-bit reference out of range")
        return InformationElement(IEI_CONCAT_8, bytes([self.ref, self.total, self.seq]))


def encode_udh(ies: list[InformationElement]) -> bytes:
    body = b"".join(bytes([ie.iei, len(ie.data)]) + ie.data for ie in ies)
    if any(len(ie.data) > 255 for ie in ies) or len(body) > MAX_UD_BYTES - 1:
        raise PduError("user-data header too long")
    return bytes([len(body)]) + body


def parse_udh(ud: bytes) -> tuple[list[InformationElement], Concat | None, int]:
    """Parse the UDH at the start of ``ud``; returns IEs, concatenation info, header length."""
    r = _Reader(ud)
    udhl = r.byte("UDHL")
    hdr = _Reader(r.take(udhl, "user-data header"))
    ies: list[InformationElement] = []
    concat: Concat | None = None
    while hdr.pos < len(hdr.data):
        iei = hdr.byte("IEI")
        data = hdr.take(hdr.byte("IE length"), "IE data")
        ies.append(InformationElement(iei, data))
        # Out-of-range values make the receiver ignore the IE (9.2.3.24.1), not the message.
        if iei == IEI_CONCAT_8 and len(data) == 3:
            c = Concat(data[0], data[1], data[2])
        elif iei == IEI_CONCAT_16 and len(data) == 4:
            c = Concat(int.from_bytes(data[:2], "big"), data[2], data[3], wide=True)
        else:
            continue
        if 1 <= c.seq <= c.total:
            concat = c
    return ies, concat, 1 + udhl


# ------------------------------------------------------------------------------------ time


def _bcd_swapped(b: int) -> int:
    lo, hi = b & 0x0F, b >> 4
    if lo > 9 or hi > 9:
        raise PduError("bad BCD digit in timestamp")
    return lo * 10 + hi


def _swapped_bcd(n: int) -> int:
    return ((n % 10) << 4) | (n // 10)


def decode_scts(raw: bytes) -> datetime:
    """TP-SCTS (9.2.3.11): YY MM DD hh mm ss TZ, swapped semi-octets; TZ in quarter hours
    with the sign in bit 3 of the last octet. Years are taken as 20YY."""
    if len(raw) != 7:
        raise PduError("timestamp must be 7 octets")
    yy, mo, dd, hh, mi, ss = (_bcd_swapped(b) for b in raw[:6])
    tzb = raw[6]
    negative = bool(tzb & 0x08)
    quarters = _bcd_swapped(tzb & 0xF7)
    if quarters > 4 * 18:
        raise PduError("time zone out of range")
    offset = timedelta(minutes=15 * quarters) * (-1 if negative else 1)
    try:
        return datetime(2000 + yy, mo, dd, hh, mi, ss, tzinfo=timezone(offset))
    except ValueError as exc:
        raise PduError(f"invalid timestamp: {exc}") from None


def encode_scts(when: datetime) -> bytes:
    off = when.utcoffset()
    if off is None:
        raise PduError("timestamp needs a time zone")
    quarters, rem = divmod(int(abs(off.total_seconds())), 900)
    if rem or quarters > 72 or not 2000 <= when.year <= 2099:
        raise PduError("timestamp not representable")
    fields = [when.year - 2000, when.month, when.day, when.hour, when.minute, when.second]
    tz = _swapped_bcd(quarters) | (0x08 if off < timedelta(0) else 0)
    return bytes(_swapped_bcd(v) for v in fields) + bytes([tz])


def encode_relative_validity(period: timedelta) -> int:
    """Smallest TP-VP relative value (9.2.3.12.1) that is at least ``period``."""
    minutes = period.total_seconds() / 60
    if minutes <= 0:
        raise PduError("validity period must be positive")
    for vp in range(256):
        if decode_validity(vp) >= period:
            return vp
    return 255  # 63 weeks is the longest expressible period


def decode_validity(vp: int) -> timedelta:
    if not 0 <= vp <= 255:
        raise PduError("relative validity is one octet")
    if vp <= 143:
        return timedelta(minutes=(vp + 1) * 5)
    if vp <= 167:
        return timedelta(hours=12, minutes=(vp - 143) * 30)
    if vp <= 196:
        return timedelta(days=vp - 166)
    return timedelta(weeks=vp - 192)


# ------------------------------------------------------------------------------------ user data


@dataclass(frozen=True)
class _UserData:
    dcs: int
    alphabet: Alphabet
    compressed: bool
    udl: int
    raw: bytes  # TP-UD as transmitted, header included
    ies: list[InformationElement]
    concat: Concat | None
    data: bytes  # user data after the header; for 7-bit still packed (see text)
    text: str | None


def _decode_ud(r: _Reader, dcs: int, udhi: bool) -> _UserData:
    udl = r.byte("TP-UDL")
    alpha, compressed = alphabet_of(dcs)
    if alpha is Alphabet.GSM7 and not compressed:
        if udl > 160:
            raise PduError("7-bit TP-UDL above 160")
        n_octets = (udl * 7 + 7) // 8
    else:
        if udl > MAX_UD_BYTES:
            raise PduError("TP-UDL above 140")
        n_octets = udl
    raw = r.take(n_octets, "user data")
    if r.pos != len(r.data):
        raise PduError("trailing bytes after user data")
    ies: list[InformationElement] = []
    concat = None
    hlen = 0
    if udhi:
        ies, concat, hlen = parse_udh(raw)
        if hlen > n_octets:
            raise PduError("user-data header longer than user data")
    data = raw[hlen:]
    text = None
    if alpha is Alphabet.GSM7 and not compressed:
        hdr_septets = (hlen * 8 + 6) // 7
        if hdr_septets > udl:
            raise PduError("user-data header longer than user data")
        septets = _unpack_septets(raw, udl - hdr_septets, hdr_septets * 7)
        text = _gsm7_text(septets)
    elif alpha is Alphabet.UCS2 and not compressed:
        text = data.decode("utf-16-be", errors="replace")
    return _UserData(dcs, alpha, compressed, udl, raw, ies, concat, data, text)


# ------------------------------------------------------------------------------------ SUBMIT


@dataclass(frozen=True)
class Submit:
    """An SMS-SUBMIT, encoded (``tpdu``) and its fields."""

    tpdu: bytes
    destination: Address
    data: bytes
    dcs: int = 0x04
    message_ref: int = 0
    status_report: bool = False
    validity: int | None = None  # TP-VP, relative format
    concat: Concat | None = None
    ies: list[InformationElement] = field(default_factory=list)
    alphabet: Alphabet = Alphabet.DATA8
    text: str | None = None

    @property
    def tpdu_length(self) -> int:
        """The length for ``AT+CMGS=<n>``: TPDU octets, SMSC address excluded."""
        return len(self.tpdu)

    def pdu_hex(self, smsc: str | None = None) -> str:
        """Hex for the modem: SMSC address (``00`` = SIM default) followed by the TPDU."""
        return (_encode_smsc(smsc) + self.tpdu).hex().upper()


DEFAULT_VALIDITY = 0xA7  # 24 h: a later send carries the same unacknowledged readings anyway


def encode_submit(
    destination: str,
    data: bytes,
    *,
    concat: Concat | None = None,
    status_report: bool = False,
    validity: timedelta | int | None = DEFAULT_VALIDITY,
    message_ref: int = 0,
    national: bool = False,
    reject_duplicates: bool = False,
) -> Submit:
    """Encode an 8-bit SMS-SUBMIT (9.2.2.2).

    ``validity`` is a relative TP-VP octet, a timedelta (rounded up), or None for no validity
    period. ``message_ref`` is usually replaced by the modem's own counter.
    """
    data = bytes(data)
    if not 0 <= message_ref <= 255:
        raise PduError("message reference is one octet")
    if isinstance(validity, timedelta):
        validity = encode_relative_validity(validity)
    elif validity is not None and not 0 <= validity <= 255:
        raise PduError("relative validity is one octet")
    ies = [concat.to_ie()] if concat is not None else []
    ud = (encode_udh(ies) if ies else b"") + data
    if len(ud) > MAX_UD_BYTES:
        raise PduError(f"user data of {len(ud)} octets exceeds {MAX_UD_BYTES}")
    first = MTI_SUBMIT
    if reject_duplicates:
        first |= 0x04  # TP-RD
    if validity is not None:
        first |= 0x10  # TP-VPF = 10: relative
    if status_report:
        first |= 0x20  # TP-SRR
    if ies:
        first |= 0x40  # TP-UDHI
    out = bytearray([first, message_ref])
    out += encode_address(destination, national=national)
    out += bytes([0x00, 0x04])  # TP-PID: plain SME-to-SME; TP-DCS: 8-bit data, no class
    if validity is not None:
        out.append(validity)
    out.append(len(ud))
    out += ud
    return Submit(
        tpdu=bytes(out),
        destination=decode_address(encode_address(destination, national=national)),
        data=data,
        message_ref=message_ref,
        status_report=status_report,
        validity=validity,
        concat=concat,
        ies=ies,
    )


def decode_submit(tpdu: bytes) -> Submit:
    """Decode an SMS-SUBMIT TPDU (no SMSC prefix). Used by the fake modem and for stored
    outgoing messages listed by ``AT+CMGL``."""
    tpdu = bytes(tpdu)
    r = _Reader(tpdu)
    first = r.byte("first octet")
    if first & 0x03 != MTI_SUBMIT:
        raise PduError("not an SMS-SUBMIT")
    mr = r.byte("TP-MR")
    dest = decode_address(r)
    r.byte("TP-PID")
    dcs = r.byte("TP-DCS")
    vpf = (first >> 3) & 0b11
    validity = None
    if vpf == 0b10:
        validity = r.byte("TP-VP")
    elif vpf in (0b01, 0b11):  # enhanced and absolute formats are 7 octets
        r.take(7, "TP-VP")
    ud = _decode_ud(r, dcs, bool(first & 0x40))
    return Submit(
        tpdu=tpdu,
        destination=dest,
        data=ud.data,
        dcs=dcs,
        message_ref=mr,
        status_report=bool(first & 0x20),
        validity=validity,
        concat=ud.concat,
        ies=ud.ies,
        alphabet=ud.alphabet,
        text=ud.text,
    )


# ------------------------------------------------------------------------------------ DELIVER


@dataclass(frozen=True)
class Deliver:
    """A decoded SMS-DELIVER (9.2.2.1)."""

    originator: Address
    timestamp: datetime
    pid: int
    dcs: int
    alphabet: Alphabet
    compressed: bool
    udl: int
    user_data: bytes  # TP-UD as received (header included; 7-bit still packed)
    data: bytes  # after the user-data header; meaningful for 8-bit
    ies: list[InformationElement]
    concat: Concat | None
    text: str | None
    more_messages: bool
    status_report_indication: bool
    smsc: Address | None = None

    @property
    def is_8bit(self) -> bool:
        return self.alphabet is Alphabet.DATA8 and not self.compressed


def decode_deliver(pdu: bytes, *, has_smsc: bool = True) -> Deliver:
    """Decode an SMS-DELIVER; by default ``pdu`` starts with the SMSC address as the modem
    reports it in ``+CMGR``/``+CMGL``."""
    smsc = None
    tpdu = bytes(pdu)
    if has_smsc:
        smsc, tpdu = split_smsc(tpdu)
    r = _Reader(tpdu)
    first = r.byte("first octet")
    if first & 0x03 != MTI_DELIVER:
        raise PduError("not an SMS-DELIVER")
    oa = decode_address(r)
    pid = r.byte("TP-PID")
    dcs = r.byte("TP-DCS")
    ts = decode_scts(r.take(7, "TP-SCTS"))
    ud = _decode_ud(r, dcs, bool(first & 0x40))
    return Deliver(
        originator=oa,
        timestamp=ts,
        pid=pid,
        dcs=dcs,
        alphabet=ud.alphabet,
        compressed=ud.compressed,
        udl=ud.udl,
        user_data=ud.raw,
        data=ud.data,
        ies=ud.ies,
        concat=ud.concat,
        text=ud.text,
        more_messages=not first & 0x04,  # TP-MMS is "no more messages" when set
        status_report_indication=bool(first & 0x20),
        smsc=smsc,
    )


def encode_deliver(
    originator: str,
    data: bytes,
    timestamp: datetime,
    *,
    concat: Concat | None = None,
    smsc: str | None = None,
) -> bytes:
    """Encode an 8-bit SMS-DELIVER with SMSC prefix, as a modem stores it. For fakes and
    the simulated network; a meter never sends one."""
    ies = [concat.to_ie()] if concat is not None else []
    ud = (encode_udh(ies) if ies else b"") + bytes(data)
    if len(ud) > MAX_UD_BYTES:
        raise PduError("user data too long")
    first = MTI_DELIVER | 0x04 | (0x40 if ies else 0)
    out = bytearray([first]) + encode_address(originator) + bytes([0x00, 0x04])
    out += encode_scts(timestamp) + bytes([len(ud)]) + ud
    return _encode_smsc(smsc) + bytes(out)


# ------------------------------------------------------------------------------------ STATUS


@dataclass(frozen=True)
class StatusReport:
    """A decoded SMS-STATUS-REPORT (9.2.2.3): the fate of the message with ``message_ref``."""

    message_ref: int
    recipient: Address
    service_centre_time: datetime
    discharge_time: datetime
    status: int  # TP-ST: 0x00-0x1F delivered, 0x20-0x3F still trying, 0x40+ failed

    @property
    def delivered(self) -> bool:
        return self.status <= 0x1F

    @property
    def failed(self) -> bool:
        return self.status >= 0x40


def decode_status_report(pdu: bytes, *, has_smsc: bool = True) -> StatusReport:
    tpdu = bytes(pdu)
    if has_smsc:
        _, tpdu = split_smsc(tpdu)
    r = _Reader(tpdu)
    first = r.byte("first octet")
    if first & 0x03 != MTI_STATUS_REPORT:
        raise PduError("not an SMS-STATUS-REPORT")
    mr = r.byte("TP-MR")
    ra = decode_address(r)
    scts = decode_scts(r.take(7, "TP-SCTS"))
    dt = decode_scts(r.take(7, "TP-DT"))
    st = r.byte("TP-ST")
    # Optional TP-PI/PID/DCS/UD may follow; the meter needs none of them.
    return StatusReport(mr, ra, scts, dt, st)


# ------------------------------------------------------------------------------------ concat


def split_payload(payload: bytes, ref: int) -> list[tuple[Concat | None, bytes]]:
    """Split ``payload`` for sending: one part without UDH if it fits in 140 octets, else
    parts of 134 octets each behind an 8-bit-reference concatenation header."""
    payload = bytes(payload)
    if len(payload) <= MAX_UD_BYTES:
        return [(None, payload)]
    chunks = [payload[i : i + CONCAT_PART_BYTES] for i in range(0, len(payload), CONCAT_PART_BYTES)]
    if len(chunks) > 255:
        raise PduError("payload needs more than 255 parts")
    if not 0 <= ref <= 255:
        raise PduError("8-bit reference out of range")
    total = len(chunks)
    return [(Concat(ref, total, i + 1), c) for i, c in enumerate(chunks)]


def encode_submit_parts(
    destination: str, payload: bytes, ref: int, **kwargs: object
) -> list[Submit]:
    """All SMS-SUBMIT PDUs for ``payload`` (see split_payload); kwargs go to encode_submit."""
    return [
        encode_submit(destination, chunk, concat=c, **kwargs)  # type: ignore[arg-type]
        for c, chunk in split_payload(payload, ref)
    ]


@dataclass
class _Partial:
    first_seen: float
    total: int
    parts: dict[int, bytes] = field(default_factory=dict)


class Reassembler:
    """Collects concatenated parts into whole messages. Pure: time is passed in.

    Limits keep a flood of fragments from exhausting memory: at most ``max_parts`` parts per
    message, ``max_pending`` messages in progress (the oldest is dropped first) and
    ``timeout`` seconds from the first part to completion.
    """

    def __init__(self, *, max_parts: int = 16, max_pending: int = 8, timeout: float = 3600.0):
        self.max_parts = max_parts
        self.max_pending = max_pending
        self.timeout = timeout
        self._pending: dict[tuple[str, int, bool, int], _Partial] = {}
        self.dropped = 0  # messages abandoned (timeout, eviction, inconsistent or too long)

    def add(self, sender: str, concat: Concat | None, data: bytes, now: float) -> bytes | None:
        """Feed one part; returns the whole payload when the last part arrives."""
        self.expire(now)
        if concat is None:
            return bytes(data)
        if concat.total > self.max_parts or not 1 <= concat.seq <= concat.total:
            self.dropped += 1
            return None
        key = (sender, concat.ref, concat.wide, concat.total)
        partial = self._pending.get(key)
        if partial is None:
            if len(self._pending) >= self.max_pending:
                oldest = min(self._pending, key=lambda k: self._pending[k].first_seen)
                del self._pending[oldest]
                self.dropped += 1
            partial = self._pending[key] = _Partial(now, concat.total)
        # A repeated part (network retry) keeps the first copy.
        partial.parts.setdefault(concat.seq, bytes(data))
        if len(partial.parts) < partial.total:
            return None
        del self._pending[key]
        return b"".join(partial.parts[i] for i in range(1, partial.total + 1))

    def expire(self, now: float) -> int:
        old = [k for k, p in self._pending.items() if now - p.first_seen > self.timeout]
        for k in old:
            del self._pending[k]
        self.dropped += len(old)
        return len(old)

    def __len__(self) -> int:
        return len(self._pending)

    def __iter__(self) -> Iterator[tuple[str, int, bool, int]]:
        return iter(list(self._pending))
