"""Narrow passages: the CEM planner (navfield, speed-vs-clearance cost; core/planner/base.py PlanCost) drives
the simulated robot alone through a divider whose only opening is 1.2 footprint widths wide."""
from __future__ import annotations

import pytest

from hjepa_agent.sim.planner_episode import run_episode
from hjepa_agent.config.ego_model import load_ego_model
from hjepa_agent.config.paths import data_path
from hjepa_agent.sim.robot import load_robot_description
from hjepa_agent.sim.scenario import Arena, Goal, Obstacle, Scenario, Start
from hjepa_agent.sim.world import SimWorld

EGO = load_ego_model(data_path("config", "ego_model.yaml"))


def _divider(opening_m: float, y0: float) -> Scenario:
    hy = 2.5
    lo, hi = y0 - opening_m / 2, y0 + opening_m / 2
    walls = [Obstacle("box", 0.0, (-hy + lo) / 2, size_x_m=0.1, size_y_m=lo + hy),
             Obstacle("box", 0.0, (hi + hy) / 2, size_x_m=0.1, size_y_m=hy - hi)]
    return Scenario(name=f"divider_{opening_m:.2f}", seed=0, arena=Arena(6.0, 5.0, 0.5), obstacles=walls,
                    start=Start(-2.0, y0 + 0.4, 0.0), goal=Goal(2.0, y0 - 0.3), goal_tolerance_m=0.25,
                    time_limit_s=40.0)


@pytest.mark.parametrize("y0", [0.0, 0.37])
def test_cem_passes_an_opening_of_1_2_footprint_widths_without_touching(y0: float) -> None:
    opening = 1.2 * 2.0 * EGO.hard.footprint.radius_m
    with SimWorld(load_robot_description(data_path("config", "robots", "diffbot.yaml"))) as world:
        ep = run_episode(world, "cem", _divider(opening, y0), 0, EGO)
    assert ep.outcome == "goal", ep.outcome
