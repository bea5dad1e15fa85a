"""Planners behind one interface: ``plan(world_state, goal, budget) -> Plan``.

``base`` holds the interface, the budget and the shared cost; ``sampling`` the loop shared by
the two sampling baselines over a dynamics model, ``cem`` (cross-entropy method) and ``mppi``
(model-predictive path integral); ``navfield`` the obstacle memory and cost-to-go.
"""
from hjepa_agent.core.planner.base import Budget, Planner, PlanCost, UnicycleModel, beam_points, obstacle_points
from hjepa_agent.core.planner.cem import CEMConfig, CEMPlanner
from hjepa_agent.core.planner.mppi import MPPIConfig, MPPIPlanner
from hjepa_agent.core.planner.navfield import NavField

PLANNERS = {"cem": CEMPlanner, "mppi": MPPIPlanner}
"""Planner implementations by name (the planner node's ``planner`` parameter)."""


def build_planner(kind: str, *, footprint_radius_m: float, max_linear_mps: float, max_angular_rps: float,
                  horizon: int = 15, dt_s: float = 0.2, samples: int = 64, iterations: int = 3,
                  mppi_temperature: float = 0.03, navfield: bool = True, navfield_resolution_m: float = 0.2,
                  navfield_size_m: float = 16.0) -> CEMPlanner | MPPIPlanner:
    """The planner the node runs (and the planner benchmark measures): ``kind`` in PLANNERS over the
    shared cost (goal weight 0.3), with a navfield unless ``navfield`` is false."""
    if kind not in PLANNERS:
        raise ValueError(f"planner: unknown planner {kind!r} (available: {', '.join(PLANNERS)})")
    cost = PlanCost(footprint_radius_m=footprint_radius_m, w_goal=0.3)
    common = dict(horizon=horizon, dt_s=dt_s, samples=samples, iterations=iterations,
                  max_linear_mps=max_linear_mps, max_angular_rps=max_angular_rps)
    cfg = (CEMConfig(elites=max(1, samples // 8), **common) if kind == "cem"
           else MPPIConfig(temperature=mppi_temperature, **common))
    nav = (NavField(resolution_m=navfield_resolution_m, size_m=navfield_size_m, inflate_m=footprint_radius_m,
                    safe_clearance_m=cost.safe_clearance_m) if navfield else None)
    return PLANNERS[kind](cfg, cost, navfield=nav)

__all__ = ["Budget", "CEMConfig", "CEMPlanner", "MPPIConfig", "MPPIPlanner", "NavField", "PLANNERS", "PlanCost",
           "Planner", "UnicycleModel", "beam_points", "build_planner", "obstacle_points"]
