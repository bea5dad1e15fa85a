"""The recorder node over real DDS: what it records, under a namespace, closing on SIGINT, never
overwriting a recording; and the `hjepa-agent record` verb."""
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone

import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from nav_msgs.msg import Odometry
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.serialization import deserialize_message
from rosbags.rosbag2 import Reader
from std_msgs.msg import String

from conftest import spin_until
from hjepa_agent.cli import main as cli_main
from hjepa_agent.nodes.common import RELIABLE_QOS
from hjepa_agent.nodes.recorder import Recorder, RecorderNode, default_out


def read_bag(path):
    """{topic: [deserialized messages]} for the topics with a known type here, and {topic: count} for all."""
    types = {"/agent/mode": String, "/robot1/agent/mode": String, "/odom": Odometry, "/diagnostics": DiagnosticArray}
    msgs, counts = {}, {}
    with Reader(path) as bag:
        counts = {c.topic: c.msgcount for c in bag.connections}
        for conn, _, raw in bag.messages():
            if conn.topic in types:
                msgs.setdefault(conn.topic, []).append(deserialize_message(raw, types[conn.topic]))
    return msgs, counts


@pytest.fixture
def harness(ros_context):
    ex = SingleThreadedExecutor(context=ros_context)
    nodes = []

    def _add(node):
        nodes.append(node)
        ex.add_node(node)
        return node
    yield ex, _add
    ex.shutdown()
    for n in nodes:
        n.destroy_node()


def _recorder(ros_context, out, **kwargs):
    return RecorderNode(context=ros_context, parameter_overrides=[Parameter("out", value=str(out))], **kwargs)


def test_records_published_messages_and_closes_a_valid_bag(ros_context, harness, tmp_path):
    ex, add = harness
    rec = add(_recorder(ros_context, tmp_path / "bag"))
    pub_node = add(Node("publisher", context=ros_context))
    mode = pub_node.create_publisher(String, "agent/mode", RELIABLE_QOS)
    odom = pub_node.create_publisher(Odometry, "odom", RELIABLE_QOS)  # reliable publisher, best-effort recorder
    assert spin_until(ex, lambda: mode.get_subscription_count() > 0 and odom.get_subscription_count() > 0)
    for name in ("HABITUAL", "PLANNING", "SAFE_STOP"):
        mode.publish(String(data=name))
    for x in (1.0, 2.0):
        msg = Odometry()
        msg.pose.pose.position.x = x
        odom.publish(msg)
    assert spin_until(ex, lambda: rec.recorder.counts["/agent/mode"] == 3 and rec.recorder.counts["/odom"] == 2)
    rec.report()  # its own /diagnostics, which it records too
    assert spin_until(ex, lambda: rec.recorder.counts["/diagnostics"] >= 1)
    rec.close()
    mode.publish(String(data="AFTER_CLOSE"))  # ignored once the bag is closed
    spin_until(ex, lambda: False, timeout_s=0.2)

    msgs, counts = read_bag(tmp_path / "bag")
    assert counts["/agent/mode"] == 3 and counts["/odom"] == 2
    assert [m.data for m in msgs["/agent/mode"]] == ["HABITUAL", "PLANNING", "SAFE_STOP"]
    assert [m.pose.pose.position.x for m in msgs["/odom"]] == [1.0, 2.0]
    assert counts["/cmd_vel"] == 0 and "/clock" in counts  # every topic has its connection, empty or not
    status = msgs["/diagnostics"][0].status[0]
    values = {kv.key: kv.value for kv in status.values}
    assert status.name == "hjepa_agent/recorder" and status.level == DiagnosticStatus.OK
    assert values["messages"] == "5" and values["/agent/mode"] == "3" and values["/odom"] == "2"
    assert values["bag"] == str((tmp_path / "bag").resolve())


def test_relative_topics_follow_the_namespace(ros_context, harness, tmp_path):
    ex, add = harness
    rec = add(_recorder(ros_context, tmp_path / "bag", namespace="robot1"))
    ours = add(Node("agent", namespace="robot1", context=ros_context)).create_publisher(String, "agent/mode", 10)
    other = add(Node("other", context=ros_context)).create_publisher(String, "/agent/mode", 10)
    assert spin_until(ex, lambda: ours.get_subscription_count() > 0)
    rec.report()  # nothing recorded yet: WARN
    assert spin_until(ex, lambda: rec.recorder.counts["/diagnostics"] == 1)
    ours.publish(String(data="HABITUAL"))
    other.publish(String(data="NOT_OURS"))
    assert spin_until(ex, lambda: rec.recorder.counts["/robot1/agent/mode"] == 1)
    spin_until(ex, lambda: False, timeout_s=0.2)
    rec.close()
    msgs, counts = read_bag(tmp_path / "bag")
    assert [m.data for m in msgs["/robot1/agent/mode"]] == ["HABITUAL"]
    assert "/agent/mode" not in counts
    assert "/robot1/odom" in counts and "/robot1/cmd_vel" in counts
    assert "/clock" in counts and "/diagnostics" in counts  # global by design
    first = msgs["/diagnostics"][0].status[0]
    assert first.level == DiagnosticStatus.WARN and "nothing but /diagnostics" in first.message


def test_never_overwrites_a_recording(ros_context, tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "metadata.yaml").write_text("keep me")
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        _recorder(ros_context, taken)
    assert (taken / "metadata.yaml").read_text() == "keep me"
    empty = tmp_path / "empty"
    empty.mkdir()
    rec = _recorder(ros_context, empty)  # an empty directory is used
    rec.destroy_node()  # closes the bag
    assert (empty / "metadata.yaml").exists()
    runner = Recorder(taken, context=ros_context)  # the sim runner's Recorder replaces its own --out/run.mcap
    runner.close()
    runner.node.destroy_node()
    assert (taken / "metadata.yaml").read_text() != "keep me"


def test_default_out_is_a_utc_timestamp():
    now = datetime(2025, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
    assert str(default_out(now)) == "hjepa_run_20250304T050607Z"


def test_console_script_closes_the_bag_on_sigint(ros_context, harness, tmp_path):
    """The `recorder` executable as ros2 launch runs it: parameters from --ros-args, SIGINT to stop."""
    ex, add = harness
    out = tmp_path / "bag"
    proc = subprocess.Popen([sys.executable, "-c", "from hjepa_agent.nodes.recorder import main; main()",
                             "--ros-args", "-p", f"out:={out}"], env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        node = add(Node("publisher", context=ros_context))
        mode = node.create_publisher(String, "agent/mode", RELIABLE_QOS)
        reports = []
        node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: reports.extend(
            {kv.key: kv.value for kv in s.values} for s in m.status if s.name == "hjepa_agent/recorder"), 10)
        assert spin_until(ex, lambda: mode.get_subscription_count() > 0, timeout_s=20.0)
        for name in ("HABITUAL", "PLANNING"):
            mode.publish(String(data=name))
        assert spin_until(ex, lambda: any(r.get("/agent/mode") == "2" for r in reports), timeout_s=10.0), reports
    finally:
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=20)[0].decode()
    assert proc.returncode == 0, output
    msgs, counts = read_bag(out)
    assert [m.data for m in msgs["/agent/mode"]] == ["HABITUAL", "PLANNING"]
    assert counts["/diagnostics"] >= 1


def test_record_verb_refuses_a_taken_out_and_a_bad_duration(ros_context, tmp_path, caplog, capsys):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "run.mcap").write_text("keep me")
    assert cli_main(["record", "--out", str(taken), "--duration", "1", "--quiet"]) == 2
    assert "refusing to overwrite" in caplog.text and str(taken) in caplog.text
    assert (taken / "run.mcap").read_text() == "keep me"
    for bad in ("0", "-1", "soon"):
        with pytest.raises(SystemExit) as exc:
            cli_main(["record", "--out", str(tmp_path / "new"), "--duration", bad])
        assert exc.value.code == 2
    assert "--duration" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["record", "--out", str(tmp_path / "new"), "stray"])
    assert not (tmp_path / "new").exists()


def test_record_verb_records_what_runs_on_the_domain(ros_context, tmp_path, capsys):
    """`hjepa-agent record --duration` against a publisher in another context on the same domain."""
    stop = threading.Event()
    node = Node("agent", context=ros_context)
    mode = node.create_publisher(String, "agent/mode", RELIABLE_QOS)

    def publish():
        while not stop.is_set():
            mode.publish(String(data="HABITUAL"))
            time.sleep(0.05)
    thread = threading.Thread(target=publish)
    thread.start()
    try:
        assert cli_main(["record", "--out", str(tmp_path / "bag"), "--duration", "2.0", "--quiet"]) == 0
    finally:
        stop.set()
        thread.join()
        node.destroy_node()
    printed = capsys.readouterr().out
    assert f"wrote {tmp_path / 'bag'}" in printed
    msgs, counts = read_bag(tmp_path / "bag")
    assert counts["/agent/mode"] >= 5 and all(m.data == "HABITUAL" for m in msgs["/agent/mode"])
    assert f'"/agent/mode": {counts["/agent/mode"]}' in printed


def test_frames_go_into_the_bag_tf_from_odometry_and_tf_static_from_the_urdf(ros_context, harness, tmp_path):
    """urdf: its fixed joints on /tf_static first (not counted as an input); each odom message also on /tf as the
    transform it states, at its receive time; odometry with unnamed frames stays in the bag but gives no /tf."""
    from rosbags.typesys import Stores, get_typestore

    from hjepa_agent.config.paths import data_path
    ex, add = harness
    urdf = data_path("urdf", "diffbot.urdf")
    rec = add(RecorderNode(context=ros_context, parameter_overrides=[Parameter("out", value=str(tmp_path / "bag")),
                                                                     Parameter("urdf", value=str(urdf))]))
    assert rec.recorder.counts["/tf_static"] == 1 and rec.inputs() == 0
    odom = add(Node("publisher", context=ros_context)).create_publisher(Odometry, "odom", RELIABLE_QOS)
    assert spin_until(ex, lambda: odom.get_subscription_count() > 0)
    for x in (1.0, 2.0):
        msg = Odometry()
        msg.header.frame_id, msg.child_frame_id = "odom", "base_link"
        msg.header.stamp.sec = int(x)
        msg.pose.pose.position.x = x
        msg.pose.pose.orientation.z, msg.pose.pose.orientation.w = 0.6, 0.8
        odom.publish(msg)
    odom.publish(Odometry())   # no frames: recorded, no transform
    assert spin_until(ex, lambda: rec.recorder.counts["/odom"] == 3)
    rec.close()
    assert rec.recorder.counts["/tf"] == 2 and rec.recorder.tf_skipped == 1 and rec.inputs() == 5

    ts = get_typestore(Stores.LATEST)
    with Reader(tmp_path / "bag") as bag:
        msgs = [(c.topic, t, ts.deserialize_cdr(raw, c.msgtype)) for c, t, raw in bag.messages()
                if c.topic in ("/tf", "/tf_static", "/odom")]
    assert msgs[0][0] == "/tf_static"
    static = {x.child_frame_id: x for x in msgs[0][2].transforms}
    assert set(static) == {"front_caster", "rear_caster", "camera_link", "laser_link"}
    t = static["laser_link"].transform.translation
    assert static["laser_link"].header.frame_id == "base_link" and (t.x, t.y, t.z) == (0.0, 0.0, 0.075)
    odoms = [(t, m) for topic, t, m in msgs if topic == "/odom"]
    tfs = [(t, m.transforms[0]) for topic, t, m in msgs if topic == "/tf"]
    for (t_odom, o), (t_tf, x) in zip(odoms, tfs):
        assert t_tf == t_odom and x.header.stamp.sec == o.header.stamp.sec
        assert (x.header.frame_id, x.child_frame_id) == ("odom", "base_link")
        assert (x.transform.translation.x, x.transform.rotation.z, x.transform.rotation.w) == \
            (o.pose.pose.position.x, 0.6, 0.8)


def test_an_unreadable_urdf_is_refused_before_any_bag_exists(ros_context, tmp_path):
    bad = tmp_path / "robot.urdf"
    bad.write_text("<robot><joint name='j' type='fixed'/></robot>")
    with pytest.raises(ValueError, match=rf"{bad}: joint 'j' needs <parent link=...>"):
        RecorderNode(context=ros_context, parameter_overrides=[Parameter("out", value=str(tmp_path / "bag")),
                                                               Parameter("urdf", value=str(bad))])
    assert not (tmp_path / "bag").exists()
