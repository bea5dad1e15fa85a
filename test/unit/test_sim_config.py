"""Robot and scenario YAML: shipped files load; bad files fail naming file and key."""
from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import load_yaml_dict
from hjepa_agent.config.loader import ConfigError
from hjepa_agent.config.paths import data_path
from hjepa_agent.config.ego_model import load_ego_model
from hjepa_agent.sim.robot import load_robot_description, resolve_urdf
from hjepa_agent.sim.scenario import (JITTER_KEEP_OUT_M, Obstacle, load_scenario, load_scenarios,
                                      occupancy_grid)

SCENARIO_DIR = data_path("config", "scenarios")


def test_shipped_robots_load() -> None:
    diff = load_robot_description(data_path("config", "robots", "diffbot.yaml"))
    skid = load_robot_description(data_path("config", "robots", "skidbot.yaml"))
    assert diff.scan.n_beams == 64 and diff.scan.range_max_m == 4.0
    assert (diff.camera.width, diff.camera.height) == (64, 64)
    assert len(skid.wheel_joints) == 4
    assert diff.scan.angle_increment_rad == pytest.approx(2 * math.pi / 64)


ROBOT_DIR = data_path("config", "robots")


@pytest.mark.parametrize("path", sorted(ROBOT_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_robot_loads_with_its_urdf_resolved(path) -> None:
    robot = load_robot_description(path)
    assert robot.name == path.stem
    urdf = Path(robot.urdf)
    assert urdf.is_absolute() and urdf.is_file() and urdf.parent == data_path("urdf").resolve()


def test_skid_steer_descriptions_give_the_geometric_track_and_the_slip_separately() -> None:
    diff, skid, husky = (load_robot_description(ROBOT_DIR / f"{n}.yaml") for n in ("diffbot", "skidbot", "husky"))
    assert diff.skid_steer is None and diff.effective_track_m == diff.wheel_separation_m
    assert (skid.wheel_separation_m, husky.wheel_separation_m) == (0.26, 0.5708)   # as the URDFs place the wheels
    for robot in (skid, husky):
        assert 1.0 < robot.skid_steer.slip_factor < 1.5
        assert robot.effective_track_m == pytest.approx(robot.wheel_separation_m * robot.skid_steer.slip_factor)


@pytest.mark.parametrize("name", ["husky", "roverbot"])
def test_new_robots_have_an_ego_model_of_their_own(name: str) -> None:
    robot = load_robot_description(ROBOT_DIR / f"{name}.yaml")
    ego = load_ego_model(data_path("config", f"ego_model_{name}.yaml"))
    default = load_ego_model(data_path("config", "ego_model.yaml"))
    assert ego.robot == robot.name != default.robot
    # Turning in place at the hard angular limit keeps the wheels under the hard linear one.
    rim_mps = ego.hard.kinematics.angular_z.max_velocity * robot.effective_track_m / 2.0
    assert rim_mps <= ego.hard.kinematics.linear_x.max_velocity


def test_urdf_resolves_next_to_the_yaml_first(tmp_path, write_yaml) -> None:
    data = load_yaml_dict("config", "robots", "diffbot.yaml")
    (tmp_path / "urdf").mkdir()
    mine = tmp_path / "urdf" / "diffbot.urdf"          # same relative name as the shipped one: mine wins
    mine.write_text(data_path("urdf", "diffbot.urdf").read_text())
    assert load_robot_description(write_yaml("r.yaml", data)).urdf == str(mine.resolve())
    mine.unlink()                                      # then the package's data directory
    assert load_robot_description(write_yaml("r.yaml", data)).urdf == str(data_path("urdf", "diffbot.urdf").resolve())


def test_urdf_relative_to_the_yaml_and_absolute(tmp_path, write_yaml) -> None:
    data = load_yaml_dict("config", "robots", "diffbot.yaml")
    (tmp_path / "robots").mkdir()
    (tmp_path / "models").mkdir()
    mine = tmp_path / "models" / "my_bot.urdf"
    mine.write_text(data_path("urdf", "diffbot.urdf").read_text())
    data["urdf"] = "../models/my_bot.urdf"
    assert load_robot_description(write_yaml("robots/r.yaml", data)).urdf == str(mine.resolve())
    data["urdf"] = str(mine)
    assert load_robot_description(write_yaml("r.yaml", data)).urdf == str(mine.resolve())
    assert resolve_urdf(str(mine)) == mine.resolve()


def test_urdf_not_found_names_where_it_looked(tmp_path, write_yaml) -> None:
    data = load_yaml_dict("config", "robots", "diffbot.yaml")
    data["urdf"] = "urdf/nobot.urdf"
    err = _expect_error(load_robot_description, write_yaml("r.yaml", data), "urdf")
    assert str(tmp_path / "urdf" / "nobot.urdf") in str(err) and str(data_path("urdf", "nobot.urdf")) in str(err)
    data["urdf"] = str(tmp_path / "nowhere.urdf")
    err = _expect_error(load_robot_description, write_yaml("r.yaml", data), "urdf")
    assert "nowhere.urdf" in str(err)


def test_shipped_scenarios_load_and_fit_the_brief() -> None:
    scenarios = load_scenarios(SCENARIO_DIR)
    names = [s.name for s in scenarios]
    assert names == sorted(names)
    assert {"open", "clutter", "corridor", "two_routes"} <= set(names)
    for s in scenarios:
        assert 3.5 <= s.start_goal_distance_m() <= 5.0, s.name
    clutter = next(s for s in scenarios if s.name == "clutter")
    assert 6 <= len(clutter.obstacles) <= 9


def _surface_gap(a: Obstacle, b: Obstacle) -> float:
    """Smallest distance between two obstacle outlines, sampled on a's outline (m)."""
    if a.shape == "cylinder":
        t = np.linspace(0, 2 * np.pi, 180, endpoint=False)
        pts = np.stack([a.x_m + a.radius_m * np.cos(t), a.y_m + a.radius_m * np.sin(t)], 1)
    else:
        u = np.linspace(-0.5, 0.5, 60)
        local = np.concatenate([np.stack([u * a.size_x_m, np.full_like(u, s * a.size_y_m / 2)], 1) for s in (-1, 1)]
                               + [np.stack([np.full_like(u, s * a.size_x_m / 2), u * a.size_y_m], 1) for s in (-1, 1)])
        c, s_ = math.cos(a.yaw_rad), math.sin(a.yaw_rad)
        pts = local @ np.array([[c, s_], [-s_, c]]) + [a.x_m, a.y_m]
    return min(b.distance_to(float(x), float(y)) for x, y in pts)


@pytest.mark.parametrize("path", sorted(SCENARIO_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_nominal_gaps_let_the_robot_through(path) -> None:
    s = load_scenario(path)
    for a, b in itertools.combinations(s.obstacles, 2):
        gap = _surface_gap(a, b)
        assert gap == 0.0 or gap >= 0.7, f"{s.name}: gap {gap:.2f} m between {a} and {b}"


@pytest.mark.parametrize("seed", range(20))
def test_jitter_keeps_obstacles_off_start_and_goal(seed: int) -> None:
    for s in load_scenarios(SCENARIO_DIR):
        ep = s.jittered(seed)
        assert ep == s.jittered(seed)  # deterministic
        for ob in ep.obstacles:
            assert ob.distance_to(ep.start.x_m, ep.start.y_m) >= JITTER_KEEP_OUT_M
            assert ob.distance_to(ep.goal.x_m, ep.goal.y_m) >= JITTER_KEEP_OUT_M


def test_occupancy_grid_marks_walls_and_obstacles() -> None:
    s = load_scenario(SCENARIO_DIR / "two_routes.yaml")
    grid, (ox, oy) = occupancy_grid(s, 0.05)
    def cell(x: float, y: float) -> bool:
        return bool(grid[int((y - oy) / 0.05), int((x - ox) / 0.05)])
    assert cell(0.0, 0.0) and cell(-3.05, 0.0) and cell(0.0, 3.05)
    assert not cell(s.start.x_m, s.start.y_m) and not cell(s.goal.x_m, s.goal.y_m)


def _expect_error(loader, path, key: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        loader(path)
    assert info.value.key == key, str(info.value)
    assert str(path) in str(info.value)
    return info.value


def test_scenario_unknown_key(write_yaml) -> None:
    data = load_yaml_dict("config", "scenarios", "open.yaml")
    data["arena"]["colour"] = "red"
    _expect_error(load_scenario, write_yaml("s.yaml", data), "arena.colour")


def test_scenario_missing_key(write_yaml) -> None:
    data = load_yaml_dict("config", "scenarios", "open.yaml")
    del data["goal"]["y_m"]
    _expect_error(load_scenario, write_yaml("s.yaml", data), "goal.y_m")


def test_scenario_obstacle_on_goal(write_yaml) -> None:
    data = load_yaml_dict("config", "scenarios", "open.yaml")
    data["obstacles"].append({"shape": "cylinder", "x_m": data["goal"]["x_m"], "y_m": data["goal"]["y_m"],
                              "radius_m": 0.3})
    err = _expect_error(load_scenario, write_yaml("s.yaml", data), "goal")
    assert "obstacles[3]" in str(err)


def test_scenario_start_outside_arena(write_yaml) -> None:
    data = load_yaml_dict("config", "scenarios", "open.yaml")
    data["start"]["x_m"] = 9.0
    _expect_error(load_scenario, write_yaml("s.yaml", data), "start")


@pytest.mark.parametrize("obstacle,key", [
    ({"shape": "cylinder", "x_m": 0.0, "y_m": 0.0}, "obstacles[0].radius_m"),
    ({"shape": "box", "x_m": 0.0, "y_m": 0.0, "size_x_m": 0.3}, "obstacles[0].size_y_m"),
    ({"shape": "box", "x_m": 0.0, "y_m": 0.0, "size_x_m": 0.3, "size_y_m": 0.3, "radius_m": 0.2},
     "obstacles[0].radius_m"),
    ({"shape": "cone", "x_m": 0.0, "y_m": 0.0}, "obstacles[0].shape"),
])
def test_scenario_shape_dependent_fields(write_yaml, obstacle: dict, key: str) -> None:
    data = load_yaml_dict("config", "scenarios", "open.yaml")
    data["obstacles"] = [obstacle]
    _expect_error(load_scenario, write_yaml("s.yaml", data), key)


def test_robot_bad_drive_type(write_yaml) -> None:
    data = load_yaml_dict("config", "robots", "diffbot.yaml")
    data["drive"] = "ackermann"
    err = _expect_error(load_robot_description, write_yaml("r.yaml", data), "drive")
    assert "ackermann" in str(err)


def test_robot_unknown_and_missing_keys(write_yaml) -> None:
    data = load_yaml_dict("config", "robots", "diffbot.yaml")
    data["scan"]["beam_count"] = 64
    _expect_error(load_robot_description, write_yaml("r.yaml", data), "scan.beam_count")
    data = load_yaml_dict("config", "robots", "diffbot.yaml")
    data["scan"]["fov_deg"] = 270.0   # a key now: the scanner's field of view
    assert load_robot_description(write_yaml("r.yaml", data)).scan.fov_deg == 270.0
    data["scan"]["fov_deg"] = 400.0
    _expect_error(load_robot_description, write_yaml("r.yaml", data), "scan.fov_deg")
    data = load_yaml_dict("config", "robots", "diffbot.yaml")
    del data["battery"]["capacity_wh"]
    _expect_error(load_robot_description, write_yaml("r.yaml", data), "battery.capacity_wh")


def test_robot_range_checks(write_yaml) -> None:
    data = load_yaml_dict("config", "robots", "diffbot.yaml")
    data["battery"]["motor_efficiency"] = 1.5
    _expect_error(load_robot_description, write_yaml("r.yaml", data), "battery.motor_efficiency")
    data = load_yaml_dict("config", "robots", "diffbot.yaml")
    data["right_wheel_joints"] = ["left_wheel_joint"]
    _expect_error(load_robot_description, write_yaml("r.yaml", data), "right_wheel_joints")


@pytest.mark.parametrize("skid_steer,key", [
    ({"slip_factor": 0.8, "lateral_friction_ratio": 0.3}, "skid_steer.slip_factor"),
    ({"slip_factor": 1.1, "lateral_friction_ratio": 0.0}, "skid_steer.lateral_friction_ratio"),
    ({"slip_factor": 1.1}, "skid_steer.lateral_friction_ratio"),
    ({"slip_factor": 1.1, "lateral_friction_ratio": 0.3, "track_m": 0.3}, "skid_steer.track_m"),
])
def test_robot_skid_steer_checks(write_yaml, skid_steer: dict, key: str) -> None:
    data = load_yaml_dict("config", "robots", "skidbot.yaml")
    data["skid_steer"] = skid_steer
    _expect_error(load_robot_description, write_yaml("r.yaml", data), key)
