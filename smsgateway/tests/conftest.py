"""Gateway tests: every one with a fresh key-encryption key. The test meter and the gateway
client are shared with other apps' tests (`testing.sms`, `testing.plugin`)."""

import pytest

from testing.sms import hours_back, last_ack, outcome  # noqa: F401  (the tests here import them from here)


@pytest.fixture(autouse=True)
def _fresh_kek(kek):
    """Meters made here get keys wrapped under a KEK of this test's own."""
