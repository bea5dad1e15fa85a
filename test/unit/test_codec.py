"""Message layouts: round trips, and wrong-sized / non-finite / mislabelled messages are refused."""
import dataclasses
import math

import numpy as np
import pytest
from sensor_msgs.msg import JointState

from builders import world_state
from hjepa_agent.core.types import N_LATENT, N_SCAN_BINS, Percept, Plan
from hjepa_agent.nodes.codec import (MessageError, from_time, msg_to_percept, msg_to_plan, msg_to_world_state,
                                     percept_to_msg, plan_to_msg, plan_to_path, route_to_path, time_ns, to_time,
                                     world_state_to_msg)


def _ws():
    return world_state(stamp_s=12.3, pose=(1, 2, 0.5), twist=(0.3, -0.1), goal=(3, 4),
                       scan=np.linspace(0.5, 4, N_SCAN_BINS), latent=np.arange(N_LATENT), variance=0.01,
                       ambiguity=0.42)


def test_time_is_nanosecond_exact():
    for t in (0.0, 0.02, 1234.567891234):
        assert time_ns(to_time(t)) == int(round(t * 1e9))
        assert from_time(to_time(t)) == pytest.approx(t, abs=1e-9)


def test_world_state_round_trip_and_refusals():
    ws = _ws()
    msg = world_state_to_msg(ws)
    back = msg_to_world_state(msg)
    assert back.stamp_s == pytest.approx(ws.stamp_s) and back.ambiguity == pytest.approx(0.42)
    assert np.allclose(back.vector(), ws.vector()) and np.allclose(back.variance, ws.variance)
    short = world_state_to_msg(ws)
    short.name, short.position, short.velocity = short.name[:-1], short.position[:-1], short.velocity[:-1]
    with pytest.raises(MessageError):
        msg_to_world_state(short)
    bad = world_state_to_msg(ws)
    bad.position[0] = math.nan
    with pytest.raises(MessageError, match="finite"):
        msg_to_world_state(bad)
    novar = world_state_to_msg(ws)
    novar.velocity = []
    with pytest.raises(MessageError, match="variance"):
        msg_to_world_state(novar)


def test_percept_round_trip_and_wrong_labels():
    p = Percept(1.5, np.ones(N_LATENT, np.float32), np.full(N_SCAN_BINS, 2.0, np.float32), 0.9)
    back = msg_to_percept(percept_to_msg(p))
    assert np.allclose(back.vector(), p.vector())
    msg = percept_to_msg(p)
    msg.name = list(reversed(msg.name))
    with pytest.raises(MessageError):
        msg_to_percept(msg)


def test_early_percept_and_early_world_state_round_trip_and_refusals():
    from hjepa_agent.core.types import EarlyPercept
    from hjepa_agent.nodes.codec import (early_percept_to_msg, early_world_state_to_msg, msg_to_early_percept,
                                         msg_to_early_world_state)
    e = EarlyPercept(1.5, np.arange(N_LATENT, dtype=np.float32), np.full(N_SCAN_BINS, 2.0, np.float32))
    back = msg_to_early_percept(early_percept_to_msg(e))
    assert back.stamp_s == 1.5 and np.array_equal(back.vector(), e.vector())
    whole = percept_to_msg(Percept(1.5, e.latent, e.scan_bins, 0.9))
    with pytest.raises(MessageError, match="labels"):   # a whole percept is not an early one, nor the reverse
        msg_to_early_percept(whole)
    with pytest.raises(MessageError, match="labels"):
        msg_to_percept(early_percept_to_msg(e))
    bad = early_percept_to_msg(e)
    bad.position[3] = math.inf
    with pytest.raises(MessageError, match="finite"):
        msg_to_early_percept(bad)
    ws = world_state()
    early_ws = msg_to_early_world_state(early_world_state_to_msg(ws))
    assert math.isnan(early_ws.ambiguity) and np.array_equal(early_ws.vector(), ws.vector())
    assert np.array_equal(early_ws.variance, ws.variance) and early_ws.stamp_s == ws.stamp_s
    with pytest.raises(MessageError, match="labels"):
        msg_to_world_state(early_world_state_to_msg(ws))   # the watchdog's input must carry an ambiguity
    with pytest.raises(MessageError, match="labels"):
        msg_to_early_world_state(world_state_to_msg(ws))
    neg = early_world_state_to_msg(ws)
    neg.velocity[0] = -1.0
    with pytest.raises(MessageError, match="variance"):
        msg_to_early_world_state(neg)


def test_plan_round_trip_and_garbage():
    h = 5
    plan = Plan(2.0, np.ones((h, 2), np.float32), np.zeros((h + 1, 3), np.float32), -np.ones(h, np.float32),
                -3.0, 0.2, 0.1, 0.2, "cem", 320)
    back = msg_to_plan(plan_to_msg(plan))
    assert back.horizon == h and back.world_model_calls == 320 and back.risk == pytest.approx(0.2)
    assert np.allclose(back.log_probs, -1.0)
    assert len(plan_to_path(plan).poses) == h + 1
    assert route_to_path(plan, np.array([3.0, 0.0])) is None        # no route: not a two-level plan
    routed = dataclasses.replace(plan, extras={"subgoals": [[1.0, -1.5], [2.0, -1.0]]})
    xy = [(p.pose.position.x, p.pose.position.y) for p in route_to_path(routed, np.array([3.0, 0.0])).poses]
    assert xy == [(0.0, 0.0), (1.0, -1.5), (2.0, -1.0), (3.0, 0.0)]
    with pytest.raises(MessageError):
        msg_to_plan(JointState(name=["risk"], position=[0.0]))
