"""Typed modem errors: the agent reacts differently to each (retry, report, give up)."""

from __future__ import annotations

# 3GPP TS 27.005 section 3.2.5 (+CMS ERROR) and TS 27.007 section 9.2 (+CME ERROR) codes the
# agent cares about; the rest are passed through as numbers.
CME_SIM_NOT_INSERTED = 10
CME_SIM_PIN_REQUIRED = 11
CME_SIM_FAILURE = 13
CME_SIM_BUSY = 14
CME_INCORRECT_PASSWORD = 16
CMS_INVALID_PDU_PARAMETER = 304
CMS_OPERATION_NOT_ALLOWED = 302
CMS_INVALID_MEMORY_INDEX = 321
CMS_NO_NETWORK_SERVICE = 331
CMS_NETWORK_TIMEOUT = 332
CMS_UNKNOWN_ERROR = 500


class ModemError(Exception):
    """The modem refused a command, answered something unexpected, or the port failed."""


class ModemPortError(ModemError):
    """The serial port itself failed (read/write error, device gone): reopen it."""


class ModemTimeout(ModemError):
    """No (complete) answer within the time limit."""


class ModemCodeError(ModemError):
    """An error result carrying a numeric code (``code`` is None for a verbose text)."""

    prefix = ""

    def __init__(self, code: int | None, text: str, command: str | None = None) -> None:
        self.code = code
        self.text = text
        self.command = command
        super().__init__(f"{self.prefix} {text}" + (f" (after {command})" if command else ""))


class CmeError(ModemCodeError):
    """``+CME ERROR: <n>``: equipment / SIM / network errors (TS 27.007)."""

    prefix = "+CME ERROR:"


class CmsError(ModemCodeError):
    """``+CMS ERROR: <n>``: message service errors (TS 27.005)."""

    prefix = "+CMS ERROR:"


class SimError(ModemError):
    """No usable SIM (missing, locked by PIN/PUK, failed)."""


class NotRegisteredError(ModemError):
    """The modem is not registered on a network, so sending would fail."""
