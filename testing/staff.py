"""Helpers for tests of any app that signs staff in (not used by the running portal)."""

from __future__ import annotations

import time

from django.contrib.auth.hashers import Argon2PasswordHasher
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

STAFF_PASSWORD = "correct-Horse-battery-9"  # noqa: S105  (test fixture)


def totp_now(device: TOTPDevice, offset_steps: int = 0) -> str:
    """The code an authenticator app would show now (or `offset_steps` steps away)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + offset_steps * device.step
    return f"{totp.token():0{device.digits}d}"


class CountingArgon2Hasher(Argon2PasswordHasher):
    """Argon2 as configured, counting every hash it computes (encode or verify): tests install
    it in PASSWORD_HASHERS to show that every branch of a login hashes as often."""

    calls = 0

    def encode(self, password, salt):
        CountingArgon2Hasher.calls += 1
        return super().encode(password, salt)

    def verify(self, password, encoded):
        CountingArgon2Hasher.calls += 1
        return super().verify(password, encoded)
