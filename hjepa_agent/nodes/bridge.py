"""bridge node: the ONLY publisher of cmd_vel. Picks the source by mode, enforces the ego model's
limits, stops on stale/bad input, latches the e-stop.

Subscribes (through the input guard, nodes/topics.py INPUTS["bridge"]): agent/habitual/cmd
            (TwistStamped), agent/plan (JointState), agent/mode (String), agent/speed_scale
            (std_msgs/Float32: the watchdog's derating), agent/estop (std_msgs/Bool).
Services:   agent/estop/reset (std_srvs/Trigger).
Publishes:  cmd_vel (TwistStamped, header.stamp = when it was published, on the ROS clock; or, with
            cmd_vel_type twist, a geometry_msgs/Twist, which has no header),
            agent/bridge/output (JointState, one per cmd_vel: what was sent, the bridge's state and the
            originating camera stamp of the proposal it followed; layout in nodes/codec.py),
            agent/events (String, JSON per event), /diagnostics.
Parameters: ego_model, rate_hz [Hz], source_timeout_s [s], mode_timeout_s [s] (read-only: safety);
            max_linear_mps [m/s], max_angular_rps [rad/s] (operating limits: may only be tightened live;
            declared at configure, their ranges come from the ego model); autostart (read-only, default
            true); and the guard's (nodes/guard.py), cmd_vel_type among them (read-only: twist_stamped | twist).
Lifecycle (a managed node, nodes/guard.py GuardedLifecycleNode): configure loads and checks the ego
model (a bad one fails the transition with the reason; the node stays unconfigured and publishes
nothing) and makes the inputs, outputs, service and timers. Only an active bridge commands the base.
Inactive it takes its inputs (an e-stop latches, a reset is answered) and publishes nothing on any of
its topics, except right after deactivate: a base whose commander goes inactive must stop, and stop
within the ego model's deceleration and jerk limits, so deactivate holds the core (core.bridge.Bridge.hold)
and cmd_vel (with its agent/bridge/output records) goes on as at any stop of the bridge, at once and then
from the timers, until the command stands still; the last command is a zero (at once if already still),
then nothing. The watchdog then sees the bridge silent and stops the base itself (its own zero
commands) in a latched SAFE_STOP: after reactivating, clear it (agent/clear_safe_stop). Shut down or
destroyed while moving, the bridge goes silent at once, as one that dies: the watchdog's own stop
ramps the base down.
Time: every age, deadline and the limit math's dt are on the node's receipt clock (core/timekeeping.py),
so no clock step can make a stale input look fresh or stall the stop ramp.
Output: immediately on each valid proposal from the active source, from a timer whenever nothing went
out for half a period and, whatever the ROS clock does (stopped, stepped back), from a steady-clock
timer whenever nothing went out for a whole period of wall time: while active, cmd_vel never goes silent.
"""
from __future__ import annotations

import time

from geometry_msgs.msg import TwistStamped
from rcl_interfaces.msg import SetParametersResult
from std_srvs.srv import Trigger

from hjepa_agent.config.ego_model import load_ego_model
from hjepa_agent.core.bridge import Bridge, BridgeConfig, BridgeOutput
from hjepa_agent.core.types import Mode, Proposal
from hjepa_agent.nodes.codec import bridge_output_to_msg, command_to_msg, to_time
from hjepa_agent.nodes.common import Diagnostics, declare, declare_ego_path, run_node
from hjepa_agent.nodes.guard import GuardedLifecycleNode, Receipt, event_to_json

STAMP_OFFSET_TOLERANCE_S = 0.02
"""The ROS clock may move this far from the receipt clock before the stamps' offset is re-read (s): a clock
step, not the milliseconds a busy computer puts between reading the two clocks (a 1 ms tolerance re-read
the offset under load and broke the jerk limit on the stamps 4 times in 7 rehearsed episodes)."""

__all__ = ["BridgeNode", "event_to_json", "main"]


class BridgeNode(GuardedLifecycleNode):
    """Thin wrapper around core.bridge.Bridge; a managed node (module doc: Lifecycle)."""

    def __init__(self, **kwargs) -> None:
        super().__init__("bridge", **kwargs)
        self.ego_path = declare_ego_path(self)
        self.rate_hz = declare(self, "rate_hz", 20.0, "minimum output rate", unit="Hz", lo=1.0, hi=1000.0)
        self.source_timeout_s = declare(self, "source_timeout_s", 0.3, "a source older than this is stale -> stop",
                                        unit="s", lo=0.01, hi=5.0)
        self.mode_timeout_s = declare(self, "mode_timeout_s", 0.5, "a mode older than this is stale -> stop",
                                      unit="s", lo=0.01, hi=5.0)
        self.core: Bridge | None = None
        self.last: BridgeOutput | None = None
        self.published = 0
        self._stopping = False   # inactive, still bringing the base to a stop (deactivate)
        self.start_if_autostart()

    def configure(self) -> None:
        """Load the ego model; make the core (held: inactive), the live limits, inputs, outputs, the reset
        service and the timers."""
        ego = load_ego_model(self.ego_path)
        op = ego.operating
        declare(self, "max_linear_mps", op.max_linear_mps, "operating linear speed limit (tighten only)",
                unit="m/s", lo=0.0, hi=op.max_linear_mps, live=True)
        declare(self, "max_angular_rps", op.max_angular_rps, "operating yaw-rate limit (tighten only)",
                unit="rad/s", lo=0.0, hi=op.max_angular_rps, live=True)
        self.core = Bridge(BridgeConfig.from_ego(ego, source_timeout_s=self.source_timeout_s,
                                                 mode_timeout_s=self.mode_timeout_s, rate_hz=self.rate_hz))
        self.core.hold(True, self.now_s())
        self.add_on_set_parameters_callback(self._on_set)
        self.pub = self.publisher("cmd_vel")
        self.cmd_type = self.transport.topic("cmd_vel").type
        self.out_pub = self.publisher("agent/bridge/output")
        self.subscribe("habitual", self.on_habitual)
        self.subscribe("planner", self.on_plan)
        self.subscribe("mode", self.on_mode)
        self.subscribe("estop", self.on_estop)
        self.subscribe("speed_scale", self.on_speed_scale)
        self.create_service(Trigger, "agent/estop/reset", self.on_reset)
        self.diag = Diagnostics(self)
        period = 1.0 / self.rate_hz
        if self.sim_time:   # outputs on sim time (lockstep-exact), and a steady backstop
            self.create_timer(period, self.on_timer)
        self.steady_timer(period, self.on_steady_timer)
        self.create_timer(1.0, self.report)
        self.last = None
        self._stamp_offset: float | None = None
        self._last_publish_wall = time.monotonic()

    def activate(self) -> None:
        """Output on: the core released (the inputs decide again); cmd_vel from the next proposal or timer."""
        self._stopping = False
        self.core.hold(False, self.now_s())
        self._last_publish_wall = time.monotonic()

    def deactivate(self) -> None:
        """Output off, safely: the core held, so the base comes down to zero within the ego model's
        limits like at any stop of the bridge; cmd_vel goes on (this step at once, then the timers') until
        the command stands still, the last one a zero, then nothing."""
        now = self.now_s()
        self.core.hold(True, now)
        self._stopping = True
        self._publish(now)

    @property
    def publishing(self) -> bool:
        """True while cmd_vel goes out: active, or inactive and still bringing the base to a stop."""
        return self.active or self._stopping

    def _on_set(self, params) -> SetParametersResult:
        """Live operating limits: the core checks them (tighten only) and composes them with the derating."""
        lin, ang = self.core.operator_limits
        for p in params:
            if p.name == "max_linear_mps":
                lin = float(p.value)
            elif p.name == "max_angular_rps":
                ang = float(p.value)
        try:
            self.core.set_operating_limits(lin, ang, self.now_s())
        except ValueError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def on_speed_scale(self, scale: float, rx: Receipt) -> None:
        """The watchdog's derating (the guard refused anything outside [0, 1])."""
        self.core.on_speed_scale(scale, self.now_s())

    def _stamp_of(self, now: float) -> float:
        """The ROS time (s) of the receipt-clock instant ``now`` a command was computed for: ``now`` plus the
        ROS clock's offset from the receipt clock, re-read only when it moves by more than
        STAMP_OFFSET_TOLERANCE_S (a clock step or slew). The limits hold on the intervals between steps, so
        the stamps must have exactly those intervals: a stamp read from the ROS clock after each step (the
        guard's work for a proposal, ~0.5 ms, and the few microseconds between reading the two clocks)
        showed the jerk limit broken by up to 1 % between commands 1 ms apart on the wall clock."""
        ros, current = self._observe_time()
        offset = ros - current
        if self._stamp_offset is None or abs(offset - self._stamp_offset) > STAMP_OFFSET_TOLERANCE_S:
            self._stamp_offset = offset
        return now + self._stamp_offset

    def _publish(self, now: float) -> None:
        if not self.publishing:   # the lifecycle gate: cmd_vel only while active, or stopping after it
            return
        out = self.core.step(now)
        stamp = to_time(self._stamp_of(now))
        origin = None if out.origin_stamp_s is None else to_time(out.origin_stamp_s)
        # The record first: a command that reaches the watchdog before its record waits for it, and this
        # process being preempted between the two publishes (seven processes on two cores) must not leave
        # the command undeclared for longer than the watchdog's match window.
        self.out_pub.publish(bridge_output_to_msg(stamp, out.v, out.w, origin, out.state))
        self.pub.publish(command_to_msg(self.cmd_type, out.v, out.w, stamp, "base_link"))
        self.published += 1
        self._last_publish_wall = time.monotonic()
        for ev in out.events:
            self.emit(ev)
        self.last = out
        if self._stopping and self.core.standing_still():
            self._stopping = False   # deactivated and the base told to stand still: nothing more
            self.get_logger().info("inactive: the base is stopped; cmd_vel stays silent until activated")

    def _on_proposal(self, p: Proposal, rx: Receipt) -> None:
        reason = self.core.on_proposal(p, rx.reading_s)
        if reason is not None:
            self.get_logger().warning(f"proposal from {p.source} rejected: {reason}", throttle_duration_sec=2.0)
        if reason is None and self.core.is_active_source(p.source, rx.now_s):
            self._publish(rx.now_s)

    def on_habitual(self, msg: TwistStamped, rx: Receipt) -> None:
        """Proposal from the habitual policy (finite: the guard checked)."""
        self._on_proposal(Proposal(rx.stamp_s, float(msg.twist.linear.x), float(msg.twist.angular.z), "habitual"), rx)

    def on_plan(self, plan, rx: Receipt) -> None:
        """The plan's first action is the planner's proposal."""
        a = plan.actions[0]
        self._on_proposal(Proposal(plan.stamp_s, float(a[0]), float(a[1]), "planner"), rx)

    def on_mode(self, mode: Mode, rx: Receipt) -> None:
        """The watchdog's mode (the guard refused anything that is not a mode's name)."""
        self.core.on_mode(mode, rx.now_s)

    def on_estop(self, engaged: bool, rx: Receipt) -> None:
        """Operator e-stop: engaging latches; releasing alone does not reset."""
        self.core.estop(engaged, rx.now_s)
        if engaged:
            self._publish(rx.now_s)

    def on_reset(self, request, response):
        """agent/estop/reset: accepted only when the e-stop input is released and the robot is stopped."""
        ok, message = self.core.reset_estop(self.now_s())
        response.success, response.message = ok, message
        self.get_logger().info(f"e-stop reset {'accepted' if ok else 'refused'}: {message}")
        return response

    def on_timer(self) -> None:
        """Fixed-rate output whenever nothing went out recently: cmd_vel never goes silent (while publishing)."""
        if not self.publishing:
            return
        now = self.now_s()
        if self.core.due(now):
            self._publish(now)

    def on_steady_timer(self) -> None:
        """On the steady clock: publish whenever nothing went out for a whole period of wall time
        (with sim time: only when the sim clock stopped or stepped; on a robot: every output)."""
        if not self.publishing:
            return
        if self.sim_time and time.monotonic() - self._last_publish_wall < self.core.cfg.period_s:
            return
        now = self.now_s()
        if self.sim_time or self.core.due(now):
            self._publish(now)

    def on_clock_jump(self, jump) -> None:
        """The ROS clock stepped: publish now. The guard restarted the sim-time timer (its next run is a
        period away) and the steady backstop waits a period of wall time, so without this cmd_vel went
        silent for up to two periods across a jump (found by the fuzz battery)."""
        self._publish(self._receipt.now_s)

    def report(self) -> None:
        """Publish /diagnostics: state, reason and every counter (while publishing)."""
        if not self.publishing:
            return
        out = self.last
        state = out.state if out else "STARTING"
        level = {"DRIVING": "OK", "STOPPED": "WARN", "STOPPING": "WARN", "ESTOP": "ERROR"}.get(state, "WARN")
        self.diag.publish(level, f"{state}: {out.reason if out else ''}",
                          {"state": state, **{k: v for k, v in self.core.counters.items()},
                           "clamps_now": ",".join(out.clamps) if out else "",
                           "max_linear_mps": f"{self.core.operating_limits[0]:.3f}",
                           "max_angular_rps": f"{self.core.operating_limits[1]:.3f}"})


def main() -> None:
    """Entry point: ros2 run hjepa_agent bridge."""
    run_node(BridgeNode)
