"""Pricing consumption with a tariff: pure functions over Decimals, no database access.

Rounding (documented in docs/billing.md): quantities to whole Wh (0.001 kWh), each line's amount
to the currency's minor unit with ROUND_HALF_EVEN, tax per tax rate on the sum of the rounded
lines, again ROUND_HALF_EVEN.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal

from .conf import setting
from .models import DayType, LineKind, TariffKind, TariffVersion, TouBand

KWH = Decimal("0.001")


class BillingError(Exception):
    """The account cannot be billed as configured (no tariff for a day, an hour in no band)."""


def money(value: Decimal) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-setting("BILLING_MINOR_UNITS")), ROUND_HALF_EVEN)


def kwh(wh: Decimal) -> Decimal:
    return (wh / 1000).quantize(KWH, ROUND_HALF_EVEN)


@dataclass
class Usage:
    """Energy of a meter window (or an account) in one tariff version and band, in Wh."""

    wh: Decimal = Decimal(0)
    estimated_wh: Decimal = Decimal(0)
    estimated: bool = False

    def add(self, other: Usage) -> None:
        self.wh += other.wh
        self.estimated_wh += other.estimated_wh
        self.estimated = self.estimated or other.estimated


@dataclass(frozen=True)
class Segment:
    version: TariffVersion
    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days


@dataclass(frozen=True)
class Line:
    kind: str
    description: str
    key: str
    segment_start: date
    segment_end: date
    quantity: Decimal
    unit: str
    unit_price: Decimal
    amount: Decimal
    tax_rate: Decimal
    band: str = ""
    estimated: bool = False
    corrects_id: int | None = None


def _band_hours(start: int, end: int) -> set[int]:
    """The local hours of a band, as the consumption query matches them: [start, end), and
    for start >= end the band wraps midnight (start == end is every hour)."""
    if start < end:
        return set(range(start, end))
    return set(range(start, 24)) | set(range(0, end))


def check_tou_bands(bands: list[tuple[str, str, int, int]], label: str) -> None:
    """Bands (name, day type, start hour, end hour) of a time-of-use version: names unique, and
    every local hour of weekdays and of weekends in exactly one band. Raises BillingError."""
    if not bands:
        raise BillingError(f"tariff version {label}: a time-of-use version needs bands")
    names = [name for name, *_ in bands]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise BillingError(
            f"tariff version {label}: band names must be unique, {', '.join(twice)} repeated"
        )
    problems = []
    for day in (DayType.WEEKDAY, DayType.WEEKEND):
        cover: dict[int, list[str]] = {hour: [] for hour in range(24)}
        for name, day_type, start, end in bands:
            if day_type in (DayType.ALL, day):
                for hour in _band_hours(start, end):
                    cover[hour].append(name)
        gaps = [hour for hour, names in cover.items() if not names]
        overlaps = {hour: names for hour, names in cover.items() if len(names) > 1}
        if gaps:
            problems.append(f"{day} hours {_hours(gaps)} are in no band")
        if overlaps:
            hours = _hours(list(overlaps))
            both = sorted({name for names in overlaps.values() for name in names})
            problems.append(f"{day} hours {hours} are in several bands ({', '.join(both)})")
    if problems:
        raise BillingError(f"tariff version {label}: " + "; ".join(problems))


def _hours(hours: list[int]) -> str:
    return ", ".join(f"{hour:02d}" for hour in sorted(hours))


def check_tiers(tiers: list[tuple[int, Decimal | None]], label: str) -> None:
    """Blocks (position, up_to_kwh) of a tiered version: bounds rising, the last unbounded, so
    that all consumption is priced. Raises BillingError."""
    if not tiers:
        raise BillingError(f"tariff version {label}: a tiered version needs blocks")
    ordered = sorted(tiers, key=lambda tier: tier[0])
    if ordered[-1][1] is not None:
        raise BillingError(
            f"tariff version {label}: the last tier block (position {ordered[-1][0]}) must "
            "have no upper bound, or consumption above it goes unbilled"
        )
    lower = Decimal(0)
    for position, up_to in ordered[:-1]:
        if up_to is None:
            raise BillingError(
                f"tariff version {label}: only the last tier block may be unbounded "
                f"(position {position} is not last)"
            )
        if up_to <= lower:
            raise BillingError(
                f"tariff version {label}: tier bounds must rise (position {position})"
            )
        lower = up_to


def validate_version(version: TariffVersion) -> None:
    """The bands or tiers of a version are usable for rating; raises BillingError naming the
    version. Called by the admin (formsets) and, through `segments`, before every rating."""
    label = f"{version.pk} ({version})" if version.pk else str(version.valid_from)
    TARIFF_KINDS[version.kind].validate(version, label)


def bands_at(version: TariffVersion, local: datetime) -> list[str | None]:
    """The bands of the version an hour starting at local time `local` falls in: one name for
    time of use (None if in no band; several only if bands overlap), [None] for other kinds."""
    return TARIFF_KINDS[version.kind].bands_at(version, local)


def segments(versions: list[TariffVersion], start: date, end: date) -> list[Segment]:
    """The tariff versions in force over [start, end), clipped; every day must be covered."""
    result, cursor = [], start
    for version in sorted(versions, key=lambda v: v.valid_from):
        seg_start = max(start, version.valid_from)
        seg_end = min(end, version.valid_to or end)
        if seg_start < seg_end:
            if seg_start != cursor:
                raise BillingError(f"no tariff version covers {cursor} - {seg_start}")
            validate_version(version)
            result.append(Segment(version, seg_start, seg_end))
            cursor = seg_end
    if cursor != end:
        raise BillingError(f"no tariff version covers {cursor} - {end}")
    return result


def _line(
    segment: Segment,
    kind: str,
    description: str,
    key: str,
    quantity: Decimal,
    unit: str,
    price: Decimal,
    **extra,
) -> Line:
    return Line(
        kind=kind,
        description=description,
        key=key,
        segment_start=segment.start,
        segment_end=segment.end,
        quantity=quantity,
        unit=unit,
        unit_price=price,
        amount=money(quantity * price),
        tax_rate=segment.version.tax_rate,
        **extra,
    )


def energy_lines(
    segs: list[Segment], usage: dict[tuple[int | None, str | None], Usage], period_days: int
) -> list[Line]:
    """The energy lines of each segment, by the rule of its version's kind: one line per band
    (time of use), per tier (tiered) or one (flat)."""
    by_version: dict[int | None, dict[str | None, Usage]] = defaultdict(dict)
    for (version_id, band), item in usage.items():
        by_version[version_id][band] = item
    known = {s.version.pk for s in segs}
    for version_id, bands in by_version.items():
        if version_id not in known and any(u.wh for u in bands.values()):
            raise BillingError("consumption on a day with no tariff version")
    lines: list[Line] = []
    for seg in segs:
        bands = by_version.get(seg.version.pk, {})
        total = Usage()
        for item in bands.values():
            total.add(item)
        lines += TARIFF_KINDS[seg.version.kind].energy_lines(seg, bands, total, period_days)
    return lines


def _flat_lines(
    seg: Segment, bands: dict[str | None, Usage], total: Usage, period_days: int
) -> list[Line]:
    version = seg.version
    if version.unit_price is None:
        raise BillingError(f"tariff version {version.pk} has no unit price")
    return [
        _line(
            seg,
            LineKind.ENERGY,
            "Energy",
            f"v{version.pk}:flat",
            kwh(total.wh),
            "kWh",
            version.unit_price,
            estimated=total.estimated,
        )
    ]


def _tou_lines(
    seg: Segment, bands: dict[str | None, Usage], total: Usage, period_days: int
) -> list[Line]:
    vid = seg.version.pk
    if None in bands and bands[None].wh:
        raise BillingError(f"tariff version {vid}: an hour falls in no time-of-use band")
    prices = {b.name: b.unit_price for b in seg.version.bands.all()}
    return [
        _line(
            seg,
            LineKind.ENERGY,
            f"Energy, {name}",
            f"v{vid}:band:{name}",
            kwh(bands[name].wh),
            "kWh",
            prices[name],
            band=name,
            estimated=bands[name].estimated,
        )
        for name in sorted(prices)
        if name in bands
    ]


def _tiered_lines(
    seg: Segment, bands: dict[str | None, Usage], total: Usage, period_days: int
) -> list[Line]:
    vid, lines = seg.version.pk, []
    quantity = kwh(total.wh)
    # Thresholds are per full billing period; a part period gets them pro rata.
    scale = Decimal(seg.days) / Decimal(period_days)
    lower = Decimal(0)
    for tier in seg.version.tiers.all():
        upper = None if tier.up_to_kwh is None else (tier.up_to_kwh * scale).quantize(KWH)
        part = quantity - lower if upper is None else min(quantity, upper) - lower
        part = max(part, Decimal(0))
        if part or tier.position == 1:
            label = f"up to {upper} kWh" if upper is not None else "above"
            lines.append(
                _line(
                    seg,
                    LineKind.ENERGY,
                    f"Energy, tier {tier.position} ({label})",
                    f"v{vid}:tier:{tier.position}",
                    part,
                    "kWh",
                    tier.unit_price,
                    band=f"tier {tier.position}",
                    estimated=total.estimated,
                )
            )
        if upper is None:
            break
        lower = upper
    return lines


def _band_covers(band: TouBand, local: datetime) -> bool:
    """The band holds the hour starting at `local` (its local hour and ISO weekday)."""
    weekend = local.isoweekday() >= 6
    if band.day_type != DayType.ALL and (band.day_type == DayType.WEEKEND) != weekend:
        return False
    return local.hour in _band_hours(band.start_hour, band.end_hour)


def _tou_bands_at(version: TariffVersion, local: datetime) -> list[str | None]:
    return [band.name for band in version.bands.all() if _band_covers(band, local)] or [None]


def _no_bands(version: TariffVersion, local: datetime) -> list[str | None]:
    return [None]


def _tou_validate(version: TariffVersion, label: str) -> None:
    check_tou_bands(
        [(b.name, b.day_type, b.start_hour, b.end_hour) for b in version.bands.all()], label
    )


def _tiered_validate(version: TariffVersion, label: str) -> None:
    check_tiers([(t.position, t.up_to_kwh) for t in version.tiers.all()], label)


def _nothing_to_validate(version: TariffVersion, label: str) -> None:
    return None


@dataclass(frozen=True)
class KindRules:
    """What a kind of tariff does differently: which of its parts must be checked before
    rating, which band an hour falls in (by its local time), and how its energy is priced."""

    validate: Callable[[TariffVersion, str], None]
    bands_at: Callable[[TariffVersion, datetime], list[str | None]]
    energy_lines: Callable[[Segment, dict[str | None, Usage], Usage, int], list[Line]]


TARIFF_KINDS: dict[str, KindRules] = {
    TariffKind.FLAT: KindRules(_nothing_to_validate, _no_bands, _flat_lines),
    TariffKind.TOU: KindRules(_tou_validate, _tou_bands_at, _tou_lines),
    TariffKind.TIERED: KindRules(_tiered_validate, _no_bands, _tiered_lines),
}


def standing_lines(segs: list[Segment]) -> list[Line]:
    return [
        _line(
            seg,
            LineKind.STANDING,
            "Standing charge",
            f"v{seg.version.pk}:standing",
            Decimal(seg.days),
            "day",
            seg.version.standing_charge_per_day,
        )
        for seg in segs
        if seg.version.standing_charge_per_day
    ]


def net_by_key(lines: list[Line]) -> list[Line]:
    """The lines summed per price key (quantity and amount), those netting to zero dropped;
    each sum keeps its first line's description and price."""
    first: dict[str, Line] = {}
    sums: dict[str, tuple[Decimal, Decimal]] = defaultdict(lambda: (Decimal(0), Decimal(0)))
    for line in lines:
        first.setdefault(line.key, line)
        qty, amount = sums[line.key]
        sums[line.key] = (qty + line.quantity, amount + line.amount)
    return [
        replace(
            first[key],
            quantity=qty,
            amount=amount,
            estimated=any(line.estimated for line in lines if line.key == key),
        )
        for key, (qty, amount) in sums.items()
        if qty or amount
    ]


def correction_lines(
    billed: list[Line], recomputed: list[Line], corrects_id: int, label: str
) -> list[Line]:
    """Lines that bring what was billed for an earlier period to the recomputed figures."""
    have = {line.key: line for line in net_by_key(billed)}
    result = []
    for line in recomputed:
        earlier = have.pop(line.key, None)
        qty, amount = (earlier.quantity, earlier.amount) if earlier else (Decimal(0), Decimal(0))
        if line.quantity != qty or line.amount != amount:
            result.append(
                replace(
                    line,
                    kind=LineKind.ADJUSTMENT,
                    description=f"Correction of estimate ({label}): {line.description}",
                    quantity=line.quantity - qty,
                    amount=line.amount - amount,
                    corrects_id=corrects_id,
                )
            )
    # Billed under a price the recomputation no longer uses: taken back.
    for line in have.values():
        result.append(
            replace(
                line,
                kind=LineKind.ADJUSTMENT,
                description=f"Correction of estimate ({label}): {line.description}",
                quantity=-line.quantity,
                amount=-line.amount,
                estimated=False,
                corrects_id=corrects_id,
            )
        )
    return result


def totals(lines: list[Line]) -> tuple[Decimal, Decimal, Decimal]:
    """(subtotal, tax, total): tax per rate on the sum of that rate's rounded lines."""
    subtotal = sum((line.amount for line in lines), Decimal(0))
    by_rate: dict[Decimal, Decimal] = defaultdict(Decimal)
    for line in lines:
        by_rate[line.tax_rate] += line.amount
    tax = sum((money(amount * rate) for rate, amount in by_rate.items()), Decimal(0))
    return money(subtotal), money(tax), money(subtotal + tax)
