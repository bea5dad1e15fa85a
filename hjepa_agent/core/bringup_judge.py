"""The verdicts of `hjepa-agent check`: a typed :class:`Verdict` per input, with the remap or parameter
that would fix it (:func:`judge` -> :class:`Finding`), from what the agent expects of the robot and what
was observed (:mod:`hjepa_agent.core.bringup`). ROS-free.

What is judged, for an input the robot publishes (camera, scan, odom, battery_state,
motor_temperature, goal_pose): a publisher of the agent's type on the resolved name; messages that the
agent's input check accepts; the rate (>= MIN_RATE_FRACTION of the ego model's ``rate_hz``); the age
(system clock at receipt minus header stamp, median) <= the ego model's ``max_age_s`` and not ahead of
the clock by more than the guard's tolerance; the header frames the agent requires (odometry in
odom_frame with child base_frame, a goal in odom_frame, a scan in base_frame or in a frame the URDF (or,
without one, /tf_static) connects to base_frame); an image's short side >= MIN_IMAGE_SIDE; a scan shaped
as the robot description says (its fingerprint is what the models are checked against). For cmd_vel,
which the base subscribes: a subscriber of the type cmd_vel_type says, and no other publisher before the
agent starts.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Sequence

from hjepa_agent.config.urdf import UrdfError
from hjepa_agent.core.bringup import (Alternative, Direction, Endpoint, Expectation, MountRule, Need, Observed, Stats,
                                      TopicEnds, relative_to, summarise)
from hjepa_agent.core.perception import MIN_IMAGE_SIDE

MIN_RATE_FRACTION = 0.8
"""An input is SLOW below this fraction of its ego model rate (hard.sensors.<x>.rate_hz)."""
SCAN_FOV_TOLERANCE_DEG = 0.5
"""A scan's field of view within this of the robot description's is as described (deg)."""
MIN_EXPECTED_FOR_RATE = 3
"""With one message heard, the input is SLOW only if at least this many were due in the listen."""


class Verdict(enum.Enum):
    """What is wrong with an input (or a model), most basic first; OK when nothing is."""

    OK = enum.auto()
    MISSING = enum.auto()            # no publisher (cmd_vel: no subscriber); a model not in the manifest
    WRONG_TYPE = enum.auto()         # endpoints of another message type only
    INCOMPATIBLE_QOS = enum.auto()   # best-effort publishers of an input the agent subscribes reliable
    SILENT = enum.auto()             # a publisher, but no message in the listen
    BAD_FORMAT = enum.auto()         # messages the agent's input check refuses, an image too small
    NOT_AS_DESCRIBED = enum.auto()   # a scan other than the robot description's (the models' fingerprint)
    BAD_FRAME = enum.auto()          # a header frame the agent cannot use
    SLOW = enum.auto()               # below MIN_RATE_FRACTION of the ego model's rate
    STALE = enum.auto()              # older than the ego model's max_age_s at receipt
    FUTURE_STAMP = enum.auto()       # stamped ahead of this computer's clock beyond the guard's tolerance
    FOREIGN_PUBLISHER = enum.auto()  # cmd_vel already has a publisher
    MODEL_MISMATCH = enum.auto()     # a model trained for another robot, or unusable here
    SKIPPED = enum.auto()            # not used: the ego model says the robot has no such input


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: its verdict, what was seen and what would fix it."""

    verdict: Verdict
    detail: str
    fix: str


@dataclass(frozen=True)
class Finding:
    """The judgement of one input: its expectation, the other side's endpoints (publishers of an
    input; the base's subscriptions of cmd_vel), what was heard and the problems, most basic first."""

    expectation: Expectation
    publishers: tuple[Endpoint, ...]
    subscribers: tuple[Endpoint, ...]
    stats: Stats
    problems: tuple[Problem, ...]

    @property
    def verdict(self) -> Verdict:
        """The first problem's verdict; OK without problems."""
        return self.problems[0].verdict if self.problems else Verdict.OK

    @property
    def failing(self) -> bool:
        """A required input with a problem (it fails the check)."""
        return self.expectation.need is Need.REQUIRED and bool(self.problems)


@dataclass(frozen=True)
class ModelFinding:
    """One model a node's parameters select, checked against this robot: the node, the model (a manifest
    entry), the manifest file, the verdict (OK, MISSING, MODEL_MISMATCH), the fingerprint keys that
    differ ((key, value trained with, value here)), what is wrong and the command that fixes it."""

    node: str
    model: str
    manifest: str
    verdict: Verdict
    differences: tuple[tuple[str, Any, Any], ...] = ()
    detail: str = ""
    fix: str = ""



# ---- fixes ------------------------------------------------------------------------------------------
def endpoint_nodes(ends: Sequence[Endpoint]) -> str:
    """The nodes of ``ends``, sorted, comma-separated (for display)."""
    return ", ".join(sorted({e.node for e in ends}))


def _types(ends: Sequence[Endpoint]) -> list[str]:
    return sorted({e.type for e in ends})


def _candidates(obs: Observed, types: Sequence[str], subscribers: bool, exclude: str) -> list[tuple[str, str]]:
    """(topic, type) on the graph with a non-own endpoint (subscription or publisher) of one of ``types``,
    other than ``exclude``: those in the namespace first, then by name."""
    out = []
    for topic, ends in obs.graph.items():
        if topic == exclude:
            continue
        for e in ends.subscribers if subscribers else ends.publishers:
            if e.node not in obs.own and e.type in types:
                out.append((topic, e.type))
                break
    inside = f"{obs.namespace}/"
    return sorted(out, key=lambda tt: (not tt[0].startswith(inside), tt[0]))


def _remap_fix(exp: Expectation, topic: str, obs: Observed) -> str:
    rel = relative_to(topic, obs.namespace)
    if exp.remap_arg:
        return (f"remap {exp.remap_arg}:={rel} (robot.launch.py; `hjepa-agent check --remap {exp.remap}:={rel}` "
                f"checks it; in a driver profile: topics: {{{exp.remap}: {rel}}})")
    return (f"no robot.launch.py argument remaps {exp.topic}: give each node --ros-args -r "
            f"{relative_to(exp.topic, obs.namespace)}:={rel}, or republish {topic} there")


def _setting_fix(alt: Alternative) -> str:
    return f"set {alt.setting} in the params file's '/**' section (every node)"


# ---- the judges --------------------------------------------------------------------------------------
def _missing(exp: Expectation, obs: Observed) -> Problem:
    for alt in exp.alternatives:
        ends = obs.graph.get(alt.topic, TopicEnds())
        if any(p.node not in obs.own and p.type == alt.type for p in ends.publishers):
            return Problem(Verdict.MISSING, f"no publisher on {exp.topic}; a {alt.type} is published on {alt.topic}",
                           _setting_fix(alt))
    found = _candidates(obs, [exp.type], False, exp.topic)
    absent = (f"; or, if the robot has none, set {exp.presence_key}: absent (or optional) in the ego model"
              if exp.presence_key and exp.need is Need.REQUIRED else "")
    if found:
        where = ", ".join(t for t, _ in found[:3])
        return Problem(Verdict.MISSING, f"no publisher on {exp.topic}; a {exp.type} is published on {where}",
                       _remap_fix(exp, found[0][0], obs) + absent)
    if exp.need is Need.INFO:
        return Problem(Verdict.MISSING, f"no publisher on {exp.topic} yet", "none needed before the agent starts: a "
                       "user (RViz's goal tool) or a mission node sends it")
    how = f", and remap {exp.remap_arg}:=<its topic> if it uses another name" if exp.remap_arg else ""
    return Problem(Verdict.MISSING, f"no publisher on {exp.topic} and no {exp.type} anywhere on the graph",
                   f"start the driver that publishes it{how}" + absent)


def _wrong_type(exp: Expectation, pubs: Sequence[Endpoint], obs: Observed) -> Problem:
    theirs = _types(pubs)
    detail = f"{exp.topic} carries {', '.join(theirs)} ({endpoint_nodes(pubs)}); the agent reads {exp.type}"
    for alt in exp.alternatives:
        if alt.topic == exp.topic and alt.type in theirs:
            return Problem(Verdict.WRONG_TYPE, detail, _setting_fix(alt))
    found = _candidates(obs, [exp.type], False, exp.topic)
    if found:
        return Problem(Verdict.WRONG_TYPE, f"{detail}; a {exp.type} is published on {found[0][0]}",
                       _remap_fix(exp, found[0][0], obs))
    return Problem(Verdict.WRONG_TYPE, detail, f"publish {exp.type} on {exp.topic} (a driver option, or a relay "
                                               f"node converting {', '.join(theirs)})")


def _frame_problems(exp: Expectation, stats: Stats, obs: Observed) -> list[Problem]:
    out = []
    other = [f for f in stats.frames if f not in exp.frames]
    if exp.frames and other:
        taken = " or ".join(map(repr, exp.frames))
        fix = (f"set {exp.frame_param}: {other[0]} in the params file's '/**' section (every node), or have the "
               f"driver publish in {taken}" if exp.frame_param else f"publish it in {taken}")
        out.append(Problem(Verdict.BAD_FRAME, f"frame_id {', '.join(map(repr, other))}; the agent takes {taken}"
                                              + (f" ({exp.frame_param})" if exp.frame_param else ""), fix))
    if exp.child_frame is not None and stats.child_frames and stats.child_frames != (exp.child_frame,):
        other = [f for f in stats.child_frames if f != exp.child_frame]
        out.append(Problem(Verdict.BAD_FRAME, f"child_frame_id {', '.join(map(repr, other))}; the agent's base_frame "
                                              f"is {exp.child_frame!r}",
                           f"set base_frame: {other[0]} for perception and planner ('/**/perception' and "
                           f"'/**/planner' sections), or have the driver use {exp.child_frame!r}"))
    for rule in exp.mounts:
        for frame in stats.frames:
            why = _mount_problem(rule, frame, obs.tf_edges, obs.tf_read)
            if why:
                out.append(Problem(Verdict.BAD_FRAME, why[0], why[1]))
    return out


def tf_connected(edges: Sequence[tuple[str, str]], a: str, b: str) -> bool:
    """Whether the transforms ``edges`` ((parent, child) pairs) connect frames ``a`` and ``b``."""
    if a == b:
        return True
    nbrs: dict[str, set[str]] = {}
    for p, c in edges:
        nbrs.setdefault(p, set()).add(c)
        nbrs.setdefault(c, set()).add(p)
    seen, todo = {a}, [a]
    while todo:
        for n in nbrs.get(todo.pop(), ()):
            if n == b:
                return True
            if n not in seen:
                seen.add(n)
                todo.append(n)
    return False


def _mount_problem(rule: MountRule, frame: str, edges: Sequence[tuple[str, str]],
                   tf_read: bool = True) -> tuple[str, str] | None:
    """(what, fix) when ``rule``'s nodes could not place a scan in ``frame`` (nodes/mounts.py's sources:
    base_frame itself, the URDF's fixed joints, else tf2: ``edges`` heard on /tf_static, or nothing
    where tf2 is not installed), None when they can."""
    who = " and ".join(rule.nodes)
    if frame == rule.base_frame:
        return None
    if rule.urdf_error:
        return (f"{who}: urdf {rule.urdf_path!r} cannot be read ({rule.urdf_error}): the nodes would not start",
                f"set {who}'s urdf to this robot's URDF")
    if rule.urdf is not None:
        try:
            rule.urdf.transform(rule.base_frame, frame)
        except UrdfError as exc:
            return (f"scan frame {frame!r} has no fixed mount on {rule.base_frame!r} for {who}: {exc}",
                    f"give {who} `urdf` the URDF of this robot, whose fixed joints connect {rule.base_frame!r} to "
                    f"{frame!r}, or have the driver publish the scan in {rule.base_frame!r}")
        return None
    if not tf_read:
        return (f"scan frame {frame!r} is not base_frame {rule.base_frame!r}, {who} have no `urdf`, and tf2 is not "
                f"installed here: they take scans in {rule.base_frame!r} only",
                f"set `urdf` of {who} to this robot's URDF")
    if tf_connected(edges, rule.base_frame, frame):
        return None
    return (f"scan frame {frame!r}: {who} have no `urdf` and /tf_static does not connect {rule.base_frame!r} to it",
            f"set `urdf` of {who} to this robot's URDF, or start robot_state_publisher with it")


def _input_problems(exp: Expectation, pubs: tuple[Endpoint, ...], stats: Stats, obs: Observed) -> list[Problem]:
    """The problems of an input the robot publishes, in Verdict order (the first is the verdict)."""
    typed = [p for p in pubs if p.type == exp.type]
    if not pubs:
        return [_missing(exp, obs)]
    if not typed:
        return [_wrong_type(exp, pubs, obs)]
    out: list[Problem] = []
    if exp.reliable and not any(p.reliable for p in typed):
        out.append(Problem(Verdict.INCOMPATIBLE_QOS, f"{endpoint_nodes(typed)} publish {exp.topic} best-effort; "
                                                     f"the agent subscribes reliable and would receive nothing",
                           "publish it with reliability: reliable"))
    if stats.messages == 0:
        out.append(Problem(Verdict.SILENT, f"{len(typed)} publisher(s) ({endpoint_nodes(typed)}) but no message in "
                                           f"{obs.listen_s:.1f} s",
                           f"check that the driver is publishing (`ros2 topic hz {exp.topic}`); a slow topic needs "
                           f"a longer --duration"))
        return out
    if stats.rejected:
        out.append(Problem(Verdict.BAD_FORMAT, f"the agent's input check refuses {stats.rejected} of "
                                               f"{stats.messages} messages: {stats.first_rejection}",
                           "configure the driver to publish what the agent takes (the reason says what)"))
    if exp.image:
        small = [(w, h, e) for w, h, e in stats.images if min(w, h) < MIN_IMAGE_SIDE]
        for w, h, enc in small:
            out.append(Problem(Verdict.BAD_FORMAT, f"image {w}x{h} {enc}: its short side is under "
                                                   f"{MIN_IMAGE_SIDE} px, which perception refuses",
                               f"publish at least {MIN_IMAGE_SIDE} px a side (the encoder takes the central square)"))
    if exp.scan is not None:
        for beams, fov in stats.scans:
            if beams != exp.scan.n_beams or abs(fov - exp.scan.fov_deg) > SCAN_FOV_TOLERANCE_DEG:
                out.append(Problem(Verdict.NOT_AS_DESCRIBED,
                                   f"{beams} beams over {fov:.1f} deg; the robot description {exp.scan.source} says "
                                   f"{exp.scan.n_beams} over {exp.scan.fov_deg:.1f} deg, and the models are checked "
                                   f"against its fingerprint",
                                   "describe this robot's scanner in its robot description (robot:=), then check "
                                   "the models again"))
    out += _frame_problems(exp, stats, obs)
    out += _timing_problems(exp, stats, obs)
    return sorted(out, key=lambda p: p.verdict.value)


def _timing_problems(exp: Expectation, stats: Stats, obs: Observed) -> list[Problem]:
    out = []
    if exp.rate_hz is not None:
        need = MIN_RATE_FRACTION * exp.rate_hz
        rate = stats.rate_hz
        if (rate is not None and rate < need) or (rate is None and exp.rate_hz * obs.listen_s >= MIN_EXPECTED_FOR_RATE):
            seen = f"{rate:.1f} Hz" if rate is not None else f"{stats.messages} message in {obs.listen_s:.1f} s"
            out.append(Problem(Verdict.SLOW, f"{seen}; the ego model expects {exp.rate_hz:g} Hz ({exp.source}), "
                                             f"at least {need:.1f} Hz ({MIN_RATE_FRACTION:g} of it)",
                               f"raise the driver's rate, or state the robot's real rate in {exp.source}.rate_hz"))
    age = stats.age_p50_s
    if age is not None and exp.max_age_s is not None and age > exp.max_age_s:
        out.append(Problem(Verdict.STALE, f"{age:.3f} s old at receipt (median; max {stats.age_max_s:.3f} s: system "
                                          f"clock minus header stamp); the agent takes at most {exp.max_age_s:g} s "
                                          f"({exp.source}.max_age_s)",
                           "stamp at capture with the system clock and synchronise the drivers' computer with this one "
                           "(chrony/NTP); " + ("the watchdog would hold SAFE_STOP on this input" if exp.need is
                                               Need.REQUIRED else "the watchdog would take it as missing")))
    if age is not None and age < -exp.future_tolerance_s:
        out.append(Problem(Verdict.FUTURE_STAMP, f"stamped {-age:.3f} s ahead of this computer's clock (median); the "
                                                 f"agent refuses stamps over {exp.future_tolerance_s:g} s ahead "
                                                 f"(future_stamp_tolerance_s)",
                           "synchronise the drivers' computer with this one (chrony/NTP)"))
    return out


def _command_problems(exp: Expectation, pubs: tuple[Endpoint, ...], subs: tuple[Endpoint, ...],
                      obs: Observed) -> list[Problem]:
    """The problems of cmd_vel, which the base must subscribe with the agent's type."""
    out: list[Problem] = []
    types = [exp.type] + [a.type for a in exp.alternatives if a.topic == exp.topic]
    if not subs:
        found = _candidates(obs, types, True, exp.topic)
        if found:
            topic, typ = found[0]
            alt = next((a for a in exp.alternatives if a.type == typ), None)
            fix = _remap_fix(exp, topic, obs) + ("" if alt is None else f", and {_setting_fix(alt)}")
            out.append(Problem(Verdict.MISSING, f"nothing subscribes {exp.topic}; {typ} is subscribed on {topic}", fix))
        else:
            out.append(Problem(Verdict.MISSING, f"nothing subscribes {exp.topic}, and nothing subscribes "
                                                f"{' or '.join(types)} anywhere on the graph",
                               "start the base's driver (it must subscribe the velocity command)"))
    elif not any(s.type == exp.type for s in subs):
        theirs = _types(subs)
        detail = (f"the base subscribes {', '.join(theirs)} on {exp.topic} ({endpoint_nodes(subs)}); "
                  f"the agent publishes {exp.type}")
        alt = next((a for a in exp.alternatives if a.topic == exp.topic and a.type in theirs), None)
        out.append(Problem(Verdict.WRONG_TYPE, detail, _setting_fix(alt) if alt is not None else
                           f"the base must take {exp.type}: a driver option, or a relay node"))
    if pubs:
        out.append(Problem(Verdict.FOREIGN_PUBLISHER, f"{endpoint_nodes(pubs)} already publish(es) on {exp.topic}",
                           "stop it before starting the agent: the watchdog counts its commands as foreign (a "
                           "twist_mux may feed the base from a topic of its own instead)"))
    return out


def judge(exp: Expectation, obs: Observed) -> Finding:
    """The :class:`Finding` of ``exp`` given what was observed (module docstring)."""
    ends = obs.graph.get(exp.topic, TopicEnds())
    pubs = tuple(e for e in ends.publishers if e.node not in obs.own)
    subs = tuple(e for e in ends.subscribers if e.node not in obs.own)
    stats = summarise(obs.samples.get(exp.key, ()))
    if exp.need is Need.ABSENT:
        heard = f"; {endpoint_nodes(pubs)} publish(es) it: set {exp.presence_key}: optional to use it" if pubs else ""
        problems = [Problem(Verdict.SKIPPED, f"the ego model says the robot has none ({exp.presence_key}: absent): "
                                             f"the agent does not subscribe it{heard}", "")]
    elif exp.direction is Direction.ROBOT_SUBSCRIBES:
        problems = _command_problems(exp, pubs, subs, obs)
    else:
        problems = _input_problems(exp, pubs, stats, obs)
    return Finding(exp, pubs, subs, stats, tuple(problems))


__all__ = ["Finding", "MIN_RATE_FRACTION", "ModelFinding", "Problem", "Verdict", "endpoint_nodes", "judge",
           "tf_connected"]
