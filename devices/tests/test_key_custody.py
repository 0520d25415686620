"""S1: random root keys, stored only wrapped under a KEK that never reaches the database."""

import base64
import io

import pytest
from django.core.management import call_command

from devices.keystore import (
    HpkeKeyStore,
    KeyStoreError,
    KeyStoreLocked,
    generate_kek,
)
from devices.models import MeterKey
from devices.selectors import key_context, reset_keystore, session_keys
from devices.services import issue_bundle
from meteragent.bundle import parse_bundle
from meteragent.protocol import derive_keys


def _dump() -> bytes:
    out = io.StringIO()
    call_command("dumpdata", stdout=out)
    return out.getvalue().encode()


def _forms(secret: bytes) -> list[bytes]:
    return [secret, secret.hex().encode(), base64.b64encode(secret)]


@pytest.mark.django_db
def test_neither_the_kek_nor_a_root_key_reaches_the_database(make_meter, kek):
    roots = [parse_bundle(issue_bundle(make_meter(), by="test")).root_key for _ in range(3)]
    dump = _dump()
    private = base64.b64decode(kek["private"])
    for secret in [private, *roots]:
        for form in _forms(secret):
            assert form not in dump
    assert MeterKey.objects.count() == 3


@pytest.mark.django_db
def test_root_keys_are_random_and_unrelated_to_the_meter_number(make_meter):
    meter = make_meter("AAAAABBBBBCCCCCDDDDDEEEEE")
    first = parse_bundle(issue_bundle(meter, by="test")).root_key
    second = parse_bundle(issue_bundle(meter, by="test")).root_key
    assert len(first) == 32 and first != second
    assert meter.number.encode()[:16] not in first


@pytest.mark.django_db
def test_a_database_dump_alone_decrypts_nothing(make_meter, settings):
    meter = make_meter()
    issue_bundle(meter, by="test")
    key = MeterKey.objects.get(meter=meter)
    context = key_context(meter.number, key.key_id)
    # Someone with the database but not the KEK's private half: only the public key is known.
    public_only = HpkeKeyStore(base64.b64decode(settings.DEVICE_KEK_PUBLIC_KEY))
    with pytest.raises(KeyStoreLocked):
        public_only.unwrap(bytes(key.wrapped_key), context=context, kek_id=key.kek_id)
    # A guessed or other KEK does not open it either.
    _, other_public, other_private = generate_kek()
    other = HpkeKeyStore(base64.b64decode(other_public), [base64.b64decode(other_private)])
    with pytest.raises(KeyStoreError):
        other.unwrap(bytes(key.wrapped_key), context=context, kek_id=other.kek_id)


@pytest.mark.django_db
def test_a_wrapped_key_moved_to_another_meter_does_not_open(make_meter):
    a, b = make_meter(), make_meter()
    issue_bundle(a, by="test")
    issue_bundle(b, by="test")
    key_a, key_b = MeterKey.objects.get(meter=a), MeterKey.objects.get(meter=b)
    key_b.wrapped_key = key_a.wrapped_key  # an intruder swaps blobs between rows
    with pytest.raises(KeyStoreError):
        session_keys(key_b)


@pytest.mark.django_db
def test_the_web_front_end_issues_bundles_without_being_able_to_unwrap(make_meter, settings):
    settings.DEVICE_KEK_PRIVATE_KEYS = []  # as configured on the customer/staff web tier
    reset_keystore()
    meter = make_meter()
    bundle = parse_bundle(issue_bundle(meter, by="test"))
    with pytest.raises(KeyStoreLocked):
        session_keys(MeterKey.objects.get(meter=meter))
    assert bundle.key_id == 1


@pytest.mark.django_db
def test_ingest_side_derives_the_keys_the_meter_derives(make_meter):
    meter = make_meter()
    bundle = parse_bundle(issue_bundle(meter, by="test"))
    server = session_keys(MeterKey.objects.get(meter=meter))
    assert server == derive_keys(bundle.root_key, bundle.key_id)


@pytest.mark.django_db
def test_rewrap_moves_every_key_to_a_new_kek_and_is_resumable(make_meter, settings, kek):
    meters = [make_meter() for _ in range(5)]
    roots = {m.pk: parse_bundle(issue_bundle(m, by="test")).root_key for m in meters}
    new_id, new_public, new_private = generate_kek()
    settings.DEVICE_KEK_PUBLIC_KEY = new_public
    settings.DEVICE_KEK_PRIVATE_KEYS = [kek["private"], new_private]
    reset_keystore()
    call_command("rewrap_device_keys", "--batch", "2", stdout=io.StringIO(), stderr=io.StringIO())
    assert set(MeterKey.objects.values_list("kek_id", flat=True)) == {new_id}
    # The old KEK is no longer needed: every key opens under the new one alone.
    settings.DEVICE_KEK_PRIVATE_KEYS = [new_private]
    reset_keystore()
    for key in MeterKey.objects.select_related("meter"):
        assert session_keys(key) == derive_keys(roots[key.meter_id], key.key_id)
    # A second run finds nothing left to do.
    out = io.StringIO()
    call_command("rewrap_device_keys", stdout=out, stderr=io.StringIO())
    assert "Re-wrapped 0 keys" in out.getvalue()


@pytest.mark.django_db
def test_key_material_never_appears_in_the_admin(client, make_staff, verified_client, make_meter):
    from accounts.roles import SECURITY_ADMIN

    meter = make_meter()
    root = parse_bundle(issue_bundle(meter, by="test")).root_key
    key = MeterKey.objects.get(meter=meter)
    user, device = make_staff("sec@example.org", roles=[SECURITY_ADMIN])
    verified_client(user, device)
    pages = [
        f"/admin/devices/meterkey/{key.pk}/change/",
        "/admin/devices/meterkey/",
        f"/admin/devices/meter/{meter.pk}/change/",
    ]
    for url in pages:
        html = client.get(url).content
        for secret in [root, bytes(key.wrapped_key)]:
            for form in _forms(secret):
                assert form not in html, url
