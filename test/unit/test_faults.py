"""Injected faults: the spec, what each does to sensor data and to the world, and that every
episode starts clean."""
import math

import numpy as np
import pytest

from hjepa_agent.sim.faults import DEFAULTS, ONSET_S, Fault, FaultInjector, parse_faults


def test_spec_parsing_and_refusals():
    assert parse_faults("") == []
    assert parse_faults("camera_blackout@4, battery_sag@3:500") == [Fault("camera_blackout", 4.0),
                                                                     Fault("battery_sag", 3.0, 500.0)]
    assert [f.kind for f in parse_faults("suite")] == list(DEFAULTS)
    assert all(f.onset_s == ONSET_S for f in parse_faults("suite"))
    for bad in ("camera_blackout", "melting@3", "sensor_delay@-1", "sensor_delay@2:0", "battery_sag@x"):
        with pytest.raises(ValueError):
            parse_faults(bad)


def test_camera_faults_and_delay_start_at_their_onset():
    inj = FaultInjector([Fault("camera_frozen", 2.0), Fault("sensor_delay", 3.0, 0.5)])
    a, b = np.full((4, 4, 3), 7, np.uint8), np.full((4, 4, 3), 9, np.uint8)
    assert inj.image(a, 1.9) is a and inj.delay_s(2.9) == 0.0
    assert np.array_equal(inj.image(a, 2.0), a) and np.array_equal(inj.image(b, 2.5), a)   # frozen on a
    assert inj.delay_s(3.0) == 0.5
    black = FaultInjector([Fault("camera_blackout", 0.0)]).image(b, 0.0)
    assert black.shape == b.shape and not black.any()


class _World:
    def __init__(self):
        self.drain_multiplier = self.heating_multiplier = 1.0
        self.boxes, self.friction = [], None

    def pose(self):
        return (1.0, 2.0, math.pi / 2)

    def drop_box(self, x, y, half):
        self.boxes.append((x, y, half))

    def set_wheel_friction(self, mu):
        self.friction = mu


def test_physics_faults_act_once_at_onset_and_reset_clears_them():
    world = _World()
    inj = FaultInjector([Fault("battery_sag", 1.0), Fault("overheating", 1.0, 50.0), Fault("obstacle_drop", 2.0),
                         Fault("wheel_slip", 2.0)])
    inj.on_tick(world, 0.5)
    assert world.drain_multiplier == 1.0 and not world.boxes
    for t in (1.0, 2.0, 2.1, 3.0):
        inj.on_tick(world, t)
    assert world.drain_multiplier == DEFAULTS["battery_sag"] and world.heating_multiplier == 50.0
    assert len(world.boxes) == 1 and world.friction == DEFAULTS["wheel_slip"]
    x, y, _ = world.boxes[0]
    assert x == pytest.approx(1.0, abs=1e-9) and y == pytest.approx(2.0 + DEFAULTS["obstacle_drop"])   # ahead
    inj.reset(world)
    assert world.drain_multiplier == world.heating_multiplier == 1.0
    inj.on_tick(world, 2.5)
    assert len(world.boxes) == 2      # a new episode: the box drops again


# ---- the kinds added with the grown suite --------------------------------------------------------
from hjepa_agent.harness.judge import EXPECTED_CAUSES  # noqa: E402
from hjepa_agent.sim.faults import NAN_FLOOD_TOPICS, NEW_KINDS, nearest_obstacle_centre  # noqa: E402


def test_suite_is_every_kind_and_suite_new_the_added_ones():
    assert [f.kind for f in parse_faults("suite")][:7] == ["camera_blackout", "camera_frozen", "sensor_delay",
                                                           "battery_sag", "overheating", "obstacle_drop",
                                                           "wheel_slip"]
    assert [f.kind for f in parse_faults("suite_new")] == list(NEW_KINDS) == list(DEFAULTS)[7:]
    assert len(NEW_KINDS) == 11 and set(EXPECTED_CAUSES) == set(DEFAULTS)
    assert parse_faults("foreign_cmd_100@2:0.5") == [Fault("foreign_cmd_100", 2.0, 0.5)]


def test_clock_faults_shift_the_clock_from_the_onset_and_an_invalid_time_comes_once():
    inj = FaultInjector([Fault("clock_back", 2.0)])
    assert inj.clock_shift_s(1.99) == 0.0 and inj.clock_shift_s(2.0) == -5.0 and inj.clock_shift_s(9.0) == -5.0
    assert inj.clock_headroom_s() == pytest.approx(4.0)   # 2 s in, 5 s back: start at >= 4 s to stay >= 0 (+1)
    assert FaultInjector([Fault("clock_forward", 1.0, 3.0)]).clock_shift_s(1.5) == 3.0
    blind = FaultInjector([Fault("clock_back_blind", 1.0)])
    assert not blind.sensors_dead(0.99) and blind.sensors_dead(1.0) and blind.clock_shift_s(1.0) == -5.0
    neg = FaultInjector([Fault("clock_negative", 1.0)])
    assert [neg.invalid_clock_s(t) for t in (0.5, 1.0, 1.01, 2.0)] == [None, -5.0, None, None]
    assert neg.clock_shift_s(2.0) == 0.0
    neg.reset(None)
    assert neg.invalid_clock_s(1.5) == -5.0   # a new episode: once again


def test_odometry_jumps_to_the_left_of_the_heading_at_the_onset_and_stays():
    inj = FaultInjector([Fault("odom_jump", 1.0)])
    assert inj.odom_offset(0.5, (0.0, 0.0, 0.0)) == (0.0, 0.0)
    dx, dy = inj.odom_offset(1.0, (3.0, 1.0, 0.0))      # heading +x: left is +y
    assert dx == pytest.approx(0.0, abs=1e-12) and dy == pytest.approx(2.0)
    assert inj.odom_offset(5.0, (0.0, 0.0, math.pi / 2)) == (dx, dy)   # stays as it was at the onset


class _Ob:
    def __init__(self, x, y, r):
        self.x_m, self.y_m, self.r = x, y, r

    def distance_to(self, x, y):
        return math.hypot(x - self.x_m, y - self.y_m) - self.r


def test_goal_faults_move_the_goal_at_the_onset_and_keep_it_there():
    far = FaultInjector([Fault("far_goal", 2.0)])
    assert far.goal(1.0, (2.0, 0.0), (0.0, 0.0, 1.0), []) == (2.0, 0.0)
    gx, gy = far.goal(2.0, (2.0, 0.0), (1.0, 0.0, 1.0), [])
    assert (gx, gy) == pytest.approx((31.0, 0.0))        # 30 m from the robot, towards the old goal
    assert far.goal(3.0, (2.0, 0.0), (0.0, 0.0, 0.0), []) == (gx, gy)
    obs = [_Ob(5.0, 0.0, 0.2), _Ob(1.0, 1.0, 0.5), _Ob(0.0, 2.0, 0.1)]
    assert nearest_obstacle_centre(obs, 0.0, 0.0) == (1.0, 1.0) and nearest_obstacle_centre([], 0.0, 0.0) is None
    inside = FaultInjector([Fault("goal_in_obstacle", 1.0)])
    assert inside.goal(1.0, (3.0, 3.0), (0.0, 0.0, 0.0), obs) == (1.0, 1.0)


def test_intruders_start_at_the_onset_and_the_flood_goes_round_the_topics():
    cmd = FaultInjector([Fault("foreign_cmd_100", 2.0)]).intruders()
    assert [(x.node, x.topic, x.rate_hz, x.payload, x.value) for x in cmd] == [("teleop", "cmd_vel", 100.0,
                                                                               "forward", 0.8)]
    x = cmd[0]
    assert x.due(1.99) == 0 and x.due(2.0) == 1 and x.due(2.095) == 10 and x.due(3.0) == 101
    storm = FaultInjector([Fault("estop_storm", 1.0)]).intruders()[0]
    assert (storm.topic, storm.rate_hz, storm.payload) == ("agent/estop", 50.0, "toggle")
    topics = [FaultInjector([Fault("nan_flood", 4.0)], turn=t).intruders()[0] for t in range(len(NAN_FLOOD_TOPICS) + 1)]
    assert [i.topic for i in topics] == [t for t, _ in NAN_FLOOD_TOPICS] + [NAN_FLOOD_TOPICS[0][0]]
    assert all(i.node is None and i.rate_hz == 10.0 * hz for i, (_, hz) in zip(topics, NAN_FLOOD_TOPICS))


def test_flooded_topics_are_agent_topics_with_an_owner():
    from hjepa_agent.nodes.topics import TOPICS
    for topic, _ in NAN_FLOOD_TOPICS:
        assert TOPICS[topic].publishers, topic
