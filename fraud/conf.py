"""Revenue protection's settings and their defaults. docs/fraud.md explains every threshold and
how its default was chosen. `utility/settings.py` overrides them (from the environment): a
detector's thresholds through `FRAUD_DETECTORS = {detector: {threshold: value}}`, which need
name only what it changes; the others as `FRAUD_<NAME>`."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from utility.conf import defaults_reader

DETECTORS: dict[str, dict[str, Any]] = {
    "consumption_drop": {
        "enabled": True,
        # The meter's own baseline: the days before the monitoring window.
        "baseline_days": 35,
        "min_baseline_days": 28,
        "monitor_days": 28,
        "min_monitor_days": 7,
        # CUSUM reference (k), daily clip and decision interval (h), in standard deviations of
        # the meter's log daily use; h is chosen on the training households
        # (bench/evaluate_fraud.py).
        "cusum_k": 0.5,
        "clip": 1.5,
        "cusum_h": 9.31,
        "min_scale": 0.1,
        # Daylight use down this much more than night use (as fractions of the baseline):
        # rooftop solar, not a bypass...
        "solar_gap": 0.4,
        # ... unless a whole 4-hour block records nothing on this share of days, whatever the
        # weather, or on most days in the dark: a switch.
        "solar_max_off_share": 0.9,
        "min_baseline_wh": 1000,
        "medium_kwh": 20,
        "high_kwh": 100.0,
    },
    "load_shape": {
        "enabled": True,
        "recent_days": 14,
        "min_recent_days": 7,
        "threshold": 3.49,
        "min_block_sd_fraction": 0.1,
    },
    "peer_comparison": {
        "enabled": True,
        "recent_days": 14,
        "min_recent_days": 7,
        # Similar homes: groups of about this many by baseline use, then daytime share.
        "group_size": 25,
        "min_peers": 20,
        # The peers' robust spread of change (log) is at least this.
        "min_spread": 0.05,
        # Flagged from this many robust spreads below the peers and min_drop below them.
        "threshold": 3.36,
        "min_drop": 0.2,
    },
    "zero_use": {
        "enabled": True,
        "days": 3,
        "max_wh_per_day": 0,
        "history_days": 28,
        "min_history_wh_per_day": 500,
        # Hours of nothing: a 4-hour block of the dark (00-08, 20-24 UTC) at nothing on this
        # many of the last block_days days, where the baseline used at least min_block_wh.
        "block_days": 7,
        "block_min_days": 5,
        "min_block_wh": 40,
    },
    "silent": {"enabled": True, "hours": 48, "high_after_hours": 7 * 24},
    "backwards": {
        "enabled": True,
        "lookback_hours": 72,
        "min_step_wh": 1,
        "high_step_wh": 1000,
    },
    "auth_failures": {
        "enabled": True,
        "window_hours": 24,
        "burst": 5,
        "reasons": ["auth_failed", "replay", "stale", "unknown_key"],
    },
    "tamper": {
        "enabled": True,
        "lookback_days": 7,
        "kinds": ["tamper", "service_action", "store_integrity"],
        "high_kinds": ["tamper", "store_integrity"],
    },
    "clock_step": {
        "enabled": True,
        "lookback_days": 7,
        "min_seconds": 300,
        "high_seconds": 86400,
    },
}
# Nobody home: a day's use between these multiples of the home's base load, no 4-hour block
# more than max_block_ratio times another, and such days steady from one to the next (standard
# deviation of log daily use at most max_log_sd). docs/fraud.md has the measurements behind them.
VACANCY: dict[str, float] = {
    "min_base_multiple": 0.85,
    "max_base_multiple": 1.6,
    "max_block_ratio": 2.0,
    "max_log_sd": 0.12,
}
# Memory for the scan's daily aggregation (per sort/hash node, for the scan's transaction only).
SCAN_WORK_MEM = "128MB"
# A day counts for the daily-consumption detectors only with this many hourly readings.
MIN_HOURS_PER_DAY = 20
# S12: dispatches to one engineer beyond this in 24 hours wait for a second approver.
DISPATCHES_PER_ENGINEER_PER_DAY = 8
# An SD-card export of two years of hourly readings is about 0.4 MB.
UPLOAD_MAX_BYTES = 2 * 1024 * 1024


# `settings.FRAUD_<NAME>`, or this module's default `NAME`.
setting = defaults_reader(globals(), prefix="FRAUD_")


def detector(name: str) -> dict[str, Any]:
    """One detector's thresholds: the defaults above with the settings' overrides."""
    overrides = getattr(settings, "FRAUD_DETECTORS", {}).get(name, {})
    return {**DETECTORS[name], **overrides}
