"""The planner's verdict on its goal: unreachable only once it holds, every change an event with its cause."""
import numpy as np

from hjepa_agent.core.events import Cause
from hjepa_agent.core.planner.goal import GOAL_CODES, GoalJudge, goal_kind
from hjepa_agent.core.planner.navfield import GoalKind, GoalStatus

GOAL = np.array([2.0, 1.0])


def _status(kind, edge=None):
    return GoalStatus(kind, kind != GoalKind.OUTSIDE_MAP, 3.0, edge_xy=edge)


def test_blocked_becomes_the_verdict_only_after_it_held():
    j = GoalJudge(unreachable_after_s=1.0, period_s=0.5)
    assert j.step(0.0, GOAL, _status(GoalKind.REACHABLE)) == [] and j.verdict == GoalKind.REACHABLE
    assert j.step(0.5, GOAL, _status(GoalKind.BLOCKED)) == [] and j.verdict == GoalKind.REACHABLE
    assert j.step(1.0, GOAL, _status(GoalKind.REACHABLE)) == []          # a flicker: the run starts again
    j.step(1.5, GOAL, _status(GoalKind.BLOCKED))
    (ev,) = j.step(2.5, GOAL, _status(GoalKind.BLOCKED))
    assert j.verdict == GoalKind.BLOCKED and ev.causes == (Cause.GOAL_UNREACHABLE,)
    (back,) = j.step(3.0, GOAL, _status(GoalKind.REACHABLE))
    assert back.causes == () and j.verdict == GoalKind.REACHABLE


def test_a_goal_beyond_the_map_is_said_at_once_and_a_new_goal_starts_afresh():
    j = GoalJudge()
    (ev,) = j.step(0.0, GOAL, _status(GoalKind.OUTSIDE_MAP, edge=(6.0, 6.0)))
    assert ev.causes == (Cause.GOAL_OUTSIDE_MAP,) and j.verdict == GoalKind.OUTSIDE_MAP
    assert j.due(0.1, GOAL + 1.0) and not j.due(0.1, GOAL)


def test_codes_round_trip():
    for kind, code in GOAL_CODES.items():
        assert goal_kind(code) == kind
    assert goal_kind(-1) is None and goal_kind(len(GoalKind)) is None
