import pytest
from django.core.exceptions import ValidationError

from devices.identifiers import (
    format_meter_number,
    normalise_meter_number,
    normalise_msisdn,
    validate_iccid,
    validate_meter_number,
    validate_msisdn,
)
from testing.devices import luhn_iccid


def test_meter_number_is_normalised_from_what_people_type():
    typed = "abcde-12345 fghij 67890-KLMNO"
    assert normalise_meter_number(typed) == "ABCDE12345FGHIJ67890KLMNO"
    validate_meter_number(normalise_meter_number(typed))
    assert format_meter_number("ABCDE12345FGHIJ67890KLMNO") == "ABCDE 12345 FGHIJ 67890 KLMNO"


@pytest.mark.parametrize("bad", ["", "A" * 24, "A" * 26, "ABCDE12345FGHIJ67890KLMN!", "a" * 25])
def test_bad_meter_numbers_are_refused(bad):
    with pytest.raises(ValidationError):
        validate_meter_number(bad)


def test_msisdn_must_be_e164():
    assert normalise_msisdn("0044 7700 900123") == "+447700900123"
    validate_msisdn("+447700900123")
    for bad in ("447700900123", "+0447700900123", "+12", "+4477009001231234"):
        with pytest.raises(ValidationError):
            validate_msisdn(bad)


def test_iccid_needs_a_valid_check_digit():
    good = luhn_iccid("894450010219830482")
    validate_iccid(good)
    wrong_digit = good[:-1] + str((int(good[-1]) + 1) % 10)
    for bad in (wrong_digit, "12" + good[2:], good[:10]):
        with pytest.raises(ValidationError):
            validate_iccid(bad)
