"""Showing a new TOTP secret to the person enrolling it, in a terminal."""

import io

import qrcode
from django_otp.plugins.otp_totp.models import TOTPDevice


def provisioning_text(device: TOTPDevice) -> str:
    """The otpauth:// URI, its base32 secret, and a QR code an authenticator app can scan."""
    from base64 import b32encode

    qr = qrcode.QRCode(border=1)
    qr.add_data(device.config_url)
    out = io.StringIO()
    qr.print_ascii(out=out, invert=True)
    secret = b32encode(device.bin_key).decode()
    return f"{out.getvalue()}\n  otpauth URI: {device.config_url}\n  secret (base32): {secret}\n"
