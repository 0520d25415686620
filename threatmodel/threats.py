"""Threats particular to this system, beside pytm's library: the GSM and SMS hops, the meter box,
key custody, insiders, and privacy (LINDDUN) of hourly readings.

Each is a pytm threat (same fields as pytm's threats.json); its condition picks the elements it
attacks by name. What answers it lives in `responses.py`.
"""

from __future__ import annotations

from pytm import TM, Threat


def _named(*names: str) -> str:
    return f"target.name in {names!r}"


def _flow_named(*whats: str) -> str:
    """A dataflow's note is what flows over it (model.FLOWS)."""
    return f"target.note in {whats!r}"


OUR_THREATS: list[dict] = [
    # --- the GSM / SMS hops
    {
        "SID": "SMS01",
        "target": ["Dataflow"],
        "description": "SIM swap or cloned SIM sends SMS as a meter",
        "details": "An attacker who clones a meter's SIM or has its number moved to another SIM "
        "sends messages that the operator delivers with the meter's MSISDN.",
        "severity": "High",
        "condition": _flow_named("MO SMS (sender MSISDN, UDH, body)"),
        "stride": "Spoofing",
    },
    {
        "SID": "SMS02",
        "target": ["ExternalEntity"],
        "description": "Insider at the operator's SMSC reads, alters, drops, delays or replays "
        "messages",
        "details": "The SMSC stores and forwards every message in clear at the SMS layer.",
        "severity": "High",
        "condition": _named("Operator SMSC"),
        "stride": "Tampering, Information disclosure, Repudiation",
    },
    {
        "SID": "SMS03",
        "target": ["Dataflow"],
        "description": "Interception on 2G (A5/1, A5/2 broken) and a fake base station that "
        "captures, injects or blocks SMS",
        "details": "2G authenticates the handset only; an IMSI catcher can answer the meter, "
        "read its traffic and feed it forged downlinks or nothing at all.",
        "severity": "High",
        "condition": _flow_named("report SMS", "ack, display code, rekey SMS"),
        "stride": "Information disclosure, Spoofing, Denial of service",
    },
    {
        "SID": "SMS04",
        "target": ["Dataflow"],
        "description": "Forged downlink sets the meter's clock or marks unsent readings "
        "acknowledged",
        "details": "Time and acknowledgements arrive by SMS; a forged or replayed ack could "
        "make the meter drop readings or misdate them.",
        "severity": "High",
        "condition": _flow_named("ack frame (time, high-water mark)"),
        "stride": "Tampering, Spoofing",
    },
    {
        "SID": "GW01",
        "target": ["Dataflow"],
        "description": "Requests forged to the SMS webhook, or a flood of them",
        "details": "Anyone who reaches the ingest service could post messages as the gateway.",
        "severity": "High",
        "condition": _flow_named("MO message and delivery reports"),
        "stride": "Spoofing, Denial of service",
    },
    # --- meter box and field
    {
        "SID": "PHY01",
        "target": ["Datastore"],
        "description": "Offline overwrite: the SD card's readings edited, rolled back or "
        "replaced by an old copy",
        "details": "Anyone who opens the box can mount the SD card elsewhere.",
        "severity": "High",
        "condition": _named("Meter store (SD card)"),
        "stride": "Tampering",
    },
    {
        "SID": "PHY02",
        "target": ["ExternalEntity"],
        "description": "Fake feed: the metering chip bypassed or fed a lower load",
        "details": "A bypass upstream of the meter or a tampered chip under-reports energy.",
        "severity": "High",
        "condition": _named("Metering IC"),
        "stride": "Tampering",
    },
    {
        "SID": "PHY03",
        "target": ["Process"],
        "description": "Service console used to load keys, export data or install software unseen",
        "details": "The USB serial console gives a shell-like interface to whoever opens the box.",
        "severity": "High",
        "condition": _named("Meter console"),
        "stride": "Elevation of privilege, Repudiation",
    },
    {
        "SID": "PHY04",
        "target": ["Process"],
        "description": "Malicious software update installed on the meter",
        "details": "Software updates come over USB from the field.",
        "severity": "High",
        "condition": _named("Meter agent"),
        "stride": "Tampering, Elevation of privilege",
    },
    {
        "SID": "KEY01",
        "target": ["Datastore"],
        "description": "Stolen or copied installer bundle used to impersonate a meter",
        "details": "The bundle carries a meter's root key between the portal and the box.",
        "severity": "High",
        "condition": _named("Installer bundle"),
        "stride": "Spoofing, Information disclosure",
    },
    {
        "SID": "KEY02",
        "target": ["Datastore"],
        "description": "Compromised field laptop alters SD-card exports before upload",
        "details": "Exports travel on an engineer's laptop, outside the utility's control.",
        "severity": "Medium",
        "condition": _named("SD-card export (field laptop)"),
        "stride": "Tampering",
    },
    {
        "SID": "KEY03",
        "target": ["Datastore"],
        "description": "Key-encryption key leaks: every wrapped root key in a dump opens",
        "details": "The KEK private halves sit on the sms worker hosts.",
        "severity": "Very High",
        "condition": _named("KEK private key files"),
        "stride": "Information disclosure, Spoofing",
    },
    {
        "SID": "KEY04",
        "target": ["Datastore"],
        "description": "Database dump or backup read by an outsider or a DBA",
        "details": "Backups and replicas leave the database host.",
        "severity": "High",
        "condition": _named("PostgreSQL: devices and wrapped keys"),
        "stride": "Information disclosure",
    },
    # --- web and insiders
    {
        "SID": "WEB01",
        "target": ["Process"],
        "description": "Account takeover: credential stuffing, guessing, enumeration of meters "
        "or e-mail addresses",
        "details": "Sign-up, login and reset are open to the Internet.",
        "severity": "High",
        "condition": _named("Customer portal"),
        "stride": "Spoofing, Information disclosure",
    },
    {
        "SID": "WEB02",
        "target": ["Process"],
        "description": "Sticker number alone used to claim someone else's meter",
        "details": "The meter number is printed on the box and visible to visitors.",
        "severity": "High",
        "condition": _named("Customer portal"),
        "stride": "Spoofing, Elevation of privilege",
    },
    {
        "SID": "WEB03",
        "target": ["Process"],
        "description": "Staff account takeover by phished password",
        "details": "Staff pages reach every meter, key and customer.",
        "severity": "Very High",
        "condition": _named("Staff portal and admin"),
        "stride": "Spoofing, Elevation of privilege",
    },
    {
        "SID": "INS01",
        "target": ["Process"],
        "description": "Insider mass action: rotations, suspensions, dispatches or bundles "
        "en masse",
        "details": "A rogue or coerced staff member acts on the whole fleet at once.",
        "severity": "Very High",
        "condition": _named("Staff portal and admin"),
        "stride": "Elevation of privilege, Denial of service",
    },
    {
        "SID": "INS02",
        "target": ["Datastore"],
        "description": "Audit records edited or deleted to hide an action",
        "details": "Whoever writes to the database could rewrite history.",
        "severity": "High",
        "condition": _named("PostgreSQL: audit log"),
        "stride": "Repudiation, Tampering",
    },
    {
        "SID": "INS03",
        "target": ["Process"],
        "description": "A role reaches data or actions beyond its job",
        "details": "Support, billing, revenue protection and field engineers need little each.",
        "severity": "High",
        "condition": _named("Staff portal and admin"),
        "stride": "Elevation of privilege, Information disclosure",
    },
    {
        "SID": "CON01",
        "target": ["Process"],
        "description": "Consent token abused beyond its meter, time window or revocation",
        "details": "A third party holds a bearer token for a customer's readings.",
        "severity": "High",
        "condition": _named("Readings API"),
        "stride": "Elevation of privilege, Information disclosure",
    },
    {
        "SID": "BIL01",
        "target": ["Process"],
        "description": "Billing writes readings or bills twice after a crash",
        "details": "Runs are long and fan out over workers.",
        "severity": "Medium",
        "condition": _named("Billing"),
        "stride": "Tampering",
    },
    {
        "SID": "FRD01",
        "target": ["Process"],
        "description": "Theft by bypass goes unnoticed, or a household on holiday is accused",
        "details": "Detectors judge consumption patterns.",
        "severity": "Medium",
        "condition": _named("Fraud detection"),
        "stride": "Tampering, Repudiation",
    },
    # --- privacy, LINDDUN
    {
        "SID": "LDN01",
        "target": ["Datastore"],
        "description": "Linkability: hourly load profiles kept for years link a household's "
        "routines across time and to other data sets",
        "details": "Each hour's use reveals waking, absence and appliances; the longer it is kept "
        "the more it links.",
        "severity": "High",
        "condition": _named("PostgreSQL: readings"),
        "stride": "LINDDUN: Linkability, Non-compliance",
    },
    {
        "SID": "LDN02",
        "target": ["Datastore"],
        "description": "Identifiability: occupancy and presence at home inferred from a "
        "meter's hourly readings and tied to a named customer",
        "details": "Readings join to the occupancy and account of a named person.",
        "severity": "High",
        "condition": _named("PostgreSQL: readings"),
        "stride": "LINDDUN: Identifiability, Disclosure of information",
    },
    {
        "SID": "LDN03",
        "target": ["Dataflow"],
        "description": "Linkability on the air: an observer links messages to a meter or "
        "reads consumption from them",
        "details": "Anyone on the radio path or at the SMSC sees every message.",
        "severity": "Medium",
        "condition": _flow_named("report SMS", "MO SMS (sender MSISDN, UDH, body)"),
        "stride": "LINDDUN: Linkability, Detectability",
    },
    {
        "SID": "LDN04",
        "target": ["Process"],
        "description": "Unawareness: the customer cannot see how long their readings are "
        "kept, at what detail, or who else reads them",
        "details": "Retention and consent happen out of the customer's sight.",
        "severity": "Medium",
        "condition": _named("Customer portal"),
        "stride": "LINDDUN: Unawareness",
    },
    {
        "SID": "LDN05",
        "target": ["Process"],
        "description": "Detail beyond purpose: hourly data outlives billing and disputes, or "
        "aggregates disagree with the readings they replace",
        "details": "Aggregation must keep totals exact and leave the windows untouched.",
        "severity": "Medium",
        "condition": _named("Retention job"),
        "stride": "LINDDUN: Non-compliance, Data disclosure",
    },
    {
        "SID": "LDN06",
        "target": ["Process"],
        "description": "Previous occupants' or other customers' readings shown after a move",
        "details": "A meter outlives its households.",
        "severity": "High",
        "condition": _named("Customer portal"),
        "stride": "LINDDUN: Identifiability, Disclosure of information",
    },
]


def add_our_threats() -> None:
    """Append our threats to the loaded library (TM's threats are class-level state)."""
    for threat in OUR_THREATS:
        TM._threats.append(Threat(**threat))
