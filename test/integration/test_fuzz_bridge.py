"""Fault and fuzz battery, the bridge: the real BridgeNode over DDS, its five inputs fed by a harness
(mode, habitual, plan, e-stop, speed scale: the guard does not check who publishes), on a /clock
the test drives, its cmd_vel judged as received on the timeline of what a base lives through
(test/fuzz_strategies.py: a clock jump is one ordinary tick there).

Properties:
1. no exception escapes a callback (``failure`` stays None);
2. cmd_vel is never silent for longer than one period plus one tick of the test's clock, whatever
   the inputs and the clock do (steps back and forward included: the bridge publishes at a jump);
3. no command exceeds the ego model's hard limits (hjepa_agent.harness.judge.count_limit_violations);
4. after valid driving, a stale or garbage source (nothing, or only what the guard or the bridge
   refuses, on agent/habitual/cmd or agent/plan; or on agent/mode) stops the base: the bridge leaves
   DRIVING no later than the source's timeout plus one period (plus a tick) after the last valid
   message, and v and w reach zero within the decel and jerk limits and stay there.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import pytest
from geometry_msgs.msg import TwistStamped
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from rclpy.parameter import Parameter
from std_msgs.msg import Bool, Float32, String
from std_srvs.srv import Trigger

from fuzz_strategies import (CLOCK_STEPS, budget, DT_S, RIGHT, ClockStep, Draft, FuzzStack, Publish, Stamp, fuzz_stack,
                             failure_text, garbage_modes, garbage_plans, garbage_twists, publishes)
from hjepa_agent.config.ego_model import load_ego_model
from hjepa_agent.nodes.codec import PLAN_HEAD, plan_labels
from hjepa_agent.nodes.topics import inputs_of
from hjepa_agent.config.paths import data_path
from hjepa_agent.harness.judge import count_limit_violations

EGO = load_ego_model(data_path("config", "ego_model.yaml"))
LIN, ANG = EGO.hard.kinematics.linear_x, EGO.hard.kinematics.angular_z
OP = (EGO.operating.max_linear_mps, EGO.operating.max_angular_rps)
DEFAULT_EXAMPLES = {"holds": 100, "stops": 15}
LONG_EXAMPLES = {"holds": 1200, "stops": 200}


def say(text: str) -> None:
    """A failure, at once on the terminal (a long run's summary comes only at its end)."""
    sys.__stderr__.write(f"\nFUZZ FAILURE {text[:4000]}\n")
    sys.__stderr__.flush()


def _settings(long: bool, examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, derandomize=not long,
                    database=None if not long else settings.default.database,
                    phases=(Phase.explicit, Phase.reuse, Phase.generate), print_blob=True,
                    suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def bridge_stack(fuzz_report):
    from hjepa_agent.nodes.bridge import BridgeNode

    def build(ctx):
        return {"bridge": BridgeNode(context=ctx, namespace="fz_bridge", enable_rosout=False,
                                     parameter_overrides=[Parameter("use_sim_time", value=True),
                                                          Parameter("start_type_description_service", value=False)])}
    with fuzz_stack(build, EGO, fuzz_report) as s:
        node = s.nodes["bridge"]
        s.period_s = 1.0 / float(node.get_parameter("rate_hz").value)
        s.source_timeout_s = float(node.get_parameter("source_timeout_s").value)
        s.mode_timeout_s = float(node.get_parameter("mode_timeout_s").value)
        yield s


# ---- valid driving ------------------------------------------------------------------------------
def proposal(source: str, v: float, w: float, horizon: int = 5) -> Draft:
    """A valid proposal from ``source`` (habitual: a TwistStamped; planner: a plan whose first action is (v, w))."""
    if source == "habitual":
        m = TwistStamped()
        m.twist.linear.x, m.twist.angular.z = v, w
        return Draft("agent/habitual/cmd", m, Stamp("now"), RIGHT)
    from sensor_msgs.msg import JointState
    labels = list(plan_labels(horizon))
    pos = [0.0] * len(labels)
    pos[3] = 0.2   # dt_s
    for k in range(horizon):
        pos[len(PLAN_HEAD) + 3 * k], pos[len(PLAN_HEAD) + 3 * k + 1] = v, w
    return Draft("agent/plan", JointState(name=labels, position=pos), Stamp("now"), RIGHT)


MODE_OF = {"habitual": "HABITUAL", "planner": "PLANNING"}
KEY_OF = {"habitual": "habitual", "planner": "planner"}


@dataclass(frozen=True)
class Drive:
    """``ticks`` ticks of valid driving: the mode every tick, a proposal (v, w) from ``source`` every
    ``every`` ticks starting at tick ``phase``."""

    source: str
    v: float
    w: float
    ticks: int
    every: int = 1
    phase: int = 0
    mode: str = ""


@dataclass(frozen=True)
class Estop:
    """The operator's e-stop input."""

    engaged: bool


@dataclass(frozen=True)
class Reset:
    """A call of agent/estop/reset."""


def drive(stack: FuzzStack, d: Drive) -> float | None:
    """Run a Drive; returns p_s of the last proposal published (None: none)."""
    last = None
    for k in range(d.ticks):
        stack.publish("bridge", "mode", Draft("agent/mode", String(data=d.mode or MODE_OF[d.source])))
        if k % d.every == d.phase % d.every:
            stack.publish("bridge", KEY_OF[d.source], proposal(d.source, d.v, d.w))
            last = stack.p_s
        stack.clock(ClockStep("tick"))
    return last


SOURCES = st.sampled_from(("habitual", "planner"))
SPEEDS = st.tuples(st.one_of(st.floats(-OP[0], OP[0]), st.sampled_from((0.0, OP[0], -OP[0], 1.5, -1.5, 5.0))),
                   st.one_of(st.floats(-OP[1], OP[1]), st.sampled_from((0.0, OP[1], -OP[1], 3.0, -5.0))))
DRIVES = st.builds(lambda src, vw, ticks, every, phase, mode: Drive(src, vw[0], vw[1], ticks, every, phase, mode),
                   SOURCES, SPEEDS, st.integers(1, 60), st.sampled_from((1, 2, 3, 5, 10)), st.integers(0, 9),
                   st.sampled_from(("", "", "", "OPTIMISING", "SAFE_STOP", "HABITUAL", "PLANNING")))
BRIDGE_INPUTS = inputs_of("bridge")
STEPS = st.one_of(DRIVES, DRIVES, DRIVES, CLOCK_STEPS, CLOCK_STEPS,
                  st.one_of(*[publishes("bridge", k, s) for k, s in BRIDGE_INPUTS.items()]),
                  st.booleans().map(Estop), st.just(Reset()),
                  st.floats(0.0, 1.0, width=32).map(lambda x: Publish("bridge", "speed_scale", Draft("agent/speed_scale", Float32(data=x)))))


def run_steps(stack: FuzzStack, steps: list) -> None:
    for s in steps:
        if isinstance(s, Drive):
            drive(stack, s)
        elif isinstance(s, Estop):
            stack.publish("bridge", "estop", Draft("agent/estop", Bool(data=s.engaged)))
        elif isinstance(s, Reset):
            stack.call("bridge", Trigger, "agent/estop/reset")
        else:
            stack.run([s])


def check(stack: FuzzStack, what: str) -> None:
    """Properties 1-3 on what happened since the last check."""
    rep = stack.report
    rep.property_checks["1_no_escape"] += 1
    rep.property_checks["2_bridge_silence"] += 1
    rep.property_checks["3_hard_limits"] += 1
    failed = stack.failures()
    for name, f in failed.items():
        rep.escape(name, f, what)
    if failed:
        stack.broken = "\n".join(failure_text(n, f) for n, f in failed.items())
        say(f"{what}: {stack.broken}")
        raise AssertionError(stack.broken)
    silences, violations = stack.check_wire()
    if silences or violations:
        stack.broken = f"{what}: bridge wire: silences {silences}, limit violations {dict(violations)}"
        say(stack.broken)
        raise AssertionError(stack.broken)


def settle(stack: FuzzStack) -> None:
    """Bring the bridge to rest on a sane clock: SAFE_STOP for a second, e-stop released and reset,
    full speed scale."""
    for _ in range(100):
        stack.publish("bridge", "mode", Draft("agent/mode", String(data="SAFE_STOP")))
        stack.clock(ClockStep("tick"))
    stack.publish("bridge", "estop", Draft("agent/estop", Bool(data=False)))
    stack.publish("bridge", "speed_scale", Draft("agent/speed_scale", Float32(data=1.0)))
    ok = stack.call("bridge", Trigger, "agent/estop/reset")
    assert ok.success, ok.message


# ---- properties 1-3 -----------------------------------------------------------------------------
@pytest.mark.timeout(3600)
def test_bridge_holds_its_period_and_limits_whatever_comes(bridge_stack, fuzz_long, fuzz_report):
    stack = bridge_stack
    stack.broken = None
    stack.where = "bridge/holds"

    @_settings(fuzz_long, budget(DEFAULT_EXAMPLES["holds"], LONG_EXAMPLES["holds"], fuzz_long))
    @given(steps=st.lists(STEPS, min_size=1, max_size=8))
    def run(steps):
        if stack.broken:
            raise AssertionError(stack.broken)
        run_steps(stack, steps + [ClockStep("tick", 10)])
        fuzz_report.sequences["bridge"] += 1
        fuzz_report.sequences_by_input["bridge/(all inputs, driving)"] += 1
        check(stack, "bridge/holds")
    run()


# ---- property 4 -----------------------------------------------------------------------------------
def stopping_time_s(v: float, w: float) -> float:
    """An upper bound (s) on the time a decel- and jerk-limited ramp from (v, w) and any acceleration takes."""
    return max(abs(v) / LIN.max_decel + 2 * LIN.max_accel / LIN.max_jerk + LIN.max_decel / LIN.max_jerk,
               abs(w) / ANG.max_decel + 2 * ANG.max_accel / ANG.max_jerk + ANG.max_decel / ANG.max_jerk)


GARBAGE = {"habitual": garbage_twists("agent/habitual/cmd", OP), "planner": garbage_plans("agent/plan", OP[0]),
           "mode": garbage_modes("agent/mode")}


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("stale", ["habitual", "planner", "mode"])
def test_a_stale_or_garbage_source_stops_the_base_within_limits(bridge_stack, stale, fuzz_long, fuzz_report):
    stack = bridge_stack
    stack.broken = None
    stack.where = f"bridge/stops/{stale}"
    rep = fuzz_report

    @_settings(fuzz_long, budget(DEFAULT_EXAMPLES["stops"], LONG_EXAMPLES["stops"], fuzz_long))
    @given(source=SOURCES if stale == "mode" else st.just(stale), vw=SPEEDS,
           drive_ticks=st.integers(80, 150), every=st.sampled_from((1, 2, 5, 10)), phase=st.integers(0, 9),
           after=st.lists(st.one_of(st.none(), st.none(), GARBAGE[stale], st.tuples(GARBAGE[stale], st.integers(2, 10))),
                          min_size=1, max_size=40))
    def run(source, vw, drive_ticks, every, phase, after):
        if stack.broken:
            raise AssertionError(stack.broken)
        settle(stack)
        check(stack, stack.where)
        v, w = vw
        last_proposal = drive(stack, Drive(source, v, w, drive_ticks, every, phase))
        premise = [r[4] for p, r in stack.records[-3:]]
        assert premise and premise[-1] == "DRIVING", f"the bridge was not driving before the fault: {premise}"
        last_mode = stack.p_s - DT_S
        last_valid = last_mode if stale == "mode" else last_proposal
        timeout = stack.mode_timeout_s if stale == "mode" else stack.source_timeout_s
        deadline = last_valid + timeout + stack.period_s + DT_S + 1e-9
        v_goal, w_goal = max(-OP[0], min(OP[0], v)), max(-OP[1], min(OP[1], w))
        ticks_after = int(math.ceil((timeout + stack.period_s + stopping_time_s(v_goal, w_goal) + 0.3) / DT_S))
        key = "mode" if stale == "mode" else KEY_OF[stale]
        n_wire = len(stack.wire)
        n_rec = len(stack.records)
        for k in range(ticks_after):
            item = after[k % len(after)]
            if stale != "mode":
                stack.publish("bridge", "mode", Draft("agent/mode", String(data=MODE_OF[source])))
            elif k % every == phase % every:
                stack.publish("bridge", KEY_OF[source], proposal(source, v, w))
            if item is not None:
                draft, burst = item if isinstance(item, tuple) else (item, 1)
                stack.publish("bridge", key, draft, burst=burst, remember=False)
            stack.clock(ClockStep("tick"))
        rep.sequences["bridge"] += 1
        rep.sequences_by_input[f"bridge/{stale} (stale or garbage after driving)"] += 1
        rep.property_checks["4_stale_source_stops"] += 1
        check(stack, stack.where)
        wire = [(p, a, b) for p, a, b, _ in stack.wire[n_wire:]]
        records = stack.records[n_rec:]
        driving_at_end = [(p, r[4]) for p, r in records if p > deadline and r[4] == "DRIVING"]
        problems = []
        if driving_at_end:
            problems.append(f"still DRIVING after the deadline {deadline:.3f}: {driving_at_end[:3]}")
        v_dl = [x for x in wire if x[0] <= deadline]
        later = [x for x in wire if x[0] > deadline]
        if v_dl and later:   # decelerating from the deadline on: |v| grows by at most what the jerk limit lets an acceleration die out in
            v0, w0 = abs(v_dl[-1][1]), abs(v_dl[-1][2])
            if max(abs(x[1]) for x in later) > v0 + LIN.max_accel ** 2 / (2 * LIN.max_jerk) + 1e-6 or \
                    max(abs(x[2]) for x in later) > w0 + ANG.max_accel ** 2 / (2 * ANG.max_jerk) + 1e-6:
                problems.append(f"speed grew after the deadline: from {v_dl[-1]} to max {max(later, key=lambda x: abs(x[1]))}")
        if not wire or any(abs(x[1]) > 1e-9 or abs(x[2]) > 1e-9 for x in wire[-5:]):
            problems.append(f"not stopped at the end: {wire[-5:]}")
        viol = count_limit_violations([x[0] for x in wire], [x[1] for x in wire], [x[2] for x in wire], EGO)
        if any(viol.values()):
            problems.append(f"limit violations {viol}")
        if problems:
            stack.broken = f"{stack.where} (v={v}, w={w}, last valid at {last_valid:.3f}): " + "; ".join(problems)
            say(stack.broken)
            raise AssertionError(stack.broken)
    run()


# ---- clock jumps at every phase ---------------------------------------------------------------------
@pytest.mark.timeout(300)
def test_a_clock_jump_leaves_cmd_vel_silent_no_longer_than_a_period(bridge_stack):
    """Steps back and forward at every phase of the bridge's period: the bridge publishes at the jump
    (BridgeNode.on_clock_jump; before it, the guard's restarted timer left cmd_vel silent for up to
    two periods)."""
    stack = bridge_stack
    settle(stack)
    stack.check_wire()
    jumps = 0
    for k, dt in enumerate((-1.0, 5.0, -0.3, 2.0, -2.0)):   # only the timer publishes (SAFE_STOP)
        drive(stack, Drive("habitual", 0.0, 0.0, 20 + k, every=1000, phase=999, mode="SAFE_STOP"))
        stack.clock(ClockStep("jump", dt=dt))
        jumps += 1
        drive(stack, Drive("habitual", 0.0, 0.0, 10, every=1000, phase=999, mode="SAFE_STOP"))
    silences, violations = stack.check_wire()
    assert stack.nodes["bridge"].clock_jumps >= jumps, "the bridge did not see the jumps: the test tests nothing"
    assert not silences, f"cmd_vel silent across clock jumps: {silences}"
    assert not violations, violations
