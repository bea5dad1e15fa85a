"""bridge node: the ONLY publisher of cmd_vel. Picks the source by mode, enforces the ego model's
limits, stops on stale/bad input, latches the e-stop.

Subscribes: agent/habitual/cmd (TwistStamped), agent/plan (JointState), agent/mode (String),
            agent/speed_scale (std_msgs/Float32: the watchdog's battery/temperature derating),
            agent/estop (std_msgs/Bool).
Services:   agent/estop/reset (std_srvs/Trigger).
Publishes:  cmd_vel (TwistStamped; header.stamp = the originating camera stamp), agent/events
            (String, JSON per event), /diagnostics.
Parameters: ego_model, rate_hz [Hz], source_timeout_s [s], mode_timeout_s [s] (read-only: safety);
            max_linear_mps [m/s], max_angular_rps [rad/s] (operating limits: may only be tightened live).
Output: immediately on each valid proposal from the active source, and from a fixed-rate timer
whenever nothing went out for half a period, so cmd_vel never goes silent.
"""
from __future__ import annotations

import json

from geometry_msgs.msg import TwistStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float32, String
from std_srvs.srv import Trigger

from hjepa_agent.core.bridge import Bridge, BridgeConfig, BridgeOutput
from hjepa_agent.core.types import Mode, Proposal
from hjepa_agent.nodes.codec import MessageError, msg_to_plan, msg_to_proposal, to_time
from hjepa_agent.nodes.common import RELIABLE_QOS, Diagnostics, declare, declare_ego_model, now_s, run_node


def event_to_json(ev) -> str:
    """Event -> one-line JSON for agent/events."""
    return json.dumps({"stamp_s": round(ev.stamp_s, 4), "kind": ev.kind, "reasons": list(ev.reasons)})


class BridgeNode(Node):
    """Thin wrapper around core.bridge.Bridge."""

    def __init__(self, **kwargs) -> None:
        super().__init__("bridge", **kwargs)
        ego = declare_ego_model(self)
        rate_hz = declare(self, "rate_hz", 20.0, "minimum output rate", unit="Hz", lo=1.0, hi=1000.0, read_only=True)
        timeout = declare(self, "source_timeout_s", 0.3, "a source older than this is stale -> stop",
                          unit="s", lo=0.01, hi=5.0, read_only=True)
        mode_timeout = declare(self, "mode_timeout_s", 0.5, "a mode older than this is stale -> stop",
                               unit="s", lo=0.01, hi=5.0, read_only=True)
        op = ego.operating
        declare(self, "max_linear_mps", op.max_linear_mps, "operating linear speed limit (tighten only)",
                unit="m/s", lo=0.0, hi=op.max_linear_mps)
        declare(self, "max_angular_rps", op.max_angular_rps, "operating yaw-rate limit (tighten only)",
                unit="rad/s", lo=0.0, hi=op.max_angular_rps)
        self.core = Bridge(BridgeConfig.from_ego(ego, source_timeout_s=timeout, mode_timeout_s=mode_timeout,
                                                 rate_hz=rate_hz))
        self.add_on_set_parameters_callback(self._on_set)
        self.pub = self.create_publisher(TwistStamped, "cmd_vel", RELIABLE_QOS)
        self.events = self.create_publisher(String, "agent/events", RELIABLE_QOS)
        self.create_subscription(TwistStamped, "agent/habitual/cmd", self.on_habitual, RELIABLE_QOS)
        self.create_subscription(JointState, "agent/plan", self.on_plan, RELIABLE_QOS)
        self.create_subscription(String, "agent/mode", self.on_mode, RELIABLE_QOS)
        self.create_subscription(Bool, "agent/estop", self.on_estop, RELIABLE_QOS)
        self.create_subscription(Float32, "agent/speed_scale", self.on_speed_scale, RELIABLE_QOS)
        self.create_service(Trigger, "agent/estop/reset", self.on_reset)
        self.diag = Diagnostics(self)
        self.create_timer(1.0 / rate_hz, self.on_timer)
        self.create_timer(1.0, self.report)
        self.last: BridgeOutput | None = None
        self.published = 0
        self.last_rejection = ""
        self.param_limits = (op.max_linear_mps, op.max_angular_rps)  # set live by an operator (tighten only)
        self.speed_scale = 1.0  # set by the watchdog (derating)

    def _on_set(self, params) -> SetParametersResult:
        lin, ang = self.param_limits
        for p in params:
            if p.name == "max_linear_mps":
                lin = float(p.value)
            elif p.name == "max_angular_rps":
                ang = float(p.value)
        try:
            self._apply_limits((lin, ang), self.speed_scale)
        except ValueError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def _apply_limits(self, param_limits: tuple[float, float], scale: float) -> None:
        """Operating limits in force = operator's limits x watchdog's derating (ValueError if raised)."""
        self.core.set_operating_limits(param_limits[0] * scale, param_limits[1] * scale, now_s(self))
        self.param_limits, self.speed_scale = param_limits, scale

    def on_speed_scale(self, msg: Float32) -> None:
        """Apply the watchdog's derating when it changes by more than 1 %; bad values are refused."""
        scale = float(msg.data)
        if not 0.0 <= scale <= 1.0:
            self.core.count_rejection(now_s(self), "watchdog", f"speed_scale {scale} outside [0, 1]")
            return
        if abs(scale - self.speed_scale) > 0.01:
            self._apply_limits(self.param_limits, scale)

    def _publish(self, now: float, origin_override: float | None = None) -> None:
        out = self.core.step(now)
        msg = TwistStamped()
        stamp = out.origin_stamp_s if origin_override is None or out.state == "DRIVING" else origin_override
        if stamp is None:  # nothing has driven yet: stamp with the bridge's own time
            stamp = out.stamp_s
        msg.header.stamp = to_time(stamp)
        msg.header.frame_id = "base_link"
        msg.twist.linear.x, msg.twist.angular.z = float(out.v), float(out.w)
        self.pub.publish(msg)
        self.published += 1
        for ev in out.events:
            self.events.publish(String(data=event_to_json(ev)))
        self.last = out

    def _on_proposal(self, p: Proposal) -> None:
        now = now_s(self)
        reason = self.core.on_proposal(p, now)
        if reason is not None:
            self.last_rejection = f"{p.source}: {reason}"
            self.get_logger().warning(f"proposal from {p.source} rejected: {reason}", throttle_duration_sec=2.0)
        if reason is None and self.core.is_active_source(p.source, now):
            self._publish(now)
        elif self.core.is_stopping(now):
            self._publish(now, origin_override=p.stamp_s)

    def on_habitual(self, msg: TwistStamped) -> None:
        """Proposal from the habitual policy."""
        self._on_proposal(msg_to_proposal(msg, "habitual"))

    def on_plan(self, msg: JointState) -> None:
        """The plan's first action is the planner's proposal."""
        try:
            plan = msg_to_plan(msg)
        except MessageError as exc:
            self.core.count_rejection(now_s(self), "planner", f"malformed plan: {exc}")
            self.last_rejection = f"planner: malformed plan: {exc}"
            self.get_logger().warning(f"plan rejected: {exc}", throttle_duration_sec=2.0)
            return
        a = plan.actions[0]
        self._on_proposal(Proposal(plan.stamp_s, float(a[0]), float(a[1]), "planner"))

    def on_mode(self, msg: String) -> None:
        """The watchdog's mode; an unknown name is treated as SAFE_STOP."""
        mode = Mode[msg.data] if msg.data in Mode.__members__ else Mode.SAFE_STOP
        self.core.on_mode(mode, now_s(self))

    def on_estop(self, msg: Bool) -> None:
        """Operator e-stop: engaging latches; releasing alone does not reset."""
        self.core.estop(bool(msg.data), now_s(self))
        if msg.data:
            self._publish(now_s(self))

    def on_reset(self, request, response):
        """agent/estop/reset: accepted only when the e-stop input is released and the robot is stopped."""
        ok, message = self.core.reset_estop(now_s(self))
        response.success, response.message = ok, message
        self.get_logger().info(f"e-stop reset {'accepted' if ok else 'refused'}: {message}")
        return response

    def on_timer(self) -> None:
        """Fixed-rate output whenever nothing went out recently: cmd_vel never goes silent."""
        now = now_s(self)
        if self.core.due(now):
            self._publish(now)

    def report(self) -> None:
        """Publish /diagnostics: state, reason and every counter."""
        out = self.last
        state = out.state if out else "STARTING"
        level = {"DRIVING": "OK", "STOPPED": "WARN", "STOPPING": "WARN", "ESTOP": "ERROR"}.get(state, "WARN")
        self.diag.publish(level, f"{state}: {out.reason if out else ''}",
                          {"state": state, **{k: v for k, v in self.core.counters.items()},
                           "clamps_now": ",".join(out.clamps) if out else "", "last_rejection": self.last_rejection,
                           "max_linear_mps": f"{self.core.operating_limits[0]:.3f}",
                           "max_angular_rps": f"{self.core.operating_limits[1]:.3f}"})


def main() -> None:
    """Entry point: ros2 run hjepa_agent bridge."""
    run_node(BridgeNode)
