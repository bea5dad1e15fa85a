"""SimWorld physics and sensors, and the scripted expert on every shipped scenario."""
from __future__ import annotations

import math

import numpy as np
import pytest

from hjepa_agent.config.ego_model import load_ego_model
from hjepa_agent.config.paths import data_path
from hjepa_agent.sim.expert import ScriptedExpert, run_expert_episode
from hjepa_agent.sim.robot import load_robot_description
from hjepa_agent.sim.scenario import Arena, Goal, Obstacle, Scenario, Start, load_scenarios
from hjepa_agent.sim.world import SimWorld

EGO = load_ego_model(data_path("config", "ego_model.yaml"))


def empty(x: float = 0.0, y: float = 0.0, yaw: float = 0.0, obstacles: list | None = None) -> Scenario:
    """A 6 x 6 m arena, no jitter, robot at (x, y, yaw)."""
    return Scenario(name="empty", seed=0, arena=Arena(6.0, 6.0, 0.5), obstacles=obstacles or [],
                    start=Start(x, y, yaw), goal=Goal(-2.0, -2.0), goal_tolerance_m=0.25, time_limit_s=30.0)


def drive(world: SimWorld, v: float, w: float, duration_s: float) -> None:
    world.set_cmd(v, w)
    for _ in range(int(round(duration_s / 0.1))):
        world.step(0.1)


def test_reset_places_robot(diffbot_world: SimWorld) -> None:
    world = diffbot_world
    for seed in range(5):
        world.reset(empty(1.0, -0.5, 0.3), seed)
    x, y, yaw = world.pose()
    assert (x, y, yaw) == pytest.approx((1.0, -0.5, 0.3), abs=1e-3)
    assert world.time_s == 0.0 and world.battery()[1] == 1.0
    assert world.motor_temperature_c() == world.robot.thermal.ambient_c
    world.step(0.5)
    assert world.pose() == pytest.approx((1.0, -0.5, 0.3), abs=0.01)  # settles without drifting
    assert not world.in_collision()
    assert world.time_s == pytest.approx(0.5)


def test_drives_forward_along_heading(diffbot_world: SimWorld) -> None:
    world = diffbot_world
    world.reset(empty(-1.0, 0.0, math.pi / 4), 0)
    drive(world, 0.5, 0.0, 2.0)
    x, y, yaw = world.pose()
    assert math.hypot(x + 1.0, y) == pytest.approx(0.9, abs=0.15)  # ~0.5 m/s after spin-up
    assert math.atan2(y, x + 1.0) == pytest.approx(math.pi / 4, abs=0.05)
    v, w = world.twist()
    assert v == pytest.approx(0.5, abs=0.03) and abs(w) < 0.05
    names, pos, vel, eff = world.joint_states()
    assert names == ["left_wheel_joint", "right_wheel_joint"]
    assert all(q > 9.0 for q in vel) and all(math.isfinite(e) for e in eff)


def test_positive_w_turns_counter_clockwise(diffbot_world: SimWorld) -> None:
    world = diffbot_world
    world.reset(empty(0.0, 0.0, 0.0), 0)
    drive(world, 0.0, 1.0, 1.0)
    assert world.pose()[2] > 0.6
    assert world.twist()[1] == pytest.approx(1.0, abs=0.1)
    drive(world, 0.3, 0.5, 1.0)
    assert world.pose()[1] > 0.05  # arcing left from a left-facing heading


@pytest.mark.parametrize("yaw", [0.0, math.pi / 2])
def test_scan_sees_walls_at_the_right_distance(diffbot_world: SimWorld, yaw: float) -> None:
    world = diffbot_world
    world.reset(empty(0.5, 0.8, yaw), 0)
    world.step(0.2)
    ranges = world.scan()
    assert ranges.shape == (64,) and ranges.dtype == np.float32
    # Wall faces at x = +-3, y = +-3. Beam i at -pi + i*2pi/64 from the heading.
    expect = {0.0: {32: 2.5, 0: 3.5, 48: 2.2, 16: 3.8}, math.pi / 2: {32: 2.2, 0: 3.8, 48: 3.5, 16: 2.5}}[yaw]
    for i, d in expect.items():
        assert ranges[i] == pytest.approx(d, abs=0.05), (i, ranges[i])


def test_scan_no_hit_is_inf_and_sees_obstacles(diffbot_world: SimWorld) -> None:
    world = diffbot_world
    world.reset(empty(-1.0, 0.0, 0.0, [Obstacle("cylinder", 0.0, 0.0, radius_m=0.25)]), 0)
    ranges = world.scan()
    assert ranges[32] == pytest.approx(0.75, abs=0.05)
    world.reset(Scenario(name="big", seed=0, arena=Arena(20.0, 20.0, 0.5), obstacles=[], start=Start(0, 0, 0),
                         goal=Goal(1, 1), goal_tolerance_m=0.25, time_limit_s=10.0), 0)
    assert np.all(np.isinf(world.scan()))


def test_camera_image(diffbot_world: SimWorld) -> None:
    world = diffbot_world
    world.reset(empty(-1.0, 0.0, 0.0, [Obstacle("cylinder", 0.0, 0.0, radius_m=0.25)]), 0)
    img = world.render_camera()
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    assert img.std() > 5.0
    # The red obstacle straight ahead fills the image centre.
    r, g, b = (int(c) for c in img[32, 32])
    assert r > g + 50 and r > b + 50


def test_collision_with_wall_and_clearance(diffbot_world: SimWorld) -> None:
    world = diffbot_world
    world.reset(empty(2.0, 0.0, 0.0), 0)
    assert not world.in_collision()
    assert world.min_obstacle_clearance() == pytest.approx(3.0 - 2.0 - 0.15, abs=0.03)
    hit = False
    world.set_cmd(0.5, 0.0)
    for _ in range(40):
        world.step(0.1)
        hit = hit or world.in_collision()
    assert hit and world.min_obstacle_clearance() < 0.01


def test_battery_drains_and_motors_heat_under_load(diffbot_world: SimWorld) -> None:
    world = diffbot_world
    world.reset(empty(0.0, 0.0, 0.0), 0)
    drive(world, 0.0, 0.0, 2.0)
    _, pct_idle, amps_idle = world.battery()
    assert pct_idle < 1.0
    assert amps_idle == pytest.approx(world.robot.battery.idle_power_w / world.battery()[0], rel=0.05)
    world.reset(empty(2.3, 0.0, 0.0), 0)
    drive(world, 0.6, 0.0, 6.0)  # pushes into the wall: stalled at full torque
    volts, pct_load, amps_load = world.battery()
    assert pct_load < pct_idle - 1e-5 and amps_load > amps_idle
    assert world.motor_temperature_c() > world.robot.thermal.ambient_c + 0.5
    world.reset(empty(0.0, 0.0, 0.0), 0)
    world.drain_multiplier = world.heating_multiplier = 1000.0
    try:
        drive(world, 0.0, 0.0, 2.0)
        assert world.battery()[1] < 1.0 - 500 * (1.0 - pct_idle)
    finally:
        world.drain_multiplier = world.heating_multiplier = 1.0


def test_two_worlds_coexist() -> None:
    robot = load_robot_description(data_path("config", "robots", "diffbot.yaml"))
    with SimWorld(robot) as a, SimWorld(robot) as b:
        a.reset(empty(0.0, 0.0, 0.0), 0)
        b.reset(empty(1.0, 1.0, 0.0), 0)
        drive(a, 0.5, 0.0, 1.0)
        assert b.pose()[:2] == pytest.approx((1.0, 1.0), abs=1e-3)
        assert a.pose()[0] > 0.3


def test_skidbot_drives_by_config_only() -> None:
    robot = load_robot_description(data_path("config", "robots", "skidbot.yaml"))
    with SimWorld(robot) as world:
        world.reset(empty(-1.0, 0.0, 0.0), 0)
        assert len(world.joint_states()[0]) == 4
        drive(world, 0.4, 0.0, 2.0)
        x, y, yaw = world.pose()
        assert x > -0.45 and abs(y) < 0.1 and abs(yaw) < 0.1
        drive(world, 0.0, 1.0, 2.0)
        assert world.pose()[2] > 0.3  # turns left (the yaw rate itself: test_skid_steer.py)


def test_expert_stays_within_operating_limits() -> None:
    s = load_scenarios(data_path("config", "scenarios"))[0].jittered(0)
    expert = ScriptedExpert(s, EGO)
    for pose in [(s.start.x_m, s.start.y_m, s.start.yaw_rad), (0.0, -2.5, 3.0), (2.0, 2.0, -1.0)]:
        v, w = expert.act(pose, (0.0, 0.0))
        assert 0.0 <= v <= EGO.operating.max_linear_mps and abs(w) <= EGO.operating.max_angular_rps
    assert expert.act((s.goal.x_m, s.goal.y_m, 0.0), (0.0, 0.0)) == (0.0, 0.0)


@pytest.mark.parametrize("scenario", load_scenarios(data_path("config", "scenarios")), ids=lambda s: s.name)
@pytest.mark.parametrize("seed", [0, 1])
def test_expert_reaches_goal_without_collision(diffbot_world: SimWorld, scenario: Scenario, seed: int) -> None:
    result = run_expert_episode(diffbot_world, scenario, seed, EGO)
    assert result["success"] and not result["collision"], result
    assert result["time_s"] < scenario.time_limit_s
    assert result["min_clearance_m"] > 0.05


def test_appearance_splits_change_the_image_not_the_geometry(diffbot_world: SimWorld) -> None:
    import numpy as np
    from hjepa_agent.sim.appearance import Appearance
    from hjepa_agent.sim.scenario import load_scenario
    from hjepa_agent.config.paths import data_path
    sc = load_scenario(data_path("config", "scenarios", "clutter.yaml"))
    rng = np.random.default_rng(0)
    images, scans = [], []
    for look in (None, Appearance.sample(rng, "nominal"), Appearance.sample(rng, "unseen")):
        diffbot_world.reset(sc, 0, look)
        diffbot_world.step(0.1)
        images.append(diffbot_world.render_camera().astype(float))
        scans.append(diffbot_world.scan())
    assert np.abs(images[0] - images[1]).mean() > 5 and np.abs(images[1] - images[2]).mean() > 5
    assert np.allclose(scans[0], scans[1]) and np.allclose(scans[1], scans[2])
    with pytest.raises(ValueError, match="split"):
        Appearance.sample(rng, "sunny")


def test_the_default_look_renders_the_same_after_another_look(diffbot_world: SimWorld) -> None:
    """PyBullet's tiny renderer keeps the light of its last call: the default look passes its own."""
    import numpy as np
    from hjepa_agent.sim.appearance import Appearance
    from hjepa_agent.sim.scenario import load_scenario
    from hjepa_agent.config.paths import data_path
    sc = load_scenario(data_path("config", "scenarios", "clutter.yaml"))
    images = []
    for look in (None, Appearance.sample(np.random.default_rng(70_000), "unseen"), None):
        diffbot_world.reset(sc, 0, look)
        images.append(diffbot_world.render_camera())
    assert not np.array_equal(images[0], images[1]) and np.array_equal(images[0], images[2])


def test_expert_side_bias_makes_the_route_choice_consistent() -> None:
    """Without the bias the expert's route round the two_routes block flips with the jitter; with it,
    it is the left (upper) one every time, so behaviour cloning sees one mode, not two to average."""
    from hjepa_agent.sim.scenario import load_scenario
    base = load_scenario(data_path("config", "scenarios", "two_routes.yaml"))
    sides = {0.0: set(), 0.15: set()}
    for seed in range(6):
        s = base.jittered(seed)
        for bias in sides:
            path = ScriptedExpert(s, EGO, side_bias=bias).plan(s.start.x_m, s.start.y_m)
            sides[bias].add(bool(path[len(path) // 2][1] > 0.0))
    assert sides[0.0] == {True, False}
    assert sides[0.15] == {True}
