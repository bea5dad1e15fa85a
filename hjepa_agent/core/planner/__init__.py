"""Planners behind one interface: ``plan(world_state, goal, budget) -> Plan``.

``base`` holds the interface, the budget and the shared cost; ``sampling`` the loop shared by
the two sampling baselines over a dynamics model, ``cem`` (cross-entropy method) and ``mppi``
(model-predictive path integral); ``navfield`` the obstacle memory and cost-to-go.
"""
from hjepa_agent.core.planner.base import Budget, Planner, PlanCost, UnicycleModel, beam_points, obstacle_points
from hjepa_agent.core.planner.cem import CEMConfig, CEMPlanner
from hjepa_agent.core.planner.mppi import MPPIConfig, MPPIPlanner

__all__ = ["Budget", "CEMConfig", "CEMPlanner", "MPPIConfig", "MPPIPlanner", "PlanCost", "Planner", "UnicycleModel",
           "beam_points", "obstacle_points"]
