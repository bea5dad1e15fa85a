"""The planners' speed-vs-clearance rule (core/planner/base.py PlanCost): the clearance a step needs grows
with the square of its speed, so a narrow passage is free at a reduced speed and dear at full speed."""
from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hjepa_agent.core.planner import planner_cost
from hjepa_agent.core.planner.base import passage_speed

COST = planner_cost(0.2, 0.6)


@settings(max_examples=200, deadline=None)
@given(st.floats(-2.0, 2.0), st.floats(-2.0, 2.0))
def test_needed_clearance_grows_with_speed_up_to_the_safe_clearance(a: float, b: float) -> None:
    ca, cb = (float(COST.needed_clearance(np.array(x))) for x in (a, b))
    assert 0.0 <= ca <= COST.safe_clearance_m + 1e-7
    if abs(a) <= abs(b):
        assert ca <= cb + 1e-7
    if abs(a) >= COST.speed_ref_mps:
        assert math.isclose(ca, COST.safe_clearance_m, rel_tol=1e-6)


@settings(max_examples=200, deadline=None)
@given(st.floats(0.0, 0.25))
def test_passage_speed_is_where_the_clearance_cost_starts(c: float) -> None:
    v = passage_speed(c, COST)
    assert 0.0 <= v <= COST.speed_ref_mps + 1e-9
    assert abs(float(COST.needed_clearance(np.array(v))) - c) < 1e-6


def _through_gap(v: float, steps: int = 10, dt: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """A straight plan along y = 0 at speed v, and wall points above and below a 0.48-m opening at x = 0.3."""
    x = np.arange(steps + 1) * v * dt
    states = np.stack([x, np.zeros_like(x), np.zeros_like(x)], -1)[None].astype(np.float32)
    actions = np.tile(np.array([[v, 0.0]], np.float32), (steps, 1))[None]
    ys = np.concatenate([np.arange(0.24, 1.5, 0.02), -np.arange(0.24, 1.5, 0.02)])
    walls = np.stack([np.full_like(ys, 0.3), ys], -1).astype(np.float32)
    return states, actions, walls


def _clearance_term(cost, v: float) -> float:
    states, actions, walls = _through_gap(v)
    short = np.clip(cost.needed_clearance(actions[..., 0]) - cost.step_clearance(states, walls), 0.0, None)
    return float(cost.w_clearance * np.sum(short ** 2))


def test_a_1_2_footprint_width_gap_costs_no_clearance_at_the_passage_speed_and_much_at_full_speed() -> None:
    v_pass = passage_speed(0.04, COST)      # 0.04 m each side of the 0.2-m-radius footprint in a 0.48-m gap
    assert 0.2 < v_pass < 0.3
    states, _, walls = _through_gap(v_pass * 0.99)
    assert COST.clearance(states, walls).min() > 0.0                   # it fits
    assert _clearance_term(COST, v_pass * 0.99) == 0.0                  # free at the passage speed
    assert _clearance_term(COST, 0.6) > 1.0                             # dear at the operating speed
    assert _clearance_term(planner_cost(0.2), v_pass * 0.99) > 1.0     # and dear at any speed without the rule
