"""The planner node's decisions, ROS-free (core/planner/budget.py): when it plans (mode gating), how many
world-model calls and how long a plan may take, and which of its latest inputs are fresh enough to use."""
from __future__ import annotations

import numpy as np
import pytest

from hjepa_agent.core.planner.budget import (BEAMS_MAX_AGE_S, SCAN_POSE_SKEW_S, SEED_MAX_SKEW_S, BudgetConfig,
                                             deliberating, fresh_beams, plan_budget, plan_calls, plan_seed,
                                             scan_at_pose)
from hjepa_agent.core.types import Mode


@pytest.mark.parametrize("mode, always, want", [(Mode.PLANNING, False, True), (Mode.OPTIMISING, False, True),
                                                (Mode.HABITUAL, False, False), (Mode.SAFE_STOP, False, False),
                                                (Mode.HABITUAL, True, True), (Mode.SAFE_STOP, True, True)])
def test_plans_are_asked_for_while_deliberating_or_always(mode: Mode, always: bool, want: bool) -> None:
    assert deliberating(mode, always) is want


def test_optimising_multiplies_the_iterations_and_the_cap_holds() -> None:
    cfg = BudgetConfig(iterations=3, optimise_factor=4, max_world_model_calls=20000)
    assert plan_calls(cfg, Mode.PLANNING, 960) == 2880
    assert plan_calls(cfg, Mode.OPTIMISING, 960) == 11520
    assert plan_calls(cfg, Mode.OPTIMISING, 2000) == 20000          # 24000 asked: capped
    assert plan_calls(cfg, Mode.HABITUAL, 960) == 2880              # always_plan outside deliberation: PLANNING's


def test_each_mode_has_its_deadline_and_only_optimising_refines() -> None:
    cfg = BudgetConfig(deadline_ms=60.0, optimise_deadline_ms=20.0)
    now = [100.0]
    planning = plan_budget(cfg, Mode.PLANNING, 100, start_s=100.0, clock=lambda: now[0])
    optimising = plan_budget(cfg, Mode.OPTIMISING, 100, start_s=100.0, clock=lambda: now[0])
    assert planning.deadline_s == pytest.approx(100.06) and not planning.refine
    assert optimising.deadline_s == pytest.approx(100.02) and optimising.refine
    assert optimising.max_world_model_calls == 100 * cfg.iterations * cfg.optimise_factor
    now[0] = 100.03
    assert optimising.expired() and not planning.expired()


@pytest.mark.parametrize("field, value", [("iterations", 0), ("optimise_factor", 0), ("max_world_model_calls", 0),
                                          ("deadline_ms", 0.0), ("optimise_deadline_ms", -1.0)])
def test_a_budget_that_allows_nothing_is_refused_naming_the_field(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        BudgetConfig(**{field: value})


def test_the_habitual_seed_is_used_only_fresh_and_never_while_stalled() -> None:
    seed = (10.0, 0.4, -0.2)
    assert np.array_equal(plan_seed(seed, 10.1, stalled=False), np.array([0.4, -0.2], np.float32))
    assert plan_seed(seed, 10.0 - SEED_MAX_SKEW_S + 1e-6, stalled=False) is not None
    assert plan_seed(seed, 10.0 + SEED_MAX_SKEW_S, stalled=False) is None     # stale
    assert plan_seed(seed, 10.1, stalled=True) is None                         # Mode 2 because Mode 1 stalled
    assert plan_seed(None, 10.1, stalled=False) is None


def test_a_scan_is_folded_in_at_a_close_pose_and_its_beams_serve_while_fresh() -> None:
    assert scan_at_pose(5.0, 5.0 + SCAN_POSE_SKEW_S) and scan_at_pose(5.2, 5.0)
    assert not scan_at_pose(5.0, 5.0 + SCAN_POSE_SKEW_S + 1e-3)
    points = np.zeros((3, 2), np.float32)
    assert fresh_beams((5.0, points), 5.0) is points
    assert fresh_beams((5.0, points), 5.0 + BEAMS_MAX_AGE_S) is points
    assert fresh_beams((5.0, points), 5.0 + BEAMS_MAX_AGE_S + 1e-3) is None   # older: the sectors serve
    assert fresh_beams((5.0, points), 4.9) is None                              # a world state before the scan
    assert fresh_beams(None, 5.0) is None
