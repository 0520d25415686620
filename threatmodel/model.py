"""The system as OWASP pytm sees it: trust boundaries, actors, processes, stores and every data
flow with its protocol stack.

The model is data: one line per boundary, element or flow in the tables below, so adding a part
of the system is one line. `build()` turns the tables into a pytm model (pytm keeps its elements
in class-level state, so each build starts from a reset).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from pytm import TM, Actor, Boundary, Dataflow, Datastore, ExternalEntity, Process, Server

# key: (label, enclosing boundary key or None)
BOUNDARIES: dict[str, tuple[str, str | None]] = {
    "premises": ("Customer premises: sealed meter box", None),
    "field": ("Field: installer and engineer laptops, USB media", None),
    "operator": ("Mobile operator: GSM 2G air, SMSC", None),
    "internet": ("Internet: browsers and API clients", None),
    "staff": ("Staff workstations (Internet, TOTP)", None),
    "dmz": ("Utility DMZ: TLS, SMS gateway, ingest", None),
    "app": ("Utility application network", None),
    "kek": ("Key-holding workers (private KEK)", "app"),
    "data": ("Utility data tier", "app"),
    "email": ("E-mail providers", None),
}

# What a pytm class each kind is.
KINDS = {
    "actor": Actor,
    "external": ExternalEntity,
    "process": Process,
    "server": Server,
    "store": Datastore,
}

PERSONAL = {"storesPII": True, "storesSensitiveData": True}
AT_REST = {"isEncryptedAtRest": True, "hasAccessControl": True}
WEB = {
    "implementsCSRFToken": True,
    "sanitizesInput": True,
    "encodesOutput": True,
    "validatesInput": True,
    "usesParameterizedInput": True,
    "implementsServerSideValidation": True,
    "hasAccessControl": True,
    "authorizesSource": True,
    "usesStrongSessionIdentifiers": True,
    "verifySessionIdentifiers": True,
    "encryptsCookies": True,
    "disablesiFrames": True,
    "validatesHeaders": True,
    "validatesContentType": True,
    "implementsStrictHTTPValidation": True,
    "handlesResourceConsumption": True,
    "isHardened": True,
    "implementsPOLP": True,
    "usesSecureFunctions": True,
    "handlesCrashes": True,
}
WORKER = {
    "validatesInput": True,
    "usesParameterizedInput": True,
    "checksInputBounds": True,
    "handlesCrashes": True,
    "handlesResourceConsumption": True,
    "isResilient": True,
    "implementsPOLP": True,
    "hasAccessControl": True,
}

# name: (kind, boundary key, description, attributes and controls)
ELEMENTS: dict[str, tuple[str, str | None, str, dict[str, Any]]] = {
    # --- actors
    "Customer": (
        "actor",
        "internet",
        "household signed up with sticker number, e-mail and a code on the meter's display",
        {},
    ),
    "Third party (consent token)": (
        "actor",
        "internet",
        "reads one meter's readings with a customer's consent token",
        {},
    ),
    "Support staff": ("actor", "staff", "role Support: reads customers", {}),
    "Provisioning staff": (
        "actor",
        "staff",
        "role Provisioning: meters, SIMs, keys, bundles, rotations",
        {},
    ),
    "Billing staff": ("actor", "staff", "role Billing: tariffs, runs, invoices, credit notes", {}),
    "Revenue protection staff": (
        "actor",
        "staff",
        "role Revenue protection: cases and dispatch",
        {},
    ),
    "Security admin": (
        "actor",
        "staff",
        "role Security admin: assigns roles, reads the audit log",
        {"isAdmin": True},
    ),
    "Field engineer": (
        "actor",
        "field",
        "role Field engineer: dispatch list, visits, SD-card uploads",
        {},
    ),
    "Installer": ("actor", "field", "loads a one-time provisioning bundle into a new meter", {}),
    "Operations engineer": (
        "actor",
        "app",
        "shell on the servers: management commands, deploys",
        {"isAdmin": True},
    ),
    "Attacker with physical access": (
        "actor",
        "premises",
        "opens the box, reads or rewrites the SD card, probes the console",
        {},
    ),
    # --- meter box
    "Metering IC": ("external", "premises", "off-the-shelf watt-hour chip (out of scope)", {}),
    "Meter agent": (
        "process",
        "premises",
        "meteragent: hourly reading, durable store, reports, acks, clock",
        {
            "isHardened": True,
            "validatesInput": True,
            "checksInputBounds": True,
            "handlesCrashes": True,
            "usesCodeSigning": True,
            "implementsNonce": True,
            "providesIntegrity": True,
        },
    ),
    "Meter console": (
        "process",
        "premises",
        "service console over serial/USB: bundle load, export, logged and reported",
        {"authenticatesSource": True, "hasAccessControl": True, "tracksExecutionFlow": True},
    ),
    "GSM modem": (
        "external",
        "premises",
        "off-the-shelf 2G modem, AT commands in PDU mode (out of scope)",
        {},
    ),
    "Meter store (SD card)": (
        "store",
        "premises",
        "SQLite: hourly readings, counters (also in counters.json); MACed, hash-chained",
        {"isSQL": True, "storesSensitiveData": True, "providesIntegrity": True},
    ),
    "Meter key files (SD card)": (
        "store",
        "premises",
        "root key and update-signing public key from the bundle",
        {
            "isSQL": False,
            "storesSensitiveData": True,
            "type": "FILE_SYSTEM",
            "hasAccessControl": True,
        },
    ),
    # --- field
    "Installer bundle": (
        "store",
        "field",
        "one-time provisioning bundle (root key, SIM binding)",
        {
            "isSQL": False,
            "storesSensitiveData": True,
            "type": "FILE_SYSTEM",
            "isEncryptedAtRest": True,
        },
    ),
    "SD-card export (field laptop)": (
        "store",
        "field",
        "readings exported from a meter, signed by it",
        {"isSQL": False, "type": "FILE_SYSTEM", "providesIntegrity": True, **PERSONAL},
    ),
    # --- operator
    "Operator SMSC": (
        "external",
        "operator",
        "the mobile operator's SMS centre and core network (not ours)",
        {},
    ),
    # --- DMZ
    "nginx (TLS)": (
        "server",
        "dmz",
        "terminates TLS for browsers, API clients and the gateway",
        {"isHardened": True, "handlesResourceConsumption": True, "validatesHeaders": True},
    ),
    "Kannel (bearerbox, smsbox)": (
        "process",
        "dmz",
        "SMS gateway: SMPP to the SMSC, post-url to ingest, sendsms",
        {"isHardened": True},
    ),
    "Ingest service": (
        "process",
        "dmz",
        "webhook: authenticates the gateway, stores raw, parses nothing, holds no key",
        {
            **WORKER,
            "authenticatesSource": True,
            "validatesContentType": True,
            "implementsStrictHTTPValidation": True,
        },
    ),
    # --- application
    "Customer portal": (
        "process",
        "app",
        "sign-up, claim, login, dashboard, exports, invoices, consent",
        dict(WEB),
    ),
    "Readings API": (
        "process",
        "app",
        "DRF API: personal and consent bearer tokens",
        {**WEB, "implementsAPI": True},
    ),
    "Staff portal and admin": (
        "process",
        "app",
        "staff pages and Django admin, TOTP on every URL",
        {**WEB, "usesMFA": True},
    ),
    "Celery beat": (
        "process",
        "app",
        "the schedule (CELERY_BEAT_SCHEDULE)",
        {"implementsPOLP": True},
    ),
    "Celery workers": ("process", "app", "queues default and batch", dict(WORKER)),
    "Billing": (
        "process",
        "app",
        "monthly runs, estimates, invoices; reads through a read-only role",
        dict(WORKER),
    ),
    "Fraud detection": (
        "process",
        "app",
        "detectors, cases, dispatch, verified uploads",
        dict(WORKER),
    ),
    "Retention job": (
        "process",
        "app",
        "aggregates old hourly readings to daily, drops old partitions",
        dict(WORKER),
    ),
    "Management commands": (
        "process",
        "app",
        "manage.py commands run by operations",
        {"implementsPOLP": True},
    ),
    "SMS workers": (
        "process",
        "kek",
        "queues sms and sms_send: verify, decrypt, store, seal acks",
        {**WORKER, "authenticatesSource": True, "implementsNonce": True, "providesIntegrity": True},
    ),
    "KEK private key files": (
        "store",
        "kek",
        "HPKE private keys that unwrap meter root keys",
        {
            "isSQL": False,
            "type": "FILE_SYSTEM",
            "storesSensitiveData": True,
            "hasAccessControl": True,
        },
    ),
    "Server secrets": (
        "store",
        "app",
        "SECRET_KEY, AUDIT_KEY, gateway secret, DB passwords (files or environment)",
        {
            "isSQL": False,
            "type": "FILE_SYSTEM",
            "storesSensitiveData": True,
            "hasAccessControl": True,
        },
    ),
    "Redis": (
        "store",
        "app",
        "Celery broker and results, cache, rate-limit counters",
        {"isSQL": False, "hasAccessControl": True},
    ),
    # --- PostgreSQL, one store per group of tables
    "PostgreSQL: accounts": (
        "store",
        "data",
        "users (argon2), sessions, e-mail addresses, TOTP, occupancy, claims",
        {**PERSONAL, **AT_REST},
    ),
    "PostgreSQL: devices and wrapped keys": (
        "store",
        "data",
        "meters, SIMs, HPKE-wrapped root keys, rotations, events, alerts",
        {"storesSensitiveData": True, **AT_REST},
    ),
    "PostgreSQL: readings": (
        "store",
        "data",
        "hourly readings (monthly partitions), daily aggregates, conflicts, API token hashes",
        {**PERSONAL, **AT_REST},
    ),
    "PostgreSQL: SMS inbox and outbox": (
        "store",
        "data",
        "raw inbound frames, sealed outbound frames, delivery reports",
        {"storesSensitiveData": True, **AT_REST},
    ),
    "PostgreSQL: billing": (
        "store",
        "data",
        "tariffs, accounts, runs, invoices (issued ones immutable)",
        {**PERSONAL, **AT_REST},
    ),
    "PostgreSQL: fraud": (
        "store",
        "data",
        "cases, case events, work orders, uploads",
        {**PERSONAL, **AT_REST},
    ),
    "PostgreSQL: audit log": (
        "store",
        "data",
        "HMAC-chained, append-only (trigger-enforced) security events",
        {"storesLogData": True, "providesIntegrity": True, **PERSONAL, **AT_REST},
    ),
    "PostgreSQL: framework tables": (
        "store",
        "data",
        "Django content types, permissions, groups, admin log",
        {"hasAccessControl": True},
    ),
    "PostgreSQL: operations": (
        "store",
        "data",
        "staff-started runs and their progress, daily read success rates",
        {"hasAccessControl": True},
    ),
    # --- e-mail
    "E-mail (SMTP relay, mailboxes)": (
        "store",
        "email",
        "sign-up and reset links, alerts to operators",
        {"isSQL": False, **PERSONAL},
    ),
}

SMS_UP = "binary SMS-SUBMIT PDU (8-bit, 140 B AEAD frame) / GSM 2G air (A5/x) / operator core"
SMS_DOWN = "binary SMS-DELIVER PDU (8-bit, 140 B AEAD frame) / operator core / GSM 2G air"
SMPP = "SMPP over TCP (operator link, VPN)"
KANNEL_POST = "HTTPS (TLS at nginx) POST post-url, octet-stream; shared secret + address allow-list"
SENDSMS = "HTTP sendsms on the gateway host (username/password), coding=1"
HTTPS = "HTTPS (TLS 1.2+, HSTS) via nginx"
UPSTREAM = "HTTP to gunicorn on the loopback/private network"
PG = "PostgreSQL protocol over TLS, per-role password"
REDIS = "Redis protocol (RESP) on the private network, password"
SMTP = "SMTP with STARTTLS to the relay"
SD = "SQLite on ext4 on the SD card"
FILE = "local file read (0600, service user)"

# The diagram labels a flow with a short name of its stack; the model and the docs keep the whole.
SHORT_STACK = {
    SMS_UP: "SMS 8-bit PDU / GSM 2G",
    SMS_DOWN: "SMS 8-bit PDU / GSM 2G",
    SMPP: "SMPP/TCP, VPN",
    KANNEL_POST: "HTTPS post-url, secret",
    SENDSMS: "HTTP sendsms",
    HTTPS: "HTTPS",
    UPSTREAM: "HTTP",
    PG: "PostgreSQL/TLS",
    REDIS: "Redis",
    SMTP: "SMTP/STARTTLS",
    SD: "SQLite on SD",
    FILE: "file",
}

# (source, sink, what flows, protocol stack, attributes and controls)
FLOWS: list[tuple[str, str, str, str, dict[str, Any]]] = [
    # readings, on the meter
    ("Metering IC", "Meter agent", "energy register (Wh)", "I2C bus inside the sealed box", {}),
    (
        "Meter agent",
        "Meter store (SD card)",
        "hourly cumulative reading (MACed, chained)",
        SD,
        {"providesIntegrity": True},
    ),
    (
        "Meter store (SD card)",
        "Meter agent",
        "unacknowledged readings, counters",
        SD,
        {"providesIntegrity": True},
    ),
    ("Meter key files (SD card)", "Meter agent", "root key, key id", FILE, {}),
    # report and ack over SMS
    (
        "Meter agent",
        "GSM modem",
        "report frame",
        "AT+CMGS PDU mode over UART",
        {"isEncrypted": True, "providesIntegrity": True},
    ),
    (
        "GSM modem",
        "Operator SMSC",
        "report SMS",
        SMS_UP,
        {"isEncrypted": True, "providesIntegrity": True},
    ),
    (
        "Operator SMSC",
        "Kannel (bearerbox, smsbox)",
        "MO SMS (sender MSISDN, UDH, body)",
        SMPP,
        {"isEncrypted": True},
    ),
    (
        "Kannel (bearerbox, smsbox)",
        "nginx (TLS)",
        "MO message and delivery reports",
        KANNEL_POST,
        {"isEncrypted": True, "authenticatesSource": True},
    ),
    ("nginx (TLS)", "Ingest service", "MO message (at most 2 KiB)", UPSTREAM, {}),
    (
        "Ingest service",
        "PostgreSQL: SMS inbox and outbox",
        "raw message, one row per gateway id",
        PG,
        {"isEncrypted": True},
    ),
    ("Ingest service", "Redis", "drain task", REDIS, {}),
    (
        "Ingest service",
        "PostgreSQL: audit log",
        "refused requests with client address",
        PG,
        {"isEncrypted": True},
    ),
    ("Redis", "SMS workers", "drain, send and rekey tasks", REDIS, {}),
    ("KEK private key files", "SMS workers", "KEK private halves", FILE, {}),
    (
        "PostgreSQL: SMS inbox and outbox",
        "SMS workers",
        "waiting raw messages (SKIP LOCKED)",
        PG,
        {"isEncrypted": True},
    ),
    (
        "PostgreSQL: devices and wrapped keys",
        "SMS workers",
        "wrapped root key, replay window, counters",
        PG,
        {"isEncrypted": True},
    ),
    (
        "SMS workers",
        "PostgreSQL: readings",
        "verified readings (idempotent)",
        PG,
        {"isEncrypted": True},
    ),
    (
        "SMS workers",
        "PostgreSQL: devices and wrapped keys",
        "replay window, high-water mark, events",
        PG,
        {"isEncrypted": True},
    ),
    (
        "SMS workers",
        "PostgreSQL: SMS inbox and outbox",
        "sealed acks, display codes, rekeys",
        PG,
        {"isEncrypted": True},
    ),
    (
        "SMS workers",
        "PostgreSQL: audit log",
        "rejected messages, key events",
        PG,
        {"isEncrypted": True},
    ),
    (
        "SMS workers",
        "Kannel (bearerbox, smsbox)",
        "MT downlink frame",
        SENDSMS,
        {"authenticatesSource": True},
    ),
    ("Kannel (bearerbox, smsbox)", "Operator SMSC", "MT SMS", SMPP, {"isEncrypted": True}),
    (
        "Operator SMSC",
        "GSM modem",
        "ack, display code, rekey SMS",
        SMS_DOWN,
        {"isEncrypted": True, "providesIntegrity": True},
    ),
    (
        "GSM modem",
        "Meter agent",
        "ack frame (time, high-water mark)",
        "AT+CMGL/+CMTI PDU mode over UART",
        {"isEncrypted": True, "providesIntegrity": True},
    ),
    # customers and third parties
    (
        "Customer",
        "nginx (TLS)",
        "sign-up, claim code, login, dashboard, exports",
        HTTPS,
        {"isEncrypted": True},
    ),
    ("nginx (TLS)", "Customer portal", "customer requests", UPSTREAM, {}),
    (
        "Customer portal",
        "PostgreSQL: accounts",
        "users, sessions, claims",
        PG,
        {"isEncrypted": True},
    ),
    (
        "PostgreSQL: readings",
        "Customer portal",
        "own meters' usage within occupancy",
        PG,
        {"isEncrypted": True},
    ),
    ("PostgreSQL: billing", "Customer portal", "own invoices", PG, {"isEncrypted": True}),
    (
        "Customer portal",
        "Redis",
        "rate limits, cache; claim-code, registration and e-mail tasks",
        REDIS,
        {},
    ),
    (
        "Celery workers",
        "E-mail (SMTP relay, mailboxes)",
        "sign-up and reset links, account-exists notices",
        SMTP,
        {"isEncrypted": True},
    ),
    (
        "E-mail (SMTP relay, mailboxes)",
        "Customer",
        "sign-up and reset links",
        "IMAP/HTTPS at the customer's provider",
        {},
    ),
    (
        "Customer portal",
        "PostgreSQL: audit log",
        "logins, failures, claims, consents",
        PG,
        {"isEncrypted": True},
    ),
    (
        "Third party (consent token)",
        "nginx (TLS)",
        "API requests with bearer token",
        HTTPS,
        {"isEncrypted": True},
    ),
    ("nginx (TLS)", "Readings API", "API requests", UPSTREAM, {}),
    (
        "PostgreSQL: readings",
        "Readings API",
        "consented meter's readings, token hashes",
        PG,
        {"isEncrypted": True},
    ),
    (
        "Readings API",
        "PostgreSQL: audit log",
        "token use and refusals (rate-bounded)",
        PG,
        {"isEncrypted": True},
    ),
    # staff
    ("Support staff", "nginx (TLS)", "customer look-ups", HTTPS, {"isEncrypted": True}),
    (
        "Provisioning staff",
        "nginx (TLS)",
        "meters, SIMs, bundles, rotations",
        HTTPS,
        {"isEncrypted": True},
    ),
    ("Billing staff", "nginx (TLS)", "tariffs, runs, credit notes", HTTPS, {"isEncrypted": True}),
    (
        "Revenue protection staff",
        "nginx (TLS)",
        "cases, dispatch approvals",
        HTTPS,
        {"isEncrypted": True},
    ),
    ("Security admin", "nginx (TLS)", "roles, audit review", HTTPS, {"isEncrypted": True}),
    (
        "Field engineer",
        "nginx (TLS)",
        "dispatch list, visit outcome, SD-card upload",
        HTTPS,
        {"isEncrypted": True},
    ),
    (
        "nginx (TLS)",
        "Staff portal and admin",
        "staff requests (password + TOTP session)",
        UPSTREAM,
        {},
    ),
    (
        "Staff portal and admin",
        "PostgreSQL: devices and wrapped keys",
        "meters, SIMs, new wrapped keys (public KEK only)",
        PG,
        {"isEncrypted": True},
    ),
    (
        "Staff portal and admin",
        "PostgreSQL: billing",
        "tariffs, credit notes",
        PG,
        {"isEncrypted": True},
    ),
    (
        "Staff portal and admin",
        "PostgreSQL: fraud",
        "case notes, dispatches, verified uploads",
        PG,
        {"isEncrypted": True},
    ),
    (
        "Staff portal and admin",
        "PostgreSQL: accounts",
        "role assignments, customer look-ups",
        PG,
        {"isEncrypted": True},
    ),
    (
        "PostgreSQL: readings",
        "Staff portal and admin",
        "a meter's usage (audited view)",
        PG,
        {"isEncrypted": True},
    ),
    (
        "Staff portal and admin",
        "PostgreSQL: audit log",
        "every staff action, admin changes",
        PG,
        {"isEncrypted": True},
    ),
    (
        "Staff portal and admin",
        "PostgreSQL: framework tables",
        "groups, permissions, admin log",
        PG,
        {"isEncrypted": True},
    ),
    ("Staff portal and admin", "Redis", "billing runs and scans started", REDIS, {}),
    (
        "Staff portal and admin",
        "PostgreSQL: operations",
        "runs started (who, when), fleet figures read",
        PG,
        {"isEncrypted": True},
    ),
    (
        "Celery workers",
        "PostgreSQL: operations",
        "run progress, daily read success rates",
        PG,
        {"isEncrypted": True},
    ),
    (
        "Staff portal and admin",
        "Installer bundle",
        "one-time bundle download",
        HTTPS,
        {"isEncrypted": True},
    ),
    # installation and field visits
    ("Installer bundle", "Installer", "bundle on USB stick", "USB mass storage", {}),
    (
        "Installer",
        "Meter console",
        "meteragent load-bundle",
        "USB serial console / USB mass storage",
        {},
    ),
    ("Meter console", "Meter key files (SD card)", "root key, signing key", FILE, {}),
    (
        "Meter console",
        "SD-card export (field laptop)",
        "signed readings export",
        "USB serial console / USB mass storage",
        {"providesIntegrity": True},
    ),
    (
        "Field engineer",
        "Meter console",
        "service commands (logged, reported upstream)",
        "USB serial console",
        {},
    ),
    (
        "SD-card export (field laptop)",
        "Field engineer",
        "export file for upload",
        "laptop file system",
        {},
    ),
    (
        "Attacker with physical access",
        "Meter store (SD card)",
        "offline overwrite, old copy put back",
        "SD card removed and mounted elsewhere",
        {},
    ),
    ("Attacker with physical access", "Meter console", "console probing", "USB serial console", {}),
    # background work
    ("Celery beat", "Redis", "scheduled tasks", REDIS, {}),
    ("Redis", "Celery workers", "billing, fraud, audit, partition, retention tasks", REDIS, {}),
    ("Celery workers", "Billing", "billing run chunks", "in-process call", {}),
    ("Celery workers", "Fraud detection", "detector scans", "in-process call", {}),
    ("Celery workers", "Retention job", "daily retention pass", "in-process call", {}),
    (
        "PostgreSQL: readings",
        "Billing",
        "readings (read-only role portal_billing_ro)",
        PG,
        {"isEncrypted": True},
    ),
    ("Billing", "PostgreSQL: billing", "runs, invoices, meter reads", PG, {"isEncrypted": True}),
    ("PostgreSQL: readings", "Fraud detection", "consumption history", PG, {"isEncrypted": True}),
    ("Fraud detection", "PostgreSQL: fraud", "cases", PG, {"isEncrypted": True}),
    (
        "Fraud detection",
        "PostgreSQL: audit log",
        "cases opened, dispatches",
        PG,
        {"isEncrypted": True},
    ),
    (
        "Retention job",
        "PostgreSQL: readings",
        "daily aggregates in, old hourly rows and partitions out",
        PG,
        {"isEncrypted": True},
    ),
    ("Retention job", "PostgreSQL: audit log", "each retention step", PG, {"isEncrypted": True}),
    ("PostgreSQL: audit log", "Celery workers", "chain verification", PG, {"isEncrypted": True}),
    (
        "Celery workers",
        "E-mail (SMTP relay, mailboxes)",
        "alerts: broken chain, caps exceeded",
        SMTP,
        {"isEncrypted": True},
    ),
    # operations
    (
        "Operations engineer",
        "Management commands",
        "manage.py invocations",
        "SSH to the application host",
        {"isEncrypted": True},
    ),
    ("Management commands", "KEK private key files", "generated KEK", FILE, {}),
    (
        "Management commands",
        "PostgreSQL: devices and wrapped keys",
        "imported meters, re-wrapped keys",
        PG,
        {"isEncrypted": True},
    ),
    (
        "Management commands",
        "PostgreSQL: accounts",
        "staff accounts, roles, break-glass TOTP",
        PG,
        {"isEncrypted": True},
    ),
    (
        "Management commands",
        "PostgreSQL: audit log",
        "chain verification, command actions",
        PG,
        {"isEncrypted": True},
    ),
    ("Server secrets", "Staff portal and admin", "SECRET_KEY, AUDIT_KEY", FILE, {}),
    ("Server secrets", "Ingest service", "gateway secret", FILE, {}),
]


@dataclass
class Model:
    tm: TM
    elements: dict[str, Any]
    boundaries: dict[str, Boundary]
    flows: list[Dataflow]


def _stable_uuid(name: str) -> uuid.UUID:
    """pytm names diagram nodes after a UUID; derived from the name, the diagram is stable."""
    return uuid.UUID(bytes=hashlib.sha256(name.encode()).digest()[:16])


def _configure(element: Any, attributes: dict[str, Any]) -> None:
    control_names = type(element.controls).model_fields
    for name, value in attributes.items():
        if name in control_names:
            setattr(element.controls, name, value)
        else:
            setattr(element, name, value)


def flow_label(what: str, protocol: str) -> str:
    return f"{what} [{SHORT_STACK.get(protocol, protocol)}]"


def build() -> Model:
    """A fresh pytm model of the system, threats of pytm's library and ours loaded."""
    from .threats import add_our_threats  # the threat library needs the pytm classes loaded

    TM.reset()
    tm = TM(
        "SMS smart-meter utility platform",
        "Meters report hourly readings by binary SMS through the operator and Kannel to the "
        "utility's ingest service; customers, staff, field engineers and consenting third "
        "parties use the portal and API; Celery workers bill, detect fraud and keep data only "
        "as long as the retention policy allows.",
        isOrdered=True,
    )
    add_our_threats()
    boundaries: dict[str, Boundary] = {}
    for key, (label, parent) in BOUNDARIES.items():
        boundaries[key] = Boundary(label, uuid=_stable_uuid(label))
        if parent:
            boundaries[key].inBoundary = boundaries[parent]
    elements: dict[str, Any] = {}
    for name, (kind, boundary, description, attributes) in ELEMENTS.items():
        element = KINDS[kind](name, description=description, uuid=_stable_uuid(name))
        if boundary:
            element.inBoundary = boundaries[boundary]
        _configure(element, attributes)
        elements[name] = element
    flows = []
    for source, sink, what, protocol, attributes in FLOWS:
        label = flow_label(what, protocol)
        dataflow = Dataflow(
            elements[source],
            elements[sink],
            label,
            protocol=protocol,
            note=what,
            uuid=_stable_uuid(f"{source}|{sink}|{label}"),
        )
        _configure(dataflow, attributes)
        flows.append(dataflow)
    return Model(tm=tm, elements=elements, boundaries=boundaries, flows=flows)
