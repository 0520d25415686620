"""GSM modem: the AT dialogue (``at``), the driver (``driver``) and a pty fake (``fake``)."""

from .at import ATChannel, Urc
from .driver import GsmModem, Registration, SignalQuality, StoredMessage
from .errors import (
    CmeError,
    CmsError,
    ModemError,
    ModemPortError,
    ModemTimeout,
    NotRegisteredError,
    SimError,
)

__all__ = [
    "ATChannel",
    "CmeError",
    "CmsError",
    "GsmModem",
    "ModemError",
    "ModemPortError",
    "ModemTimeout",
    "NotRegisteredError",
    "Registration",
    "SignalQuality",
    "SimError",
    "StoredMessage",
    "Urc",
]
