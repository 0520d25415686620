"""Ways to send a binary SMS: Kannel's sendsms, the operator's `send` command, or a file for
the demo. Chosen by SMS_BACKEND."""

from __future__ import annotations

import json
import logging
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger("smsgateway")


class SendError(Exception):
    """Sending failed. `permanent` errors are not retried."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class SmsBackend(Protocol):
    def send(self, *, to: str, payload: bytes, reference: int) -> str:
        """Hand one 8-bit SMS to the network; return the gateway's reference."""
        ...


class KannelBackend:
    """Kannel smsbox `sendsms`: binary (coding=1), delivery reports to our DLR URL."""

    def send(self, *, to: str, payload: bytes, reference: int) -> str:
        params = {
            "username": settings.KANNEL_SENDSMS_USER,
            "password": settings.KANNEL_SENDSMS_PASSWORD,
            "to": to,
            "from": settings.SMS_GATEWAY_MSISDN,
            "coding": "1",
            "text": payload,
        }
        if settings.KANNEL_DLR_URL:
            params["dlr-mask"] = "3"  # delivered | failed
            params["dlr-url"] = settings.KANNEL_DLR_URL.format(id=reference) + "&status=%d"
        url = f"{settings.KANNEL_SENDSMS_URL}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (our own URL)
                body = response.read(200).decode("latin-1")
        except urllib.error.HTTPError as exc:
            body = exc.read(200).decode("latin-1")
            # 4xx: Kannel refused the request itself (bad credentials, bad number): permanent.
            raise SendError(
                f"sendsms {exc.code}: {body}", permanent=400 <= exc.code < 500
            ) from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise SendError(f"sendsms unreachable: {exc}") from None
        return body.strip()[:64]


class SendCommandBackend:
    """The operator's command-line `send` tool, as the source system used: `send MSISDN HEX`."""

    def send(self, *, to: str, payload: bytes, reference: int) -> str:
        command = [settings.SMS_SEND_COMMAND, to, payload.hex()]
        try:
            result = subprocess.run(  # noqa: S603 (fixed argv, no shell)
                command, capture_output=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SendError(f"send command failed: {exc}") from None
        if result.returncode != 0:
            raise SendError(
                f"send exited {result.returncode}: {result.stderr[:150]!r}",
                permanent=result.returncode == 2,
            )
        return result.stdout.decode("latin-1").strip()[:64]


class FileBackend:
    """Demo: appends each SMS as a JSON line to SMS_FILE_BACKEND_PATH."""

    def send(self, *, to: str, payload: bytes, reference: int) -> str:
        path = Path(settings.SMS_FILE_BACKEND_PATH)
        path.parent.mkdir(parents=True, exist_ok=True)
        line = {
            "to": to,
            "payload": payload.hex(),
            "reference": reference,
            "at": datetime.now(UTC).isoformat(),
        }
        with path.open("a") as out:
            out.write(json.dumps(line) + "\n")
        logger.info("SMS to %s (%d bytes) written to %s", to, len(payload), path)
        return f"file:{reference}"


def get_backend() -> SmsBackend:
    return import_string(settings.SMS_BACKEND)()
