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
