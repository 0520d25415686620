"""Validation and normalisation of meter numbers, MSISDNs and ICCIDs."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

_METER_NUMBER = re.compile(r"[A-Z0-9]{25}")
_MSISDN = re.compile(r"\+[1-9][0-9]{6,14}")
_ICCID = re.compile(r"89[0-9]{17,18}")


def normalise_meter_number(value: str) -> str:
    """Upper case, without the spaces and dashes people type when copying the sticker."""
    return re.sub(r"[\s\-]", "", value or "").upper()


def validate_meter_number(value: str) -> None:
    if not _METER_NUMBER.fullmatch(value or ""):
        raise ValidationError(
            "A meter number is 25 letters and digits.", code="invalid_meter_number"
        )


def format_meter_number(value: str) -> str:
    """Groups of five, as printed on the sticker."""
    return " ".join(value[i : i + 5] for i in range(0, len(value), 5))


def normalise_msisdn(value: str) -> str:
    digits = re.sub(r"[\s\-()]", "", value or "")
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    return digits


def validate_msisdn(value: str) -> None:
    if not _MSISDN.fullmatch(value or ""):
        raise ValidationError(
            "An MSISDN is in E.164 form: + then 7 to 15 digits.", code="invalid_msisdn"
        )


def luhn_check_digit(body: str) -> str:
    """The Luhn check digit that completes `body` (ICCIDs end with one)."""
    total = 0
    for index, char in enumerate(reversed(body)):
        digit = int(char)
        if index % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def _luhn_ok(digits: str) -> bool:
    return luhn_check_digit(digits[:-1]) == digits[-1]


def validate_iccid(value: str) -> None:
    if not _ICCID.fullmatch(value or "") or not _luhn_ok(value):
        raise ValidationError(
            "An ICCID is 19 or 20 digits starting 89, with a valid check digit.",
            code="invalid_iccid",
        )
