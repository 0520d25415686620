"""Harness for end-to-end tests: real Kannel with a fake SMSC, a capturing HTTP endpoint."""

from e2e.harness.http_capture import CapturedRequest, CaptureServer
from e2e.harness.kannel import INSTALL_HINT, HttpResult, KannelGateway, free_port, kannel_installed
from e2e.harness.smsc import FakeSmscClient, MtMessage

__all__ = [
    "INSTALL_HINT",
    "CaptureServer",
    "CapturedRequest",
    "FakeSmscClient",
    "HttpResult",
    "KannelGateway",
    "MtMessage",
    "free_port",
    "kannel_installed",
]
