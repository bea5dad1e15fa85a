"""The GFlowNet machinery both planner levels share: ``space`` (the protocol a level's space
provides, and the policy call), ``sampler`` (the one forward sampler), ``refine`` (the one
back-and-forth refiner), and the two spaces: ``plans`` (the fast level: append-only plans,
core/planner/gflownet.py) and ``routes`` (the slow level: routes of subgoals, core/planner/subgoals.py).
Their one balance loss is training's (hjepa_agent/train/gflownet.py: the runtime never imports torch).
"""
from hjepa_agent.core.planner.gfn.plans import PlanSpace
from hjepa_agent.core.planner.gfn.refine import BudgetPace, DeadlinePace, Pace, Refined, mh_round, refine
from hjepa_agent.core.planner.gfn.routes import SubgoalSpace
from hjepa_agent.core.planner.gfn.sampler import Trajectories, path_log_pf, sample
from hjepa_agent.core.planner.gfn.space import Space

__all__ = ["BudgetPace", "DeadlinePace", "Pace", "PlanSpace", "Refined", "Space", "SubgoalSpace", "Trajectories",
           "mh_round", "path_log_pf", "refine", "sample"]
