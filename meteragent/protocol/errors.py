"""Error types of the wire protocol.

Decoding any input raises only these (never IndexError, struct.error, ValueError...), so a
caller can catch :class:`ProtocolError` once and log ``type(err).__name__`` as the reason.
The seven decode errors map 1:1 to the error names used in ``vectors.json``.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base class of every error raised by ``meteragent.protocol``."""


class BadVersion(ProtocolError):
    """The frame's version or cipher-suite bits name something this implementation lacks."""


class UnknownKeyId(ProtocolError):
    """The header's key id is not (or no longer) known for this meter."""


class AuthenticationFailed(ProtocolError):
    """The AEAD tag did not verify: forged, corrupted, wrong key or wrong direction."""


class Replay(ProtocolError):
    """Authentic frame whose counter was already accepted (inside the replay window)."""


class Stale(ProtocolError):
    """Authentic frame whose counter is older than the replay window can remember."""


class Malformed(ProtocolError):
    """Wrong length, impossible header, or an authentic payload that does not parse."""


class Oversized(ProtocolError):
    """A frame longer than one SMS, or a message whose content does not fit in one frame."""


class CounterExhausted(ProtocolError):
    """Sender side: no counter values left under this key id; rotate the key first."""
