"""The run's judge: limit violations on the wire and the summary arithmetic."""
import numpy as np
import pytest

from hjepa_agent.config.ego_model import load_ego_model
from hjepa_agent.core.limits import AxisState, limit_axis
from hjepa_agent.config.paths import data_path
from hjepa_agent.harness.judge import count_limit_violations
from hjepa_agent.harness.report import EpisodeResult, summarise

EGO = load_ego_model(data_path("config", "ego_model.yaml"))
LIN, ANG = EGO.hard.kinematics.linear_x, EGO.hard.kinematics.angular_z


def _bridge_like(targets, dt=0.05):
    """A command stream shaped by the bridge's own limit math: must count zero violations."""
    t, v, w = [], [], []
    sv, sw = AxisState(0, 0), AxisState(0, 0)
    for k, (tv, tw) in enumerate(targets):
        sv, _ = limit_axis(tv, sv, dt, EGO.operating.max_linear_mps, LIN.max_accel, LIN.max_decel, LIN.max_jerk)
        sw, _ = limit_axis(tw, sw, dt, EGO.operating.max_angular_rps, ANG.max_accel, ANG.max_decel, ANG.max_jerk)
        t.append(k * dt), v.append(sv.vel), w.append(sw.vel)
    return t, v, w


def test_limited_stream_has_no_violations():
    rng = np.random.default_rng(0)
    targets = [(rng.uniform(-1, 1), rng.uniform(-3, 3)) for _ in range(400)]
    assert count_limit_violations(*_bridge_like(targets), EGO) == {"velocity": 0, "accel": 0, "jerk": 0}


def test_each_kind_is_caught():
    t = [0.0, 0.05, 0.10, 0.15, 0.20]
    assert count_limit_violations(t, [0.0, 0.0, 0.0, 0.0, 0.9], [0.0] * 5, EGO)["velocity"] == 1
    step = count_limit_violations(t, [0.0, 0.0, 0.3, 0.3, 0.3], [0.0] * 5, EGO)
    assert step["accel"] == 1 and step["jerk"] >= 1
    # commands bunched at one instant: the base feels the last one, judged against the previous instant
    bunched_too_fast = count_limit_violations([0.0, 0.05, 0.05], [0.0, 0.01, 0.3], [0.0] * 3, EGO)
    assert bunched_too_fast["accel"] == 1
    bunched_within = count_limit_violations([0.0, 0.05, 0.05], [0.0, 0.02, 0.04], [0.0] * 3, EGO)
    assert bunched_within == {"velocity": 0, "accel": 0, "jerk": 0}
    # accel within bounds but switching sign abruptly: jerk only
    jerk = count_limit_violations(t, [0.0, 0.0, 0.04, 0.0, 0.04], [0.0] * 5, EGO)
    assert jerk["accel"] == 0 and jerk["jerk"] >= 2


def test_summary_fractions_and_rates():
    a = EpisodeResult(0, "open", 0, success=True, outcome="goal", time_to_goal_s=10.0)
    b = EpisodeResult(1, "open", 1, collision=True, outcome="collision")
    a.mode_ticks.update(HABITUAL=80, PLANNING=20)
    b.mode_ticks.update(HABITUAL=50, SAFE_STOP=50)
    s = summarise([a, b], [1.0, 2.0, 3.0, 100.0])
    assert s["success_rate"] == 0.5 and s["collisions"] == 1 and s["mean_time_to_goal_s"] == 10.0
    assert s["mode_time_fraction"] == pytest.approx({"HABITUAL": 0.65, "PLANNING": 0.1, "OPTIMISING": 0.0,
                                                     "SAFE_STOP": 0.25})
    assert s["cmd_latency_ms"]["p50"] == pytest.approx(2.5)


def test_agent_commands_leave_foreign_ones_out():
    from hjepa_agent.harness.judge import agent_commands
    t, v, w, foreign = agent_commands([0.0, 0.01, 0.02, 0.03], [0.1, 0.8, 0.1, 0.0], [0.0] * 4, [10, 11, 12, 13],
                                      ["base_link", "", "base_link", "watchdog_stop"], {10, 12})
    assert (t, v, foreign) == ([0.0, 0.02, 0.03], [0.1, 0.1, 0.0], 1)


def test_unstamped_commands_are_judged_as_the_agents_only_when_nobody_else_publishes():
    """A geometry_msgs/Twist has no stamp (-1): alone on cmd_vel every command is the agent's (judged for
    limits); with a foreign publisher only values the bridge declared count as the agent's."""
    from hjepa_agent.harness.judge import agent_commands
    declared = {10: {(0.1, 0.0)}, 11: {(0.2, 0.0)}}
    args = ([0.0, 0.01, 0.02], [0.1, 0.9, 0.2], [0.0] * 3, [-1, -1, -1], [""] * 3, declared)
    t, v, w, foreign = agent_commands(*args, unstamped_ours=True)
    assert v == [0.1, 0.9, 0.2] and foreign == 0
    t, v, w, foreign = agent_commands(*args)
    assert v == [0.1, 0.2] and foreign == 1
