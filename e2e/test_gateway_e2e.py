"""End to end with real peers: meter agents → fake modems → operator network → Kannel
(bearerbox + smsbox, fake SMSC) → our webhook under gunicorn on PostgreSQL → outbox → Celery
worker on Redis → Kannel sendsms → network → modems → agents.

Readings flow in, acks flow back, the agents mark readings acknowledged and correct their
clocks; the database going away makes the webhook answer 503 and Kannel re-delivers later with
nothing lost; a forged and a replayed SMS injected at the SMSC are rejected.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis
import serial
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import connection

from devices.models import Meter, Sim
from devices.services import issue_bundle
from e2e.harness.kannel import INSTALL_HINT, KannelGateway, free_ports, kannel_installed
from e2e.harness.network import OperatorNetwork
from e2e.harness.portal import (
    INGEST,
    INGEST_WORKER,
    PortalProcess,
    WorkerProcess,
    base_env,
    current_database_url,
    wait_for,
)
from e2e.harness.smsc import FakeSmscClient
from meteragent.agent import Agent, AgentConfig
from meteragent.bundle import parse_bundle
from meteragent.clock import SystemClock
from meteragent.energy import SimulatedEnergySource
from meteragent.keyfile import DeviceKeys
from meteragent.modem import GsmModem
from meteragent.store import Store
from meteragent.transport import ModemTransport
from readings.models import Reading
from smsgateway.models import InboundMessage, OutboundMessage
from testing.devices import luhn_iccid

pytestmark = [pytest.mark.kannel, pytest.mark.postgres, pytest.mark.redis]

UTILITY = "+447700900000"
E2E_REDIS_DB = 12
CLOCK_ERROR = 90  # seconds the meters' clocks are ahead of the utility's


@dataclass
class SimulatedMeter:
    meter: Meter
    msisdn: str
    agent: Agent
    store: Store
    clock: SystemClock
    transport: ModemTransport

    def send_and_wait_for_ack(self, timeout: float = 60) -> str:
        """Send everything unacknowledged, then handle incoming SMS until an ack arrives."""
        self.agent.send_now()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            incoming = self.transport.wait(self.clock.monotonic() + 1)
            if incoming is not None and self.agent.handle_message(*incoming) == "ack":
                return "ack"
        raise AssertionError(f"no ack for meter {self.meter.number} within {timeout} s")


@dataclass
class Stack:
    network: OperatorNetwork
    gateway: KannelGateway
    db_name: str
    workdir: Path


def _require_kannel() -> None:
    if not kannel_installed():
        import os

        if os.environ.get("CI") == "true":
            pytest.fail(INSTALL_HINT)
        pytest.skip(INSTALL_HINT)


@pytest.fixture
def stack(transactional_db, tmp_path, settings):
    _require_kannel()
    settings.SMS_GATEWAY_MSISDN = UTILITY
    web_port, sendsms_port, smsc_port, admin_port, smsbox_port = free_ports(5)
    redis_url = f"redis://127.0.0.1:6379/{E2E_REDIS_DB}"
    redis.Redis.from_url(redis_url).flushdb()
    password = secrets.token_urlsafe(12)
    secret = settings.SMS_GATEWAY_SECRET
    env = base_env(
        DATABASE_URL=current_database_url(),
        REDIS_URL=redis_url,
        CELERY_TASK_ALWAYS_EAGER="false",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SMS_GATEWAY_MSISDN=UTILITY,
        SMS_BACKEND="smsgateway.backends.KannelBackend",
        KANNEL_SENDSMS_URL=f"http://127.0.0.1:{sendsms_port}/cgi-bin/sendsms",
        KANNEL_SENDSMS_USER="portal",
        KANNEL_SENDSMS_PASSWORD=password,
        KANNEL_DLR_URL=f"http://127.0.0.1:{web_port}/sms/kannel/dlr?secret={secret}&id={{id}}",
        DB_CONN_MAX_AGE="0",
    )
    # The gateway-facing ingest service, as deployed: it is not given the private KEK (it
    # stores messages raw and never opens one); the sms worker verifies with it.
    ingest_env = {k: v for k, v in env.items() if k != "DEVICE_KEK_PRIVATE_KEYS"}
    ingest_env["DJANGO_SETTINGS_MODULE"] = "utility.settings_ingest"
    portal = PortalProcess(
        ingest_env, web_port, tmp_path / "gunicorn.log", app=INGEST, worker_class=INGEST_WORKER
    )
    worker = WorkerProcess(env, tmp_path / "celery.log")
    gateway = KannelGateway(
        tmp_path / "kannel",
        inbound_url=f"http://127.0.0.1:{web_port}/sms/kannel/inbound?secret={secret}",
        smsc_port=smsc_port,
        bearerbox_admin_port=admin_port,
        smsbox_port=smsbox_port,
        sendsms_port=sendsms_port,
        sendsms_user="portal",
        sendsms_password=password,
        global_sender=UTILITY,
        http_request_retry=30,
        http_queue_delay=1,
        log_level=2,
    )
    try:
        with gateway, FakeSmscClient(smsc_port) as smsc:
            gateway.wait_smsc_online()
            network = OperatorNetwork(smsc, utility_msisdn=UTILITY).start()
            try:
                yield Stack(network, gateway, connection.settings_dict["NAME"], tmp_path)
            finally:
                network.stop()
    finally:
        worker.stop()
        portal.stop()


def _meter(stack: Stack, index: int, hours: int) -> SimulatedMeter:
    meter = Meter.objects.create(number=f"ENDTOEND{index:017d}")
    msisdn = f"+4477020{index:05d}"
    Sim.objects.create(msisdn=msisdn, iccid=luhn_iccid(f"894450050219{index:06d}"), meter=meter)
    bundle = parse_bundle(issue_bundle(meter, by="e2e"))
    modem_fake = stack.network.attach(msisdn)
    clock = SystemClock(offset=CLOCK_ERROR)
    modem = GsmModem(serial.Serial(modem_fake.path, timeout=0), command_timeout=5, send_timeout=10)
    transport = ModemTransport(modem, UTILITY, clock)
    transport.open()
    store = Store(stack.workdir / f"meter{index}.db")
    now_hour = int(time.time()) // 3600
    for i in range(hours):  # what the meter stored over the last hours
        store.record_reading(now_hour - hours + i, 2_000_000 + 350 * i + index)
    signing = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    agent = Agent(
        store=store,
        keys=DeviceKeys.from_bundle(bundle),
        transport=transport,
        energy=SimulatedEnergySource(seed=index, start=time.time(), start_wh=2_000_000),
        clock=clock,
        signing_public=signing,
        config=AgentConfig(),
    )
    return SimulatedMeter(meter, msisdn, agent, store, clock, transport)


def test_readings_flow_in_and_acks_flow_back_through_kannel(stack):
    meters = [_meter(stack, i, hours=10 + i) for i in range(3)]
    for sim in meters:
        assert sim.send_and_wait_for_ack() == "ack"

    for sim in meters:
        stored = Reading.objects.filter(meter=sim.meter).count()
        assert stored == len(sim.store.readings())
        # Acknowledged up to the newest reading, and the clock corrected towards the utility's.
        assert sim.store.unacknowledged_readings() == []
        assert sim.store.acknowledged_up_to() == sim.store.readings()[-1].hour
        assert abs(sim.clock.offset) < CLOCK_ERROR - 60
        # The device-info frame (the meter's signing key) is a separate SMS: it may reach the
        # workers after the report whose ack has already come back, so it is waited for.
        wait_for(
            lambda sim=sim: Meter.objects.filter(
                pk=sim.meter.pk, status="active", signing_public_key__isnull=False
            ).exists(),
            timeout=30,
            what=f"device info of meter {sim.meter.number}",
        )
    assert stack.network.stats.undeliverable == 0
    # Kannel reported the acks delivered (its fake SMSC generates delivery reports).
    wait_for(
        lambda: OutboundMessage.objects.filter(status="delivered").count() == len(meters),
        timeout=30,
        what="delivery reports",
    )


def test_forged_and_replayed_sms_injected_at_the_smsc_are_rejected(stack):
    sim = _meter(stack, 7, hours=4)
    assert sim.send_and_wait_for_ack() == "ack"
    captured = stack.network.stats.uplink_frames[sim.msisdn][-1]
    readings_before = Reading.objects.count()

    stack.network.inject_mo(sim.msisdn, captured)  # an SMSC-side replay
    forged = bytearray(captured)
    forged[60] ^= 0x01
    stack.network.inject_mo(sim.msisdn, bytes(forged))  # a forgery
    stack.network.inject_mo("+447799999999", captured)  # from a number we do not know

    rejected = wait_for(
        lambda: (
            set(InboundMessage.objects.filter(status="rejected").values_list("reason", flat=True))
            if InboundMessage.objects.filter(status="rejected").count() >= 3
            else None
        ),
        timeout=30,
        what="three rejections",
    )
    assert rejected == {"replay", "auth_failed", "unknown_sender"}
    assert Reading.objects.count() == readings_before
    assert OutboundMessage.objects.filter(meter=sim.meter).count() == 1  # no ack for any of them


def test_the_database_going_away_loses_nothing(stack):
    sim = _meter(stack, 9, hours=6)
    # The same server as the test database (the machine's, or the test command's own).
    server = current_database_url().rsplit("/", 1)[0].replace("postgres://", "postgresql://", 1)
    admin = psycopg.connect(f"{server}/postgres", autocommit=True)
    db = stack.db_name
    try:
        # Refuse new connections and cut the portal's: the webhook can no longer store.
        admin.execute(f'ALTER DATABASE "{db}" WITH ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [db],
        )
        sim.agent.send_now()
        log = stack.workdir / "gunicorn.log"
        wait_for(
            lambda: "asking the gateway to retry" in log.read_text(errors="replace"),
            timeout=20,
            what="the webhook answering 503 to Kannel",
        )
    finally:
        admin.execute(f'ALTER DATABASE "{db}" WITH ALLOW_CONNECTIONS true')
        admin.close()
    connection.close()  # our own connection was cut too; reconnect
    # Kannel re-delivers; the ack comes back; nothing is lost.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and sim.store.unacknowledged_readings():
        incoming = sim.transport.wait(sim.clock.monotonic() + 1)
        if incoming is not None:
            sim.agent.handle_message(*incoming)
    assert sim.store.unacknowledged_readings() == []
    assert Reading.objects.filter(meter=sim.meter).count() == len(sim.store.readings())
    # Every message processed, the device-info frame too (it may trail the acked report).
    wait_for(
        lambda: not InboundMessage.objects.filter(status="received").exists(),
        timeout=30,
        what="every stored message processed",
    )
    assert InboundMessage.objects.filter(meter=sim.meter, status="accepted").count() >= 2
