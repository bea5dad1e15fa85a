"""The lockstep's garbage collection between ticks (harness/lockstep.py)."""
from __future__ import annotations

import gc

from hjepa_agent.harness.lockstep import collect_garbage_if_due, garbage_between_ticks


def test_collection_waits_for_the_safe_point_and_then_runs_what_cpython_would_have() -> None:
    assert gc.isenabled()
    with garbage_between_ticks():
        assert not gc.isenabled()
        gc.collect()
        assert collect_garbage_if_due() is None            # nothing allocated since: nothing due
        keep = [[i] for i in range(gc.get_threshold()[0] + 10)]   # tracked containers past gen 0's threshold
        assert gc.get_count()[0] > gc.get_threshold()[0]   # automatic collection did not run
        assert collect_garbage_if_due() == 0
        assert gc.get_count()[0] < gc.get_threshold()[0]
        del keep
    assert gc.isenabled()


def test_what_was_off_stays_off() -> None:
    gc.disable()
    try:
        with garbage_between_ticks():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
