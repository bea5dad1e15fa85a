"""Planners behind one interface: ``plan(world_state, goal, budget) -> Plan``.

``base`` holds the interface, the budget and the shared cost; ``cem`` the
cross-entropy-method baseline over a dynamics model.
"""
from hjepa_agent.core.planner.base import Budget, Planner, PlanCost, UnicycleModel, beam_points, obstacle_points
from hjepa_agent.core.planner.cem import CEMConfig, CEMPlanner

__all__ = ["Budget", "CEMConfig", "CEMPlanner", "PlanCost", "Planner", "UnicycleModel", "beam_points", "obstacle_points"]
