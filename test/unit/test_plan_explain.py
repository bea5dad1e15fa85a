"""Plan explanations: what the plan does, the predicted outcome, risk, ambiguity, mode and why."""
import numpy as np

from hjepa_agent.core.planner.base import UnicycleModel
from hjepa_agent.core.planner.explain import describe_motion, explain_plan
from hjepa_agent.core.types import Plan


def _plan(actions, clearance=0.3):
    actions = np.asarray(actions, np.float32)
    states = UnicycleModel().rollout(np.zeros(3, np.float32), actions[None], 0.2)[0]
    return Plan(0.0, actions, states, np.zeros(len(actions), np.float32), -1.0, 0.04, 0.31, 0.2, "cem",
                extras={"min_clearance_m": clearance})


def test_turn_then_drive_is_told_with_outcome_mode_and_why():
    acts = [[0.0, 1.5]] * 3 + [[0.5, 0.0]] * 12          # ~52 deg left on the spot, then 1.2 m ahead
    text = explain_plan(_plan(acts), np.array([3.0, 2.0]), "PLANNING", "habitual clearance 0.12 m < 0.15 m")
    assert text.startswith("PLANNING (habitual clearance 0.12 m < 0.15 m) | cem plan, 3.0 s: turn left 52 deg, "
                           "drive 1.2 m at up to 0.50 m/s")
    assert "predicted: 3.6 -> " in text and "min clearance 0.30 m" in text
    assert text.endswith("risk 0.04, ambiguity 0.31")
    d1 = float(text.split("3.6 -> ")[1].split(" m")[0])
    assert d1 < 3.0                                         # it does get closer


def test_standing_and_spinning_and_backing_are_named():
    assert describe_motion(_plan([[0.0, 0.0]] * 5)) == "stand still"
    assert describe_motion(_plan([[0.0, -1.0]] * 5)) == "turn right 57 deg, on the spot"
    assert describe_motion(_plan([[-0.2, 0.0]] * 5)) == "drive 0.2 m backwards at up to 0.20 m/s"
    assert explain_plan(_plan([[0.0, 0.0]] * 5), None, "OPTIMISING").startswith("OPTIMISING | cem plan, 1.0 s: stand")


def test_a_gflownet_plan_says_where_it_came_from_and_its_log_r_and_log_z():
    import dataclasses
    p = dataclasses.replace(_plan([[0.5, 0.0]] * 5), planner="gflownet", log_reward=-12.34,
                            extras={"min_clearance_m": 0.3, "log_z": -10.06, "source": "refined"})
    assert explain_plan(p, None, "OPTIMISING").endswith("risk 0.04, ambiguity 0.31 (refined, log R -12.3, log Z -10.1)")


def test_a_two_level_plan_says_its_route():
    import dataclasses
    p = dataclasses.replace(_plan([[0.5, 0.0]] * 5), planner="gflownet+subgoals",
                            extras={"min_clearance_m": 0.3, "subgoals": [[0.1, -1.4], [1.2, -1.3]],
                                    "route_source": "policy", "route_log_r": -3.21, "route_log_z": -1.5})
    assert ("gflownet+subgoals plan, 1.0 s: drive 0.5 m at up to 0.50 m/s; route via 2 subgoals, next (0.1, -1.4) "
            "[policy, log R -3.2, log Z -1.5] |") in explain_plan(p, None, "PLANNING")
    p = dataclasses.replace(p, extras={**p.extras, "subgoals": []})
    assert "route via 0 subgoals (straight to the goal)" in explain_plan(p, None, "PLANNING")
