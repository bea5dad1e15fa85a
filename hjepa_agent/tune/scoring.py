"""The pure statistics of ``hjepa-agent tune``: split-conformal quantiles and the alpha split
(calibrate), which interventions a calibrated score decides, the grid of thresholds, one episode's
score from its replayed ticks, a grid point's figures and the recommendation (sweep). No I/O."""
from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np

from hjepa_agent.config.ego_model import EgoModel
from hjepa_agent.core.events import Cause, Event
from hjepa_agent.core.types import Mode
from hjepa_agent.core.watchdog import LEVELS, WatchdogConfig
from hjepa_agent.harness.judge import FaultJudge, Verdict

INTERVENTIONS = ("SAFE_STOP", "OPTIMISING")
"""Modes whose entry counts as an intervention."""
GRADED = "graded"
"""Event kind of a graded response (a speed limit short of a stop; its transition goes between LEVELS): one
that does not step back to "NORMAL" is an escalation (EpisodeScore.graded: the nominal episodes slowed)."""


def conformal_upper(scores: np.ndarray, alpha: float) -> float:
    """The ceil((n+1)(1-alpha))-th smallest of n exchangeable nominal scores: a new nominal score
    exceeds it with probability at most alpha. inf when n < 1/alpha - 1 (too few to say)."""
    s = np.sort(np.asarray(scores, np.float64))
    k = math.ceil((len(s) + 1) * (1.0 - alpha))
    return float(s[k - 1]) if 1 <= k <= len(s) else math.inf


def calibrated_intervention(event: Event) -> bool:
    """Whether a mode event is an intervention decided by a calibrated score, by its transition and
    causes: SAFE_STOP with every cause AMBIGUITY, or OPTIMISING with the cause PLAN_CLEARANCE."""
    if event.transition is None or not event.causes:
        return False
    if event.transition.after == Mode.SAFE_STOP.name:
        return all(c == Cause.AMBIGUITY for c in event.causes)
    return event.transition.after == Mode.OPTIMISING.name and Cause.PLAN_CLEARANCE in event.causes


def split_alpha(alpha: float, others: int, n: int, scores: int = 2) -> tuple[float, float]:
    """(alpha per calibrated score, the rate set aside for the interventions no calibrated score
    decides): those happened in ``others`` of ``n`` nominal episodes, taken as (others + 1) / (n + 1),
    and the rest of ``alpha`` is split evenly over ``scores`` (Bonferroni). The first is <= 0 when the
    others alone use up alpha."""
    rest = (others + 1) / (n + 1)
    return (alpha - rest) / scores, rest


class TickRecord(NamedTuple):
    """One replayed tick: its time (s), the mode and graded level (an index of LEVELS) after it, and its
    events (typed: kind, transition, causes)."""

    tick_s: float
    mode: Mode
    events: tuple[Event, ...] = ()
    level: int = 0


def parse_grid(spec: str, base: WatchdogConfig, ego: EgoModel | None = None) -> list[dict[str, float]]:
    """Grid points from ``spec`` ("name=v1,v2,...;name2=..." over WatchdogConfig fields): the cartesian
    product, the first name varying slowest, each point {name: value} in spec order. ValueError naming
    the name, value or point when a name is unknown or repeated, a value is not a finite number, or a
    point's config is invalid (``dataclasses.replace`` on ``base``: WatchdogConfig's range and
    cross-field checks, and the ego model's when ``ego`` is given)."""
    fields = {f.name: f for f in dataclasses.fields(WatchdogConfig)}
    axes: dict[str, list[float]] = {}
    for part in (p.strip() for p in spec.split(";") if p.strip()):
        name, sep, values = (x.strip() for x in part.partition("="))
        if not sep or not name:
            raise ValueError(f"--grid {part!r}: expected name=v1,v2,...")
        if name not in fields:
            raise ValueError(f"--grid: {name!r} is not a watchdog threshold (WatchdogConfig fields: "
                             f"{', '.join(fields)})")
        if fields[name].type not in ("float", float):
            raise ValueError(f"--grid: {name} is not a number threshold ({fields[name].type}); it cannot be swept")
        if name in axes:
            raise ValueError(f"--grid: {name} is given twice")
        vals: list[float] = []
        for v in (v.strip() for v in values.split(",") if v.strip()):
            try:
                f = float(v)
            except ValueError:
                raise ValueError(f"--grid: {name}={v!r} is not a number") from None
            if not math.isfinite(f):
                raise ValueError(f"--grid: {name}={v!r} must be finite")
            vals.append(f)
        if not vals:
            raise ValueError(f"--grid: {name} has no values")
        axes[name] = list(dict.fromkeys(vals))
    if not axes:
        raise ValueError(f"--grid {spec!r}: no thresholds in it (expected name=v1,v2,...;name2=...)")
    points = [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]
    for point in points:
        try:
            cfg = dataclasses.replace(base, **point)
            if ego is not None:
                cfg.check_against(ego)
        except ValueError as exc:
            raise ValueError(f"--grid point {point}: {exc}") from None
    return points


@dataclasses.dataclass(frozen=True)
class EpisodeScore:
    """What the watchdog did in one episode (:func:`score_episode`); times in s since the episode start.

    started_s: when it left the start-up SAFE_STOP (None: never); interventions: (time, mode entered)
    for every SAFE_STOP or OPTIMISING entry after the start-up; graded: times of graded escalations;
    onset_s: the fault's onset (None: a nominal episode); verdict: the judge's on the fault
    (harness/judge.py; None without one); detected_at_s: when it counts as detected (None: not)."""

    started_s: float | None
    interventions: tuple[tuple[float, str], ...]
    graded: tuple[float, ...]
    onset_s: float | None = None
    verdict: Verdict | None = None
    detected_at_s: float | None = None

    @property
    def false_alarm(self) -> bool:
        """An intervention with nothing wrong: any after the start-up (before the onset, with a fault), or
        no start at all (before the onset): a watchdog that never lets the robot move stops it too."""
        limit = math.inf if self.onset_s is None else self.onset_s
        never = self.started_s is None or self.started_s >= limit
        return never or any(t < limit for t, _ in self.interventions)

    @property
    def detected(self) -> bool | None:
        """Whether the fault was detected, by the judge's definition (None without a fault)."""
        return None if self.verdict is None else self.verdict.detected

    @property
    def named_wrongly(self) -> bool | None:
        """Whether the first causes after the onset missed the fault's (None without a fault)."""
        return None if self.verdict is None else self.verdict.named_wrongly

    @property
    def delay_s(self) -> float | None:
        """Detection time minus onset (s), or None."""
        return None if self.detected_at_s is None or self.onset_s is None else self.detected_at_s - self.onset_s


def score_episode(ticks: Sequence[TickRecord], onset_s: float | None = None,
                  kinds: Sequence[str] = ()) -> EpisodeScore:
    """Score one episode's replayed ticks (in order; the first tick is taken as the episode's start).

    Interventions are entries of INTERVENTIONS after the start-up (the watchdog starts in SAFE_STOP;
    leaving it the first time is the start-up, not an intervention); graded escalations are GRADED events
    other than a step back to NORMAL. With faults of ``kinds`` at ``onset_s`` (s since the start), the
    judge (harness/judge.FaultJudge) follows every tick's mode and graded level and every event's typed
    causes from the onset on: detected as live (no ``kinds``: judged by the response alone)."""
    if not ticks:
        raise ValueError("score_episode: an episode without ticks")
    start = float(ticks[0].tick_s)
    started: float | None = None
    interventions: list[tuple[float, str]] = []
    graded: list[float] = []
    fault = None if onset_s is None else FaultJudge(kinds, onset_s)
    before, level_before = Mode.SAFE_STOP, 0   # as the watchdog starts
    for tick in ticks:
        t = float(tick.tick_s) - start
        if fault is not None:
            fault.on_decision(t, before, tick.mode, level_before, tick.level)
        for ev in tick.events:
            if fault is not None:
                fault.on_causes(t, ev.causes)
            if ev.transition is None:
                continue
            if ev.kind == GRADED:
                if ev.transition.after != LEVELS[0]:   # back to full speed is no escalation
                    graded.append(t)
                continue
            if ev.kind != "mode":
                continue
            entered = ev.transition.after
            if started is None:
                if ev.transition.before == Mode.SAFE_STOP.name and entered != Mode.SAFE_STOP.name:
                    started = t
                continue
            if entered in INTERVENTIONS:
                interventions.append((t, entered))
        if started is None and tick.mode != Mode.SAFE_STOP:   # out of SAFE_STOP without its event: started anyway
            started = t
        before, level_before = tick.mode, tick.level
    verdict = None if fault is None else fault.verdict()
    return EpisodeScore(started, tuple(interventions), tuple(graded), onset_s, verdict,
                        None if fault is None else fault.detected_at(verdict))


def fault_of(faults: Sequence[str]) -> tuple[str, float, tuple[str, ...]]:
    """An episode's injected faults (episodes.jsonl "faults": ["kind@onset_s", ...]) -> (label: the kinds
    joined by "+", onset: the earliest (s since the episode start), the kinds)."""
    from hjepa_agent.sim.faults import parse_faults

    parsed = parse_faults(",".join(faults))
    if not parsed:
        raise ValueError("no faults")
    kinds = tuple(sorted({f.kind for f in parsed}))
    return "+".join(kinds), min(f.onset_s for f in parsed), kinds


def _delays(delays: list[float]) -> dict[str, float] | None:
    return ({"median": round(float(np.median(delays)), 3), "max": round(float(np.max(delays)), 3)}
            if delays else None)


def point_summary(values: Mapping[str, float], nominal: Sequence[EpisodeScore],
                  faulted: Sequence[tuple[str, EpisodeScore]]) -> dict[str, Any]:
    """One grid point's figures from its episode scores: false_rate (nominal episodes with a false alarm,
    EpisodeScore.false_alarm), detection_rate (faulted episodes detected; None without any), the
    detection delays (s, median and max), and the same per fault label (``faulted``: (label, score)), with
    the episodes whose first causes named the fault wrongly."""
    false = [s.false_alarm for s in nominal]
    det = [s.detected for _, s in faulted]
    by_kind: dict[str, dict[str, Any]] = {}
    for label in sorted({k for k, _ in faulted}):
        mine = [s for k, s in faulted if k == label]
        hit = sum(bool(s.detected) for s in mine)
        by_kind[label] = {"episodes": len(mine), "detected": hit, "rate": round(hit / len(mine), 4),
                          "named_wrongly": sum(bool(s.named_wrongly) for s in mine),
                          "delay_s": _delays([s.delay_s for s in mine if s.delay_s is not None]),
                          "false_alarm_before_onset": sum(s.false_alarm for s in mine)}
    return {"values": dict(values),
            "false_rate": sum(false) / len(false) if false else None,
            "false_episodes": int(sum(false)),
            "never_started": sum(s.started_s is None for s in nominal),
            "graded_rate_nominal": sum(bool(s.graded) for s in nominal) / len(nominal) if nominal else None,
            "detection_rate": sum(map(bool, det)) / len(det) if det else None,
            "detected_episodes": int(sum(map(bool, det))),
            "delay_s": _delays([s.delay_s for _, s in faulted if s.delay_s is not None]),
            "by_kind": by_kind}


def recommend(points: Sequence[Mapping[str, Any]], alpha: float, base: Mapping[str, float],
              max_slowed: float | None = None) -> int | None:
    """Index of the recommended grid point: among those whose "false_rate" is at most ``alpha`` (and,
    with ``max_slowed``, whose "graded_rate_nominal", the nominal episodes slowed by a graded
    response, is at most that), the one
    with the highest "detection_rate" (None, without faulted runs, counts as 0); ties: the lowest false
    rate, then the closest to ``base`` (the sum over the point's "values" of |value - base| / |base|, or
    / 1 where base is 0), then the first in grid order. None when no point's false rate is <= alpha."""
    def distance(values: Mapping[str, float]) -> float:
        return sum(abs(v - base[k]) / (abs(base[k]) or 1.0) for k, v in values.items())

    ok = [i for i, p in enumerate(points) if p["false_rate"] is not None and p["false_rate"] <= alpha + 1e-12
          and (max_slowed is None or (p.get("graded_rate_nominal") or 0.0) <= max_slowed + 1e-12)]
    if not ok:
        return None
    return min(ok, key=lambda i: (-(points[i]["detection_rate"] or 0.0), points[i]["false_rate"],
                                  distance(points[i]["values"]), i))


__all__ = ["GRADED", "INTERVENTIONS", "EpisodeScore", "TickRecord", "calibrated_intervention", "conformal_upper",
           "fault_of", "parse_grid", "point_summary", "recommend", "score_episode", "split_alpha"]
