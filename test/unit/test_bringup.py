"""The judging of `hjepa-agent check` (core/bringup.py, core/bringup_judge.py): observed facts (graph endpoints, samples heard,
static transforms) -> a typed verdict per input with the fix; names resolved as rcl does; the models a
params set selects; the report's exit code, text and JSON."""
import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hjepa_agent.config.urdf import read_urdf
from hjepa_agent.core.bringup import (Alternative, Direction, Endpoint, Expectation, MountRule, Need, Observed, Sample,
                                      ScanShape, TopicEnds, relative_to, resolve_topic, scan_fov_deg, selected_models,
                                      summarise)
from hjepa_agent.core.bringup_judge import MIN_RATE_FRACTION, ModelFinding, Verdict, judge, tf_connected
from hjepa_agent.core.bringup_report import Report, render, report_json
from hjepa_agent.config.paths import data_path

NS = "/robot1"
DRIVER = "/robot1/sim"
IMAGE, COMPRESSED = "sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage"
BATTERY, SCAN, ODOM = "sensor_msgs/msg/BatteryState", "sensor_msgs/msg/LaserScan", "nav_msgs/msg/Odometry"
TWIST, TWIST_STAMPED = "geometry_msgs/msg/Twist", "geometry_msgs/msg/TwistStamped"
OWN = frozenset({"/robot1/bridge", "/robot1/watchdog", "/robot1/estimator", "/robot1/hjepa_check"})


# ---- builders --------------------------------------------------------------------------------------
def expect(key="battery_state", type_=BATTERY, **kw):
    base = dict(key=key, topic=f"{NS}/{key}", type=type_, remap=key, remap_arg=f"{key}_topic", rate_hz=10.0,
                max_age_s=0.5, source="ego.yaml: hard.sensors.x")
    base.update(kw)
    return Expectation(**base)


def stream(n=20, rate_hz=10.0, lag_s=0.01, t0=1000.0, **kw):
    """n samples received at rate_hz, stamped lag_s before receipt."""
    return [Sample(received_s=t0 + i / rate_hz, stamp_s=t0 + i / rate_hz - lag_s, **kw) for i in range(n)]


def observed(graph=None, samples=None, listen_s=2.0, **kw):
    return Observed(graph=graph or {}, samples=samples or {}, listen_s=listen_s, namespace=NS, own=OWN, **kw)


def pub(type_, node=DRIVER, reliable=True):
    return TopicEnds(publishers=(Endpoint(node, type_, reliable),))


def sub(type_, node=DRIVER):
    return TopicEnds(subscribers=(Endpoint(node, type_),))


def verdicts(finding):
    return [p.verdict for p in finding.problems]


# ---- names -----------------------------------------------------------------------------------------
def test_names_resolve_as_rcl_remaps_them():
    assert resolve_topic("scan", "", {}) == "/scan"
    assert resolve_topic("scan", NS, {}) == "/robot1/scan"
    assert resolve_topic("/clock", NS, {}) == "/clock"
    assert resolve_topic("battery_state", NS, {"battery_state": "platform/bms/state"}) == "/robot1/platform/bms/state"
    assert resolve_topic("battery_state", NS, {"battery_state": "/bms"}) == "/bms"
    remaps = {"camera/image_raw": "oakd/rgb/preview/image_raw"}
    assert resolve_topic("camera/image_raw", NS, remaps) == "/robot1/oakd/rgb/preview/image_raw"
    # a rule renames one exact name: the compressed stream stays where it was
    assert resolve_topic("camera/image_raw/compressed", NS, remaps) == "/robot1/camera/image_raw/compressed"
    assert relative_to("/robot1/platform/bms/state", NS) == "platform/bms/state"
    assert relative_to("/bms", NS) == "/bms" and relative_to("/bms", "") == "bms"


# ---- what was heard --------------------------------------------------------------------------------
def test_summarise_measures_rate_from_receipts_and_age_from_stamps():
    s = summarise(stream(n=11, rate_hz=20.0, lag_s=0.3, frame_id="odom", child_frame_id="base_link"))
    assert s.messages == 11 and s.rate_hz == pytest.approx(20.0)
    assert s.age_p50_s == pytest.approx(0.3) and s.age_max_s == pytest.approx(0.3)
    assert s.frames == ("odom",) and s.child_frames == ("base_link",)
    one = summarise(stream(n=1))
    assert one.messages == 1 and one.rate_hz is None
    assert summarise([]).messages == 0 and summarise([]).age_p50_s is None


def test_scan_field_of_view_is_stated_as_a_robot_description_states_it():
    assert scan_fov_deg(64, 2 * math.pi / 64) == 360.0
    assert scan_fov_deg(271, -math.radians(1.0)) == pytest.approx(270.0)


@given(rate_hz=st.floats(1.0, 100.0), want_hz=st.floats(1.0, 100.0), lag_s=st.floats(-0.2, 5.0),
       max_age_s=st.floats(0.05, 10.0))
def test_a_steady_stream_is_slow_or_stale_exactly_when_its_numbers_say(rate_hz, want_hz, lag_s, max_age_s):
    """Property: for a steady stream the verdicts follow the thresholds (away from their edges, where
    rounding decides): SLOW iff rate < MIN_RATE_FRACTION * want, STALE iff age > max_age_s."""
    exp = expect(rate_hz=want_hz, max_age_s=max_age_s)
    rel_rate = rate_hz / (MIN_RATE_FRACTION * want_hz)
    if abs(rel_rate - 1.0) < 1e-6 or abs(lag_s - max_age_s) < 1e-6:
        return
    f = judge(exp, observed({exp.topic: pub(BATTERY)}, {exp.key: stream(n=10, rate_hz=rate_hz, lag_s=lag_s)}))
    assert (Verdict.SLOW in verdicts(f)) == (rate_hz < MIN_RATE_FRACTION * want_hz)
    assert (Verdict.STALE in verdicts(f)) == (lag_s > max_age_s)
    assert f.failing == bool(f.problems)
    assert (f.verdict is Verdict.OK) == (not f.problems)


def test_one_message_where_several_were_due_is_slow():
    exp = expect(rate_hz=10.0)
    f = judge(exp, observed({exp.topic: pub(BATTERY)}, {exp.key: stream(n=1)}, listen_s=2.0))
    assert f.verdict is Verdict.SLOW and "1 message in 2.0 s" in f.problems[0].detail
    slow_topic = expect(rate_hz=1.0)
    assert judge(slow_topic, observed({exp.topic: pub(BATTERY)}, {exp.key: stream(n=1)}, listen_s=2.0)).problems == ()


def test_stamps_ahead_of_the_clock_beyond_the_guard_tolerance_are_refused():
    exp = expect(future_tolerance_s=0.25)
    f = judge(exp, observed({exp.topic: pub(BATTERY)}, {exp.key: stream(lag_s=-1.0)}))
    assert verdicts(f) == [Verdict.FUTURE_STAMP] and "chrony" in f.problems[0].fix
    assert judge(exp, observed({exp.topic: pub(BATTERY)}, {exp.key: stream(lag_s=-0.1)})).problems == ()


# ---- missing and wrong types -----------------------------------------------------------------------
def test_a_missing_input_names_the_topic_of_its_type_and_the_remap_that_reaches_it():
    exp = expect(presence_key="hard.sensors.battery.presence")
    graph = {"/robot1/platform/bms/state": pub(BATTERY), "/robot1/odom": pub(ODOM)}
    f = judge(exp, observed(graph))
    assert f.verdict is Verdict.MISSING and f.failing
    p = f.problems[0]
    assert "no publisher on /robot1/battery_state" in p.detail and "/robot1/platform/bms/state" in p.detail
    assert "remap battery_state_topic:=platform/bms/state" in p.fix
    assert "--remap battery_state:=platform/bms/state" in p.fix
    assert "hard.sensors.battery.presence: absent" in p.fix   # or say the robot has none


def test_a_missing_input_with_nothing_of_its_type_says_to_start_the_driver():
    f = judge(expect(), observed({"/robot1/odom": pub(ODOM)}))
    assert f.verdict is Verdict.MISSING and "no sensor_msgs/msg/BatteryState anywhere" in f.problems[0].detail
    assert f.problems[0].fix.startswith("start the driver")


def test_a_camera_on_the_other_transport_says_which_setting_takes_it():
    exp = expect("camera", IMAGE, topic="/robot1/camera/image_raw", remap="camera/image_raw", remap_arg="camera_topic",
                 alternatives=(Alternative("/robot1/camera/image_raw/compressed", COMPRESSED,
                                           "image_transport: compressed"),))
    f = judge(exp, observed({"/robot1/camera/image_raw/compressed": pub(COMPRESSED)}))
    assert f.verdict is Verdict.MISSING and "image_transport: compressed" in f.problems[0].fix


def test_a_publisher_of_another_type_is_a_wrong_type():
    exp = expect("scan", SCAN)
    f = judge(exp, observed({exp.topic: pub("sensor_msgs/msg/PointCloud2"), "/robot1/scan_2d": pub(SCAN)}))
    assert f.verdict is Verdict.WRONG_TYPE and "PointCloud2" in f.problems[0].detail
    assert "scan_topic:=scan_2d" in f.problems[0].fix


def test_the_agents_own_nodes_and_the_probe_are_not_the_robot():
    exp = expect()
    f = judge(exp, observed({exp.topic: pub(BATTERY, node="/robot1/watchdog")}))
    assert f.verdict is Verdict.MISSING and f.publishers == ()


# ---- cmd_vel -----------------------------------------------------------------------------------------
def cmd_expectation(type_=TWIST):
    other = TWIST_STAMPED if type_ == TWIST else TWIST
    setting = f"cmd_vel_type: {'twist_stamped' if type_ == TWIST else 'twist'}"
    return expect("cmd_vel", type_, direction=Direction.ROBOT_SUBSCRIBES, rate_hz=None, max_age_s=None,
                  alternatives=(Alternative(f"{NS}/cmd_vel", other, setting),))


def test_a_base_subscribing_the_other_command_type_says_which_cmd_vel_type_to_set():
    exp = cmd_expectation(TWIST)
    f = judge(exp, observed({exp.topic: sub(TWIST_STAMPED)}))
    assert verdicts(f) == [Verdict.WRONG_TYPE] and f.failing
    assert "the base subscribes geometry_msgs/msg/TwistStamped on /robot1/cmd_vel" in f.problems[0].detail
    assert f.problems[0].fix.startswith("set cmd_vel_type: twist_stamped in the params file's '/**' section")
    assert judge(exp, observed({exp.topic: sub(TWIST)})).problems == ()


def test_no_subscriber_on_cmd_vel_points_at_the_bases_own_topic():
    exp = cmd_expectation(TWIST)
    f = judge(exp, observed({"/robot1/diff_drive/cmd_vel": sub(TWIST_STAMPED)}))
    assert f.verdict is Verdict.MISSING
    assert "cmd_vel_topic:=diff_drive/cmd_vel" in f.problems[0].fix
    assert "cmd_vel_type: twist_stamped" in f.problems[0].fix
    assert judge(exp, observed({})).verdict is Verdict.MISSING


def test_another_publisher_on_cmd_vel_before_the_agent_starts_is_foreign():
    exp = cmd_expectation(TWIST)
    graph = {exp.topic: TopicEnds(publishers=(Endpoint("/teleop", TWIST), Endpoint("/robot1/bridge", TWIST)),
                                  subscribers=(Endpoint(DRIVER, TWIST),))}
    f = judge(exp, observed(graph))
    assert verdicts(f) == [Verdict.FOREIGN_PUBLISHER] and "/teleop" in f.problems[0].detail
    assert "/robot1/bridge" not in f.problems[0].detail


# ---- frames --------------------------------------------------------------------------------------------
def test_odometry_must_be_in_odom_frame_with_the_base_frame_as_child():
    exp = expect("odom", ODOM, frames=("odom",), frame_param="odom_frame", child_frame="base_link")
    good = stream(frame_id="odom", child_frame_id="base_link")
    assert judge(exp, observed({exp.topic: pub(ODOM)}, {"odom": good})).problems == ()
    heard = stream(frame_id="world", child_frame_id="base_footprint")
    f = judge(exp, observed({exp.topic: pub(ODOM)}, {"odom": heard}))
    assert verdicts(f) == [Verdict.BAD_FRAME, Verdict.BAD_FRAME]
    assert "set odom_frame: world" in f.problems[0].fix and "set base_frame: base_footprint" in f.problems[1].fix


URDF = str(data_path("urdf", "diffbot_yawed_laser.urdf"))


def scan_expectation(rule):
    return expect("scan", SCAN, mounts=(rule,), scan=ScanShape(64, 360.0, "robot.yaml"))


def scans(frame, beams=64, inc=2 * math.pi / 64):
    return {"scan": stream(frame_id=frame, beams=beams, angle_increment_rad=inc)}


def test_a_scan_frame_the_urdf_connects_to_the_base_is_taken_and_another_is_a_bad_frame():
    rule = MountRule(("perception", "planner"), "base_link", URDF, read_urdf(URDF))
    exp = scan_expectation(rule)
    graph = {exp.topic: pub(SCAN)}
    assert judge(exp, observed(graph, scans("laser_link"))).problems == ()
    assert judge(exp, observed(graph, scans("base_link"))).problems == ()
    f = judge(exp, observed(graph, scans("laser_unknown")))
    assert verdicts(f) == [Verdict.BAD_FRAME] and "'laser_unknown'" in f.problems[0].detail
    assert "urdf" in f.problems[0].fix


def test_without_a_urdf_the_scan_frame_must_be_connected_on_tf_static():
    rule = MountRule(("perception", "planner"), "base_link")
    exp = scan_expectation(rule)
    graph = {exp.topic: pub(SCAN)}
    edges = (("base_footprint", "base_link"), ("base_link", "rplidar_link"))
    assert judge(exp, observed(graph, scans("rplidar_link"), tf_edges=edges)).problems == ()
    assert judge(exp, observed(graph, scans("rplidar_link"))).verdict is Verdict.BAD_FRAME
    no_tf = judge(exp, observed(graph, scans("rplidar_link"), tf_edges=edges, tf_read=False))
    assert no_tf.verdict is Verdict.BAD_FRAME and "tf2 is not installed" in no_tf.problems[0].detail
    assert tf_connected(edges, "base_footprint", "rplidar_link") and not tf_connected(edges, "base_link", "odom")


def test_an_unreadable_urdf_is_a_bad_frame_naming_it():
    exp = scan_expectation(MountRule(("perception",), "base_link", "/no/such.urdf", None, "URDF file not found"))
    f = judge(exp, observed({exp.topic: pub(SCAN)}, scans("laser_link")))
    assert f.verdict is Verdict.BAD_FRAME and "/no/such.urdf" in f.problems[0].detail


# ---- formats ---------------------------------------------------------------------------------------------
def test_a_scan_other_than_the_robot_descriptions_is_not_as_described():
    exp = scan_expectation(MountRule(("perception",), "base_link"))
    f = judge(exp, observed({exp.topic: pub(SCAN)}, scans("base_link", beams=360, inc=2 * math.pi / 360)))
    assert verdicts(f) == [Verdict.NOT_AS_DESCRIBED] and "360 beams over 360.0 deg" in f.problems[0].detail


def test_messages_the_agents_input_check_refuses_are_a_bad_format():
    exp = expect()
    heard = stream(rejected="non_finite: percentage is nan (unmeasured)")
    f = judge(exp, observed({exp.topic: pub(BATTERY)}, {exp.key: heard}))
    assert f.verdict is Verdict.BAD_FORMAT and "20 of 20" in f.problems[0].detail and "nan" in f.problems[0].detail


def test_an_image_under_the_encoders_minimum_side_is_a_bad_format():
    exp = expect("camera", IMAGE, image=True)
    small = judge(exp, observed({exp.topic: pub(IMAGE)}, {"camera": stream(width=320, height=8, encoding="rgb8")}))
    assert small.verdict is Verdict.BAD_FORMAT and "320x8" in small.problems[0].detail
    assert judge(exp, observed({exp.topic: pub(IMAGE)}, {"camera": stream(width=64, height=64)})).problems == ()


def test_a_publisher_heard_saying_nothing_is_silent():
    exp = expect()
    f = judge(exp, observed({exp.topic: pub(BATTERY)}, {}))
    assert verdicts(f) == [Verdict.SILENT] and DRIVER in f.problems[0].detail


def test_a_best_effort_goal_never_reaches_a_reliable_subscription():
    exp = expect("goal_pose", "geometry_msgs/msg/PoseStamped", need=Need.INFO, rate_hz=None, max_age_s=None,
                 reliable=True, frames=("odom", "base_link"))
    f = judge(exp, observed({exp.topic: pub(exp.type, reliable=False)}, {exp.key: stream(frame_id="odom")}))
    assert verdicts(f) == [Verdict.INCOMPATIBLE_QOS] and not f.failing   # informational: a user sends goals
    map_goal = judge(exp, observed({exp.topic: pub(exp.type)}, {exp.key: stream(frame_id="map")}))
    assert map_goal.verdict is Verdict.BAD_FRAME and "'odom' or 'base_link'" in map_goal.problems[0].detail


# ---- needs and the report -------------------------------------------------------------------------------
def test_an_absent_input_is_skipped_and_an_optional_one_does_not_fail_the_check():
    absent = judge(expect(need=Need.ABSENT, presence_key="hard.sensors.temperature.presence"), observed({}))
    assert absent.verdict is Verdict.SKIPPED and not absent.failing
    optional = judge(expect(need=Need.OPTIONAL), observed({}))
    assert optional.verdict is Verdict.MISSING and not optional.failing
    required = judge(expect(), observed({}))
    assert required.failing
    assert Report((absent, optional), (), 2.0).exit_code == 0
    good_model = ModelFinding("watchdog", "typical_risk", "m.yaml", Verdict.OK)
    report = Report((absent, optional, required), (good_model,), 2.0)
    assert report.exit_code == 1 and report.failures == ["battery_state MISSING"]
    bad_model = ModelFinding("habitual", "habitual_world", "m.yaml", Verdict.MODEL_MISMATCH,
                             (("scan.n_beams", 64, 360),), "trained for another robot", "hjepa-agent train ...")
    assert Report((absent,), (bad_model,), 2.0).failures == ["habitual:habitual_world MODEL_MISMATCH"]


def test_the_text_and_the_json_are_made_from_the_values():
    exp = expect()
    ok = judge(exp, observed({exp.topic: pub(BATTERY)}, {exp.key: stream(n=21, rate_hz=12.5, lag_s=0.042)}))
    missing = judge(expect("odom", ODOM), observed({}))
    bad_model = ModelFinding("habitual", "habitual_world", "m.yaml", Verdict.MODEL_MISMATCH,
                             (("scan.n_beams", 64, 360),), "trained for another robot", "hjepa-agent train X")
    report = Report((ok, missing), (bad_model,), 2.0, {"namespace": NS})
    text = render(report)
    assert "12.5/10" in text and "42/500" in text and "MISSING" in text and "scan.n_beams: 64 trained, 360 here" in text
    assert text.splitlines()[-1] == "check: FAILED (2): odom MISSING, habitual:habitual_world MODEL_MISMATCH"
    data = json.loads(json.dumps(report_json(report)))
    assert data["ok"] is False and data["exit_code"] == 1
    first = data["inputs"][0]
    assert first["verdict"] == "OK" and first["rate_hz"] == pytest.approx(12.5)
    assert first["age_p50_s"] == pytest.approx(0.042)
    assert data["inputs"][1]["problems"][0]["verdict"] == "MISSING"
    assert data["models"][0]["differences"] == [{"key": "scan.n_beams", "trained": 64, "here": 360}]


# ---- which models the params select ------------------------------------------------------------------------
def test_the_models_selected_follow_the_nodes_parameters():
    from hjepa_agent.nodes.node_table import load_params, load_params_files
    shipped = selected_models(load_params(data_path("config", "agent.yaml")))
    assert shipped == [("perception", "world_encoder"), ("perception", "world_look"), ("habitual", "habitual_world"),
                       ("estimator", "world_predictor"), ("watchdog", "typical_risk")]
    cem = selected_models(load_params_files([data_path("config", "agent.yaml"), data_path("config", "skidrover.params.yaml")]))
    assert not any(node == "planner" for node, _ in cem)   # skidrover's CEM (set there) needs no planner networks
    assert selected_models({}) == [("perception", "encoder"), ("habitual", "habitual"), ("watchdog", "typical_risk")]
    every = selected_models({"planner": {"planner": "gflownet", "hierarchy": True, "ambiguity_weight": 0.5},
                             "watchdog": {"typical_risk": False}})
    assert ("planner", "planner_policy") in every and ("planner", "subgoal_logz") in every
    assert ("planner", "world_predictor") in every and ("watchdog", "typical_risk") not in every
