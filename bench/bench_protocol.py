"""Benchmark of the wire protocol: readings per SMS, SMS per meter-year, encode/decode time.

Run from the repository root::

    .venv/bin/python bench/bench_protocol.py            # human-readable
    .venv/bin/python bench/bench_protocol.py --json     # machine-readable

Figures go into docs/benchmarks.md. Timing is wall-clock per message, best-of-5
medians over batches, single thread (a meter has one core to spare; the server scales by
process).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cryptography

from meteragent.protocol import (
    Ack,
    DisplayCode,
    KeyState,
    Reading,
    ReplayWindow,
    Report,
    build_reports,
    decode_downlink,
    decode_uplink,
    derive_keys,
    encode_downlink,
    encode_uplink,
)

KEYS = derive_keys(bytes(range(32)), 1)
T0 = 1_767_225_600
H0 = T0 // 3600
# Typical household hourly profile (Wh per hour, ~18 kWh/day), scaled and jittered +-40%.
PROFILE = [180, 150, 140, 130, 140, 260, 820, 1250, 900, 600, 480, 520,
           610, 540, 470, 560, 900, 1800, 2400, 2100, 1500, 1100, 700, 320]  # fmt: skip


def household(hours: int, rng: random.Random, scale: float = 1.0) -> list[Reading]:
    wh, out = rng.randint(1_000_000, 60_000_000), []
    for i in range(hours):
        out.append(Reading(H0 + i, wh))
        wh += max(0, int(PROFILE[i % 24] * scale * rng.uniform(0.6, 1.4)))
    return out


def uniform(hours: int, rng: random.Random) -> list[Reading]:
    """Every hour an independent 0-5 kWh (a harsher mix than a real household)."""
    wh, out = 10**7, []
    for i in range(hours):
        out.append(Reading(H0 + i, wh))
        wh += rng.randint(0, 5000)
    return out


def readings_per_frame(rng: random.Random) -> dict[str, object]:
    def first_frame(readings: list[Reading]) -> int:
        return len(build_reports(readings, sent_at=T0 + 10_000 * 3600)[0].readings)

    typical = [first_frame(household(400, rng)) for _ in range(200)]
    heavy = [first_frame(household(400, rng, scale=2.5)) for _ in range(200)]
    uniform5k = [first_frame(uniform(400, rng)) for _ in range(200)]
    flat = first_frame([Reading(H0 + i, 10**7 + i * 40) for i in range(400)])
    return {
        "typical_household_min": min(typical),
        "typical_household_median": statistics.median(typical),
        "heavy_household_min": min(heavy),
        "random_0_to_5kwh_per_hour_min": min(uniform5k),
        "tiny_use_under_64wh_per_hour": flat,
        "worst_case_5kwh_every_hour": first_frame(
            [Reading(H0 + i, 99_999_999 + i * 5000) for i in range(400)]
        ),
    }


def sms_per_year(rng: random.Random) -> dict[str, object]:
    # Two sends a day, 12 readings each (all acked), plus one ack per send.
    uplink = downlink = 0
    readings = household(24 * 365, rng)
    for day in range(365):
        for half in range(2):
            chunk = readings[day * 24 + half * 12 : day * 24 + half * 12 + 12]
            uplink += len(build_reports(chunk, sent_at=T0 + (day * 24 + half * 12 + 12) * 3600))
            downlink += 1
    # Same year if every other send is lost: the backlog doubles, still one frame per send.
    lossy = len(build_reports(readings[:24], sent_at=T0 + 24 * 3600))
    return {
        "uplink_frames_per_year": uplink,
        "downlink_acks_per_year": downlink,
        "total_sms_per_year": uplink + downlink,
        "frames_for_a_24h_backlog": lossy,
    }


def timed(fn: Callable[[], object], n: int = 2000, repeat: int = 5) -> float:
    """Median seconds per call over ``repeat`` batches of ``n`` calls (best of warm runs)."""
    fn()
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - t) / n)
    return statistics.median(samples)


def timings(rng: random.Random) -> dict[str, float]:
    day = household(24, rng)
    report = Report(T0 + 86_400, tuple(day))
    ack = Ack(7, H0 + 23, T0 + 86_460, DisplayCode("123456"))
    up = encode_uplink(report, keys=KEYS, counter=7)
    down = encode_downlink(ack, keys=KEYS, counter=7)
    state = KeyState(KEYS, ReplayWindow().accept(3))

    def lookup(_k: int) -> KeyState:
        return state

    counter = iter(range(1, 10**9))
    return {
        "encode_report_24_readings_us": timed(
            lambda: encode_uplink(report, keys=KEYS, counter=next(counter))
        )
        * 1e6,
        "decode_report_24_readings_us": timed(lambda: decode_uplink(up, lookup)) * 1e6,
        "encode_ack_us": timed(lambda: encode_downlink(ack, keys=KEYS, counter=next(counter)))
        * 1e6,
        "decode_ack_us": timed(lambda: decode_downlink(down, lookup)) * 1e6,
        "build_reports_24_readings_us": timed(lambda: build_reports(day, sent_at=T0 + 86_400))
        * 1e6,
        "derive_keys_us": timed(lambda: derive_keys(bytes(32), 1), n=500) * 1e6,
    }


def machine() -> dict[str, object]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "cryptography": cryptography.__version__,
        "platform": platform.platform(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rng = random.Random(2026)
    result = {
        "machine": machine(),
        "readings_per_frame": readings_per_frame(rng),
        "sms_per_meter_year": sms_per_year(rng),
        "timing": timings(rng),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for section, values in result.items():
        print(f"[{section}]")
        for key, value in values.items():
            shown = f"{value:.1f}" if isinstance(value, float) else value
            print(f"  {key}: {shown}")


if __name__ == "__main__":
    main()
