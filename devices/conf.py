"""Defaults of the devices app's settings; `utility/settings.py` overrides them from the
environment. Read them through `setting(name)`, so a project setting wins over the default."""

from __future__ import annotations

from utility.conf import defaults_reader

# The class that wraps and unwraps meter root keys (S1); an HSM or KMS names its own.
DEVICE_KEYSTORE = "devices.keystore.HpkeKeyStore"
# Ed25519 public key (base64) that signs meter software updates; written into bundles.
METER_RELEASE_PUBLIC_KEY = ""


setting = defaults_reader(globals())
