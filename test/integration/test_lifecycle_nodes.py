"""The bridge and the watchdog as managed (lifecycle) nodes over real DDS: with ``autostart: false`` nothing
goes out until a lifecycle manager's change_state calls (lifecycle_msgs/srv/ChangeState on <node>/change_state)
configure and activate them; a configure that fails says why and leaves the node unconfigured, publishing
nothing; deactivate brings the base to a stop within the ego model's limits and then goes silent; cleanup
releases everything configure made; autostart (the default) and the embedded runner bring them up as before."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from geometry_msgs.msg import TwistStamped
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from std_msgs.msg import String

from conftest import SimClock, load_yaml_dict, spin_until
from hjepa_agent.config.ego_model import load_ego_model
from hjepa_agent.config.loader import ConfigError
from hjepa_agent.nodes.codec import from_time, msg_to_bridge_output, to_time
from hjepa_agent.config.paths import data_path

EGO = load_ego_model(data_path("config", "ego_model.yaml"))
DT = 0.01
SUCCESS = TransitionCallbackReturn.SUCCESS
MANUAL = [Parameter("use_sim_time", value=True), Parameter("autostart", value=False)]
"""A managed node waiting for a lifecycle manager, on the test's /clock."""


class Manager:
    """Plays a lifecycle manager (change_state, get_state over DDS), the watchdog and the habitual policy
    (agent/mode, agent/habitual/cmd) and the base (records cmd_vel, the bridge's records and agent/mode),
    on a /clock it drives."""

    def __init__(self, ctx, node) -> None:
        self.ex = SingleThreadedExecutor(context=ctx)
        self.target = node
        self.node = Node("manager", context=ctx)
        self.clock = SimClock(self.node, self.ex)
        name = node.get_name()
        self.change = self.node.create_client(ChangeState, f"/{name}/change_state")
        self.state = self.node.create_client(GetState, f"/{name}/get_state")
        self.cmd_pub = self.node.create_publisher(TwistStamped, "agent/habitual/cmd", 10)
        self.mode_pub = self.node.create_publisher(String, "agent/mode", 10)
        self.cmd: list[tuple[float, float, float, str, float]] = []   # (t, v, w, frame_id, stamp) on cmd_vel
        self.records: list[tuple] = []                          # agent/bridge/output, decoded
        self.modes: list[tuple[float, str]] = []                # agent/mode as published (the watchdog's)
        self.node.create_subscription(TwistStamped, "cmd_vel", lambda m: self.cmd.append(
            (self.clock.t_s, m.twist.linear.x, m.twist.angular.z, m.header.frame_id, from_time(m.header.stamp))), 50)
        self.node.create_subscription(JointState, "agent/bridge/output",
                                      lambda m: self.records.append(msg_to_bridge_output(m)), 50)
        self.node.create_subscription(String, "agent/mode", lambda m: self.modes.append((self.clock.t_s, m.data)), 50)
        for n in (node, self.node):
            self.ex.add_node(n)
        assert self.change.wait_for_service(timeout_sec=10.0) and self.state.wait_for_service(timeout_sec=10.0)
        self.clock.advance(DT)

    def transition(self, transition_id: int) -> bool:
        """Call <node>/change_state as a lifecycle manager does; its answer's success."""
        fut = self.change.call_async(ChangeState.Request(transition=Transition(id=transition_id)))
        assert spin_until(self.ex, fut.done, 10.0), "change_state did not answer"
        return fut.result().success

    def get_state(self) -> str:
        fut = self.state.call_async(GetState.Request())
        assert spin_until(self.ex, fut.done, 10.0), "get_state did not answer"
        return fut.result().current_state.label

    def drive(self, seconds: float, v: float = 0.5, mode: str | None = "HABITUAL") -> None:
        """``seconds`` of the test's clock: a fresh mode and a proposal of ``v`` every tick (mode None: the
        watchdog's own), then the clock."""
        for _ in range(int(round(seconds / DT))):
            if mode is not None:
                self.mode_pub.publish(String(data=mode))
            m = TwistStamped()
            m.header.stamp = to_time(self.clock.t_s)
            m.twist.linear.x = v
            self.cmd_pub.publish(m)
            self.clock.advance(DT)

    def close(self) -> None:
        self.ex.shutdown()
        self.target.destroy_node()
        self.node.destroy_node()


@pytest.fixture
def manage(ros_context):
    made: list[Manager] = []

    def build(node) -> Manager:
        made.append(Manager(ros_context, node))
        return made[-1]
    yield build
    for m in made:
        m.close()


def test_with_autostart_false_the_bridge_publishes_nothing_until_configured_and_activated(ros_context, manage):
    from hjepa_agent.nodes.bridge import BridgeNode
    bridge = BridgeNode(context=ros_context, parameter_overrides=MANUAL)
    m = manage(bridge)
    assert m.get_state() == "unconfigured" and bridge.core is None
    assert {s.topic_name for s in bridge.subscriptions} <= {"/clock"}   # no input before configure
    m.drive(1.0)
    assert m.cmd == [] and m.records == [] and m.node.count_publishers("cmd_vel") == 0

    assert m.transition(Transition.TRANSITION_CONFIGURE)
    assert m.get_state() == "inactive"
    assert spin_until(m.ex, lambda: m.cmd_pub.get_subscription_count() > 0 and m.node.count_publishers("cmd_vel") > 0)
    m.drive(1.0)
    assert m.cmd == [] and m.records == [], "an inactive bridge commanded the base"
    assert bridge.input_counts()["habitual"]["accepted"] >= 90   # it takes its inputs all the same

    assert m.transition(Transition.TRANSITION_ACTIVATE)
    assert m.get_state() == "active"
    m.drive(2.0)
    assert m.cmd and m.cmd[-1][1] > 0.4, "an active bridge should follow the habitual proposal"
    assert max(b[0] - a[0] for a, b in zip(m.cmd, m.cmd[1:])) <= 1.0 / 20.0 + DT + 1e-9   # never silent
    assert len(m.records) == len(m.cmd)


def test_with_autostart_false_the_watchdog_decides_and_publishes_nothing_until_activated(ros_context, manage):
    from hjepa_agent.nodes.watchdog import WatchdogNode
    wd = WatchdogNode(context=ros_context, parameter_overrides=MANUAL)
    m = manage(wd)
    assert m.get_state() == "unconfigured"
    m.drive(0.5, mode=None)
    assert m.transition(Transition.TRANSITION_CONFIGURE) and m.get_state() == "inactive"
    assert spin_until(m.ex, lambda: m.node.count_publishers("agent/mode") > 0)
    m.drive(1.0, mode=None)
    assert m.modes == [] and m.cmd == [] and wd.last is None, "an inactive watchdog decided or published"
    assert wd.consumed == [], "an inactive watchdog's core took inputs"
    assert m.transition(Transition.TRANSITION_ACTIVATE) and m.get_state() == "active"
    m.drive(1.0, mode=None)
    tick_s = 1.0 / float(wd.get_parameter("tick_hz").value)
    assert len(m.modes) >= int(1.0 / tick_s) - 2 and {x for _, x in m.modes} == {"SAFE_STOP"}   # no inputs yet


def test_a_configure_with_a_bad_ego_model_fails_naming_it_and_the_node_stays_unconfigured(ros_context, manage,
                                                                                        write_yaml):
    from hjepa_agent.nodes.bridge import BridgeNode
    bad = load_yaml_dict("config", "ego_model.yaml")
    bad["hard"]["kinematics"]["linear_x"]["max_decel"] = -1.0
    path = write_yaml("ego_model.yaml", bad)
    bridge = BridgeNode(context=ros_context, parameter_overrides=MANUAL + [Parameter("ego_model", value=str(path))])
    m = manage(bridge)
    assert not m.transition(Transition.TRANSITION_CONFIGURE)
    assert m.get_state() == "unconfigured"
    assert isinstance(bridge.configure_error, ConfigError)
    assert str(path) in str(bridge.configure_error) and "max_decel" in str(bridge.configure_error)
    assert not bridge.has_parameter("max_linear_mps") and bridge.core is None
    assert {s.topic_name for s in bridge.subscriptions} <= {"/clock"}
    assert not any(s.srv_name.endswith("/agent/estop/reset") for s in bridge.services)
    m.drive(1.0)
    assert m.cmd == [] and m.records == [] and m.node.count_publishers("cmd_vel") == 0
    # the file fixed, the same node configures (nothing of the failed attempt is left to collide with)
    path.write_text(yaml.safe_dump(load_yaml_dict("config", "ego_model.yaml")))
    assert m.transition(Transition.TRANSITION_CONFIGURE) and m.get_state() == "inactive"
    assert bridge.configure_error is None and bridge.has_parameter("max_linear_mps")


def test_with_autostart_a_bad_ego_model_exits_2_with_the_reason(tmp_path, write_yaml):
    """run_node (the console script, as `ros2 run` and a launch file start it): the node configures at start;
    the failed configure is the exit status 2 it always was, with the reason."""
    from hjepa_agent.harness.runner import isolate_dds
    isolate_dds()
    bad = load_yaml_dict("config", "ego_model.yaml")
    bad["hard"]["kinematics"]["linear_x"]["max_decel"] = -1.0
    path = write_yaml("ego_model.yaml", bad)
    script = Path(sys.executable).with_name("bridge")
    done = subprocess.run([str(script), "--ros-args", "-p", f"ego_model:={path}"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "refusing to start" in done.stderr and str(path) in done.stderr and "max_decel" in done.stderr


def test_with_autostart_false_the_process_waits_and_a_failed_configure_leaves_it_running(ros_context, write_yaml):
    """run_node with autostart false: the process spins unconfigured for a lifecycle manager; a configure that
    fails is answered (success false, the reason in its log) and the node stays up, unconfigured."""
    bad = load_yaml_dict("config", "ego_model.yaml")
    bad["hard"]["kinematics"]["linear_x"]["max_decel"] = -1.0
    path = write_yaml("ego_model.yaml", bad)
    proc = subprocess.Popen([str(Path(sys.executable).with_name("bridge")), "--ros-args", "-p", "autostart:=false",
                             "-p", f"ego_model:={path}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    node = Node("manager", context=ros_context)
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(node)
    try:
        change = node.create_client(ChangeState, "/bridge/change_state")
        state = node.create_client(GetState, "/bridge/get_state")
        assert change.wait_for_service(timeout_sec=30.0) and state.wait_for_service(timeout_sec=10.0)

        def call(client, request):
            """The answer; asked again if none came in 3 s (a service just discovered across processes may
            leave the first request unanswered: its reply path not matched yet, or its name still listed
            for the bridge process of the test before, which has exited)."""
            for _ in range(4):
                fut = client.call_async(request)
                if spin_until(ex, fut.done, 3.0):
                    return fut.result()
            raise AssertionError(f"{client.srv_name} did not answer")
        configure = ChangeState.Request(transition=Transition(id=Transition.TRANSITION_CONFIGURE))
        assert not call(change, configure).success
        assert call(state, GetState.Request()).current_state.label == "unconfigured"
        assert proc.poll() is None, "the process exited on a failed configure"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
        ex.shutdown()
        node.destroy_node()
    assert "configure failed, the node stays unconfigured" in err and "max_decel" in err, err[-2000:]


def test_deactivate_brings_the_base_to_a_stop_within_the_limits_then_the_bridge_is_silent(ros_context, manage):
    from hjepa_agent.nodes.bridge import BridgeNode
    bridge = BridgeNode(context=ros_context, parameter_overrides=MANUAL)
    m = manage(bridge)
    assert m.transition(Transition.TRANSITION_CONFIGURE) and m.transition(Transition.TRANSITION_ACTIVATE)
    assert spin_until(m.ex, lambda: m.cmd_pub.get_subscription_count() > 0 and m.node.count_publishers("cmd_vel") > 0)
    m.drive(3.0)
    assert m.cmd[-1][1] == pytest.approx(0.5, abs=1e-6)
    n0, t0 = len(m.cmd), m.clock.t_s
    assert m.transition(Transition.TRANSITION_DEACTIVATE) and m.get_state() == "inactive"
    m.drive(3.0)   # fresh mode and proposals keep coming: an inactive bridge follows none of them
    after = m.cmd[n0 - 1:]
    assert len(after) > 2, "deactivated mid-motion, the bridge went silent instead of stopping the base"
    assert after[1][0] == t0, "the stop did not begin at deactivate"
    lin = EGO.hard.kinematics.linear_x   # judged on the commands' stamps: when the bridge computed them
    assert all(b[1] <= a[1] + 1e-9 and (a[1] - b[1]) <= lin.max_decel * (b[4] - a[4]) + 1e-6
               for a, b in zip(after, after[1:])), f"the stop broke the deceleration limit: {after}"
    assert after[-1][1:3] == (0.0, 0.0), "the last command must be a stop"
    assert after[-2][1] > 0.0, "more than one zero went out: the bridge should go silent after the first"
    assert after[-1][0] < m.clock.t_s - 1.0, "the bridge kept publishing once the base was told to stand still"
    assert [r[4] for r in m.records[-2:]] == ["STOPPING", "STOPPED"]
    assert not bridge.publishing
    assert m.transition(Transition.TRANSITION_ACTIVATE)   # and it drives again, from standing still
    n1 = len(m.cmd)
    m.drive(2.0)
    assert m.cmd[n1][1] < 0.05 and m.cmd[-1][1] > 0.4


def test_deactivating_when_still_sends_one_zero_and_the_watchdog_says_safe_stop_once(ros_context, manage):
    from hjepa_agent.nodes.bridge import BridgeNode
    from hjepa_agent.nodes.watchdog import WatchdogNode
    bridge = BridgeNode(context=ros_context, parameter_overrides=[Parameter("use_sim_time", value=True)])
    m = manage(bridge)
    assert m.get_state() == "active" and bridge.get_parameter("autostart").value is True   # autostart: as before
    assert bridge.describe_parameter("autostart").read_only
    m.drive(1.0, v=0.0)
    n0 = len(m.cmd)
    assert bridge.trigger_deactivate() == SUCCESS   # in-process, as the embedded runner drives it
    m.drive(1.0, v=0.0)
    assert [c[1:3] for c in m.cmd[n0:]] == [(0.0, 0.0)], "standing still, deactivate sends exactly one zero"

    wd = WatchdogNode(context=ros_context, parameter_overrides=[Parameter("use_sim_time", value=True)])
    m.ex.add_node(wd)
    try:
        assert wd.lifecycle_state == "active"
        assert spin_until(m.ex, lambda: m.node.count_publishers("agent/mode") > 1)   # the manager's and its own
        k0 = len(m.modes)
        m.drive(0.5, mode=None)
        assert len(m.modes) > k0 + 5, "an autostarted watchdog publishes its mode"
        assert wd.trigger_deactivate() == SUCCESS
        k = len(m.modes)
        m.drive(1.0, mode=None)
        assert len(m.modes) == k + 1 and m.modes[-1][1] == "SAFE_STOP", m.modes[k - 1:]
    finally:
        m.ex.remove_node(wd)
        wd.destroy_node()


def test_cleanup_releases_what_configure_made_and_the_lockstep_accounting_with_it(ros_context):
    from hjepa_agent.nodes.bridge import BridgeNode
    from hjepa_agent.nodes.traffic import _traffic
    bridge = BridgeNode(context=ros_context, parameter_overrides=MANUAL)
    try:
        traffic = _traffic(ros_context)

        def counted() -> tuple[int, int]:
            return (sum(r.owner == "bridge" for rs in traffic.subs.values() for r in rs),
                    sum(any(p is q for q in bridge._own_publishers) for ps in traffic.pubs.values() for p in ps))
        before = (counted(), len(list(bridge.publishers)), len(list(bridge.timers)), len(list(bridge.services)),
                  set(bridge._parameters))
        assert counted() == (0, 1)   # the events publisher only
        for _ in range(2):
            assert bridge.trigger_configure() == SUCCESS and bridge.trigger_activate() == SUCCESS
            assert counted() == (5, 3)   # five guarded inputs; events, cmd_vel, agent/bridge/output
            assert bridge.trigger_deactivate() == SUCCESS and bridge.trigger_cleanup() == SUCCESS
            assert bridge.lifecycle_state == "unconfigured"
            assert (counted(), len(list(bridge.publishers)), len(list(bridge.timers)), len(list(bridge.services)),
                    set(bridge._parameters)) == before
            assert bridge.input_counts() == {}
    finally:
        bridge.destroy_node()


def test_the_embedded_runner_brings_them_up_itself_and_a_reactivated_watchdog_stops_until_cleared(stack):
    """hjepa_agent.harness.runner: the managed nodes come with autostart false and active (build_agent_nodes drove their
    transitions); the robot drives. A deactivated watchdog says SAFE_STOP once and the bridge stops the base
    at once; reactivated, it has been blind and stops (latched) until agent/clear_safe_stop. A deactivated
    bridge stops the base and goes silent; the watchdog then stops the base itself (its own zeros)."""
    from std_srvs.srv import Trigger

    from hjepa_agent.core.types import Mode
    for name in ("bridge", "watchdog"):
        node = stack.node(name)
        assert node.get_parameter("autostart").value is False and node.lifecycle_state == "active"
    stack.run(2.5)
    lg = stack.sim.log
    assert lg.v[-1] > 0.2
    wd, bridge = stack.node("watchdog"), stack.node("bridge")
    assert wd.trigger_deactivate() == SUCCESS
    n0 = len(lg.v)
    stack.run(2.0)
    assert bridge.last.reason == "mode SAFE_STOP" or bridge.last.reason.startswith("mode stale")
    t_off = lg.sim_t[n0 - 1]
    slowing = next(t for t, a, b in zip(lg.sim_t[n0:], lg.v[n0 - 1:], lg.v[n0:]) if b < a - 1e-4)
    assert slowing - t_off < float(bridge.get_parameter("mode_timeout_s").value), "the stop waited for a stale mode"
    assert abs(lg.v[-1]) < 1e-9
    assert wd.trigger_activate() == SUCCESS
    stack.run(1.0)
    assert wd.core.mode == Mode.SAFE_STOP and abs(lg.v[-1]) < 1e-9, "a watchdog blind for 2 s let the robot go"
    client = stack.sim.create_client(Trigger, "agent/clear_safe_stop")
    fut = client.call_async(Trigger.Request())
    assert spin_until(stack.executor, fut.done)
    assert fut.result().success, fut.result().message
    stack.run(2.0)
    assert lg.v[-1] > 0.1, "cleared, the robot should drive again"
    n1 = len(lg.v)
    assert bridge.trigger_deactivate() == SUCCESS
    stack.run(2.0)
    ours = [(v, f) for v, f in zip(lg.v[n1:], lg.frame[n1:])]
    assert any(f == "watchdog_stop" for _, f in ours), "the watchdog did not stop the base itself"
    assert all(abs(v) < 1e-9 for v, f in ours if f == "watchdog_stop")
    assert abs(lg.v[-1]) < 1e-9 and wd.core.mode == Mode.SAFE_STOP


def test_a_signal_is_a_request_to_stop_and_raises_nothing_until_it_comes_twice():
    """stop_on_signals: the first SIGINT sets the flag and raises nothing where Python happens to be (Python's
    default handler raised KeyboardInterrupt there; inside a message constructor called by rclpy's
    take_message it became a RuntimeError that made a Ctrl-C'd node exit 1); a second one interrupts."""
    import os
    import signal
    from hjepa_agent.nodes.common import stop_on_signals
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        stop = stop_on_signals()
        os.kill(os.getpid(), signal.SIGTERM)
        total = sum(range(1000))   # bytecode after the signal: where Python runs the handler
        assert stop.is_set() and total == 499500
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            sum(range(1000))
    finally:
        import faulthandler
        faulthandler.cancel_dump_traceback_later()   # the first signal armed the stuck-stop dump (and exit)
        for s, h in before.items():
            signal.signal(s, h)


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_node_process_stopped_by_a_signal_exits_0_without_a_traceback(sig, ros_context):
    """A console-script node (as launch starts it) stopped the way launch stops it exits 0, with no
    traceback: the rehearsal counts any other exit status as a node failure."""
    import os
    import signal
    proc = subprocess.Popen([str(Path(sys.executable).with_name("bridge")), "--ros-args", "-p",
                             f"ego_model:={data_path('config', 'ego_model.yaml')}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    node = Node("watcher", context=ros_context)
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(node)
    try:
        up = spin_until(ex, lambda: ("bridge", "/") in node.get_node_names_and_namespaces()
                        and node.count_publishers("/diagnostics") > 0, 60.0)
        assert up and proc.poll() is None, "the bridge did not come up"
        os.kill(proc.pid, getattr(signal, sig))
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out[-2000:]
    assert "Traceback" not in out, out[-2000:]


def _stops_cleanly(body: str) -> str:
    """Run ``body`` (a node main whose start-up calls ``interrupt()``: SIGINT to itself, then time for rclpy's
    handler to shut the context down) in a fresh process; asserts exit 0 without a traceback, returns its
    stderr."""
    from hjepa_agent.harness.runner import isolate_dds
    isolate_dds()
    code = ("import os, signal, time\n"
            "def interrupt():\n"
            "    os.kill(os.getpid(), signal.SIGINT)\n"
            "    time.sleep(0.5)\n" + body)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    return done.stderr


def test_a_signal_while_the_node_is_being_built_is_a_clean_stop():
    """SIGINT during the node's construction (launch's Ctrl-C as the models load): rclpy shuts the context
    down, the constructor's next call into rclpy fails on it (creating the node, or publishing a parameter
    event), and that is a stop, not a failure to start (it exited 1 with the exception's traceback)."""
    _stops_cleanly("from rclpy.node import Node\n"
                   "from hjepa_agent.nodes.common import run_node\n"
                   "def factory():\n"
                   "    interrupt()\n"
                   "    node = Node('early')\n"
                   "    node.declare_parameter('x', 1)\n"
                   "    return node\n"
                   "run_node(factory)\n")


def test_a_signal_while_a_managed_node_configures_is_a_clean_stop_without_a_traceback():
    """The same during a managed node's autostart configure (the watchdog declaring its thresholds as
    Ctrl-C came): the failed declare is the shutdown, not a bug, so no fail-stop report (whose own
    publishes failed too: two tracebacks in the log) and exit 0."""
    err = _stops_cleanly("from hjepa_agent.nodes.common import run_node\n"
                         "from hjepa_agent.nodes.guard import GuardedLifecycleNode\n"
                         "class Slow(GuardedLifecycleNode):\n"
                         "    def __init__(self):\n"
                         "        super().__init__('slow')\n"
                         "        self.start_if_autostart()\n"
                         "    def configure(self):\n"
                         "        interrupt()\n"
                         "        self.declare_parameter('threshold', 1.0)\n"
                         "run_node(Slow)\n")
    assert "failed stop" not in err, err[-2000:]
