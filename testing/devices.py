"""Test helpers for meters and SIMs."""

from devices.identifiers import luhn_check_digit


def luhn_iccid(body: str) -> str:
    """An ICCID from an 18-digit body and its check digit."""
    return body + luhn_check_digit(body)
