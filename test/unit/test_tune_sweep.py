"""tune sweep: the grid (a product over WatchdogConfig fields, refused when a name or a point is not a valid
threshold), the episode scoring (start-up, interventions, a fault's reaction and its delay), the
recommendation rule, and the whole sweep on a tiny hand-made recording."""
import json
import math
import subprocess
import sys

import pytest
import yaml

from hjepa_agent.config.ego_model import load_ego_model
from hjepa_agent.core.watchdog import load_watchdog_config
from hjepa_agent.config.paths import data_path
from hjepa_agent.core.events import Cause, Event, Transition
from hjepa_agent.core.types import Mode
from hjepa_agent.core.watchdog import LEVELS
from hjepa_agent.tune.scoring import TickRecord, fault_of, parse_grid, point_summary, recommend, score_episode

BASE = load_watchdog_config(data_path("config", "watchdog.yaml"))
EGO = load_ego_model(data_path("config", "ego_model.yaml"))


# ---- the grid -------------------------------------------------------------------------------------
def test_the_grid_is_the_product_of_the_values_first_name_slowest():
    points = parse_grid(" ambiguity_stop=1.0, 1.5 ,2 ; dwell_s=0.5,1 ", BASE, EGO)
    assert points == [{"ambiguity_stop": a, "dwell_s": d} for a in (1.0, 1.5, 2.0) for d in (0.5, 1.0)]
    assert parse_grid("dwell_s=1,1,2", BASE) == [{"dwell_s": 1.0}, {"dwell_s": 2.0}]   # repeats once


@pytest.mark.parametrize("spec, says", [
    ("ambiguity_stp=1.0", "'ambiguity_stp' is not a watchdog threshold"),
    ("ambiguity_stop=1.0;ambiguity_stop=2.0", "ambiguity_stop is given twice"),
    ("ambiguity_stop=high", "ambiguity_stop='high' is not a number"),
    ("ambiguity_stop=nan", "must be finite"),
    ("ambiguity_stop=", "ambiguity_stop has no values"),
    ("ambiguity_stop", "expected name=v1,v2"),
    ("", "no thresholds"),
    ("ambiguity_stop=1.0,-1.0", "ambiguity_stop: must be in (0, 1e6]"),                        # out of range
    ("clearance_plan_m=0.1,0.2;clearance_optimise_m=0.15", "clearance_optimise_m"),            # cross-field
    ("battery_derate_pct=5", "battery_derate_pct"),                  # below the ego model's battery floor
])
def test_a_bad_grid_is_refused_naming_what_is_wrong(spec, says):
    with pytest.raises(ValueError) as err:
        parse_grid(spec, BASE, EGO)
    assert says in str(err.value)
    if "point" in str(err.value):   # an invalid combination is named with its values
        assert "--grid point {" in str(err.value)


# ---- one episode's score ----------------------------------------------------------------------------
def _ticks(t0, n, transitions=(), graded=()):
    """n ticks 0.05 s apart from t0 (TickRecords with typed events); ``transitions``: (time since t0,
    (mode before, mode after)[, causes]); ``graded`` likewise with graded levels."""
    out, mode, level = [], Mode.SAFE_STOP, 0
    for i in range(n):
        t = round(i * 0.05, 6)
        events = []
        for kind, changes in (("mode", transitions), ("graded", graded)):
            for when, (before, after), *causes in changes:
                if abs(when - t) < 1e-9:
                    events.append(Event(t0 + t, kind, ("why",), tuple(causes[0]) if causes else (),
                                        Transition(before, after)))
                    if kind == "mode":
                        mode = Mode[after]
                    else:
                        level = LEVELS.index(after)
        out.append(TickRecord(t0 + t, mode, tuple(events), level))
    return out


def test_the_start_up_is_not_an_intervention_and_planning_is_not_one():
    s = score_episode(_ticks(100.0, 100, [(0.1, ("SAFE_STOP", "HABITUAL")), (2.0, ("HABITUAL", "PLANNING")),
                                          (3.0, ("PLANNING", "HABITUAL"))]))
    assert s.started_s == pytest.approx(0.1) and s.interventions == () and not s.false_alarm
    assert s.detected is None and s.delay_s is None                       # nominal: no fault to detect


def test_interventions_after_the_start_up_are_false_alarms_in_a_nominal_episode():
    s = score_episode(_ticks(100.0, 100, [(0.1, ("SAFE_STOP", "HABITUAL")), (2.0, ("HABITUAL", "PLANNING")),
                                          (2.5, ("PLANNING", "OPTIMISING"))]))
    assert s.interventions == (pytest.approx((2.5, "OPTIMISING")),) and s.false_alarm
    s = score_episode(_ticks(0.0, 100, [(0.1, ("SAFE_STOP", "HABITUAL")), (4.0, ("HABITUAL", "SAFE_STOP"))]))
    assert [m for _, m in s.interventions] == ["SAFE_STOP"] and s.false_alarm


def test_a_watchdog_that_never_lets_the_robot_start_is_a_false_alarm():
    s = score_episode(_ticks(0.0, 100))
    assert s.started_s is None and s.interventions == () and s.false_alarm


def test_a_fault_is_detected_by_the_first_safe_stop_at_or_after_its_onset():
    # the episode starts at its first tick (50.0): the onset 4 s is at 54.0; the stop at 54.5
    s = score_episode(_ticks(50.0, 120, [(0.05, ("SAFE_STOP", "HABITUAL")), (4.5, ("HABITUAL", "SAFE_STOP"))]), 4.0)
    assert s.detected and s.detected_at_s == pytest.approx(4.5) and s.delay_s == pytest.approx(0.5)
    assert not s.false_alarm
    at = score_episode(_ticks(0.0, 120, [(0.05, ("SAFE_STOP", "HABITUAL")), (4.0, ("HABITUAL", "SAFE_STOP"))]), 4.0)
    assert at.detected and at.delay_s == pytest.approx(0.0)                # at the onset counts


def test_a_stop_before_the_onset_is_a_false_alarm_and_no_detection():
    s = score_episode(_ticks(0.0, 120, [(0.05, ("SAFE_STOP", "HABITUAL")), (3.0, ("HABITUAL", "SAFE_STOP"))]), 4.0)
    assert not s.detected and s.false_alarm
    late = score_episode(_ticks(0.0, 120, [(4.5, ("SAFE_STOP", "HABITUAL"))]), 4.0)   # still starting at the onset
    assert late.false_alarm and not late.detected                          # the start-up is no reaction


def test_planning_detects_an_obstacle_drop_only_and_graded_escalations_are_a_response():
    ticks = _ticks(0.0, 120, [(0.05, ("SAFE_STOP", "HABITUAL")), (4.2, ("HABITUAL", "PLANNING"))])
    label, onset, kinds = fault_of(["obstacle_drop@4"])
    assert (label, onset, kinds) == ("obstacle_drop", 4.0, ("obstacle_drop",))
    assert score_episode(ticks, onset, kinds).delay_s == pytest.approx(0.2)
    assert not score_episode(ticks, *fault_of(["camera_blackout@4"])[1:]).detected
    graded = _ticks(0.0, 120, [(0.05, ("SAFE_STOP", "HABITUAL"))],
                    graded=[(3.0, ("NORMAL", "LIMIT")), (3.5, ("LIMIT", "NORMAL")), (4.3, ("NORMAL", "LIMIT")),
                            (4.4, ("LIMIT", "NORMAL")), (4.6, ("NORMAL", "LIMIT"))])
    s = score_episode(graded, 4.0)   # no kinds: judged by the response alone
    assert s.detected_at_s == pytest.approx(4.3) and s.graded == pytest.approx((3.0, 4.3, 4.6))
    assert fault_of(["battery_sag@3:500", "camera_blackout@4"]) == ("battery_sag+camera_blackout", 3.0,
                                                                    ("battery_sag", "camera_blackout"))


def test_a_fault_is_detected_in_replay_as_live_by_the_first_causes_after_its_onset():
    """The judge's definition (harness/judge.py): a stop after the onset detects a blinded camera only if the
    first typed causes after the onset are its own; a dropped box is answered by deliberating, even one
    already under way at the onset."""
    kinds = ("camera_blackout",)
    named = _ticks(0.0, 120, [(0.05, ("SAFE_STOP", "HABITUAL")), (4.5, ("HABITUAL", "SAFE_STOP"), [Cause.AMBIGUITY])])
    s = score_episode(named, 4.0, kinds)
    assert s.detected and not s.named_wrongly and s.delay_s == pytest.approx(0.5)
    slowed_first = _ticks(0.0, 120, [(0.05, ("SAFE_STOP", "HABITUAL")),
                                     (4.5, ("HABITUAL", "SAFE_STOP"), [Cause.AMBIGUITY])],
                          graded=[(4.2, ("NORMAL", "LIMIT"), [Cause.RISK])])
    s = score_episode(slowed_first, 4.0, kinds)
    assert not s.detected and s.named_wrongly and s.delay_s is None
    before = _ticks(0.0, 120, [(0.05, ("SAFE_STOP", "HABITUAL")), (3.9, ("HABITUAL", "PLANNING"),
                                                                   [Cause.HABITUAL_CLEARANCE])])
    s = score_episode(before, 4.0, ("obstacle_drop",))
    assert s.detected and s.delay_s == pytest.approx(0.0)
    unnamed = _ticks(0.0, 120, [(0.05, ("SAFE_STOP", "HABITUAL")), (4.5, ("HABITUAL", "SAFE_STOP"))])
    assert not score_episode(unnamed, 4.0, kinds).detected            # a stop naming nothing names no fault


def test_a_point_summary_counts_episodes_and_delays_per_fault_kind():
    nominal = [score_episode(_ticks(0.0, 100, [(0.1, ("SAFE_STOP", "HABITUAL"))])),
               score_episode(_ticks(0.0, 100, [(0.1, ("SAFE_STOP", "HABITUAL")), (2.0, ("HABITUAL", "SAFE_STOP"))]))]
    stop_at = lambda t: score_episode(_ticks(0.0, 120, [(0.1, ("SAFE_STOP", "HABITUAL")),
                                                        (t, ("HABITUAL", "SAFE_STOP"))]), 4.0)
    faulted = [("camera_blackout", stop_at(4.5)), ("camera_blackout", stop_at(5.0)), ("wheel_slip", stop_at(3.0))]
    p = point_summary({"ambiguity_stop": 1.0}, nominal, faulted)
    assert p["false_rate"] == 0.5 and p["false_episodes"] == 1 and p["never_started"] == 0
    assert p["detection_rate"] == pytest.approx(2 / 3) and p["delay_s"] == {"median": 0.75, "max": 1.0}
    assert p["by_kind"]["camera_blackout"]["rate"] == 1.0 and p["by_kind"]["wheel_slip"]["detected"] == 0
    assert p["by_kind"]["wheel_slip"]["false_alarm_before_onset"] == 1
    assert p["by_kind"]["camera_blackout"]["named_wrongly"] == 0


# ---- the recommendation ---------------------------------------------------------------------------
def _pt(false, det, **values):
    return {"values": values, "false_rate": false, "detection_rate": det}


def test_the_best_detection_within_alpha_wins():
    points = [_pt(0.0, 0.6, a=1.0), _pt(0.05, 0.9, a=2.0), _pt(0.10, 1.0, a=3.0)]
    assert recommend(points, 0.05, {"a": 1.0}) == 1                        # 1/20 is within 0.05
    assert recommend(points, 0.0, {"a": 1.0}) == 0
    assert recommend(points, 0.5, {"a": 1.0}) == 2


def test_ties_go_to_the_lower_false_rate_then_to_the_closest_to_the_base():
    assert recommend([_pt(0.05, 0.9, a=1.0), _pt(0.0, 0.9, a=5.0)], 0.05, {"a": 1.0}) == 1
    tie = [_pt(0.0, 0.9, a=3.0, b=0.0), _pt(0.0, 0.9, a=1.5, b=0.5), _pt(0.0, 0.9, a=1.2, b=0.0)]
    # distances from a=1, b=0: |3-1|/1 = 2; 0.5 + 0.5/1 = 1.0; 0.2: the third
    assert recommend(tie, 0.05, {"a": 1.0, "b": 0.0}) == 2
    assert recommend([_pt(0.0, 0.9, a=2.0), _pt(0.0, 0.9, a=0.0)], 0.05, {"a": 1.0}) == 0   # equal: the first


def test_a_point_that_slows_too_many_nominal_episodes_is_not_recommended():
    slowing = {**_pt(0.0, 1.0, a=4.0), "graded_rate_nominal": 0.2}
    calm = {**_pt(0.0, 0.9, a=6.0), "graded_rate_nominal": 0.05}
    assert recommend([slowing, calm], 0.05, {"a": 6.0}) == 0                    # no limit: detection wins
    assert recommend([slowing, calm], 0.05, {"a": 6.0}, max_slowed=0.05) == 1
    assert recommend([slowing, calm], 0.05, {"a": 6.0}, max_slowed=0.0) is None


def test_nothing_within_alpha_recommends_nothing_and_no_faulted_runs_means_the_fewest_false_alarms():
    assert recommend([_pt(0.1, 1.0, a=1.0), _pt(0.2, 1.0, a=2.0)], 0.05, {"a": 1.0}) is None
    assert recommend([_pt(0.05, None, a=1.0), _pt(0.0, None, a=3.0)], 0.05, {"a": 1.0}) == 1


# ---- the whole sweep on a tiny recording ------------------------------------------------------------
def _write_run(run_dir, episodes, onsets, namespace="", camera_topic=None):
    """A run directory as `hjepa-agent sim` writes it, made by hand: run.mcap with the watchdog's inputs
    and journal for ``episodes`` (each: a function of the time since its start -> world-state ambiguity),
    6 s each at 20 Hz, and episodes.jsonl (with "faults" where ``onsets`` has an onset). With
    ``namespace`` every topic is under it, as the robot launch's recorder writes them; ``camera_topic``:
    the camera remapped there (absolute)."""
    from geometry_msgs.msg import TwistStamped
    from nav_msgs.msg import Odometry
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore
    from sensor_msgs.msg import BatteryState, Image, LaserScan, Temperature
    from std_msgs.msg import String

    from builders import world_state
    from hjepa_agent.nodes.codec import time_ns, to_time, world_state_to_msg

    run_dir.mkdir()
    store = get_typestore(Stores.LATEST)
    writer = Writer(run_dir / "run.mcap", version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    topics = {"camera": ("/camera/image_raw", "sensor_msgs/msg/Image"), "scan": ("/scan", "sensor_msgs/msg/LaserScan"),
              "odom": ("/odom", "nav_msgs/msg/Odometry"), "battery": ("/battery_state", "sensor_msgs/msg/BatteryState"),
              "temperature": ("/motor_temperature", "sensor_msgs/msg/Temperature"),
              "world_state": ("/agent/world_state", "sensor_msgs/msg/JointState"),
              "habitual": ("/agent/habitual/cmd", "geometry_msgs/msg/TwistStamped"),
              "journal": ("/agent/watchdog/journal", "std_msgs/msg/String")}
    topics = {k: (namespace + t, ty) for k, (t, ty) in topics.items()}
    if camera_topic:
        topics["camera"] = (camera_topic, topics["camera"][1])
    conns = {k: writer.add_connection(t, ty, typestore=store) for k, (t, ty) in topics.items()}
    t0 = 1.0
    lines = []
    for ep, ambiguity in enumerate(episodes):
        session = f"s{ep}"
        for i in range(120):
            now = t0 + 0.05 * (i + 1)
            stamp = to_time(now - 0.01)
            msgs = {"camera": Image(), "scan": LaserScan(), "odom": Odometry(), "battery": BatteryState(),
                    "temperature": Temperature(), "habitual": TwistStamped()}
            for m in msgs.values():
                m.header.stamp = stamp
            # valid as the node's input guard requires (nodes/topics.py): the replay validates them the same way
            msgs["camera"].height, msgs["camera"].width, msgs["camera"].step = 1, 1, 3
            msgs["camera"].encoding, msgs["camera"].data = "rgb8", [0, 0, 0]
            msgs["scan"].angle_increment, msgs["scan"].range_max, msgs["scan"].ranges = 0.1, 4.0, [1.0]
            msgs["odom"].header.frame_id, msgs["odom"].pose.pose.orientation.w = "odom", 1.0
            msgs["odom"].twist.twist.linear.x = 0.3
            msgs["battery"].percentage = 0.9
            msgs["temperature"].temperature = 30.0
            msgs["habitual"].twist.linear.x = 0.3
            ws = world_state(stamp_s=now - 0.01, twist=(0.3, 0.0), ambiguity=float(ambiguity(now - t0)))
            msgs["world_state"] = world_state_to_msg(ws)
            consumed = []
            for kind, m in msgs.items():
                writer.write(conns[kind], int(now * 1e9), serialize_message(m))
                consumed.append([kind, time_ns(m.header.stamp), now - 0.005])
            entry = {"session": session, "tick": now, "inputs": consumed, "mode": "?", "events": []}
            writer.write(conns["journal"], int(now * 1e9), serialize_message(String(data=json.dumps(entry))))
        t0 += 7.0
        line = {"episode": ep, "outcome": "goal"}
        if onsets[ep] is not None:
            line.update(faults=[f"camera_blackout@{onsets[ep]:g}"], breach=None, lead_s=None)
        lines.append(json.dumps(line))
    writer.close()
    (run_dir / "episodes.jsonl").write_text("\n".join(lines) + "\n")


@pytest.mark.integration   # the CLI in a subprocess over recordings written with rclpy: not the pure core
def test_a_sweep_over_a_tiny_recording_recommends_the_threshold_that_separates_fault_from_nominal(tmp_path):
    calm = lambda t: 0.3 + 0.04 * math.sin(t)                      # nominal: ambiguity 0.26..0.34
    blind = lambda t: 0.3 if t < 3.1 else 1.2                       # a blinded camera: the tick after 3 s
    _write_run(tmp_path / "nominal", [calm, calm], [None, None])
    _write_run(tmp_path / "faulted", [blind, calm], [3.0, 3.0])   # the second fault goes unseen
    out = tmp_path / "sweep"
    proc = subprocess.run([sys.executable, "-m", "hjepa_agent.cli", "tune", "sweep", "--nominal",
                           str(tmp_path / "nominal"), "--faulted", str(tmp_path / "faulted"), "--grid",
                           "ambiguity_stop=0.25,1.0,1.5", "--alpha", "0.0", "--out", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "sweep.json").read_text())
    by = {p["values"]["ambiguity_stop"]: p for p in report["points"]}
    assert by[0.25]["false_rate"] == 1.0            # 0.25 < the nominal 0.3 at the start: never starts
    assert by[0.25]["never_started"] == 2
    assert by[1.0]["false_rate"] == 0.0 and by[1.0]["detection_rate"] == 0.5
    assert 0.0 <= by[1.0]["delay_s"]["max"] <= 0.15   # within a tick or two of the onset
    assert by[1.5]["false_rate"] == 0.0 and by[1.5]["detection_rate"] == 0.0
    assert report["recommended_values"] == {"ambiguity_stop": 1.0} and report["timeline"]["episode"] == 0
    assert report["live_faulted_episodes"][0]["breach"] is None
    assert load_watchdog_config(out / "recommended.yaml").ambiguity_stop == 1.0
    assert (out / "recommended.yaml").read_text().startswith("# Written by hjepa-agent tune sweep")
    assert yaml.safe_load((out / "recommended.yaml").read_text())["dwell_s"] == BASE.dwell_s   # the rest kept
    assert (out / "roc.png").stat().st_size > 0 and (out / "timeline.png").stat().st_size > 0

    # no point within alpha: sweep.json and roc.png only, and a non-zero exit saying so
    out2 = tmp_path / "none"
    proc = subprocess.run([sys.executable, "-m", "hjepa_agent.cli", "tune", "sweep", "--nominal",
                           str(tmp_path / "nominal"), "--grid", "ambiguity_stop=0.25", "--out", str(out2), "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "no grid point" in proc.stderr
    assert sorted(p.name for p in out2.iterdir()) == ["roc.png", "sweep.json"]


def test_a_recording_under_a_namespace_with_a_remapped_camera_reads_the_same(tmp_path):
    """The robot launch's recorder writes /robot1/agent/... and the remapped camera's own name: the replay
    finds the namespace from the journal topic and takes the camera from --remap."""
    from hjepa_agent.nodes.journal import ReplayContext, read_run
    calm = lambda t: 0.3
    _write_run(tmp_path / "plain", [calm], [None])
    _write_run(tmp_path / "ns", [calm], [None], namespace="/robot1", camera_topic="/front_camera/image_raw")
    plain_inputs, plain_journal = read_run(tmp_path / "plain" / "run.mcap")
    inputs, journal = read_run(tmp_path / "ns" / "run.mcap", {"camera/image_raw": "/front_camera/image_raw"})
    no_remap, _ = read_run(tmp_path / "ns" / "run.mcap")
    with pytest.raises(ValueError, match="not a watchdog input topic"):
        read_run(tmp_path / "ns" / "run.mcap", {"camera": "/x"})
    with pytest.raises(ValueError, match="not a watchdog input topic"):
        ReplayContext(BASE, EGO, remaps={"camera": "/x"})
    assert journal == plain_journal
    for kind in plain_inputs:
        assert sorted(inputs[kind]) == sorted(plain_inputs[kind]), kind
    assert len(plain_inputs["camera"]) == 120 and len(no_remap["camera"]) == 0   # without the remap: not found
    assert len(no_remap["world_state"]) == 120                                # the namespace alone is found
