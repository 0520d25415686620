"""Verification of the whole audit chain."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import chain
from .models import GENESIS_HASH, AuditChainHead, AuditEvent


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    first_broken_seq: int | None = None
    reason: str = ""


def verify_chain(
    *, progress: Callable[[int], None] | None = None, batch_size: int = 2000
) -> ChainReport:
    """Walk the chain in order and name the first record that is missing, altered or unlinked."""
    expected_seq, expected_prev, checked = 1, GENESIS_HASH, 0
    for event in AuditEvent.objects.order_by("seq").iterator(chunk_size=batch_size):
        if event.seq != expected_seq:
            return ChainReport(
                False,
                checked,
                expected_seq,
                f"record #{expected_seq} is missing (deleted); the chain resumes at #{event.seq}",
            )
        if event.prev_hash != expected_prev:
            return ChainReport(
                False, checked, event.seq, f"record #{event.seq} does not link to its predecessor"
            )
        if not chain.is_sealed_correctly(event):
            return ChainReport(
                False, checked, event.seq, f"record #{event.seq} was altered after it was written"
            )
        checked += 1
        expected_seq, expected_prev = event.seq + 1, event.hash
        if progress and checked % batch_size == 0:
            progress(checked)

    head = AuditChainHead.objects.filter(pk=1).first()
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    if head_seq != expected_seq - 1 or head_hash != expected_prev:
        return ChainReport(
            False,
            checked,
            expected_seq,
            f"the chain ends at #{expected_seq - 1} but its head says #{head_seq}: "
            "records were removed from the end",
        )
    return ChainReport(True, checked)
