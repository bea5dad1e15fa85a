"""watchdog node: decides the mode from risk, ambiguity, input freshness, the ego model's limits and
the health of the agent's own graph.

Subscribes (through the input guard, nodes/topics.py INPUTS["watchdog"]): camera/image_raw (or
            camera/image_raw/compressed, as image_transport says), scan (freshness), odom, battery_state,
            motor_temperature, agent/world_state, agent/habitual/cmd, agent/plan, cmd_vel (every command
            on the wire: the bridge's, its own, anyone else's), agent/bridge/output (the bridge's record
            of each command it sent: its heartbeat, the slip check's commands, and what tells the bridge's
            commands from a foreign publisher's), agent/goal_status (the planner's judgement of the goal).
            battery_state and motor_temperature follow the ego model's
            hard.sensors.<battery|temperature>.presence: required (stale: SAFE_STOP), optional (missing:
            its protections off, said on agent/events and /diagnostics) or absent (not subscribed at
            all); core/watchdog/freshness.py's module docstring says what each means.
Publishes:  agent/mode (std_msgs/String: HABITUAL|PLANNING|OPTIMISING|SAFE_STOP, at tick_hz),
            agent/speed_scale (std_msgs/Float32 in [0, 1]: derating and graded responses, at tick_hz),
            agent/habitual_stalled (std_msgs/Bool, at tick_hz: deliberating because the habitual
            policy made no progress, so the planner must not refine its proposal),
            agent/events (String, JSON per transition with reasons and typed causes), /diagnostics (with
            battery_input and temperature_input: the presence, and what is off while the input is missing),
            agent/watchdog/journal (String, JSON per tick: the inputs consumed and when, the decision;
            what `hjepa-agent tune replay` re-runs, see WatchdogNode),
            cmd_vel (TwistStamped, frame_id watchdog_stop; with cmd_vel_type twist a Twist, its own then
            known by its values) only while the bridge is silent (its record older than
            bridge_max_age_s): a ramp to zero at the ego model's deceleration limits, so the watchdog
            can stop the base alone (core.watchdog.Watchdog.bridge_stop),
            base_stop (std_msgs/Bool, latched): true while in a SAFE_STOP entered because a foreign
            publisher is on cmd_vel (the agent's zero commands cannot overrule it); wire it to the
            base's own stop input (a twist_mux lock, a motor-power or e-stop topic).
Services:   agent/clear_safe_stop (std_srvs/Trigger): unlatches SAFE_STOP once its causes are gone.
Parameters: ego_model, watchdog_config (YAML paths, read-only), models_dir and typical_risk (the
            learned typical risk, core/risk.py; read-only), robot (read-only, with typical_risk: the
            robot description its fingerprint must match, nodes/common.py declare_robot), tick_hz [Hz],
            journal, enabled
            (false: simulation only, for the fault suite's watchdog-off comparison),
            trusted_publishers (node names, besides the agent's, allowed on its topics; read-only),
            every live threshold of config/thresholds.py (start: the YAML's; live: tighten only; unit, range
            and description from its schema; declared at configure, from the YAML), autostart (read-only, default true), and the guard's
            (nodes/guard.py), image_transport and cmd_vel_type among them: the camera and cmd_vel are read
            (and its stop sent) as the other nodes do.
Lifecycle (a managed node, nodes/guard.py GuardedLifecycleNode): configure checks the switch and loads the
ego model, the typical risk (its robot fingerprint checked) and the thresholds; a refusal fails the
transition with its reason and the node stays unconfigured, publishing nothing. Only an active watchdog
decides: inactive, its core takes no input (the guard still checks and counts them), makes no decision
and it publishes nothing (no mode, no derating, no journal, no stop of its own, no diagnostics), and
agent/clear_safe_stop is refused. On deactivate it publishes SAFE_STOP once on agent/mode, so the bridge
stops the base at once instead of after its mode_timeout_s; base_stop keeps its last value (latched). Its
core is kept: reactivated after driving, it has been blind meanwhile, finds its inputs stale and stops
(a latched SAFE_STOP) until agent/clear_safe_stop; a cleanup and configure start it afresh.
The ROS graph is read every GRAPH_PERIOD_S: a publisher on cmd_vel other than the bridge and the
watchdog, or on an agent topic other than its owner (nodes/topics.py TOPICS), is foreign.
"""
from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any

from rcl_interfaces.msg import SetParametersResult
from std_msgs.msg import Bool, Float32, String
from std_srvs.srv import Trigger

from hjepa_agent.config.ego_model import load_ego_model
from hjepa_agent.config.loader import ConfigError
from hjepa_agent.config.thresholds import THRESHOLDS, TIGHTER, load_watchdog_config, tightened
from hjepa_agent.core.models import load_typical_risk
from hjepa_agent.core.planner.goal import GOAL_CODES
from hjepa_agent.core.planner.navfield import GoalKind
from hjepa_agent.core.risk import TypicalRisk
from hjepa_agent.core.timekeeping import ClockJump
from hjepa_agent.core.types import Mode
from hjepa_agent.core.watchdog import PROTECTIONS, Watchdog
from hjepa_agent.nodes.codec import Command, command_to_msg, content_key, to_time, yaw_from_quaternion
from hjepa_agent.nodes.common import (Diagnostics, declare, declare_ego_path, declare_robot_path, robot_fingerprint_at,
                                      run_node)
from hjepa_agent.nodes.guard import GuardedLifecycleNode, Receipt
from hjepa_agent.nodes.topics import TOPICS, guarded_topics, inputs_of
from hjepa_agent.config.paths import models_dir as models_path
from hjepa_agent.config.paths import package_relative

INPUTS: dict[str, tuple[str, type]] = {kind: (spec.topic, spec.spec.type) for kind, spec in inputs_of("watchdog").items()}
"""What the watchdog consumes: input kind -> (topic, message type), from nodes/topics.py. The journal
names inputs by kind."""

OWN_STOP_FRAME = "watchdog_stop"
"""header.frame_id of the commands the watchdog sends the base itself while the bridge is silent."""
UNNAMED = "_NODE_NAME_UNKNOWN_"
"""The graph's node name for an endpoint it cannot attribute: a node destroyed moments (or, in one
process, seconds) ago, or a writer outside ROS. Not named foreign by the graph: a non-ROS writer on
cmd_vel is still caught on the wire (its commands match no record of the bridge's)."""
GRAPH_PERIOD_S = 0.5
"""How often (receipt-clock s) the watchdog reads the ROS graph for foreign publishers."""
GOAL_UNREACHABLE_KINDS = {GOAL_CODES[GoalKind.BLOCKED]: "the footprint cannot stand at the goal (inside or against "
                                                         "an obstacle)",
                          GOAL_CODES[GoalKind.DISCONNECTED]: "no path to the goal in the map seen so far"}
"""agent/goal_status codes (core/planner/goal.py GOAL_CODES) on which the watchdog stops."""


def apply_input(core: Watchdog, kind: str, value: Any, now: float, reading: float | None = None) -> None:
    """Feed one validated input of ``kind`` (INPUTS; ``value`` as nodes/topics.py's validator returns
    it) to the core at receipt time ``now`` (s), the reading true at ``reading`` (s; None: the header
    stamp), as the node does and as ``hjepa-agent tune replay`` does again offline."""
    def stamp(msg: Any) -> float:
        return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9

    def seen(msg_stamp: float) -> float:
        return min(msg_stamp, now) if reading is None else reading

    if kind in ("camera", "scan"):
        core.on_input(kind, seen(stamp(value)), now)
    elif kind == "odom":
        core.on_input("odom", seen(stamp(value)), now)
        t, p, q = value.twist.twist, value.pose.pose.position, value.pose.pose.orientation
        core.on_odom(t.linear.x, t.angular.z, now, t.linear.y, pose=(p.x, p.y, yaw_from_quaternion(q.x, q.y, q.z, q.w)),
                     stamp_s=stamp(value))
    elif kind == "battery":   # BatteryState.percentage is 0..1
        core.on_input("battery", seen(stamp(value)), now)
        core.on_battery(100.0 * value.percentage, now)
    elif kind == "temperature":
        core.on_input("temperature", seen(stamp(value)), now)
        core.on_temperature(value.temperature, now)
    elif kind == "world_state":
        core.on_world_state(value, now)
    elif kind == "habitual":
        from hjepa_agent.core.types import Proposal
        core.on_habitual(Proposal(stamp(value), value.twist.linear.x, value.twist.angular.z, "habitual"), now)
    elif kind == "planner":
        core.on_plan(value, now)
    elif kind == "command":   # anything on cmd_vel (a codec.Command): matched with the bridge's records
        core.foreign.on_command(now, value.stamp_ns, value.v, value.w, own=value.frame_id == OWN_STOP_FRAME)
    elif kind == "bridge_output":   # (stamp ns, v, w, origin ns, state): the bridge's heartbeat and its command
        stamp_ns, v, w, _, _ = value
        core.foreign.on_declared(stamp_ns, v, w, now)
        core.on_command(v, now, w)
    elif kind == "goal_status":   # (stamp, kind, goal, target, distance)
        core.on_goal_status(GOAL_UNREACHABLE_KINDS.get(value[1]), now)
    else:
        raise ValueError(f"unknown watchdog input kind {kind!r}")


class WatchdogNode(GuardedLifecycleNode):
    """Thin wrapper around core.watchdog.Watchdog; a managed node (module doc: Lifecycle).

    With ``journal`` (default true) it publishes on agent/watchdog/journal, once per tick, one JSON
    object: {"session": id of this node's run, "tick": the tick's time (s, receipt clock), "inputs":
    [[kind, header stamp (ns), time consumed (s), reading time (s)], ...] in the order consumed since the
    previous tick ("clear" for agent/clear_safe_stop calls with its result, "params" for live threshold
    changes, "graph" for what the ROS graph showed, "clock_jump" with its size, "reactivated" with how long it
    was inactive), "mode": the mode
    decided, "events": [[kind, reasons], ...], and "enforced": false with enabled: false}. With the recorded inputs that is everything needed to
    run the same core again, offline, and get the same decisions at the same times
    (``hjepa-agent tune replay``).
    """

    def __init__(self, **kwargs) -> None:
        super().__init__("watchdog", **kwargs)
        self.ego_path = declare_ego_path(self)
        self.config_path = declare(self, "watchdog_config", "", "watchdog thresholds YAML")
        self.tick_hz = declare(self, "tick_hz", 20.0, "mode decision rate", unit="Hz", lo=1.0, hi=200.0)
        self.journal = declare(self, "journal", True, "publish agent/watchdog/journal (what tune replay re-runs)")
        self.enabled = declare(self, "enabled", True, "false: publish HABITUAL and full speed whatever happens "
                               "(the fault suite's watchdog-off comparison; refused without use_sim_time)")
        self.models_dir = declare(self, "models_dir", "", "directory with manifest.yaml and typical_risk.onnx "
                                  "(empty: the package's models)")
        self.use_typical = declare(self, "typical_risk", True, "score risk against the learned typical risk "
                                   "(core/risk.py); false: no risk-deviation scores")
        self.robot_path = declare_robot_path(self) if self.use_typical else None
        self.trusted = tuple(declare(self, "trusted_publishers", [""], "node names besides the agent's own that "
                                     "may publish on its topics (e.g. a test harness)"))
        self.core: Watchdog | None = None
        self.last = None
        self.base_stop = False
        self.start_if_autostart()

    def configure(self) -> None:
        """Check the switch, load the ego model, the typical risk and the thresholds; make the core, the live
        thresholds, inputs, outputs, the clear service and the timers."""
        if not self.enabled and not self.sim_time:
            raise ValueError("watchdog: enabled: false is for simulation only (use_sim_time: true); "
                             "on a robot the watchdog cannot be switched off")
        ego = load_ego_model(self.ego_path)
        typical = None
        if self.use_typical:
            typical = TypicalRisk(load_typical_risk(models_path(self.models_dir),
                                                    expected=robot_fingerprint_at(self, self.robot_path, ego)))
        start = load_watchdog_config(package_relative(self.config_path, "config", "watchdog.yaml"))
        self.ego, self.start_cfg = ego, start
        for name in TIGHTER:   # live thresholds, described by their schema; tighten only, checked in _on_set
            t = THRESHOLDS[name]
            declare(self, name, float(getattr(start, name)), f"{t.doc} (config/watchdog.yaml); live, tighten only "
                    f"({'raise' if t.tighter > 0 else 'lower'} it)", unit=t.unit, lo=t.bounds[0], hi=t.bounds[1],
                    live=True)
        self.core = Watchdog(dataclasses.replace(start, **{n: float(self.get_parameter(n).value) for n in TIGHTER}), ego,
                             typical, enforced=self.enabled)
        self.mode_pub = self.publisher("agent/mode")
        self.scale_pub = self.publisher("agent/speed_scale")
        self.stalled_pub = self.publisher("agent/habitual_stalled")
        self.journal_pub = self.publisher("agent/watchdog/journal")
        self.stop_pub = self.publisher("cmd_vel")   # only while the bridge is silent
        self.cmd_type = self.transport.topic("cmd_vel").type
        self.base_stop_pub = self.publisher("base_stop")
        self.session = uuid.uuid4().hex[:12]
        self.consumed: list[list] = []
        self.add_on_set_parameters_callback(self._on_set)
        for kind in INPUTS:
            if kind in self.core.absent_inputs:   # the robot has none: not subscribed, its protections off
                self.get_logger().warning(f"not subscribing to {INPUTS[kind][0]}: ego model {ego.source} has "
                                          f"hard.sensors.{kind}.presence: absent ({PROTECTIONS[kind]})")
                continue
            self.subscribe(kind, lambda value, rx, k=kind: self.on_input(k, value, rx))
        self.create_service(Trigger, "agent/clear_safe_stop", self.on_clear)
        self.diag = Diagnostics(self)
        if self.sim_time:
            self.create_timer(1.0 / self.tick_hz, self.on_tick)
        else:
            self.steady_timer(1.0 / self.tick_hz, self.on_tick)
        self.create_timer(1.0, self.report)
        self.last = None
        self._inactive_since = 0.0
        self.base_stop = False
        self._graph_at = -1e9
        self._graph_seen: dict[str, tuple[str, ...]] = {}

    def activate(self) -> None:
        """Output on: base_stop's state first (latched: the base's stop input has a value from the start).
        Reactivated after deciding before, the core has been blind meanwhile and stops (latched) at its next
        tick, whichever of its inputs or its tick comes first."""
        self.base_stop_pub.publish(Bool(data=self.base_stop))
        if self.last is not None:
            now = self.now_s()
            blind = max(0.0, now - self._inactive_since)
            self.core.on_reactivated(now, blind)
            if self.journal:
                self.consumed.append(["reactivated", blind, now])

    def deactivate(self) -> None:
        """Output off: SAFE_STOP once on agent/mode, so the bridge stops at once rather than after its
        mode_timeout_s; base_stop keeps its last (latched) value."""
        self.mode_pub.publish(String(data=Mode.SAFE_STOP.name))
        self._inactive_since = self.now_s()
        self.get_logger().info("inactive: published SAFE_STOP once; no mode, no stop of its own, no journal until "
                               "activated")

    def _on_set(self, params) -> SetParametersResult:
        """Live threshold changes: tighten only, range and cross-field checked; journalled for replay."""
        changes = {p.name: float(p.value) for p in params if p.name in TIGHTER}
        if not changes:
            return SetParametersResult(successful=True)
        try:
            cfg = tightened(self.start_cfg, self.core.cfg, changes, self.ego)
        except (ValueError, ConfigError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        self.core.reconfigure(cfg)
        if self.journal:
            self.consumed.append(["params", changes, self.now_s()])
        self.get_logger().info(f"thresholds changed live: {changes}")
        return SetParametersResult(successful=True)

    def on_input(self, kind: str, value: Any, rx: Receipt) -> None:
        """Any validated input: what the core reads from it (apply_input); nothing while inactive."""
        if not self.active:
            return
        apply_input(self.core, kind, value, rx.now_s, rx.reading_s)
        if self.journal:
            # exact stamps (nodes/journal.read_run matches them to the bag); an unstamped command by its values
            stamp = rx.stamp_ns if rx.stamp_ns is not None else content_key(value) if isinstance(value, Command) else 0
            self.consumed.append([kind, stamp, rx.now_s, rx.reading_s])

    def on_clock_jump(self, jump: ClockJump) -> None:
        """The ROS clock stepped: the core stops at its next tick (latched); nothing while inactive."""
        if not self.active:
            return
        now = self.now_s()
        self.core.on_clock_jump(now, jump.size_s)
        if self.journal:
            self.consumed.append(["clock_jump", jump.size_s, now])

    def _read_graph(self, now: float) -> None:
        """Who publishes the agent's guarded topics, and cmd_vel, now (GRAPH_PERIOD_S apart)."""
        if now - self._graph_at < GRAPH_PERIOD_S:
            return
        self._graph_at = now
        ns = self.get_namespace()
        for topic in guarded_topics():
            allowed = tuple(TOPICS[topic].publishers or ()) + tuple(t for t in self.trusted if t)
            names = tuple(sorted(
                info.node_name if info.node_namespace == ns else f"{info.node_namespace.rstrip('/')}/{info.node_name}"
                for info in self.get_publishers_info_by_topic(self.resolve_topic_name(topic))
                if info.node_name != UNNAMED))
            if self._graph_seen.get(topic) != names:
                self._graph_seen[topic] = names
                self.core.foreign.on_graph(topic, list(names), allowed, now)
                if self.journal:
                    self.consumed.append(["graph", {"topic": topic, "publishers": list(names),
                                                    "allowed": list(allowed)}, now])

    def on_clear(self, request, response):
        """agent/clear_safe_stop (refused while inactive: the watchdog decides nothing then)."""
        if not self.active:
            response.success, response.message = False, "the watchdog is inactive: activate it first"
            return response
        now = self.now_s()
        ok, message = self.core.clear_safe_stop(now)
        if self.journal:
            self.consumed.append(["clear", int(ok), now])
        response.success, response.message = ok, message
        return response

    def on_tick(self) -> None:
        """Decide and publish the mode; publish and log every transition with its reasons (while active)."""
        if not self.active:
            return
        now = self.now_s()
        self._read_graph(now)
        decided = self.core.tick(now)
        out = decided
        if not self.enabled:   # simulation only (checked at start): decisions are made, not enforced
            out = dataclasses.replace(decided, mode=Mode.HABITUAL, speed_scale=1.0, habitual_stalled=False,
                                      base_stop=False)
        stop = self.core.bridge_stop(now) if self.enabled else None
        if stop is not None:   # the bridge is silent: the watchdog brings the base to a stop itself
            self.core.foreign.on_own(*stop)   # an unstamped stop of its own is known by its values
            self.stop_pub.publish(command_to_msg(self.cmd_type, *stop, to_time(self.ros_now_s()), OWN_STOP_FRAME))
        if out.base_stop != self.base_stop:
            self.base_stop = out.base_stop
            self.base_stop_pub.publish(Bool(data=self.base_stop))
        self.mode_pub.publish(String(data=out.mode.name))
        self.scale_pub.publish(Float32(data=float(out.speed_scale)))
        self.stalled_pub.publish(Bool(data=bool(out.habitual_stalled)))
        for ev in out.events:
            self.emit(ev)
            self.get_logger().info(f"{ev.kind}: {'; '.join(ev.text())}")
        if self.journal:
            self.journal_pub.publish(String(data=json.dumps(
                {"session": self.session, "tick": now, "inputs": self.consumed, "mode": decided.mode.name,
                 **({} if self.enabled else {"enforced": False}),
                 "events": [[ev.kind, list(ev.text())] for ev in out.events]})))
            self.consumed = []
        self.last = out

    def report(self) -> None:
        """Publish /diagnostics from the core's status (while active)."""
        if not self.active or self.last is None:
            return
        st = self.last.status
        foreign = self.core.foreign.check(self.now_s())
        self.diag.publish(st["level"], f"mode {self.last.mode.name}: {st['message']}",
                          {**st["values"], "base_stop": str(self.base_stop),
                           "foreign_publishers": "; ".join(f.text() for f in foreign) or "none"})


def main() -> None:
    """Entry point: ros2 run hjepa_agent watchdog."""
    run_node(WatchdogNode)
