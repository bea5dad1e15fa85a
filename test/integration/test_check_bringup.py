"""`hjepa-agent check` over DDS against the simulator acting as a TurtleBot-4-like robot's drivers
(nodes/driver.py, the turtlebot4_like profile, the world standing still, advanced in real time by a
thread): the profile as it is passes; each deliberate fault (DriverFaults: a topic under another name, the
base taking the other command type, stamps lagging the clock, a scan frame the URDF does not know) is
named on its input with its verdict and fix, and fails the check."""
import json
import threading
import time
from contextlib import contextmanager

import pytest
from rclpy.executors import SingleThreadedExecutor

from hjepa_agent.harness.check import run_check, setup_for_profile
from hjepa_agent.core.bringup import Need
from hjepa_agent.core.bringup_judge import Verdict
from hjepa_agent.config.paths import data_path

PROFILE = data_path("config", "profiles", "turtlebot4_like.yaml")
LISTEN_S = 1.5


@pytest.fixture(scope="module")
def tb4_world():
    """The profile robot's SimWorld, shared by the module; closed afterwards."""
    from hjepa_agent.sim.profile import load_profile
    from hjepa_agent.sim.robot import load_robot_description
    from hjepa_agent.sim.world import SimWorld
    world = SimWorld(load_robot_description(load_profile(PROFILE).robot))
    yield world
    world.close()


@contextmanager
def drivers(ctx, world, faults=None, profile_path=PROFILE):
    """A DriverNode for the profile (in its namespace, under its topic names), advanced in real time by a
    thread of its own until the block ends."""
    from hjepa_agent.nodes.driver import TICK_S, DriverNode
    from hjepa_agent.sim.profile import load_profile
    from hjepa_agent.sim.scenario import load_scenario
    profile = load_profile(profile_path)
    remap = [a for t, name in profile.topics.items() for a in ("-r", f"{t}:={name}")]
    node = DriverNode(world, profile, faults, context=ctx, namespace=f"/{profile.namespace}",
                      cli_args=["--ros-args", *remap])
    node.start_episode(load_scenario(data_path("config", "scenarios", "open.yaml")), 0)
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    stop = threading.Event()

    def loop() -> None:
        next_t = time.monotonic()
        while not stop.is_set():
            node.advance()
            next_t += TICK_S
            executor.spin_once(timeout_sec=max(0.0, next_t - time.monotonic()))

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield node
    finally:
        stop.set()
        thread.join(timeout=10.0)
        executor.shutdown()
        node.destroy_node()


def check(ctx, world, tmp_path, faults=None, profile_path=PROFILE):
    with drivers(ctx, world, faults, profile_path):
        return run_check(setup_for_profile(profile_path, tmp_path, duration_s=LISTEN_S), context=ctx)


def finding(report, key):
    return next(f for f in report.inputs if f.expectation.key == key)


def test_the_profile_as_it_is_passes_through_the_cli_with_every_input_ok(ros_context, tb4_world, tmp_path):
    from hjepa_agent.cli import main
    out = tmp_path / "check.json"
    with drivers(ros_context, tb4_world):   # the CLI joins the same DDS domain with a context of its own
        code = main(["check", "--profile", str(PROFILE), "--duration", str(LISTEN_S), "--json", str(out)])
    data = json.loads(out.read_text())
    assert code == 0 and data["ok"] and data["failures"] == []
    verdict = {i["input"]: i["verdict"] for i in data["inputs"]}
    assert verdict == {"camera": "OK", "scan": "OK", "odom": "OK", "battery_state": "OK",
                       "motor_temperature": "SKIPPED", "goal_pose": "OK", "cmd_vel": "OK"}
    cam = data["inputs"][0]
    assert cam["topic"] == "/robot1/oakd/rgb/preview/image_raw" and cam["publishers"][0]["node"] == "/robot1/sim"
    assert cam["images"] == [{"width": 250, "height": 250, "encoding": "bgr8"}]
    assert cam["rate_hz"] >= cam["min_rate_hz"] and 0.0 <= cam["age_p50_s"] <= cam["max_age_s"]
    scan = data["inputs"][1]
    assert scan["frames"] == ["laser_link"] and scan["scans"] == [{"beams": 64, "fov_deg": 360.0}]
    assert data["inputs"][2]["frames"] == ["odom"] and data["inputs"][2]["child_frames"] == ["base_link"]
    assert {m["verdict"] for m in data["models"]} == {"OK"} and [m["model"] for m in data["models"]] == [
        "world_encoder", "world_look", "habitual_world", "world_predictor", "typical_risk"]


def test_a_topic_under_another_name_is_missing_with_the_remap_that_finds_it(ros_context, tb4_world, tmp_path):
    from hjepa_agent.nodes.driver import DriverFaults
    report = check(ros_context, tb4_world, tmp_path, DriverFaults(renames=(("battery_state", "platform/bms/state"),)))
    battery = finding(report, "battery_state")
    assert battery.verdict is Verdict.MISSING and battery.failing
    assert "/robot1/platform/bms/state" in battery.problems[0].detail
    assert "remap battery_state_topic:=platform/bms/state" in battery.problems[0].fix
    assert report.exit_code == 1 and report.failures == ["battery_state MISSING"]


def test_a_base_taking_the_other_command_type_is_a_wrong_type_with_the_setting(ros_context, tb4_world, tmp_path):
    from hjepa_agent.nodes.driver import DriverFaults
    report = check(ros_context, tb4_world, tmp_path, DriverFaults(cmd_vel_type="twist_stamped"))
    cmd = finding(report, "cmd_vel")
    assert cmd.verdict is Verdict.WRONG_TYPE
    assert [s.type for s in cmd.subscribers] == ["geometry_msgs/msg/TwistStamped"]
    assert "set cmd_vel_type: twist_stamped in the params file's '/**' section" in cmd.problems[0].fix
    assert report.exit_code == 1 and report.failures == ["cmd_vel WRONG_TYPE"]


def test_stamps_lagging_the_clock_are_stale_where_the_ego_model_says(ros_context, tb4_world, tmp_path):
    from hjepa_agent.nodes.driver import DriverFaults
    report = check(ros_context, tb4_world, tmp_path, DriverFaults(stamp_lag_s=1.0))
    for key in ("camera", "scan", "odom"):   # max_age_s 0.35, 0.35, 0.2
        f = finding(report, key)
        assert f.verdict is Verdict.STALE, (key, f.problems)
        assert f.stats.age_p50_s == pytest.approx(1.0, abs=0.2) and "chrony" in f.problems[0].fix
    assert finding(report, "battery_state").verdict is Verdict.OK   # max_age_s 2.0
    assert report.exit_code == 1 and sorted(report.failures) == ["camera STALE", "odom STALE", "scan STALE"]


def test_a_scan_frame_the_urdf_does_not_know_is_a_bad_frame(ros_context, tb4_world, tmp_path):
    from hjepa_agent.nodes.driver import DriverFaults
    report = check(ros_context, tb4_world, tmp_path, DriverFaults(scan_frame="laser_mount_unknown"))
    scan = finding(report, "scan")
    assert scan.verdict is Verdict.BAD_FRAME and scan.stats.frames == ("laser_mount_unknown",)
    assert "'laser_mount_unknown'" in scan.problems[0].detail and "urdf" in scan.problems[0].fix
    assert report.exit_code == 1 and report.failures == ["scan BAD_FRAME"]
    assert all(f.verdict in (Verdict.OK, Verdict.SKIPPED) for f in report.inputs
               if f.expectation.key != "scan" and f.expectation.need is not Need.INFO)


JACKAL = data_path("config", "profiles", "jackal_like.yaml")


@pytest.fixture(scope="module")
def jackal_world():
    """The Jackal-like profile's robot (skidrover), shared by the module; closed afterwards."""
    from hjepa_agent.sim.profile import load_profile
    from hjepa_agent.sim.robot import load_robot_description
    from hjepa_agent.sim.world import SimWorld
    world = SimWorld(load_robot_description(load_profile(JACKAL).robot))
    yield world
    world.close()


def test_the_jackal_like_profile_passes_and_each_deliberate_fault_is_named(ros_context, jackal_world, tmp_path):
    """The second profile (TwistStamped, a 640x480 jpeg camera on Clearpath's topic name, a 270-deg
    laser, the battery on platform/bms/state, no temperature, its own models): as it is, every input and
    model passes; a missing topic, the other command type, stale stamps and an unknown scan frame are
    each named with their fix."""
    from hjepa_agent.nodes.driver import DriverFaults
    report = check(ros_context, jackal_world, tmp_path / "ok", profile_path=JACKAL)
    assert report.exit_code == 0, [(f.expectation.key, f.verdict, f.problems) for f in report.inputs]
    assert finding(report, "camera").expectation.topic == "/j100_0000/sensors/camera_0/color/compressed"
    assert finding(report, "motor_temperature").verdict is Verdict.SKIPPED
    assert {m.verdict for m in report.models} == {Verdict.OK}
    cases = [(DriverFaults(renames=(("odom", "odometry/local"),)), "odom", Verdict.MISSING, "odom_topic:="),
             (DriverFaults(cmd_vel_type="twist"), "cmd_vel", Verdict.WRONG_TYPE, "cmd_vel_type: twist"),
             (DriverFaults(stamp_lag_s=1.0), "scan", Verdict.STALE, "chrony"),
             (DriverFaults(scan_frame="lidar_unknown"), "scan", Verdict.BAD_FRAME, "urdf")]
    for i, (faults, key, verdict, fix) in enumerate(cases):
        report = check(ros_context, jackal_world, tmp_path / str(i), faults, JACKAL)
        f = finding(report, key)
        assert f.verdict is verdict and fix in f.problems[0].fix, (key, f.verdict, f.problems)
        assert report.exit_code == 1
