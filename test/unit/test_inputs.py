"""The input guard's ROS-free rules (core/inputs.py): stamp and /clock checks, per-input counters and
order, what is reported once, the guard's events."""
from __future__ import annotations

import pytest

from hjepa_agent.core.events import Cause
from hjepa_agent.core.inputs import (InputLedger, InputRecord, Refusal, clock_rejection_event, failure_event,
                                     jump_event, jump_text, rejection_event, stamp_ns, time_refusal)
from hjepa_agent.core.timekeeping import ABSURD_TIME_S, ClockJump


def test_stamp_ns_is_exact_for_wall_clock_stamps() -> None:
    assert stamp_ns(1_700_000_000, 123_456_789) == 1_700_000_000_123_456_789


@pytest.mark.parametrize("sec, nsec, why", [(-1, 0, "not a time"), (0, 1_000_000_000, "not a time"),
                                             (0, -1, "not a time"), (int(ABSURD_TIME_S), 0, "beyond")])
def test_a_stamp_that_is_no_time_is_a_bad_stamp(sec: int, nsec: int, why: str) -> None:
    r = InputRecord("scan").stamp_refusal(sec, nsec, 10.0, 0.25)
    assert r is not None and r.cause is Cause.BAD_STAMP and why in r.detail


def test_a_stamp_ahead_of_the_clock_beyond_the_tolerance_is_refused_and_at_it_taken() -> None:
    rec = InputRecord("scan")
    assert rec.stamp_refusal(10, 250_000_000, 10.0, 0.25) is None
    r = rec.stamp_refusal(10, 260_000_000, 10.0, 0.25)
    assert r == Refusal(Cause.BAD_STAMP, "stamp 10.260 s is 0.260 s in the future (tolerance 0.250 s)")
    assert rec.stamp_refusal(99, 0, 0.0, 0.25) is None   # no ROS time yet: nothing to be ahead of


def test_ordered_inputs_refuse_duplicates_and_older_stamps_unordered_ones_take_them() -> None:
    rec = InputRecord("odom", order=True)
    rec.accept(5.0, stamp_ns(5, 0))
    assert rec.stamp_refusal(5, 0, 6.0, 0.25).detail.startswith("stamp 5.000 s is a duplicate of")
    assert rec.stamp_refusal(4, 0, 6.0, 0.25).cause is Cause.OUT_OF_ORDER
    assert rec.stamp_refusal(5, 1, 6.0, 0.25) is None
    loose = InputRecord("goal", order=False)
    loose.accept(5.0, stamp_ns(5, 0))
    assert loose.last_stamp_ns is None and loose.stamp_refusal(4, 0, 6.0, 0.25) is None


def test_a_rejection_is_reported_once_per_input_and_cause_and_counted_always() -> None:
    ledger = InputLedger()
    scan, odom = ledger.add("scan", True), ledger.add("odom", True)
    assert ledger.reject(scan, Cause.NON_FINITE) is True
    assert ledger.reject(scan, Cause.NON_FINITE) is False
    assert ledger.reject(scan, Cause.BAD_FRAME) is True
    assert ledger.reject(odom, Cause.NON_FINITE) is True
    assert ledger.reject_clock(Cause.CLOCK_INVALID) is True and ledger.reject_clock(Cause.CLOCK_INVALID) is False
    scan.received = 3
    assert ledger.counts()["scan"] == {"received": 3, "accepted": 0, "rejected_non_finite": 2, "rejected_bad_frame": 1}
    diag = ledger.diagnostics(now_s=2.0)
    assert diag["in_scan_rejected"] == "bad_frame=1,non_finite=2" and diag["in_scan_age_s"] == "never"
    assert diag["clock_rejected"] == "clock_invalid=2"


def test_ages_are_on_the_receipt_clock_and_a_jump_forgets_the_order() -> None:
    ledger = InputLedger()
    rec = ledger.add("scan", True)
    rec.accept(1.5, stamp_ns(100, 0))
    assert rec.age_s(2.0) == pytest.approx(0.5) and ledger.diagnostics(2.0)["in_scan_age_s"] == "0.500"
    ledger.forget_order()
    assert rec.stamp_refusal(1, 0, 2.0, 0.25) is None   # after a jump back, an earlier stamp is news


def test_clock_messages_that_are_no_time_are_named() -> None:
    assert time_refusal(3, 5) is None
    assert time_refusal(-2, 0) == "(-2, 0) is not a time"
    assert "beyond" in time_refusal(int(ABSURD_TIME_S) + 1, 0)


def test_the_guard_events_carry_their_causes_and_say_what_happened() -> None:
    ev = rejection_event(1.0, "/ns/scan", Refusal(Cause.NON_FINITE, "range_min is nan"))
    assert ev.kind == "input" and ev.causes == (Cause.NON_FINITE,)
    assert ev.text() == ("/ns/scan: rejected: range_min is nan", "(further non_finite rejections on it are only counted)")
    assert clock_rejection_event(0.0, "x").causes == (Cause.CLOCK_INVALID,)
    back = ClockJump(ros_s=3.0, size_s=-2.0)
    assert jump_event(4.0, back).text() == ("clock jumped back 2.000 s (to 3.000 s)",)
    assert jump_text(back) == "clock jumped back 2.000 s to 3.000 s"
    fail = failure_event(0.0, "planner", "timer report", "KeyError: 'x'")
    assert fail.causes == (Cause.NODE_FAILED,) and fail.text()[0] == "planner failed in timer report: KeyError: 'x'"
