"""The judge (harness/judge.py), the one definition of an episode's outcome and of a fault's detection:
the naming cause, the response, FaultJudge following an episode tick by tick, and how an episode ends."""
from types import SimpleNamespace

import pytest

from hjepa_agent.config.ego_model import load_ego_model
from hjepa_agent.config.paths import data_path
from hjepa_agent.core.events import Cause
from hjepa_agent.core.types import Mode
from hjepa_agent.harness.judge import (STOPPED_GIVE_UP_S, FaultJudge, breach, episode_end, held_stop, is_response,
                                       judge, response_modes, settle)
from hjepa_agent.sim.faults import NAN_FLOOD_TOPICS

H, P, O, S = Mode.HABITUAL, Mode.PLANNING, Mode.OPTIMISING, Mode.SAFE_STOP


# ---- naming -------------------------------------------------------------------------------------
def test_the_naming_cause_is_the_first_typed_cause_after_the_onset():
    ok = judge(["foreign_cmd_20"], True, [Cause.FOREIGN_PUBLISHER.value])
    assert ok.detected and not ok.named_wrongly
    slip_first = judge(["foreign_cmd_20"], True, ["wheel_slip"])   # what came first is the name
    assert not slip_first.detected and slip_first.named_wrongly and slip_first.causes == (Cause.WHEEL_SLIP,)
    assert judge(["clock_back_blind"], True, ["clock_jump", "stale_input"]).detected
    assert judge(["clock_negative"], False, ["clock_invalid"]).detected   # a refusal, no stop: still named
    silent = judge(["odom_jump"], True, None)   # a response without any typed cause: not named, not wrong
    assert not silent.detected and not silent.named_wrongly
    assert judge(["obstacle_drop"], True, None).detected and not judge(["obstacle_drop"], False, None).detected
    unknown = judge(["estop_storm"], True, ["some_new_cause"])
    assert unknown.named_wrongly and unknown.causes == ("some_new_cause",)


def test_a_flood_is_named_only_where_its_topic_rejected_it():
    topic = NAN_FLOOD_TOPICS[0][0]
    assert judge(["nan_flood"], True, ["non_finite"], [topic], {topic: {Cause.NON_FINITE}}).detected
    elsewhere = judge(["nan_flood"], True, ["non_finite"], [topic], {"odom": {Cause.NON_FINITE}})
    assert not elsewhere.detected and elsewhere.named_wrongly


# ---- the response -------------------------------------------------------------------------------
def test_a_dropped_box_is_answered_by_deliberating_every_other_fault_by_a_stop_or_a_slow_down():
    assert response_modes(["obstacle_drop"]) == {P, O, S}
    assert response_modes(["camera_blackout"]) == response_modes(["obstacle_drop", "wheel_slip"]) == {S}
    box, other = response_modes(["obstacle_drop"]), response_modes(["camera_blackout"])
    assert is_response(H, S, 0, 0, other) and not is_response(S, S, 0, 0, other)   # a stop must be entered
    assert is_response(H, P, 0, 0, box) and is_response(P, P, 0, 0, box)           # deliberating already counts
    assert not is_response(H, P, 0, 0, other)
    assert is_response(H, H, 0, 1, other) and not is_response(H, H, 2, 1, other)   # a slow-down raised, not eased


def test_the_fault_judge_names_by_the_first_causes_after_the_onset_and_times_the_earlier_sign():
    j = FaultJudge(["camera_blackout"], 4.0)
    j.on_causes(3.0, (Cause.STALE_INPUT,))               # before the onset: nothing
    j.on_decision(3.0, H, S, 0, 0)
    j.on_causes(4.1, ())                                 # an event naming nothing
    j.on_decision(4.2, H, H, 0, 1)                       # the slow-down: a response
    j.on_causes(4.5, (Cause.AMBIGUITY,))
    j.on_decision(4.5, H, S, 1, 1)
    v = j.verdict()
    assert v.detected and v.causes == (Cause.AMBIGUITY,) and j.detected_at(v) == pytest.approx(4.2)
    wrong = FaultJudge(["camera_blackout"], 4.0)
    wrong.on_causes(4.3, (Cause.RISK,))                  # the first causes after the onset are not its own
    wrong.on_causes(4.5, (Cause.AMBIGUITY,))
    wrong.on_decision(4.5, H, S, 0, 0)
    v = wrong.verdict()
    assert not v.detected and v.named_wrongly and wrong.detected_at(v) is None
    box = FaultJudge(["obstacle_drop"], 4.0)
    box.on_causes(4.05, (Cause.HABITUAL_CLEARANCE,))     # judged by the response alone: the causes do not matter
    box.on_decision(4.0, P, P, 0, 0)                     # already planning at the onset
    v = box.verdict()
    assert v.detected and not v.named_wrongly and box.detected_at(v) == pytest.approx(4.0)


# ---- how an episode ends ------------------------------------------------------------------------
def test_an_episode_ends_by_the_first_rule_that_holds_and_only_the_goal_is_a_success():
    assert episode_end(True, True, 99.0, 10.0, "lockstep_lost", True) == "collision"
    assert episode_end(False, True, 99.0, 10.0, "lockstep_lost", True) == "goal"
    assert episode_end(False, False, 10.0, 10.0, "lockstep_lost", True) == "timeout"
    assert episode_end(False, False, 5.0, 10.0, "node_failed", True) == "node_failed"
    assert episode_end(False, False, 5.0, 10.0, None, True) == "safe_stop"
    assert episode_end(False, False, 5.0, 10.0) is None
    res = SimpleNamespace(outcome="timeout", success=False, collision=False, time_to_goal_s=None)
    settle(res, "goal", 7.12345)
    assert res.success and res.outcome == "goal" and res.time_to_goal_s == 7.123
    settle(res, "node_failed", 8.0)                      # a node failed stop after all: no success
    assert not res.success and res.outcome == "node_failed" and not res.collision
    settle(res, "collision", 8.0)
    assert res.collision and not res.success


class _World:
    def __init__(self, v=0.0, collided=False, battery=0.5, temp_c=40.0):
        self.v, self.collided, self.battery_frac, self.temp_c = v, collided, battery, temp_c

    def twist(self):
        return self.v, 0.0

    def in_collision(self):
        return self.collided

    def battery(self):
        return 12.0, self.battery_frac, 1.0

    def motor_temperature_c(self):
        return self.temp_c


def test_a_breach_is_a_collision_or_moving_beyond_the_power_and_thermal_limits():
    hard = load_ego_model(data_path("config", "ego_model.yaml")).hard
    low = hard.power.battery_floor_pct / 100.0 - 0.01
    hot = hard.thermal.max_operating_temp_c + 1.0
    assert breach(_World(collided=True), hard) == "collision"
    assert breach(_World(v=0.3, battery=low), hard) == "battery below floor while moving"
    assert breach(_World(v=0.0, battery=low), hard) is None                     # standing: no breach
    assert breach(_World(v=0.3, temp_c=hot), hard) == "motor above its maximum temperature while moving"
    assert breach(_World(v=0.3), hard) is None


def test_a_stop_only_a_person_can_clear_ends_the_episode_once_held_standing():
    sim = SimpleNamespace(world=_World(), bridge_state="ACTIVE")
    since, given_up = held_stop(None, 10.0, S, sim)
    assert since == 10.0 and not given_up
    assert held_stop(since, 10.0 + STOPPED_GIVE_UP_S + 0.1, S, sim) == (10.0, True)
    assert held_stop(since, 12.0, H, sim) == (None, False)                       # not in a stop
    sim.world.v = 0.2
    assert held_stop(since, 12.0, S, sim) == (None, False)                       # still moving
    sim.world.v, sim.bridge_state = 0.0, "ESTOP"
    assert held_stop(None, 3.0, H, sim) == (3.0, False)                          # the bridge's latched e-stop
