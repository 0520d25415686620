import pytest
from django.utils import timezone

from devices.identifiers import luhn_check_digit
from devices.keystore import generate_kek, reset_keystore
from devices.models import Meter, Sim
from devices.services import issue_bundle, key_used
from meteragent.bundle import parse_bundle

VALID_ICCIDS = ["8944500102198304826", "8944500102198304834", "8944500102198304842"]


def luhn_iccid(body: str) -> str:
    """An ICCID from an 18-digit body and its check digit."""
    return body + luhn_check_digit(body)


@pytest.fixture(autouse=True)
def kek(settings):
    """A fresh key-encryption key per test; this test process may unwrap (an ingest worker)."""
    kek_id, public, private = generate_kek()
    settings.DEVICE_KEK_PUBLIC_KEY = public
    settings.DEVICE_KEK_PRIVATE_KEYS = [private]
    reset_keystore()
    yield {"id": kek_id, "public": public, "private": private}
    reset_keystore()


@pytest.fixture
def make_meter(db):
    counter = iter(range(10_000))

    def make(number: str | None = None, with_sim: bool = True) -> Meter:
        n = next(counter)
        meter = Meter.objects.create(number=number or f"TESTMETER{n:016d}")
        if with_sim:
            Sim.objects.create(
                msisdn=f"+4477009{n:05d}", iccid=luhn_iccid(f"894450010219{n:06d}"), meter=meter
            )
        return meter

    return make


@pytest.fixture
def active_meter(make_meter):
    """A meter that loaded its bundle and has been heard from: (meter, root key, key id)."""

    def make():
        meter = make_meter()
        bundle = parse_bundle(issue_bundle(meter, by="test"))
        key_used(meter, bundle.key_id, at=timezone.now())
        meter.refresh_from_db()
        return meter, bundle.root_key, bundle.key_id

    return make
