"""Planners behind one interface: ``plan(world_state, goal, budget) -> Plan``.

``base`` holds the interface, the budget and the shared cost; ``sampling`` the loop shared by
the two sampling baselines over a dynamics model, ``cem`` (cross-entropy method) and ``mppi``
(model-predictive path integral); ``navfield`` the obstacle memory and cost-to-go.
"""
import numpy as np

from hjepa_agent.core.planner.base import Budget, Planner, PlanCost, UnicycleModel, beam_points, obstacle_points
from hjepa_agent.core.planner.cem import CEMConfig, CEMPlanner
from hjepa_agent.core.planner.mppi import MPPIConfig, MPPIPlanner
from hjepa_agent.core.planner.navfield import RESOLUTION_M as NAV_RESOLUTION_M, NavField

PLANNERS = ("cem", "mppi", "gflownet")
"""The planners by name (the planner node's ``planner`` parameter): CEMPlanner, MPPIPlanner and
core.planner.gflownet.GFlowNetPlanner (built from its exported networks in ``models_dir``); build_planner
makes each."""


def planner_cost(footprint_radius_m: float, max_linear_mps: float | None = None) -> PlanCost:
    """The cost every planner optimises (and the GFlowNet's reward is made of): goal weight 0.3; with
    ``max_linear_mps`` (the operating speed) the clearance a step needs grows with its speed (PlanCost doc)."""
    return PlanCost(footprint_radius_m=footprint_radius_m, w_goal=0.3, speed_ref_mps=max_linear_mps)


def build_planner(kind: str, *, footprint_radius_m: float, max_linear_mps: float, max_angular_rps: float,
                  horizon: int = 15, dt_s: float = 0.2, samples: int = 64, iterations: int = 3,
                  mppi_temperature: float = 0.03, navfield: bool = True, navfield_resolution_m: float = NAV_RESOLUTION_M,
                  navfield_size_m: float = 16.0, gflownet_samples: int = 15, models_dir=None,
                  prefer_cuda: bool = True, hierarchy: bool = False, ambiguity=None, expected=None):
    """The planner the node runs (and the planner benchmark measures): ``kind`` in PLANNERS over the
    shared cost (goal weight 0.3), with a navfield unless ``navfield`` is false. ``gflownet`` loads
    its networks from ``models_dir`` (default: the package's models/), checked against the manifest.
    ``hierarchy``: the two-level planner (core/planner/hierarchy.py): the slow subgoal GFlowNet
    (``subgoal_policy`` / ``subgoal_logz`` in ``models_dir``) over this planner as the fast level;
    it needs the navfield. ``ambiguity``: a planner/latent.LatentAmbiguity whose predicted-state
    ambiguity penalty is added to every candidate's cost (the fast level's, with ``hierarchy``).
    ``expected``: the RobotFingerprint (core/fingerprint.py) of the robot this runs on; networks
    trained for another robot are refused (core/models/ OnnxModel)."""
    if kind not in PLANNERS:
        raise ValueError(f"planner: unknown planner {kind!r} (available: {', '.join(PLANNERS)})")
    if hierarchy:
        if not navfield:
            raise ValueError("planner: hierarchy needs the navfield (navfield: true): the slow level routes over it")
        fast = build_planner(kind, footprint_radius_m=footprint_radius_m, max_linear_mps=max_linear_mps,
                             max_angular_rps=max_angular_rps, horizon=horizon, dt_s=dt_s, samples=samples,
                             iterations=iterations, mppi_temperature=mppi_temperature, navfield=True,
                             navfield_resolution_m=navfield_resolution_m, navfield_size_m=navfield_size_m,
                             gflownet_samples=gflownet_samples, models_dir=models_dir, prefer_cuda=prefer_cuda,
                             ambiguity=ambiguity, expected=expected)
        return _hierarchical(fast, models_dir, prefer_cuda, max_linear_mps, max_angular_rps, expected)
    cost = planner_cost(footprint_radius_m, max_linear_mps)
    nav = (NavField(resolution_m=navfield_resolution_m, size_m=navfield_size_m, inflate_m=footprint_radius_m,
                    safe_clearance_m=cost.safe_clearance_m) if navfield else None)
    if kind == "gflownet":
        from hjepa_agent.core.models import ModelMismatchError
        from hjepa_agent.core.planner.gflownet import GFlowNetPlanner
        where, policy, log_z = _load_networks(models_dir, prefer_cuda, "planner", "gflownet", expected)
        data = policy.entry.trained.get("data", {})
        from hjepa_agent.core.planner.gflownet import ACTIONS, BETA, COST_CLIP, DT_S, HORIZON, REPEAT
        h, r = int(data.get("horizon", HORIZON)), int(data.get("repeat", REPEAT))
        if (data.get("actions") is not None and not np.allclose(np.asarray(data["actions"]), ACTIONS)) \
                or float(data.get("dt_s", DT_S)) != DT_S:
            raise ModelMismatchError(f"planner gflownet: {where} was trained on another action table or step "
                                     f"(dt_s {data.get('dt_s')}) than this runtime's; {policy.hint}")
        return GFlowNetPlanner(policy, log_z, cost, max_linear_mps, max_angular_rps, samples=gflownet_samples,
                               horizon=h, repeat=r, beta=float(data.get("beta", BETA)),
                               cost_clip=float(data.get("cost_clip", COST_CLIP)), navfield=nav, ambiguity=ambiguity)
    common = dict(horizon=horizon, dt_s=dt_s, samples=samples, iterations=iterations,
                  max_linear_mps=max_linear_mps, max_angular_rps=max_angular_rps)
    if kind == "cem":
        return CEMPlanner(CEMConfig(elites=max(1, samples // 8), **common), cost, navfield=nav, ambiguity=ambiguity)
    return MPPIPlanner(MPPIConfig(temperature=mppi_temperature, **common), cost, navfield=nav, ambiguity=ambiguity)

def _load_networks(models_dir, prefer_cuda: bool, prefix: str, what: str, expected=None):
    """(models dir, ``<prefix>_policy``, ``<prefix>_logz``) as OnnxModels, manifest (and, with ``expected``,
    the robot fingerprint) checked; a mismatch names ``what`` and gives the command that trains the networks."""
    from hjepa_agent.core.models import ModelMismatchError, OnnxModel, select_providers
    from hjepa_agent.config.paths import data_path
    where = models_dir or data_path("models")
    providers = select_providers(prefer_cuda)[0]
    try:
        return (where, OnnxModel(where, f"{prefix}_policy", providers=providers, expected=expected),
                OnnxModel(where, f"{prefix}_logz", providers=providers, expected=expected))
    except ModelMismatchError as exc:
        raise ModelMismatchError(f"planner {what}: {exc}") from exc


def _hierarchical(fast, models_dir, prefer_cuda: bool, max_linear_mps: float, max_angular_rps: float, expected=None):
    """The two-level planner over ``fast``, its slow level loaded from ``models_dir`` (manifest checked;
    the route space is rebuilt from the manifest record and must match this runtime's)."""
    from hjepa_agent.core.models import ModelMismatchError
    from hjepa_agent.core.planner.hierarchy import HierarchicalPlanner
    from hjepa_agent.core.planner.gfn.routes import SubgoalSpace
    from hjepa_agent.core.planner.subgoals import SubgoalPlanner
    where, policy, log_z = _load_networks(models_dir, prefer_cuda, "subgoal", "hierarchy", expected)
    data = policy.entry.trained.get("data", {})
    space = SubgoalSpace(beta=float(data.get("beta", SubgoalSpace.beta)),
                         cost_clip=float(data.get("cost_clip", SubgoalSpace.cost_clip)),
                         w_subgoal_m=float(data.get("w_subgoal_m", SubgoalSpace.w_subgoal_m)),
                         w_at_m=float(data.get("w_at_m", 0.0)))
    for key in ("fractions", "laterals", "raster_along", "raster_lateral"):
        if data.get(key) is None or not np.allclose(np.asarray(data[key]), np.asarray(getattr(space, key))):
            raise ModelMismatchError(f"planner hierarchy: {where} subgoal networks were trained on another route "
                                     f"space ({key}) than this runtime's; {policy.hint}")
    return HierarchicalPlanner(fast, SubgoalPlanner(policy, log_z, space), max_linear_mps, max_angular_rps)


__all__ = ["NAV_RESOLUTION_M", "Budget", "CEMConfig", "CEMPlanner", "MPPIConfig", "MPPIPlanner", "NavField", "PLANNERS", "PlanCost",
           "Planner", "UnicycleModel", "beam_points", "build_planner", "obstacle_points", "planner_cost"]
