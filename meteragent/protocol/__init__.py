"""Wire protocol v1 between the meter and the utility's server (see docs/protocol.md).

Pure Python on top of ``cryptography``; importable on the meter and in the server alike.
"""

from meteragent.protocol.batching import build_reports
from meteragent.protocol.counters import (
    CounterReservation,
    CounterStore,
    MemoryCounterStore,
)
from meteragent.protocol.errors import (
    AuthenticationFailed,
    BadVersion,
    CounterExhausted,
    Malformed,
    Oversized,
    ProtocolError,
    Replay,
    Stale,
    UnknownKeyId,
)
from meteragent.protocol.frame import (
    VERSION,
    Header,
    KeyLookup,
    KeyState,
    Opened,
    decode_downlink,
    decode_uplink,
    encode_downlink,
    encode_uplink,
    open_frame,
    parse_header,
    seal_frame,
)
from meteragent.protocol.keys import Direction, SessionKeys, derive_keys
from meteragent.protocol.messages import (
    FRAME_BYTES,
    PAYLOAD_BYTES,
    Ack,
    DeviceInfo,
    DisplayCode,
    Message,
    MessageType,
    RekeyAccept,
    RekeyInit,
    Report,
    Schedule,
)
from meteragent.protocol.readings import Event, EventKind, Reading
from meteragent.protocol.rekey import PendingRekey, ServerRekey, meter_handle_init
from meteragent.protocol.replay import ReplayWindow
from meteragent.protocol.timesync import ClockAction, ClockDecision, ClockReason, decide_clock

__all__ = [
    "FRAME_BYTES",
    "PAYLOAD_BYTES",
    "VERSION",
    "Ack",
    "AuthenticationFailed",
    "BadVersion",
    "ClockAction",
    "ClockDecision",
    "ClockReason",
    "CounterExhausted",
    "CounterReservation",
    "CounterStore",
    "DeviceInfo",
    "Direction",
    "DisplayCode",
    "Event",
    "EventKind",
    "Header",
    "KeyLookup",
    "KeyState",
    "Malformed",
    "MemoryCounterStore",
    "Message",
    "MessageType",
    "Opened",
    "Oversized",
    "PendingRekey",
    "ProtocolError",
    "Reading",
    "RekeyAccept",
    "RekeyInit",
    "Replay",
    "ReplayWindow",
    "Report",
    "Schedule",
    "ServerRekey",
    "SessionKeys",
    "Stale",
    "UnknownKeyId",
    "build_reports",
    "decide_clock",
    "decode_downlink",
    "decode_uplink",
    "derive_keys",
    "encode_downlink",
    "encode_uplink",
    "meter_handle_init",
    "open_frame",
    "parse_header",
    "seal_frame",
]
