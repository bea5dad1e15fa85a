"""One guarded input path for every agent node, fail-stop callbacks, and the receipt clock.

Every agent node is a :class:`GuardedNode`. It subscribes only with :meth:`GuardedNode.subscribe`,
giving an input key of its row in ``nodes/topics.py: INPUTS``; each message then goes through one
path, in this order, before the node's callback sees it:

1. the node's receipt clock is advanced (``core/timekeeping.py``: ages are judged on a clock no
   clock step can turn back); a clock jump is an event with its size;
2. the header stamp is checked (a valid, non-negative time, not further in the future than
   ``future_stamp_tolerance_s``, and for ordered inputs after the last accepted one) and the frame;
   a message without a header (cmd_vel as a geometry_msgs/Twist) has neither: it is timed by receipt;
3. the input's validator decodes it (``Rejected`` with a typed cause for anything the core must
   not see);
4. only then the input counts as received fresh, and the callback runs with the decoded value and
   a :class:`Receipt` (header stamp, receipt time and reading time on the receipt clock).

A rejection is counted per input and cause (on /diagnostics) and reported once per input and
cause as an ``input`` event on agent/events. It never raises.

Anything else that raises in a callback of this node (a subscription, a timer, a service, a
parameter callback) is a bug: the node fails stop. It records the traceback (``failure``),
publishes a ``node`` event and an ERROR diagnostic, and from then on ignores every callback, so
its outputs stop and whoever reads them sees them go stale (the bridge stops the robot, the
watchdog stops it when the bridge goes silent). ``hjepa-agent sim`` then removes the node and
records the episode as a failure with the traceback; ``run_node`` exits with status 3.

/clock is guarded too: a negative or absurd time is rejected (and reported), never handed to
rclpy's time source, which would raise inside the executor.

How the robot carries its camera and its velocity commands (nodes/topics.py :class:`Transport`) is
chosen here, once for every node: each declares the read-only parameters ``image_transport`` (raw |
compressed) and ``cmd_vel_type`` (twist_stamped | twist), and :meth:`GuardedNode.subscribe` and
:meth:`GuardedNode.publisher` use the topic and message type they pick.

Lockstep accounting (nodes/traffic.py): every publisher made with :meth:`GuardedNode.publisher`
counts what it sends to the guarded subscriptions of the same process, and every guarded
subscription counts what it took, so the lockstep can wait until everything in flight has been
handled instead of for a fixed wall-clock time.

The rules (stamps, /clock, counters, what is reported, the events) are ROS-free in core/inputs.py;
this module is their rclpy side. Managed nodes (the bridge and the watchdog) are the same guard on a
``rclpy.lifecycle.LifecycleNode``: nodes/lifecycle.py :class:`GuardedLifecycleNode` (importable from here too).
"""
from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable

from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.exceptions import ParameterNotDeclaredException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from std_msgs.msg import String

from hjepa_agent.core.events import Cause, Event
from hjepa_agent.core.inputs import (InputLedger, InputRecord, NodeFailure, Receipt, Refusal, clock_rejection_event,
                                     failure_event, jump_event, jump_text, rejection_event, stamp_ns, time_refusal)
from hjepa_agent.core.timekeeping import ClockJump, ReceiptClock
from hjepa_agent.nodes.topics import InputSpec, Rejected, TopicSpec, Transport, event_to_json, inputs_of
from hjepa_agent.nodes.traffic import CountingPublisher, Later, Reader, drop_later, join, later_work, leave

log = logging.getLogger("hjepa_agent.guard")

RELIABLE_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
"""Reliable, keep last 10: the agent's own topics."""
EVENTS_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
"""Reliable, keep last 100: events come in bursts (a fault seen by every node at once) and none may be lost."""
LATCHED_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
"""Reliable and transient local: a late subscriber gets the last value (base_stop)."""
SENSOR_QOS = qos_profile_sensor_data
"""Best-effort subscription for the drivers' streams (matches reliable and best-effort publishers)."""
FUTURE_STAMP_TOLERANCE_S = 0.25
"""Default: a stamp further than this ahead of the node's ROS clock is refused (BAD_STAMP)."""
CLOCK_JUMP_TOLERANCE_S = 0.5
"""Default: a ROS-clock step forward larger than this (or any step back) is a clock jump."""


def qos_for(kind: str, subscriber: bool) -> QoSProfile:
    """The QoS of a TOPICS qos kind, for a subscription or a publisher."""
    if kind == "sensor":
        return SENSOR_QOS if subscriber else RELIABLE_QOS
    if kind == "latched":
        return LATCHED_QOS
    if kind == "events":
        return EVENTS_QOS
    return RELIABLE_QOS


# ---- the guard ----------------------------------------------------------------------------------
@dataclass(eq=False)   # identity: two nodes' inputs on one topic are different subscriptions
class _Input(Reader):
    """One guarded input: its row of the input table, its record (core/inputs.py: counters, order) and,
    as a Reader, its part in the lockstep accounting."""

    key: str = ""
    spec: InputSpec | None = None
    carried: TopicSpec | None = None
    """The topic's row as this robot carries it (Transport.topic)."""
    record: InputRecord | None = None


def declare_transport(node: Node) -> Transport:
    """Declare the read-only ``image_transport`` and ``cmd_vel_type`` parameters on ``node`` and return
    the Transport they make: every guarded node, and the recorder, which must subscribe the same types."""
    from hjepa_agent.nodes.common import declare
    return Transport(
        image_transport=declare(node, "image_transport", Transport.image_transport, "how the camera comes: "
                                "'raw' (camera/image_raw, sensor_msgs/Image) or 'compressed' (camera/image_raw/"
                                "compressed, sensor_msgs/CompressedImage jpeg or png)"),
        cmd_vel_type=declare(node, "cmd_vel_type", Transport.cmd_vel_type, "what the base takes on cmd_vel: "
                             "'twist_stamped' (geometry_msgs/TwistStamped) or 'twist' (geometry_msgs/Twist)"))


LATER_PERIOD_S = 1e-6
"""The timer that runs a node's later work (GuardedNode.later) is due this soon (s) after it is woken."""


class GuardedNode(Node):
    """An agent node whose inputs, clock and callbacks are guarded (module doc). ``kind`` names its
    row in INPUTS (the node's name in the node table). ``events``: publish events on agent/events
    (False for the simulator, which stands in for the robot's drivers: its rejections are logged and
    on /diagnostics)."""

    def __init__(self, kind: str, *, events: bool = True, **kwargs: Any) -> None:
        self._guard_kind = kind
        self._destroyed = False
        self.failure: NodeFailure | None = None
        self.on_fail_stop: Callable[[NodeFailure], None] | None = None
        self._inputs: dict[str, _Input] = {}
        self._ledger = InputLedger()
        self._timer_instants: list[list[int | None]] = []   # per timer: the clock time it last ran at
        self._receipt: ReceiptClock | None = None
        self._events_pub = None
        self._own_publishers: list[CountingPublisher] = []
        self._later: Later | None = None
        self._later_timer = None
        super().__init__(kind, **kwargs)
        from hjepa_agent.nodes.common import declare
        self.future_stamp_tolerance_s = declare(
            self, "future_stamp_tolerance_s", FUTURE_STAMP_TOLERANCE_S, "a header stamp further ahead of this "
            "node's clock is refused", unit="s", lo=0.0, hi=60.0)
        jump_tol = declare(self, "clock_jump_tolerance_s", CLOCK_JUMP_TOLERANCE_S, "a clock step forward larger "
                           "than this, or any step back, is a clock jump", unit="s", lo=0.01, hi=3600.0)
        self.frames = {"odom": declare(self, "odom_frame", "odom", "frame of odometry, goals, world states and "
                                       "plans (REP-105)")}
        self.transport = declare_transport(self)
        self.sim_time = bool(self.get_parameter("use_sim_time").value)
        self._receipt = ReceiptClock(self.sim_time, jump_tol)
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._events_pub = self.publisher("agent/events") if events else None
        super().add_on_set_parameters_callback(self._refuse_start_only)

    # ---- time -------------------------------------------------------------------------------------
    def _observe_time(self) -> tuple[float, float]:
        """(ROS now, receipt now), s, after advancing the receipt clock; a jump becomes an event."""
        ros = self.get_clock().now().nanoseconds * 1e-9
        if self._receipt is None:
            return ros, ros
        jump = self._receipt.update(ros, time.monotonic())
        if jump is not None:
            self._on_jump(jump)
        return ros, self._receipt.now_s

    def now_s(self) -> float:
        """The receipt clock now (s): what every age and deadline of this node is judged on."""
        return self._observe_time()[1]

    def ros_now_s(self) -> float:
        """The node's ROS clock now (s): what outgoing stamps are made from."""
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_jump(self, jump: ClockJump) -> None:
        self._ledger.forget_order()   # stamps before the jump say nothing about order after it
        ros_clock = self.get_clock()
        for timer in self.timers:   # a period on the ROS clock starts again from the new time
            if timer.clock is ros_clock and not timer.is_canceled():
                timer.reset()
        for last in self._timer_instants:   # the time a timer last ran at may come again
            last[0] = None
        self.emit(jump_event(self._receipt.now_s, jump))
        self.get_logger().warning(jump_text(jump))
        self.on_clock_jump(jump)

    def on_clock_jump(self, jump: ClockJump) -> None:
        """Hook: the ROS clock stepped (after the guard reset its stamp order). Default: nothing."""

    @property
    def clock_jumps(self) -> int:
        """Clock jumps seen so far."""
        return 0 if self._receipt is None else self._receipt.jumps

    # ---- inputs -----------------------------------------------------------------------------------
    def subscribe(self, key: str, callback: Callable[[Any, Receipt], None]) -> Any:
        """Subscribe to this node's input ``key`` (INPUTS[kind][key]) through the guard;
        ``callback(value, receipt)`` gets the validated value."""
        spec = self.transport.input(inputs_of(self._guard_kind)[key])
        topic = self.transport.topic(spec.topic)
        inp = _Input(key=key, spec=spec, carried=topic, owner=self.get_name(), record=self._ledger.add(key, spec.order))

        def on_msg(msg: Any) -> None:
            self._take(inp, msg, callback)

        sub = Node.create_subscription(self, topic.type, topic.name, self._failsafe(on_msg, f"input {key}"),
                                       qos_for(topic.qos, subscriber=True))
        inp.topic, inp.sub = sub.topic_name, sub
        self._inputs[key] = inp
        join(self.context, inp)
        return sub

    def _take(self, inp: _Input, msg: Any, callback: Callable[[Any, Receipt], None]) -> None:
        inp.take()
        rec = inp.record
        rec.received += 1
        ros, now = self._observe_time()
        spec = inp.spec
        try:
            stamp_s = ns = None
            if inp.carried.stamped:
                stamp = msg.header.stamp
                refusal = rec.stamp_refusal(stamp.sec, stamp.nanosec, ros, self.future_stamp_tolerance_s)
                if refusal is not None:
                    raise Rejected(refusal.cause, refusal.detail)
                ns = stamp_ns(stamp.sec, stamp.nanosec)
                stamp_s = ns * 1e-9
                if spec.frame is not None and msg.header.frame_id != self.frames[spec.frame]:
                    raise Rejected(Cause.BAD_FRAME, f"frame {msg.header.frame_id[:40]!r}, expected "
                                                    f"{self.frames[spec.frame]!r}")
            value = spec.validate(msg)
        except Rejected as rej:
            self._reject(inp, rej)
            return
        rx = Receipt(stamp_s, now, self._receipt.reading_time(stamp_s, ros), ros, ns)
        try:
            callback(value, rx)
        except Rejected as rej:   # the handler refused what only it could judge (e.g. an image the encoder cannot take)
            self._reject(inp, rej)
            return
        rec.accept(rx.reading_s, ns)

    def _reject(self, inp: _Input, rej: Rejected) -> None:
        if self._ledger.reject(inp.record, rej.cause):
            self.emit(rejection_event(self.now_s(), inp.topic, Refusal(rej.cause, rej.detail)))
            self.get_logger().warning(f"{inp.topic}: rejected ({rej.cause.value}): {rej.detail}")

    def input_age_s(self, key: str) -> float | None:
        """Age (s, receipt clock) of input ``key``'s last accepted reading; None before one."""
        return self._inputs[key].record.age_s(self.now_s())

    def input_counts(self) -> dict[str, dict[str, int]]:
        """Per input: received, accepted and rejected per cause."""
        return self._ledger.counts()

    def guard_values(self) -> dict[str, str]:
        """The guard's counters and input ages, for /diagnostics."""
        out = self._ledger.diagnostics(self.now_s())
        out["clock_jumps"] = str(self.clock_jumps)
        if self.failure is not None:
            out["failed_in"] = self.failure.where
            out["failure"] = self.failure.error
        return out

    # ---- outputs ----------------------------------------------------------------------------------
    def publisher(self, topic: str) -> CountingPublisher:
        """A publisher for TOPICS[topic] as this robot carries it (Transport.topic), with its QoS, counted
        for the lockstep."""
        spec = self.transport.topic(topic)
        pub = CountingPublisher(Node.create_publisher(self, spec.type, spec.name, qos_for(spec.qos, False)),
                                self.context)
        self._own_publishers.append(pub)
        return pub

    def drop_publisher(self, pub: CountingPublisher) -> None:
        """Destroy one of this node's publishers (it leaves the lockstep accounting first)."""
        pub.leave()
        self._own_publishers = [p for p in self._own_publishers if p is not pub]
        Node.destroy_publisher(self, pub._pub)

    def later(self, job: Callable[[], None], where: str) -> None:
        """Run ``job`` after this callback has returned (nodes/traffic.py Later: at once in a node's own
        process, when the reflex path is idle in the embedded runner), fail-safe like a callback
        (``where`` names it in a failure)."""
        if self._later is None:
            self._later = later_work(self, self._wake_later)
        self._later.submit(self._failsafe(job, where))

    def _wake_later(self) -> None:
        """Have the executor run the later work next: a steady timer, due at once, cancelled once it ran (a
        timer, not a guard condition: rclpy's EventsExecutor takes no guard conditions)."""
        if self._later_timer is None:
            self._later_timer = Node.create_timer(self, LATER_PERIOD_S, self._run_later, clock=self._steady)
        else:
            self._later_timer.reset()

    def _run_later(self) -> None:
        self._later_timer.cancel()
        self._later.run_all()

    def emit(self, ev: Event) -> None:
        """Publish an event on agent/events (a node without events: log it)."""
        if self._events_pub is not None:
            self._events_pub.publish(String(data=event_to_json(ev)))
        else:
            self.get_logger().info(f"{ev.kind}: {'; '.join(ev.text())}")

    # ---- fail-stop --------------------------------------------------------------------------------
    def _failsafe(self, fn: Callable[..., Any], where: str) -> Callable[..., Any]:
        """``fn`` that never raises out: a failed node ignores it; an exception fails the node stop."""
        def run(*args: Any) -> Any:
            if self.failure is not None or self._destroyed:
                return None   # failed stop, or a callback queued before the node was destroyed
            try:
                return fn(*args)
            except Exception as exc:   # noqa: BLE001 - any exception here is a bug: fail stop, never propagate
                if not self.context.ok():   # shutting down (Ctrl-C, a launch stopping): a publish fails, no bug
                    return None
                self._fail(where, exc)
                return None
        run.__wrapped__ = fn
        return run

    def _fail(self, where: str, exc: BaseException) -> None:
        tb = traceback.format_exc()
        self.failure = NodeFailure(where, f"{type(exc).__name__}: {exc}", tb)
        try:
            self.get_logger().error(f"failed stop in {where}: {type(exc).__name__}: {exc}\n{tb}")
            self.emit(failure_event(self._receipt.now_s if self._receipt else 0.0, self.get_name(), where,
                                    self.failure.error))
            diag = getattr(self, "diag", None)
            if diag is not None:
                diag.publish("ERROR", f"failed in {where}: {type(exc).__name__}: {exc}", {})
        except Exception:   # noqa: BLE001 - reporting a failure must not fail; the log above has it
            log.exception("could not report the failure of %s", self.get_name())
        if self.on_fail_stop is not None:
            self.on_fail_stop(self.failure)

    def create_subscription(self, msg_type, topic, callback, qos_profile, **kwargs):  # noqa: D401
        """rclpy's, with the callback fail-safe; /clock (rclpy's time source) validated first. Agent
        inputs go through :meth:`subscribe`, never here."""
        if topic == "/clock":
            callback = self._clock_guard(callback)
        return super().create_subscription(msg_type, topic, self._failsafe(callback, f"subscription {topic}"),
                                           qos_profile, **kwargs)

    def _clock_guard(self, callback: Callable[[Any], None]) -> Callable[[Any], None]:
        def on_clock(msg: Any) -> None:
            why = time_refusal(int(msg.clock.sec), int(msg.clock.nanosec))
            if why is not None:
                if self._ledger.reject_clock(Cause.CLOCK_INVALID):
                    self.emit(clock_rejection_event(self._receipt.now_s if self._receipt else 0.0, why))
                    self.get_logger().error(f"/clock rejected: {why}")
                return
            callback(msg)
            self._observe_time()
        return on_clock

    def create_timer(self, timer_period_sec, callback, callback_group=None, clock=None, autostart=True):
        """rclpy's, with the callback fail-safe, run at most once per instant of its clock, and on
        the ROS clock restarted from the new time at a clock jump (rcl restarts a timer only on a
        step back past its last call: after other steps one ran at once, or up to a period late,
        and the bridge's cmd_vel went silent for up to two periods; found by the fuzz battery).

        rclpy's EventsExecutor (9.1) runs a ROS-time timer twice at one instant after a /clock
        message that does not move the time (a paused simulator repeating it, or one the guard
        refused), and the second run pushes its next call a period too far: a 20 Hz timer then
        skipped a period (the bridge's cmd_vel went silent 0.10 s; found by the fuzz battery). A
        second run at the same instant is therefore not run, and puts the timer back on its period
        from now. A run that came late (the clock stepped past the call time: its next call, on the
        old phase, is less than half a period away) also puts it on its period from now, so a timer
        never runs twice within half a period (the bridge skipped such a run and was silent for up
        to one and a half periods after a clock step)."""
        timer_clock = clock if clock is not None else self.get_clock()
        last_ns: list[int | None] = [None]
        self._timer_instants.append(last_ns)
        handle: list[Any] = []

        def once_per_instant() -> Any:
            now_ns = timer_clock.now().nanoseconds
            if now_ns == last_ns[0] and handle:
                handle[0].reset()
                return None
            last_ns[0] = now_ns
            out = callback()
            left = handle[0].time_until_next_call() if handle else None
            if left is not None and left < handle[0].timer_period_ns // 2:
                handle[0].reset()   # it ran late (the clock stepped past its call): the next call a period on
            return out
        once_per_instant.__name__ = getattr(callback, "__name__", "timer")
        timer = super().create_timer(timer_period_sec, self._failsafe(once_per_instant, f"timer {once_per_instant.__name__}"),
                                     callback_group=callback_group, clock=clock, autostart=autostart)
        handle.append(timer)
        return timer

    def steady_timer(self, period_s: float, callback: Callable[[], None]) -> Any:
        """A fail-safe timer on the steady clock: it fires whatever the ROS clock does."""
        return self.create_timer(period_s, callback, clock=self._steady)

    def create_service(self, srv_type, srv_name, callback, **kwargs):
        """rclpy's, with the callback fail-safe (a failed node answers nothing)."""
        def serve(request: Any, response: Any) -> Any:
            out = callback(request, response)
            return response if out is None else out
        safe = self._failsafe(serve, f"service {srv_name}")

        def answer(request: Any, response: Any) -> Any:
            out = safe(request, response)
            if out is None and hasattr(response, "success"):
                response.success, response.message = False, "node failed: see its diagnostics"
                return response
            return response if out is None else out
        return super().create_service(srv_type, srv_name, answer, **kwargs)

    def add_on_set_parameters_callback(self, callback):
        """rclpy's; a callback that raises refuses the change (and fails the node stop: it is a bug).
        Returns the callback as registered (for remove_on_set_parameters_callback)."""
        safe = self._failsafe(callback, "parameter callback")

        def on_set(params: list) -> SetParametersResult:
            out = safe(params)
            return out if out is not None else SetParametersResult(successful=False, reason="internal error: "
                                                                   "the node failed; see its diagnostics")
        super().add_on_set_parameters_callback(on_set)
        return on_set

    def _refuse_start_only(self, params: list) -> SetParametersResult:
        """use_sim_time is read only once running: it picks the clock every age is measured on."""
        for p in params:
            if p.name == "use_sim_time":
                return SetParametersResult(successful=False, reason=(
                    f"use_sim_time is read-only at run time (it is {self.sim_time}): it picks the clock every "
                    "input age and deadline is judged on; restart the node to change it"))
        return SetParametersResult(successful=True)

    def _check_undeclared_parameters(self, parameter_list: list) -> None:
        """rclpy's, naming the parameters (rclpy 9.1 consumes its generator before listing them: "[]")."""
        undeclared = [p.name for p in parameter_list if p.name not in self._parameters]
        if undeclared and not self._allow_undeclared_parameters:
            raise ParameterNotDeclaredException(
                f"{', '.join(undeclared)} on node {self.get_name()} (declared: {', '.join(sorted(self._parameters))})")
        super()._check_undeclared_parameters(parameter_list)

    def destroy_node(self) -> None:
        """Leave the lockstep accounting, then destroy (callbacks still queued for it do nothing)."""
        self._destroyed = True
        for inp in self._inputs.values():
            leave(self.context, inp)
        for pub in self._own_publishers:
            pub.leave()
        if self._later is not None:
            drop_later(self.context, self._later)
        super().destroy_node()


def __getattr__(name: str) -> Any:
    """The managed nodes' names (nodes/lifecycle.py), importable from here as before."""
    if name in ("GuardedLifecycleNode", "bring_up"):
        from hjepa_agent.nodes import lifecycle
        return getattr(lifecycle, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CLOCK_JUMP_TOLERANCE_S", "FUTURE_STAMP_TOLERANCE_S", "GuardedNode", "LATCHED_QOS",
           "NodeFailure", "RELIABLE_QOS", "Receipt", "SENSOR_QOS", "event_to_json", "qos_for"]
