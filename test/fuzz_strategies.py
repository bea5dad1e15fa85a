"""The fault and fuzz battery's building blocks: hypothesis strategies for every input message of
every agent node, the steps a generated sequence is made of, the harness that feeds them to the
real node classes over DDS on a /clock it drives itself, the wire judge of the bridge's output, and
the report (``FUZZ_REPORT=path``).

Strategies (``STRATEGIES``) are keyed by topic (nodes/topics.py TOPICS): every input on a topic
gets its topic's strategy, so a new input on a known topic is fuzzed without a change here, and a
new topic without a strategy fails ``test_every_input_has_a_strategy_and_a_rate``. A strategy draws a
:class:`Draft`: a message body plus how to stamp it (relative to the clock at publish time: now,
late, a duplicate of or older than the last stamp, beyond the future tolerance, not a time at all)
and which frame to name (the right one, none, a wrong one). Bodies mix plausible values (so the
validators pass and the cores run) with NaN, inf, huge, negative and zero values, wrong sizes,
wrong labels and empty arrays.

Time. The harness publishes /clock and, after every message and every clock step, waits until
everything it set off is handled (lockstep.lockstep_barrier: every node's clock reached the time, no
timer overdue, nothing in flight between counting publishers and guarded subscriptions). Outputs
are placed on the timeline ``p_s`` of what a base lives through: an ordinary step of the clock
(forward, within the nodes' clock_jump_tolerance_s) adds its size; a jump (back, to zero, or
forward beyond the tolerance) adds one ordinary step (the simulator's tick went on, physics did
not jump); a hold or a refused /clock adds nothing. The bridge's wire is judged on it
(``WireJudge``): its silences and, by judge.count_limit_violations, its limits.
"""
from __future__ import annotations

import contextlib
import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
from hypothesis import strategies as st

from hjepa_agent.core.types import WORLD_STATE_LABELS, Mode
from hjepa_agent.nodes.codec import (BRIDGE_OUTPUT_LABELS, EARLY_PERCEPT_LABELS, GOAL_STATUS_LABELS, PERCEPT_LABELS,
                                     plan_labels, to_time)
from hjepa_agent.nodes.topics import MAX_SCAN_BEAMS, TOPICS, InputSpec

DT_S = 0.01
"""One lockstep tick of the test's /clock (the simulator's tick, nodes/sim.py TICK_S)."""
MAX_CLOCK_S = 1.0e6
"""The harness keeps its clock below this (forward jumps turn into steps back beyond it)."""

NOMINAL_HZ: dict[str, float] = {
    "camera/image_raw": 10.0, "scan": 10.0, "odom": 50.0, "battery_state": 2.0, "motor_temperature": 2.0,
    "goal_pose": 2.0, "agent/percept": 10.0, "agent/world_state": 10.0, "agent/habitual/cmd": 10.0,
    "agent/percept/early": 10.0, "agent/world_state/early": 10.0,
    "agent/plan": 10.0, "agent/goal_status": 1.0, "agent/mode": 20.0, "agent/speed_scale": 20.0,
    "agent/habitual_stalled": 20.0, "agent/events": 20.0, "agent/estop": 20.0, "cmd_vel": 20.0,
    "agent/bridge/output": 20.0, "base_stop": 20.0,
}
"""Nominal rate of each input topic (Hz): a burst publishes at ten times it, on the test's clock."""

NAN, INF = float("nan"), float("inf")
SPECIAL_F64 = (NAN, INF, -INF, 0.0, -0.0, 1e308, -1e308, 1.7976931348623157e308, 5e-324, -5e-324, 3.5e38,
               -3.5e38, 1e30, -1e30, 1e9, -1e9, 1e6 + 1.0, -1e6 - 1.0, 2.0 ** 63, -(2.0 ** 63), 1e-300)
SPECIAL_F32 = (NAN, INF, -INF, 0.0, -0.0, 3.4028234663852886e38, -3.4028234663852886e38, 1.401298464324817e-45,
               1e30, -1e30, 1e9, -1e9, 1e6, -1e6, 16777217.0)
TEXT = st.text(st.characters(min_codepoint=1, blacklist_categories=("Cs",)), max_size=24)


# ---- numbers ----------------------------------------------------------------------------------
def _f32_bounds(lo: float, hi: float) -> tuple[float, float]:
    """Bounds a float32 holds exactly, inside [lo, hi]."""
    return (float(np.nextafter(np.float32(lo), np.float32(np.inf))) if float(np.float32(lo)) < lo else float(np.float32(lo)),
            float(np.nextafter(np.float32(hi), np.float32(-np.inf))) if float(np.float32(hi)) > hi else float(np.float32(hi)))


def num(lo: float, hi: float, width: int = 64, wild: bool = True) -> st.SearchStrategy[float]:
    """A float in [lo, hi] (edges included); ``wild``: sometimes instead a special value (NaN, inf,
    huge, tiny, negative zero) or any float of that width."""
    if width == 32:
        lo, hi = _f32_bounds(lo, hi)
    plausible = st.floats(lo, hi, width=width)
    if not wild:
        return st.one_of(plausible, plausible, plausible, st.sampled_from((lo, hi, min(max(0.0, lo), hi))))
    special = SPECIAL_F64 if width == 64 else SPECIAL_F32
    return st.one_of(plausible, plausible, plausible, st.sampled_from(special),
                     st.floats(width=width, allow_nan=True, allow_infinity=True))


@dataclass(frozen=True)
class Vec:
    """A float array drawn cheaply: ``n`` values uniform in [lo, hi] x ``scale`` from ``seed``, then
    ``spikes`` (index, value) written over them (index modulo n)."""

    n: int
    lo: float
    hi: float
    scale: float
    seed: int
    spikes: tuple[tuple[int, float], ...]

    def values(self) -> list[float]:
        """The array as a list of Python floats."""
        if self.n <= 0:
            return []
        v = np.random.default_rng(self.seed).uniform(self.lo, self.hi, self.n) * self.scale
        for i, x in self.spikes:
            v[i % self.n] = x
        return [float(x) for x in v]


def vec(n: int | st.SearchStrategy[int], lo: float, hi: float, width: int = 64, wild: bool = True,
        spiky: tuple[float, ...] = ()) -> st.SearchStrategy[Vec]:
    """Arrays of ``n`` values (or a drawn size) in [lo, hi], sometimes scaled up (to 1e30: still
    finite as float32), with up to three values spiked in: ``spiky`` ones (values the validator
    lets through, e.g. inf ranges of a scan), and with ``wild`` any special value (NaN, inf, 1e308)."""
    sizes = st.just(n) if isinstance(n, int) else n
    scales = st.sampled_from((1.0, 1.0, 1.0, 1.0, 0.0, -1.0, 1e3, 1e6, 1e30) + ((1e300,) if wild and width == 64 else ()))
    pool = tuple(spiky) + ((SPECIAL_F64 if width == 64 else SPECIAL_F32) if wild else (0.0, -0.0, 1e30, -1e30, 1e-30))
    spike_values = st.one_of(st.sampled_from(pool), st.floats(width=width)) if wild else st.sampled_from(pool)
    spikes = st.lists(st.tuples(st.integers(0, 10_000), spike_values), max_size=3).map(tuple)
    return st.builds(Vec, sizes, st.just(lo), st.just(hi), st.one_of(st.just(1.0), st.just(1.0), scales),
                     st.integers(0, 2 ** 32 - 1), st.one_of(st.just(()), st.just(()), spikes))


# ---- stamps and frames ------------------------------------------------------------------------
@dataclass(frozen=True)
class Stamp:
    """How to stamp a message when it is published: ``kind`` is one of
    now (the clock), lag (x s ago), dup (the last stamp on this topic again), older (x s before it),
    ahead (x s ahead, within the future tolerance), future (x s beyond the tolerance),
    zero (0 s), raw (``sec``, ``nsec`` as given: negative seconds, nanoseconds >= 1e9, far future)."""

    kind: str
    x: float = 0.0
    sec: int = 0
    nsec: int = 0

    def resolve(self, now_s: float, last_ns: int | None, tol_s: float) -> tuple[int, int]:
        """(sec, nanosec) of the stamp, for a message published at ``now_s``."""
        if self.kind == "raw":
            return self.sec, self.nsec
        if self.kind == "dup" and last_ns is not None:
            return last_ns // 1_000_000_000, last_ns % 1_000_000_000
        last_s = now_s if last_ns is None else last_ns * 1e-9
        t = {"now": now_s, "lag": now_s - self.x, "dup": last_s, "older": last_s - self.x, "ahead": now_s + self.x,
             "future": now_s + tol_s + self.x, "zero": 0.0}[self.kind]
        tm = to_time(min(max(t, 0.0), 2.0 ** 31 - 2))
        return tm.sec, tm.nanosec


VALID_STAMPS = st.one_of(st.just(Stamp("now")), st.just(Stamp("now")), st.just(Stamp("now")),
                         st.builds(Stamp, st.just("lag"), st.floats(0.0, 0.3)),
                         st.builds(Stamp, st.just("ahead"), st.floats(0.0, 0.2)))
"""Stamps the guard accepts (unless an older one came after a newer one on an ordered input)."""
STAMPS = st.one_of(
    VALID_STAMPS, VALID_STAMPS,
    st.builds(Stamp, st.just("lag"), st.floats(0.0, 5.0)),
    st.just(Stamp("dup")),
    st.builds(Stamp, st.just("older"), st.floats(1e-9, 100.0)),
    st.builds(Stamp, st.just("future"), st.one_of(st.floats(1e-3, 10.0), st.floats(10.0, 1e9))),
    st.just(Stamp("zero")),
    st.builds(Stamp, st.just("raw"), st.just(0.0), st.integers(-2 ** 31, 2 ** 31 - 1), st.integers(0, 2 ** 32 - 1)),
)
"""Any stamp: valid ones half the time, else late, duplicate, out of order, in the future, zero, not a time."""
BAD_STAMPS = st.one_of(
    st.just(Stamp("dup")),
    st.builds(Stamp, st.just("older"), st.floats(1e-6, 100.0)),
    st.builds(Stamp, st.just("future"), st.floats(1e-3, 1e6)),
    st.builds(Stamp, st.just("raw"), st.just(0.0), st.integers(-2 ** 31, -1), st.integers(0, 999_999_999)),
    st.builds(Stamp, st.just("raw"), st.just(0.0), st.integers(0, 1000), st.integers(1_000_000_000, 2 ** 32 - 1)),
)
"""Stamps the guard must refuse on an ordered input (relative to the last accepted stamp)."""

RIGHT = "="
"""Frame marker: the frame the input's row asks for (or the driver's usual one)."""
FRAMES = st.one_of(st.just(RIGHT), st.just(RIGHT), st.just(RIGHT), st.just(""), TEXT,
                   st.sampled_from(("base_link", "map", "odom ", "ODOM", "/odom", "odom\t")))
NATURAL_FRAME = {"camera/image_raw": "camera_link", "scan": "laser_link", "odom": "odom", "goal_pose": "odom",
                 "motor_temperature": "motors", "battery_state": "", "agent/habitual/cmd": "base_link",
                 "cmd_vel": "base_link", "agent/world_state": "odom", "agent/plan": "odom", "agent/goal_status": "odom",
                 "agent/percept": "", "agent/bridge/output": "DRIVING", "agent/percept/early": "",
                 "agent/world_state/early": "odom"}


def short_repr(value: Any) -> str:
    """A message for people: arrays and buffers longer than 8 items shown by length and a head."""
    if hasattr(value, "get_fields_and_field_types"):
        fields = ", ".join(f"{k}={short_repr(getattr(value, k))}" for k in value.get_fields_and_field_types())
        return f"{type(value).__name__}({fields})"
    if isinstance(value, str):
        return f"<str of {len(value)}: {value[:40]!r}...>" if len(value) > 80 else repr(value)
    if isinstance(value, (bytes, bytearray)) or hasattr(value, "__len__"):
        return f"<{len(value)} items: {list(value[:4])}...>" if len(value) > 8 else repr(list(value))
    return repr(value)


@dataclass(frozen=True)
class Draft:
    """A message for ``topic``: ``msg`` is its body (header filled in at publish time from ``stamp``
    and ``frame``; unstamped types leave them None)."""

    topic: str
    msg: Any
    stamp: Stamp | None = None
    frame: str | None = None

    def __repr__(self) -> str:
        return f"Draft({self.topic!r}, {short_repr(self.msg)}, stamp={self.stamp}, frame={self.frame!r})"

    def build(self, now_s: float, last_ns: int | None, tol_s: float, right_frame: str | None) -> Any:
        """The message to publish at ``now_s`` (``last_ns``: the last stamp on this topic)."""
        msg = self.msg
        if self.stamp is not None:
            sec, nsec = self.stamp.resolve(now_s, last_ns, tol_s)
            msg.header.stamp.sec, msg.header.stamp.nanosec = int(sec), int(nsec)
        if self.frame is not None:
            msg.header.frame_id = (right_frame if right_frame is not None else NATURAL_FRAME.get(self.topic, "")) \
                if self.frame == RIGHT else self.frame
        return msg


# ---- message bodies, one strategy per topic -----------------------------------------------------
# Each body strategy takes ``wild``. False: a message the validator should accept (right labels and
# sizes, values it allows, though as odd as it allows: zeros, edges, huge finite values, the inf
# and NaN ranges REP-117 allows in a scan) so the node's core runs on it. True: anything (NaN, inf,
# 1e308, wrong sizes and labels, absurd sizes). A topic's strategy mostly varies one thing at a time
# (_stamped), so each corruption meets the check meant for it with the rest of the message valid.
def _stamped(topic: str, body: Callable[[bool], st.SearchStrategy[Any]]) -> st.SearchStrategy[Draft]:
    """Valid messages; a wild body under a valid header (what reaches the validators and cores);
    a valid body under any stamp, or any frame; or everything wild."""
    t, ok, wild = st.just(topic), body(False), body(True)
    valid = st.builds(Draft, t, ok, VALID_STAMPS, st.just(RIGHT))
    bad_body = st.builds(Draft, t, wild, VALID_STAMPS, st.just(RIGHT))
    return st.one_of(valid, valid, valid, valid, bad_body, bad_body, bad_body,
                     st.builds(Draft, t, ok, STAMPS, st.just(RIGHT)), st.builds(Draft, t, ok, VALID_STAMPS, FRAMES),
                     st.builds(Draft, t, wild, STAMPS, FRAMES))


def _unstamped(topic: str, body: Callable[[bool], st.SearchStrategy[Any]]) -> st.SearchStrategy[Draft]:
    return st.builds(Draft, st.just(topic), st.one_of(body(False), body(True)))


def _labels(correct: tuple[str, ...], wild: bool) -> st.SearchStrategy[list[str]]:
    """The right labels; ``wild``: else one dropped, one added, two swapped, one renamed, none, or any."""
    c = list(correct)
    if not wild:
        return st.just(c)

    def mutate(args: tuple[str, int, str]) -> list[str]:
        how, i, text = args
        i %= max(1, len(c))
        out = list(c)
        if how == "drop" and out:
            del out[i]
        elif how == "add":
            out.insert(i, text)
        elif how == "swap" and len(out) > 1:
            j = (i + 1) % len(out)
            out[i], out[j] = out[j], out[i]
        elif how == "rename" and out:
            out[i] = text
        elif how == "none":
            out = []
        return out
    mutated = st.tuples(st.sampled_from(("drop", "add", "swap", "rename", "none")), st.integers(0, 200), TEXT).map(mutate)
    return st.one_of(st.just(c), st.just(c), mutated, st.lists(TEXT, max_size=8))


def _values(n: int, lo: float, hi: float, wild: bool) -> st.SearchStrategy[list[float]]:
    """``n`` values (``wild``: sometimes a wrong count)."""
    size = st.one_of(st.just(n), st.just(n), st.just(n), st.integers(0, n + 3)) if wild else st.just(n)
    return vec(size, lo, hi, wild=wild).map(Vec.values)


def _joint_state(names: list[str], pos: list[float], vel: list[float], eff: list[float]) -> Any:
    from sensor_msgs.msg import JointState
    return JointState(name=names, position=pos, velocity=vel, effort=eff)


def _effort(wild: bool) -> st.SearchStrategy[list[float]]:
    return st.one_of(st.just([]), st.just([]), st.lists(num(-1, 1), max_size=3)) if wild else st.just([])


def _labelled_vector(correct: tuple[str, ...], lo: float, hi: float, variances: bool) -> Callable[[bool], st.SearchStrategy[Any]]:
    def body(wild: bool) -> st.SearchStrategy[Any]:
        @st.composite
        def make(draw: Callable) -> Any:
            labels = draw(_labels(correct, wild))
            pos = draw(_values(len(labels), lo, hi, wild))
            if variances:
                vel = draw(st.one_of(_values(len(labels), 0.0, 0.5, wild), st.just([]), _values(len(labels), -1.0, 1.0, True))
                           if wild else _values(len(labels), 0.0, 0.5, False).map(lambda v: [abs(x) for x in v]))
            else:
                vel = draw(st.one_of(st.just([]), st.just([]), _values(len(labels), -1.0, 1.0, True)) if wild else st.just([]))
            return _joint_state(labels, pos, vel, draw(_effort(wild)))
        return make()
    return body


def percepts(spec: InputSpec) -> st.SearchStrategy[Draft]:
    """agent/percept: 36 labelled values (latent, scan sectors, quality, image scores)."""
    return _stamped(spec.topic, _labelled_vector(PERCEPT_LABELS, -3.0, 5.0, variances=False))


def early_percepts(spec: InputSpec) -> st.SearchStrategy[Draft]:
    """agent/percept/early: 32 labelled values (latent, scan sectors)."""
    return _stamped(spec.topic, _labelled_vector(EARLY_PERCEPT_LABELS, -3.0, 5.0, variances=False))


def early_world_states(spec: InputSpec) -> st.SearchStrategy[Draft]:
    """agent/world_state/early: mean and variance over WORLD_STATE_LABELS (no ambiguity)."""
    return _stamped(spec.topic, _labelled_vector(WORLD_STATE_LABELS, -5.0, 5.0, variances=True))


def world_states(spec: InputSpec) -> st.SearchStrategy[Draft]:
    """agent/world_state: mean and variance over WORLD_STATE_LABELS + ambiguity."""
    return _stamped(spec.topic, _labelled_vector(WORLD_STATE_LABELS + ("ambiguity",), -5.0, 5.0, variances=True))


def plans(spec: InputSpec) -> st.SearchStrategy[Draft]:
    """agent/plan: a plan of some horizon (head, actions, log-probs, states), labels right or not."""
    def body(wild: bool) -> st.SearchStrategy[Any]:
        @st.composite
        def make(draw: Callable) -> Any:
            h = draw(st.one_of(st.integers(1, 20), st.sampled_from((1, 15)), st.integers(21, 200)))
            labels = draw(_labels(plan_labels(h), wild))
            pos = draw(_values(len(labels), -1.0, 1.0, wild))
            if not wild:   # a head the validator takes: risk, log_reward, ambiguity, dt_s, calls
                pos[:5] = [draw(num(0, 1, wild=False)), draw(num(-50, 0, wild=False)), draw(num(0, 5, wild=False)),
                           draw(st.one_of(st.just(0.2), num(1e-3, 10.0, wild=False))), float(draw(st.integers(0, 10 ** 6)))]
                for k in range(h):   # actions within the validator's bound, sometimes far beyond the bridge's
                    pos[5 + 3 * k] = draw(st.one_of(num(-1.0, 1.0, wild=False), num(-1e3, 1e3, wild=False)))
                    pos[6 + 3 * k] = draw(st.one_of(num(-2.0, 2.0, wild=False), num(-1e3, 1e3, wild=False)))
            if wild and len(pos) == len(labels) == len(plan_labels(h)):
                # finite but what its readers choke on: beyond float32 (inf once cast), a step of 5e-324 s
                odd = st.sampled_from((3.5e38, -1e39, 1e300, 1.7976931348623157e308, 1e6, 5e-324, 0.0, -0.2))
                for _ in range(draw(st.integers(1, 3))):   # the first action (what the bridge follows), or anywhere
                    pos[draw(st.one_of(st.sampled_from((5, 6)), st.integers(0, len(pos) - 1)))] = draw(odd)
                if draw(st.booleans()):
                    pos[3] = draw(odd)   # dt_s
            vel = draw(st.one_of(st.just([]), st.just([]), _values(len(labels), -1, 1, True)) if wild else st.just([]))
            return _joint_state(labels, pos, vel, draw(_effort(wild)))
        return make()
    return _stamped(spec.topic, body)


def bridge_outputs(spec: InputSpec) -> st.SearchStrategy[Draft]:
    """agent/bridge/output: (v, w, origin sec, origin nanosec), the bridge's state in frame_id."""
    def body(wild: bool) -> st.SearchStrategy[Any]:
        @st.composite
        def make(draw: Callable) -> Any:
            labels = draw(_labels(BRIDGE_OUTPUT_LABELS, wild))
            if list(labels) == list(BRIDGE_OUTPUT_LABELS) and (not wild or draw(st.booleans())):
                origin = draw(st.one_of(st.just((-1.0, -1.0)), st.tuples(st.integers(0, 10 ** 6).map(float),
                                                                          st.integers(0, 999_999_999).map(float)),
                                        *([st.tuples(num(-10, 1e6), num(-10, 2e9))] if wild else [])))
                pos = [draw(num(-1, 1, wild=wild)), draw(num(-2, 2, wild=wild)), *origin]
            else:
                pos = draw(_values(len(labels), -1, 1, wild))
            return _joint_state(labels, pos, [], [])
        return make()
    return _stamped(spec.topic, body)


def goal_statuses(spec: InputSpec) -> st.SearchStrategy[Draft]:
    """agent/goal_status: (kind, goal xy, target xy, distance)."""
    def body(wild: bool) -> st.SearchStrategy[Any]:
        @st.composite
        def make(draw: Callable) -> Any:
            labels = draw(_labels(GOAL_STATUS_LABELS, wild))
            pos = draw(_values(len(labels), -20, 20, wild))
            if pos and (not wild or draw(st.booleans())):
                pos[0] = float(draw(st.integers(0, 15))) if not wild else draw(st.one_of(st.integers(-2, 20).map(float), num(-5, 20)))
            return _joint_state(labels, pos, [], [])
        return make()
    return _stamped(spec.topic, body)


CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}


def images(spec: InputSpec) -> st.SearchStrategy[Draft]:
    """camera/image_raw: supported encodings and sizes the encoder takes or refuses (under 16 px),
    random, black, saturated or flat; wild: unsupported encodings, sizes from empty to absurd, steps
    too short or padded, buffers short, long or empty."""
    from sensor_msgs.msg import Image

    def body(wild: bool) -> st.SearchStrategy[Image]:
        @st.composite
        def make(draw: Callable) -> Image:
            encs = st.sampled_from(tuple(CHANNELS))
            enc = draw(st.one_of(encs, encs, st.sampled_from(("", "32FC1", "RGB8", "rgb16", "yuv422", "rgb8 ")), TEXT)
                       if wild else encs)
            ch = CHANNELS.get(enc, 3)
            side = st.sampled_from((64, 64, 64, 48, 60, 70, 96, 128, 32, 16, 15, 1, 2))   # 15 and less: too small
            h = draw(st.one_of(side, side, st.integers(1, 300), *([st.just(0), st.sampled_from((4096, 5000, 65536, 2 ** 32 - 1))]
                                                                  if wild else [])))
            w = draw(st.one_of(st.just(h), st.just(h), st.just(h), st.integers(max(1, h - 8), h + 8), side,
                               *([st.integers(1, 300), st.sampled_from((0, 4097, 100_000, 2 ** 32 - 1))] if wild else [])))
            w = min(w, 2 ** 32 - 1)
            step = w * ch + draw(st.sampled_from((0, 0, 0, 1, 4, 64)))
            if wild:
                step = draw(st.one_of(st.just(step), st.just(max(0, w * ch - 1)), st.just(0), st.integers(0, 2 ** 32 - 1))) % 2 ** 32
            exact = step * h
            size = draw(st.sampled_from(("exact", "exact", "short", "long", "empty"))) if wild else "exact"
            n = {"exact": exact, "short": max(0, exact - 1 - draw(st.integers(0, 100))),
                 "long": exact + 1 + draw(st.integers(0, 100)), "empty": 0}[size]
            if n > 600_000:   # keep messages small: a wild header over a short buffer is what is tested
                if not wild:
                    return draw(make())
                n = draw(st.integers(0, 4096))
            content = draw(st.sampled_from(("random", "random", "black", "white", "flat")))
            seed = draw(st.integers(0, 2 ** 32 - 1))
            data = {"random": lambda: np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes(),
                    "black": lambda: bytes(n), "white": lambda: b"\xff" * n,
                    "flat": lambda: bytes([seed % 256]) * n}[content]()
            return Image(height=h, width=w, encoding=enc, step=step, data=data,
                         is_bigendian=draw(st.sampled_from((0, 0, 1, 255))))
        return make()
    return _stamped(spec.topic, body)


def scans(spec: InputSpec) -> st.SearchStrategy[Draft]:
    """scan: 1 to 2000 beams over at most one turn, ranges with NaN, +-inf, negative and huge returns
    spiked in (REP-117 lets them through); wild: no beams or more than MAX_SCAN_BEAMS, angles and
    the range window NaN, inf, zero, negative, huge."""
    from sensor_msgs.msg import LaserScan

    def body(wild: bool) -> st.SearchStrategy[LaserScan]:
        @st.composite
        def make(draw: Callable) -> LaserScan:
            n = draw(st.one_of(st.sampled_from((360, 360, 90, 16, 1, 720)), st.integers(1, 2000),
                               *([st.just(0), st.just(MAX_SCAN_BEAMS + 1)] if wild else [])))
            ranges = [1.0] * n if n > 5000 else draw(vec(n, 0.0, 6.0, width=32, wild=wild,
                                                          spiky=(NAN, INF, -INF, -1.0, 0.0, 1e30)).map(Vec.values))
            inc = 2.0 * math.pi / max(n, 1)
            msg = LaserScan()
            if wild:
                msg.angle_min = draw(st.one_of(st.just(-math.pi), num(-10.0, 10.0, 32)))
                msg.angle_increment = draw(st.one_of(st.just(inc), st.just(-inc), num(-0.1, 0.1, 32)))
                msg.range_min = draw(st.one_of(st.just(0.05), num(-1.0, 1.0, 32)))
                msg.range_max = draw(st.one_of(st.just(8.0), num(0.0, 100.0, 32)))
            else:
                msg.angle_min = draw(st.one_of(st.just(-math.pi), num(-4 * math.pi, 4 * math.pi, 32, wild=False)))
                msg.angle_increment = draw(st.one_of(st.just(inc), st.just(-inc), st.just(inc * 0.5), st.just(inc * 1e-6)))
                msg.range_min = draw(st.one_of(st.just(0.05), num(0.0, 1.0, 32, wild=False)))
                msg.range_max = msg.range_min + draw(st.one_of(st.just(8.0), num(1e-3, 1e30, 32, wild=False)))
            msg.angle_max = msg.angle_min + msg.angle_increment * max(n - 1, 0)
            msg.time_increment = draw(num(0.0, 1e-3, 32, wild=wild))
            msg.scan_time = draw(num(0.0, 0.2, 32, wild=wild))
            msg.ranges = ranges
            msg.intensities = draw(st.one_of(st.just([]), vec(st.integers(0, 400), 0.0, 100.0, width=32, wild=wild).map(Vec.values)))
            return msg
        return make()
    return _stamped(spec.topic, body)


def _quaternion(draw: Callable, wild: bool) -> tuple[float, float, float, float]:
    if not wild or draw(st.integers(0, 3)):
        yaw = draw(st.floats(-10.0, 10.0))
        if not wild and draw(st.integers(0, 3)) == 0:   # a quaternion not quite unit (norm in (0.5, 1.5))
            k = draw(st.floats(0.51, 1.49))
            return 0.0, 0.0, k * math.sin(yaw / 2), k * math.cos(yaw / 2)
        return 0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)
    return tuple(draw(num(-1.0, 1.0)) for _ in range(4))   # type: ignore[return-value]


def odoms(spec: InputSpec) -> st.SearchStrategy[Draft]:
    """odom: pose (as far as 1e6 m), orientation (unit or not), twist (to 1e3) and covariances
    (simulator-like, zero, negative); wild: NaN, inf, beyond the bounds, a zero quaternion."""
    from nav_msgs.msg import Odometry

    def body(wild: bool) -> st.SearchStrategy[Odometry]:
        @st.composite
        def make(draw: Callable) -> Odometry:
            m = Odometry()
            m.child_frame_id = draw(st.one_of(st.just("base_link"), TEXT))
            far = st.one_of(num(-20, 20, wild=wild), num(-20, 20, wild=wild), num(-1e6, 1e6, wild=wild))
            p = m.pose.pose.position
            p.x, p.y, p.z = draw(far), draw(far), draw(st.one_of(st.just(0.0), num(-1, 1, wild=wild)))
            q = m.pose.pose.orientation
            q.x, q.y, q.z, q.w = _quaternion(draw, wild)
            fast = st.one_of(num(-1, 1, wild=wild), num(-1, 1, wild=wild), num(-1e3, 1e3, wild=wild))
            t = m.twist.twist
            t.linear.x, t.linear.y, t.angular.z = draw(fast), draw(st.one_of(num(-0.2, 0.2, wild=wild), fast)), draw(fast)
            t.linear.z, t.angular.x, t.angular.y = (draw(num(-0.1, 0.1, wild=wild)) for _ in range(3))
            cov = draw(st.one_of(st.just("sim"), st.just("sim"), st.just("zero"), vec(36, -1.0, 1.0, wild=wild)))
            if cov == "sim":
                m.pose.covariance = [4e-6 if i in (0, 7) else 2.5e-5 if i == 35 else 1e6 if i in (14, 21, 28) else 0.0
                                     for i in range(36)]
                m.twist.covariance = [2.5e-5 if i in (0, 7) else 1e-4 if i == 35 else 1e6 if i in (14, 21, 28) else 0.0
                                      for i in range(36)]
            elif isinstance(cov, Vec):
                m.pose.covariance = cov.values()
                m.twist.covariance = list(reversed(cov.values()))
            return m
        return make()
    return _stamped(spec.topic, body)


def goals(spec: InputSpec) -> st.SearchStrategy[Draft]:
    """goal_pose: a position (near, or as far as 1e6 m) and an orientation; wild: NaN, inf, beyond."""
    from geometry_msgs.msg import PoseStamped

    def body(wild: bool) -> st.SearchStrategy[PoseStamped]:
        @st.composite
        def make(draw: Callable) -> PoseStamped:
            m = PoseStamped()
            far = st.one_of(num(-30, 30, wild=wild), num(-30, 30, wild=wild), num(-1e6, 1e6, wild=wild))
            p = m.pose.position
            p.x, p.y, p.z = draw(far), draw(far), draw(st.one_of(st.just(0.0), num(-1, 1, wild=wild)))
            q = m.pose.orientation
            q.x, q.y, q.z, q.w = _quaternion(draw, wild)
            return m
        return make()
    return _stamped(spec.topic, body)


def twists(spec: InputSpec) -> st.SearchStrategy[Draft]:
    """agent/habitual/cmd, cmd_vel: velocities within the limits, beyond them, as far as 1e3 (what
    the guard lets through); wild: NaN, inf, 1e308 on any of the six axes."""
    from geometry_msgs.msg import TwistStamped

    def body(wild: bool) -> st.SearchStrategy[TwistStamped]:
        @st.composite
        def make(draw: Callable) -> TwistStamped:
            m = TwistStamped()
            t = m.twist
            t.linear.x = draw(st.one_of(num(-0.8, 0.8, wild=wild), num(-1.5, 1.5, wild=wild), num(-1e3, 1e3, wild=wild)))
            t.angular.z = draw(st.one_of(num(-2.0, 2.0, wild=wild), num(-4.0, 4.0, wild=wild), num(-1e3, 1e3, wild=wild)))
            zero_mostly = st.one_of(st.just(0.0), st.just(0.0), num(-1, 1, wild=wild))
            t.linear.y, t.linear.z, t.angular.x, t.angular.y = (draw(zero_mostly) for _ in range(4))
            return m
        return make()
    return _stamped(spec.topic, body)


def batteries(spec: InputSpec) -> st.SearchStrategy[Draft]:
    """battery_state: a charge in [0, 1] (edges included); wild: NaN (unmeasured), percent by
    mistake, negative, huge."""
    from sensor_msgs.msg import BatteryState

    def body(wild: bool) -> st.SearchStrategy[BatteryState]:
        @st.composite
        def make(draw: Callable) -> BatteryState:
            m = BatteryState()
            m.percentage = draw(st.one_of(num(0.0, 1.0, 32, wild=wild), *([st.sampled_from((55.0, 100.0, -0.01, 1.0001))]
                                                                        if wild else [])))
            m.voltage, m.current = draw(num(0.0, 30.0, 32, wild=wild)), draw(num(-10.0, 10.0, 32, wild=wild))
            m.temperature, m.charge = draw(num(-10, 60, 32, wild=wild)), draw(num(0, 10, 32, wild=wild))
            m.capacity = draw(num(0, 10, 32, wild=wild))
            m.present = draw(st.booleans())
            m.power_supply_status = draw(st.integers(0, 255))
            m.cell_voltage = draw(st.one_of(st.just([]), vec(st.integers(0, 8), 3.0, 4.2, width=32, wild=wild).map(Vec.values)))
            return m
        return make()
    return _stamped(spec.topic, body)


def temperatures(spec: InputSpec) -> st.SearchStrategy[Draft]:
    """motor_temperature: -273.15..1000 degC (edges included); wild: below absolute zero, NaN, inf, huge."""
    from sensor_msgs.msg import Temperature

    def body(wild: bool) -> st.SearchStrategy[Temperature]:
        value = st.one_of(num(-30.0, 120.0, wild=wild), num(-273.15, 1000.0, wild=wild),
                          *([st.sampled_from((-273.16, 1000.1))] if wild else []))
        return st.builds(Temperature, temperature=value, variance=num(0.0, 1.0, wild=wild))
    return _stamped(spec.topic, body)


def modes(spec: InputSpec) -> st.SearchStrategy[Draft]:
    """agent/mode: a mode's name; wild: near misses and any text."""
    from std_msgs.msg import String
    names = tuple(Mode.__members__)
    near = ("", "habitual", "SAFE STOP", "HABITUAL ", " PLANNING", "0", "3", "Mode.HABITUAL", "SAFE_STOP\n", "PLANNIN")
    return _unstamped(spec.topic, lambda wild: (st.one_of(st.sampled_from(near), TEXT) if wild else st.sampled_from(names))
                      .map(lambda s: String(data=s)))


def scales(spec: InputSpec) -> st.SearchStrategy[Draft]:
    """agent/speed_scale: in [0, 1] (edges included); wild: just outside, negative, NaN, inf, huge."""
    from std_msgs.msg import Float32
    return _unstamped(spec.topic, lambda wild: st.one_of(num(0.0, 1.0, 32, wild=wild),
                                                         *([st.sampled_from((1.0000001, -1e-7, 2.0, -1.0))] if wild else []))
                      .map(lambda x: Float32(data=x)))


def bools(spec: InputSpec) -> st.SearchStrategy[Draft]:
    """agent/estop, agent/habitual_stalled, base_stop: true or false (duplicates and bursts do the rest)."""
    from std_msgs.msg import Bool
    return st.builds(Draft, st.just(spec.topic), st.booleans().map(lambda b: Bool(data=b)))


def _json_values() -> st.SearchStrategy[Any]:
    leaves = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70), st.floats(allow_nan=False, allow_infinity=False), TEXT)
    return st.recursive(leaves, lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(TEXT, kids, max_size=4)),
                        max_leaves=12)


def events(spec: InputSpec) -> st.SearchStrategy[Draft]:
    """agent/events: well-formed events (nodes/topics.py event_to_json: any kind, reasons, known causes, a
    transition or none, values); wild: the same with a field missing or mistyped, the old untyped shape,
    other JSON, JSON nested very deep, NaN/Infinity literals, broken JSON, any text, text beyond 64 KiB."""
    from std_msgs.msg import String

    from hjepa_agent.core.events import Cause
    kinds = st.sampled_from(("mode", "stall", "input", "clock", "node", "goal", "state"))
    modes = st.sampled_from(tuple(Mode.__members__))
    fields = {"stamp_s": num(0, 100, wild=False), "kind": kinds, "reasons": st.lists(TEXT, max_size=4),
              "causes": st.lists(st.sampled_from([c.value for c in Cause]), max_size=3),
              "transition": st.one_of(st.none(), st.lists(modes, min_size=2, max_size=2)),
              "values": st.dictionaries(TEXT, st.floats(width=64), max_size=3)}
    event = st.fixed_dictionaries(fields)
    broken = st.tuples(event, st.sampled_from(tuple(fields)), st.one_of(st.just("drop"), _json_values())).map(
        lambda a: {k: v for k, v in a[0].items() if k != a[1]} | ({} if a[2] == "drop" else {a[1]: a[2]}))
    untyped = st.fixed_dictionaries({"stamp_s": num(0, 100, wild=False), "kind": kinds,
                                     "reasons": st.one_of(st.lists(TEXT, max_size=4), st.lists(_json_values(), max_size=3),
                                                          _json_values()),
                                     "causes": st.lists(TEXT, max_size=2)})
    deep = st.tuples(st.one_of(st.integers(1, 64), st.sampled_from((1500, 5000, 32_000)), st.integers(1000, 32_000)),
                     st.sampled_from(("[", '{"a":'))).map(
        lambda a: a[1] * a[0] + "1" + ("]" if a[1] == "[" else "}") * a[0])
    other = st.one_of(broken.map(json.dumps), untyped.map(json.dumps), _json_values().map(json.dumps), st.just("NaN"),
                      st.just('{"kind": "mode", "reasons": [NaN, Infinity]}'),
                      st.just('{"kind": "mode", "reasons": "not a list"}'), st.just("{"), st.just(""), TEXT, deep, deep,
                      st.integers(65_530, 70_000).map(lambda n: "x" * n))
    return _unstamped(spec.topic, lambda wild: (other if wild else event.map(json.dumps)).map(lambda s: String(data=s)))


STRATEGIES: dict[str, Callable[[InputSpec], st.SearchStrategy[Draft]]] = {
    "camera/image_raw": images, "scan": scans, "odom": odoms, "battery_state": batteries,
    "motor_temperature": temperatures, "goal_pose": goals, "agent/percept": percepts,
    "agent/world_state": world_states, "agent/percept/early": early_percepts,
    "agent/world_state/early": early_world_states, "agent/habitual/cmd": twists, "cmd_vel": twists, "agent/plan": plans,
    "agent/goal_status": goal_statuses, "agent/bridge/output": bridge_outputs, "agent/mode": modes,
    "agent/speed_scale": scales, "agent/habitual_stalled": bools, "agent/estop": bools, "base_stop": bools,
    "agent/events": events,
}
"""Topic -> strategy of Drafts for any input on it (module doc)."""


def strategy_for(spec: InputSpec) -> st.SearchStrategy[Draft]:
    """The Draft strategy of an input; KeyError naming the topic when there is none."""
    if spec.topic not in STRATEGIES:
        raise KeyError(f"no fuzz strategy for topic {spec.topic!r} ({TOPICS[spec.topic].type.__name__}): "
                       "add one to test/fuzz_strategies.py STRATEGIES")
    return STRATEGIES[spec.topic](spec)


# ---- garbage: messages the guard or the bridge must refuse ------------------------------------
def garbage_twists(topic: str = "agent/habitual/cmd", limits: tuple[float, float] = (0.6, 1.8),
                   absurd_factor: float = 10.0) -> st.SearchStrategy[Draft]:
    """Proposals nobody may follow: a non-finite or absurd (beyond ``absurd_factor`` x the operating
    limit) v or w with a valid stamp, or plausible values with a stamp the guard refuses."""
    from geometry_msgs.msg import TwistStamped

    def make(args: tuple[float, float]) -> TwistStamped:
        m = TwistStamped()
        m.twist.linear.x, m.twist.angular.z = args
        return m
    bad_v = st.one_of(st.sampled_from((NAN, INF, -INF, 1e308, -1e308)),
                      st.floats(absurd_factor * limits[0] * 1.001, 1e300), st.floats(-1e300, -absurd_factor * limits[0] * 1.001))
    bad_w = st.one_of(st.sampled_from((NAN, INF, -INF)), st.floats(absurd_factor * limits[1] * 1.001, 1e300))
    ok_v, ok_w = st.floats(-limits[0], limits[0]), st.floats(-limits[1], limits[1])
    bad_values = st.one_of(st.tuples(bad_v, ok_w), st.tuples(ok_v, bad_w), st.tuples(bad_v, bad_w))
    return st.one_of(
        st.builds(Draft, st.just(topic), bad_values.map(make), st.just(Stamp("now")), st.just(RIGHT)),
        st.builds(Draft, st.just(topic), st.tuples(ok_v, ok_w).map(make), BAD_STAMPS, st.just(RIGHT)))


def garbage_plans(topic: str = "agent/plan", limit_v: float = 0.6, absurd_factor: float = 10.0) -> st.SearchStrategy[Draft]:
    """Plans nobody may follow: wrong labels, non-finite values, an absurd first action, the wrong
    frame, or a stamp the guard refuses."""
    from sensor_msgs.msg import JointState

    @st.composite
    def body(draw: Callable) -> tuple[Any, Stamp, str]:
        h = draw(st.integers(1, 20))
        labels = list(plan_labels(h))
        pos = draw(vec(len(labels), -0.5, 0.5).map(Vec.values))
        how = draw(st.sampled_from(("labels", "nonfinite", "absurd", "frame", "stamp")))
        stamp, frame = Stamp("now"), RIGHT
        if how == "labels":
            labels = draw(_labels(tuple(labels), True).filter(lambda ls: ls != list(plan_labels(h))))
            pos = pos[:len(labels)] + [0.0] * max(0, len(labels) - len(pos))
        elif how == "nonfinite":
            pos[draw(st.integers(0, len(pos) - 1))] = draw(st.sampled_from((NAN, INF, -INF)))
        elif how == "absurd":   # the first action (a0_v, a0_w follow the 5-value head)
            pos[5] = draw(st.one_of(st.floats(absurd_factor * limit_v * 1.001, 1e300), st.sampled_from((1e308, -1e308))))
        elif how == "frame":
            frame = draw(st.one_of(st.just(""), TEXT.filter(lambda s: s != "odom")))
        else:
            stamp = draw(BAD_STAMPS)
        return JointState(name=labels, position=pos), stamp, frame
    return body().map(lambda a: Draft(topic, a[0], a[1], a[2]))


def garbage_modes(topic: str = "agent/mode") -> st.SearchStrategy[Draft]:
    """Mode messages that name no mode."""
    from std_msgs.msg import String
    return st.builds(Draft, st.just(topic), st.one_of(st.sampled_from(("", "habitual", "HABITUAL ", "Mode.PLANNING", "1")),
                                                      TEXT.filter(lambda s: s not in Mode.__members__)).map(lambda s: String(data=s)))


# ---- steps ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Publish:
    """Publish ``draft`` on input ``key`` of ``node``, ``burst`` times at ten times the topic's
    nominal rate (the test's clock moves a tenth of a period between copies)."""

    node: str
    key: str
    draft: Draft
    burst: int = 1


@dataclass(frozen=True)
class ClockStep:
    """A step of the test's /clock: tick (``n`` ticks of DT_S), hold (the same time again), jump
    (``dt`` s forward or back), zero (back to 0 s), invalid (``sec``, ``nsec`` that are not a time)."""

    kind: str
    n: int = 1
    dt: float = 0.0
    sec: int = 0
    nsec: int = 0


CLOCK_STEPS = st.one_of(
    st.builds(ClockStep, st.just("tick"), st.integers(1, 12)),
    st.builds(ClockStep, st.just("tick"), st.integers(1, 40)),
    st.just(ClockStep("hold")),
    st.builds(ClockStep, st.just("jump"), st.just(1), st.one_of(st.floats(0.011, 2.0), st.floats(2.0, 1e5))),
    st.builds(ClockStep, st.just("jump"), st.just(1), st.one_of(st.floats(-2.0, -1e-3), st.floats(-1e5, -2.0))),
    st.just(ClockStep("zero")),
    st.builds(ClockStep, st.just("invalid"), st.just(1), st.just(0.0), st.integers(-2 ** 31, -1), st.integers(0, 2 ** 32 - 1)),
    st.builds(ClockStep, st.just("invalid"), st.just(1), st.just(0.0), st.integers(0, 2 ** 31 - 1),
              st.integers(1_000_000_000, 2 ** 32 - 1)),
)
"""Any clock behaviour: ticks, holds, jumps both ways, a reset to zero, /clock values that are not times."""


def publishes(node: str, key: str, spec: InputSpec) -> st.SearchStrategy[Publish]:
    """Publish steps for one input: single messages mostly, bursts of 2-30 sometimes."""
    burst = st.one_of(st.just(1), st.just(1), st.just(1), st.integers(2, 30))
    return st.builds(Publish, st.just(node), st.just(key), strategy_for(spec), burst)


def sequences(node: str, focus: str, inputs: dict[str, InputSpec], max_steps: int = 10) -> st.SearchStrategy[list]:
    """A sequence for ``node``: one to five publishes on its input ``focus`` (each a message or a
    burst), placed among clock steps and publishes on its other inputs (the context the focus is
    judged in); it always ends with a few ticks so the node's timers run on what it got."""
    focus_step = publishes(node, focus, inputs[focus])
    others = [publishes(node, k, s) for k, s in inputs.items() if k != focus]
    context = st.one_of(CLOCK_STEPS, st.one_of(*others)) if others else CLOCK_STEPS

    @st.composite
    def make(draw: Callable) -> list:
        steps = draw(st.lists(context, max_size=max_steps))
        for item in draw(st.lists(focus_step, min_size=1, max_size=5)):
            steps.insert(draw(st.integers(0, len(steps))), item)
        return steps + [ClockStep("tick", draw(st.integers(1, 8)))]
    return make()




# ---- the wire judge -----------------------------------------------------------------------------
@dataclass
class WireJudge:
    """Judges the bridge's cmd_vel as received: silences (properties 2) and hard-limit violations
    (property 3, by hjepa_agent.harness.judge.count_limit_violations) on the monotone timeline p_s.

    Silence: an output (or a tick without one) more than one period plus the size of the tick it
    came in after the previous output. ``check()`` judges what arrived since the last check and
    returns (silences, violations by kind) found in it."""

    period_s: float
    ego: Any
    outputs: list[tuple[float, float, float]] = field(default_factory=list)   # (p_s, v, w)
    silences: list[dict] = field(default_factory=list)
    violations: Counter = field(default_factory=Counter)
    _checked: int = 0
    _last_out_p: float | None = None
    _silent: bool = False
    _tick_s: float = 0.0
    jumps_since_output: int = 0
    _context: list[tuple[float, float, float]] = field(default_factory=list)

    def begin_tick(self, tick_s: float) -> None:
        """A tick of size tick_s (on p_s) starts: outputs from now on belong to it."""
        self._tick_s = tick_s

    def clock_jumped(self) -> None:
        """The test's clock jumped (back, or forward beyond the tolerance) in the current tick."""
        self.jumps_since_output += 1

    def _gap(self, p_s: float, where: str, what: str) -> None:
        if self._last_out_p is None or self._silent:
            return
        gap = p_s - self._last_out_p
        if gap > self.period_s + self._tick_s + 1e-9:
            entry = {"gap_s": round(gap, 6), "at_p_s": round(p_s, 6), "tick_s": round(self._tick_s, 6),
                     "where": where, "seen_at": what, "clock_jumps_in_gap": self.jumps_since_output}
            self.silences.append(entry)
            self._silent = True

    def on_output(self, p_s: float, v: float, w: float, where: str = "") -> None:
        """A cmd_vel of the bridge arrived at p_s."""
        self._gap(p_s, where, "output")
        self.outputs.append((p_s, v, w))
        self._last_out_p = p_s
        self._silent = False
        self.jumps_since_output = 0

    def on_tick_end(self, p_s: float, where: str = "") -> None:
        """The current tick ended at p_s (every output it set off has arrived)."""
        self._gap(p_s, where, "tick end")

    def check(self) -> Counter:
        """Limit violations among the outputs since the last check (with the three before them as
        context, whose own violations were counted before)."""
        from hjepa_agent.harness.judge import count_limit_violations
        new = self.outputs[self._checked:]
        self._checked = len(self.outputs)
        if not new:
            return Counter()
        ctx = self._context

        def judge(xs: list[tuple[float, float, float]]) -> Counter:
            return Counter(count_limit_violations([x[0] for x in xs], [x[1] for x in xs], [x[2] for x in xs], self.ego))
        found = judge(ctx + new)
        found.subtract(judge(ctx))
        found = Counter({k: n for k, n in found.items() if n > 0})
        self._context = (ctx + new)[-3:]
        self.violations.update(found)
        return found


# ---- the report ---------------------------------------------------------------------------------
@dataclass
class FuzzReport:
    """What the battery did, for FUZZ_REPORT: sequences and messages per node (and input), clock
    steps, escaped exceptions, limit violations, silences, lockstep misses, and each node's guard
    counters (accepted, rejected per cause) at the end."""

    mode: str = "default"
    started: float = field(default_factory=time.monotonic)
    sequences: Counter = field(default_factory=Counter)              # node -> sequences run against it
    sequences_by_input: Counter = field(default_factory=Counter)     # "node/key" -> sequences focused on it
    messages: Counter = field(default_factory=Counter)               # "node/key" -> messages published
    clock_steps: Counter = field(default_factory=Counter)            # kind -> steps
    escapes: list[dict] = field(default_factory=list)
    violations: Counter = field(default_factory=Counter)
    silences: list[dict] = field(default_factory=list)
    lockstep_misses: int = 0
    wire_outputs: int = 0
    guard_counts: dict[str, dict] = field(default_factory=dict)
    property_checks: Counter = field(default_factory=Counter)      # property -> sequences it was checked on

    def escape(self, node: str, failure: Any, test: str) -> None:
        """A node failed stop (an exception escaped one of its callbacks)."""
        self.escapes.append({"node": node, "where": failure.where, "error": failure.error, "test": test,
                             "traceback": failure.traceback[-3000:]})

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON-able dict."""
        return {
            "mode": self.mode, "elapsed_s": round(time.monotonic() - self.started, 1),
            "sequences_total": sum(self.sequences.values()), "sequences_per_node": dict(sorted(self.sequences.items())),
            "sequences_per_input": dict(sorted(self.sequences_by_input.items())),
            "messages_total": sum(self.messages.values()), "messages_per_input": dict(sorted(self.messages.items())),
            "clock_steps": dict(sorted(self.clock_steps.items())),
            "escaped_exceptions": len(self.escapes), "escapes": self.escapes,
            "limit_violations": sum(self.violations.values()), "limit_violations_by_kind": dict(self.violations),
            "bridge_silences_longer_than_one_period": len(self.silences), "silences": self.silences[:50],
            "bridge_outputs_judged": self.wire_outputs, "lockstep_misses": self.lockstep_misses,
            "property_checks": dict(self.property_checks), "guard_counts": self.guard_counts,
        }


def budget(default: int, long: int, is_long: bool) -> int:
    """Examples per test: ``long`` under --long, else ``default``; $FUZZ_EXAMPLES overrides either
    (a developer's mid-size run)."""
    import os
    return int(os.environ.get("FUZZ_EXAMPLES", long if is_long else default))


def failure_text(name: str, failure: Any) -> str:
    """A node's failure for an assertion message."""
    return f"{name} failed stop in {failure.where}: {failure.error}\n{failure.traceback}"


# ---- the harness ------------------------------------------------------------------------------------
class FuzzStack:
    """Agent nodes (each in its own namespace ``fz_<name>``, so an input fuzzed for one node reaches
    that node only), one harness node per namespace publishing every input of its node, a clock
    node publishing /clock, and, when a bridge is there, a tap on its cmd_vel and
    agent/bridge/output judged by a :class:`WireJudge`. Everything spun by one EventsExecutor from
    the calling (main) thread."""

    HARNESS = "fuzz_harness"

    def __init__(self, ctx: Any, nodes: dict[str, Any], ego: Any, report: FuzzReport | None = None,
                 start_s: float = 1.0) -> None:
        from rclpy.experimental import EventsExecutor
        from rclpy.node import Node
        from rosgraph_msgs.msg import Clock
        self.ctx, self.ego, self.report = ctx, ego, report or FuzzReport()
        self.executor = EventsExecutor(context=ctx)
        self.nodes: dict[str, Any] = {}
        self.harness: dict[str, Any] = {}
        self.pubs: dict[tuple[str, str], Any] = {}
        self.last_stamp: dict[tuple[str, str], int] = {}
        self.clock_node = Node("fuzz_clock", context=ctx, enable_rosout=False)
        self.clock_pub = self.clock_node.create_publisher(Clock, "/clock", 10)
        self._clock_cls = Clock
        self.executor.add_node(self.clock_node)
        self.t_s = start_s
        self.p_s = 0.0
        self._ordinary_s = 0.0   # the last ordinary step of the test's clock
        self._ref_t = start_s     # the last non-zero time of the test's clock
        self.jump_tolerance_s = min(float(n.get_parameter("clock_jump_tolerance_s").value) for n in nodes.values())
        self.ticks = 0
        self.judge: WireJudge | None = None
        self.records: list[tuple[float, tuple]] = []   # (p_s, decoded agent/bridge/output record)
        self.wire: list[tuple[float, float, float, int]] = []   # (p_s, v, w, tick) of the bridge's cmd_vel
        self._silences_seen = 0
        self.where = ""
        for name, node in nodes.items():
            self.add(name, node)
        self.publish_clock()
        self.wait_for_discovery()

    # ---- building ----------------------------------------------------------------------------
    def add(self, name: str, node: Any) -> None:
        """Spin ``node`` and give it a harness publishing each of its inputs (and tap a bridge)."""
        from rclpy.node import Node
        from hjepa_agent.nodes.guard import qos_for
        from hjepa_agent.nodes.traffic import CountingPublisher, counted_subscription
        from hjepa_agent.nodes.topics import inputs_of
        self.nodes[name] = node
        self.executor.add_node(node)
        if name not in self.harness:
            h = Node(self.HARNESS, namespace=node.get_namespace(), context=self.ctx, enable_rosout=False)
            self.harness[name] = h
            self.executor.add_node(h)
            for key, spec in inputs_of(name).items():
                topic = spec.spec
                self.pubs[(name, key)] = CountingPublisher(h.create_publisher(topic.type, topic.name, qos_for(topic.qos, False)),
                                                           self.ctx)
            if name == "bridge":
                from geometry_msgs.msg import TwistStamped
                from sensor_msgs.msg import JointState
                from hjepa_agent.nodes.guard import RELIABLE_QOS
                period = 1.0 / float(node.get_parameter("rate_hz").value)
                self.judge = WireJudge(period, self.ego)
                counted_subscription(h, TwistStamped, "cmd_vel", self._on_cmd, RELIABLE_QOS)
                counted_subscription(h, JointState, "agent/bridge/output", self._on_record, RELIABLE_QOS)

    def replace(self, name: str, node: Any) -> None:
        """Put a fresh node in place of a failed one (same namespace, same harness)."""
        old = self.nodes[name]
        self.executor.remove_node(old)
        old.destroy_node()
        self.nodes[name] = node
        self.executor.add_node(node)
        self.wait_for_discovery()

    def wait_for_discovery(self, timeout_s: float = 20.0) -> None:
        """Until every harness publisher, the clock and the bridge's taps are matched."""
        from hjepa_agent.nodes.traffic import settle_traffic
        deadline = time.monotonic() + timeout_s

        def matched() -> bool:
            if any(p.get_subscription_count() < 1 for p in self.pubs.values()):
                return False
            if self.clock_pub.get_subscription_count() < len(self.nodes):
                return False
            if "bridge" in self.harness:
                h = self.harness["bridge"]
                if h.count_publishers("cmd_vel") < 1 or h.count_publishers("agent/bridge/output") < 1:
                    return False
            return True
        while not matched():
            if time.monotonic() > deadline:
                raise TimeoutError("fuzz harness: discovery did not complete")
            self.executor.spin_once(timeout_sec=0.01)
        self.barrier()
        settle_traffic(self.ctx)

    # ---- taps ----------------------------------------------------------------------------------
    def _on_cmd(self, msg: Any) -> None:
        v, w = float(msg.twist.linear.x), float(msg.twist.angular.z)
        self.wire.append((self.p_s, v, w, self.ticks))
        if self.judge is not None:
            self.judge.on_output(self.p_s, v, w, self.where)

    def _on_record(self, msg: Any) -> None:
        from hjepa_agent.nodes.codec import msg_to_bridge_output
        self.records.append((self.p_s, msg_to_bridge_output(msg)))

    # ---- time ----------------------------------------------------------------------------------
    def barrier(self) -> bool:
        """Spin until what was set off is handled (lockstep.lockstep_barrier); False on a miss (counted)."""
        from hjepa_agent.nodes.traffic import settle_traffic
        from hjepa_agent.harness.lockstep import lockstep_barrier
        t_ns = int(round(self.t_s * 1e9)) if self.t_s > 0 else 0
        ok = lockstep_barrier(self.executor, list(self.nodes.values()), t_ns, self.ctx, max_s=2.0)
        if not ok:
            self.report.lockstep_misses += 1
            settle_traffic(self.ctx)
        return ok

    def publish_clock(self, sec: int | None = None, nsec: int | None = None) -> None:
        """Publish the harness's time (or a raw, possibly invalid, one) on /clock."""
        from builtin_interfaces.msg import Time
        if sec is None:
            tm = to_time(self.t_s)
            sec, nsec = tm.sec, tm.nanosec
        self.clock_pub.publish(self._clock_cls(clock=Time(sec=int(sec), nanosec=int(nsec))))

    def _tick(self, new_t: float | None, raw: tuple[int, int] | None = None) -> None:
        """One lockstep tick: publish the new time, wait, judge the bridge's wire over the tick."""
        before = self.p_s
        if raw is not None:
            self.publish_clock(*raw)
        else:
            assert new_t is not None
            d = new_t - self._ref_t
            if new_t == 0.0:   # sim time 0 reads as "no clock yet" (rclpy before /clock): no time passes
                pass
            elif 0.0 < d <= self.jump_tolerance_s:   # an ordinary step: physics lived through it
                self.p_s += d
                self._ordinary_s = d
            elif d != 0.0:     # a jump: the simulator's tick went on, physics did not jump
                self.p_s += self._ordinary_s
                if self.judge is not None:
                    self.judge.clock_jumped()
            if new_t != 0.0:
                self._ref_t = new_t
            self.t_s = new_t
            self.publish_clock()
        if self.judge is not None:
            self.judge.begin_tick(self.p_s - before)
        self.ticks += 1
        self.barrier()
        if self.judge is not None:
            self.judge.on_tick_end(self.p_s, self.where)

    def clock(self, step: ClockStep) -> None:
        """Apply one clock step (module doc)."""
        self.report.clock_steps[step.kind] += 1
        if step.kind == "tick":
            for _ in range(step.n):
                self._tick(self.t_s + DT_S)
        elif step.kind == "hold":
            self._tick(self.t_s)
        elif step.kind == "jump":
            target = self.t_s + step.dt
            if target > MAX_CLOCK_S:
                target = self.t_s - abs(step.dt)
            self._tick(min(max(target, 1e-3), MAX_CLOCK_S))
        elif step.kind == "zero":
            self._tick(0.0)
        elif step.kind == "invalid":
            self._tick(None, (step.sec, step.nsec))
        else:
            raise ValueError(f"unknown clock step {step.kind!r}")

    def advance(self, seconds: float) -> None:
        """Tick the clock for ``seconds`` (whole ticks)."""
        for _ in range(int(round(seconds / DT_S))):
            self._tick(self.t_s + DT_S)

    # ---- inputs --------------------------------------------------------------------------------
    def publish(self, node: str, key: str, draft: Draft, burst: int = 1, remember: bool = True) -> None:
        """Publish a draft on input ``key`` of ``node`` (a burst at 10x the nominal rate), waiting
        after each copy until it and whatever it set off are handled. Its stamp becomes the topic's
        last (what dup and older stamps are made from) unless ``remember`` is False."""
        from hjepa_agent.nodes.topics import inputs_of
        spec = inputs_of(node)[key]
        n = self.nodes[node]
        right = n.frames[spec.frame] if spec.frame is not None else None
        tol = float(n.future_stamp_tolerance_s)
        for i in range(burst):
            if i:
                self._tick(self.t_s + 1.0 / (10.0 * NOMINAL_HZ[spec.topic]))
            last = self.last_stamp.get((node, spec.topic))
            msg = draft.build(self.t_s, last, tol, right)
            self.pubs[(node, key)].publish(msg)
            if draft.stamp is not None and remember:
                s = msg.header.stamp
                self.last_stamp[(node, spec.topic)] = s.sec * 1_000_000_000 + s.nanosec
            self.report.messages[f"{node}/{key}"] += 1
            self.barrier()

    def call(self, node: str, srv_type: type, name: str, timeout_s: float = 5.0) -> Any:
        """Call service ``name`` of ``node`` (in its namespace) from its harness; the response."""
        h = self.harness[node]
        clients = self.__dict__.setdefault("_clients", {})
        client = clients.get((node, name)) or clients.setdefault((node, name), h.create_client(srv_type, name))
        deadline = time.monotonic() + timeout_s
        while not client.service_is_ready():
            if time.monotonic() > deadline:
                raise TimeoutError(f"service {name} of {node} not ready")
            self.executor.spin_once(timeout_sec=0.01)
        fut = client.call_async(srv_type.Request())
        while not fut.done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"service {name} of {node} did not answer")
            self.executor.spin_once(timeout_sec=0.01)
        self.barrier()
        return fut.result()

    def run(self, steps: list) -> None:
        """Run a generated sequence of Publish and ClockStep steps."""
        for s in steps:
            if isinstance(s, Publish):
                self.publish(s.node, s.key, s.draft, s.burst)
            else:
                self.clock(s)

    # ---- properties ------------------------------------------------------------------------------
    def failures(self) -> dict[str, Any]:
        """Nodes that failed stop: name -> NodeFailure."""
        return {name: n.failure for name, n in self.nodes.items() if getattr(n, "failure", None) is not None}

    def check_wire(self) -> tuple[list[dict], Counter]:
        """(new silences, new limit violations) of the bridge's cmd_vel since the last check."""
        if self.judge is None:
            return [], Counter()
        new_sil = self.judge.silences[self._silences_seen:]
        self._silences_seen = len(self.judge.silences)
        self.report.silences.extend(new_sil)
        viol = self.judge.check()
        self.report.violations.update(viol)
        self.report.wire_outputs = len(self.judge.outputs)
        return new_sil, viol

    def snapshot_guards(self) -> None:
        """Each node's guard counters into the report."""
        for name, n in self.nodes.items():
            counts = self.report.guard_counts.setdefault(name, {})
            for key, c in n.input_counts().items():
                acc = counts.setdefault(key, Counter())
                acc.update(c)

    def close(self) -> None:
        """Destroy everything (not the context)."""
        self.executor.shutdown()
        for n in list(self.nodes.values()) + list(self.harness.values()) + [self.clock_node]:
            n.destroy_node()


@contextlib.contextmanager
def fuzz_stack(build_nodes: Callable[[Any], dict[str, Any]], ego: Any, report: FuzzReport) -> Iterator[FuzzStack]:
    """A FuzzStack (judged against ``ego``) over the nodes ``build_nodes(ctx)`` makes in a fresh rclpy Context on this run's
    private DDS domain; afterwards the guards' counters go into ``report`` and everything is shut down."""
    import rclpy

    from hjepa_agent.harness.runner import isolate_dds
    isolate_dds()
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    s = FuzzStack(ctx, build_nodes(ctx), ego, report)
    try:
        yield s
    finally:
        s.snapshot_guards()
        s.close()
        rclpy.shutdown(context=ctx)


__all__ = ["BAD_STAMPS", "budget", "CLOCK_STEPS", "ClockStep", "DT_S", "Draft", "FuzzReport", "FuzzStack", "fuzz_stack", "NOMINAL_HZ",
           "Publish", "RIGHT", "STRATEGIES", "Stamp", "Vec", "WireJudge", "garbage_modes", "garbage_plans",
           "garbage_twists", "num", "publishes", "sequences", "strategy_for", "vec"]
