"""The peer comparison on a fleet of realistic households (committed richardsonpy profiles):
a home whose use falls while similar homes' does not is flagged; a fall every home shares is
the season's, not theft. Seeded; each test fails when the detector is weakened (a higher
threshold, or the peers' own movement ignored)."""

from __future__ import annotations

import pytest

from fraud import attacks
from fraud.models import Case, Cause, Severity
from fraud.services import run_scan

from .conftest import NOW, household_history

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

FLEET = range(30)  # one peer group: about group_size (25) similar homes or more


def _cases(only: list[str]) -> dict[int, set[str]]:
    run_scan(now=NOW, only=only)
    found: dict[int, set[str]] = {}
    for case in Case.objects.all():
        found.setdefault(case.meter_id, set()).add(case.cause)
    return found


def test_a_home_that_falls_while_its_peers_do_not_is_flagged(premises_meter):
    thieves = {}
    for seed in FLEET:
        meter = premises_meter()
        change = attacks.partial_bypass(0.6) if seed in (3, 16) else None
        household_history(meter, seed, change, days_ago=21, rng_seed=seed)
        if change:
            thieves[meter.pk] = seed
    cases = _cases(["peer_comparison"])
    assert set(cases) == set(thieves)
    case = Case.objects.filter(cause=Cause.PEER_COMPARISON).first()
    evidence = case.evidence
    assert evidence["peers"] >= 20 and evidence["change"] < -0.35
    assert abs(evidence["peer_change"]) < 0.15 and evidence["estimated_kwh_lost"] > 0
    assert "similar homes" in case.summary and case.severity >= Severity.LOW


def _season_and(bypass: float):
    """Use 30 % lower from the start day (a mild spell, a tariff campaign), and `bypass` of
    what is left wired round the meter."""

    def change(series, start, rng):
        fell = attacks.partial_bypass(0.3)(series, start, rng)
        return attacks.partial_bypass(bypass)(fell, start, rng)

    return change


def test_a_fall_every_similar_home_shares_is_not_theft(premises_meter):
    # Every home fell against its own baseline; against its peers only the two that also
    # bypass half of what is left did.
    thieves = set()
    for seed in FLEET:
        meter = premises_meter()
        bypass = 0.5 if seed in (3, 16) else 0.0
        household_history(meter, seed, _season_and(bypass), days_ago=21, rng_seed=seed)
        if bypass:
            thieves.add(meter.pk)
    assert set(_cases(["peer_comparison"])) == thieves
    assert len(_cases(["consumption_drop"])) >= 10
