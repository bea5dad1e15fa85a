"""``hjepa-agent tune``: the watchdog's thresholds, judged on recorded runs (issue 5).

``tune replay --bag RUN.mcap [--thresholds FILE]`` runs the watchdog's core again, offline, on a
run recorded by ``hjepa-agent sim`` (or a robot launch with the recorder): the watchdog node's
journal (agent/watchdog/journal, one JSON per tick, see nodes/watchdog.WatchdogNode) says which
input it consumed when, by kind and header stamp; the recorded messages supply their contents;
each is fed through the same ``apply_input`` the node uses, and the core ticks at the journal's
tick times. With the thresholds the run used, every tick's mode and events must come out as they
did live (the report says whether they did, and where they first differed); with other
thresholds it shows what the watchdog would have done: its mode transitions, interventions
(SAFE_STOP and OPTIMISING entries) and ticks in each mode, against the live ones. (The replay
cannot show what the robot would then have done: the recorded inputs are those of the live run.)
It also times the core's decision (``Watchdog.tick``) at every tick: ``core_tick_ms``. A recording
made under a namespace (the robot launch with record:=true) is found from its journal's topic; inputs
the launch remapped are named with ``--remap TOPIC=RECORDED``.

``tune calibrate --runs DIR... --alpha A --out FILE`` sets thresholds from nominal recorded runs
(every episode in them exchangeable and fault-free) so that interventions fire in at most a fraction
``alpha`` of nominal episodes. Some interventions are not decided by a threshold calibrate sets (a
stale input, a limit, the stall rule's OPTIMISING): the episodes where the replay has one are
counted, their rate taken as (count + 1) / (n + 1) (or ``--other-rate``) and set aside. The rest,
alpha', is split over the two scores below, alpha'/2 each (or ``--stop-alpha`` for the stop and the
rest for the re-plan: a false stop costs more), by split conformal: with n episodes and a score's
share a, the ceil((n+1)(1-a))-th smallest episode score, which needs n >= 1/a - 1 (59 for 5 %, where
nothing else happened and 1/(n+1) is set aside):

* ``ambiguity_stop`` (SAFE_STOP): just above that quantile of each episode's largest world-state
  ambiguity (after the start-up wait for fresh inputs);
* ``clearance_optimise_m`` (PLANNING -> OPTIMISING): just below that quantile, from below, of each
  episode's smallest predicted plan clearance while it was PLANNING (kept within [0, clearance_plan_m]).

The graded responses (slowing down, not interventions) get their own alpha, split the same way, so
that nominal episodes are slowed in at most alpha of them: ``risk_limit_z`` just above the quantile
of each episode's largest risk deviation (only with the typical-risk network; ``risk_slow_z`` keeps
its ratio to it) and ``charge_slow`` above that of each episode's largest affective charge.

The other thresholds are copied from ``--thresholds``; OPTIMISING entered because planning made no
progress (the stall rule) is not calibrated, and counts as an intervention in replay's report. Nothing
checks there that the calibrated thresholds still catch faults: ``tune sweep`` does.

``tune sweep --nominal RUN... [--faulted RUN...] --grid "name=v1,v2;name2=..." [--alpha A] --out DIR``
replays run directories (run.mcap + episodes.jsonl from ``hjepa-agent sim``; ``--faulted`` ones from
``sim --faults``) at every point of a grid of thresholds (the cartesian product of the values given,
each a WatchdogConfig field, on top of ``--thresholds``). Each bag is read once; every grid point
replays every run. Per grid point:

* the nominal false-intervention rate: the fraction of nominal episodes with an intervention (an entry
  of SAFE_STOP or OPTIMISING) after the start-up (the watchdog starts in SAFE_STOP: leaving it the
  first time is not one), or with no start-up at all (a watchdog that never lets the robot go);
* the detection rate: the fraction of faulted episodes with a reaction at or after the fault's onset
  (the earliest, if several): entering SAFE_STOP, for an obstacle_drop also PLANNING or OPTIMISING
  (an entry: unlike the live count in episodes.jsonl, a PLANNING already under way at the onset is
  not one), or a "graded" event (a speed limit short of a stop); with the delay (reaction - onset)
  median and max, overall and per fault kind.

Episodes are matched to the journal by order: the i-th distinct journal session is episode i. An
episode's start is taken as the first journal tick of its session (approximation: the watchdog starts
within a tick of the episode), and the onsets in episodes.jsonl (s since the episode start) are counted
from there. Lead time (detection to breach) cannot come from a replay, which cannot show a breach that
did not happen live: the live "breach" and "lead_s" of each faulted episode are copied as recorded.

Recommended: among the points whose false-intervention rate is <= alpha and which slow down (a graded
response: speed limited or slowed) at most ``--max-slowed`` of the nominal episodes (default alpha;
a slowdown is not an intervention, but a watchdog that slows every other run is not a good one), the
one with the highest
detection rate (ties: the lowest false rate, then the closest to ``--thresholds``): DIR/recommended.yaml
(``--thresholds`` with the swept keys replaced, a header saying how and with what rates). Also
DIR/sweep.json (every point: values, rates, per fault kind), DIR/roc.png (false rate against detection
rate, alpha as a line) and DIR/timeline.png (one episode replayed with the recommended thresholds:
ambiguity, clearances, speed scale, mode, measured speed, fault onset). No point within alpha: it says
so, writes sweep.json and roc.png only, and exits 1.
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import logging
import math
import shlex
import sys
import textwrap
import time
from collections import defaultdict, deque
from pathlib import Path
from typing import Any, Collection, Mapping, Sequence

import numpy as np

from hjepa_agent.config.ego_model import EgoModel
from hjepa_agent.core.watchdog import WatchdogConfig
from hjepa_agent.nodes.journal import ReplayContext, check_remaps, read_run, rerun, started_ticks

log = logging.getLogger("hjepa_agent.tune")

INTERVENTIONS = ("SAFE_STOP", "OPTIMISING")
"""Modes whose entry counts as an intervention."""
GRADED = "graded"
"""Event kind of a graded response (a speed limit short of a stop, reasons[0] "FROM->TO"): in ``tune sweep``
one that does not step back to "NORMAL" is a fault's detection."""


def replay(bag: Path, ctx: ReplayContext) -> dict[str, Any]:
    """Re-run the watchdog on ``bag`` with ``ctx`` (module doc); returns the report."""
    inputs, journal = read_run(bag, ctx.remaps)
    sessions: set[str] = set()
    ticks = mismatched = missing = 0
    first_mismatch: dict[str, Any] | None = None
    tick_ms: list[float] = []
    live_ticks: dict[str, int] = defaultdict(int)
    replay_ticks: dict[str, int] = defaultdict(int)
    live_tr: list[tuple[str, float, str]] = []
    replay_tr: list[tuple[str, float, str]] = []
    for entry, _, out, dt, miss in rerun(journal, inputs, ctx):
        sessions.add(entry["session"])
        missing += miss
        tick_ms.append(dt * 1e3)
        ticks += 1
        live_ticks[entry["mode"]] += 1
        replay_ticks[out.mode.name] += 1
        events = [[ev.kind, list(ev.text())] for ev in out.events]
        live_tr += [(entry["session"], entry["tick"], r[0]) for k, r in entry["events"] if k == "mode"]
        replay_tr += [(entry["session"], entry["tick"], r[0]) for k, r in events if k == "mode"]
        if out.mode.name != entry["mode"] or events != entry["events"]:
            mismatched += 1
            if first_mismatch is None:
                first_mismatch = {"session": entry["session"], "tick_s": entry["tick"],
                                  "live": {"mode": entry["mode"], "events": entry["events"]},
                                  "replay": {"mode": out.mode.name, "events": events}}

    def entered(tr: list[tuple[str, float, str]]) -> dict[str, int]:
        return {m: sum(t[2].split("->")[-1] == m for t in tr) for m in INTERVENTIONS}

    def episodes_with(tr: list[tuple[str, float, str]]) -> int:
        return len({t[0] for t in tr if t[2].split("->")[-1] in INTERVENTIONS})

    return {"bag": str(bag), "thresholds": str(ctx.thresholds), "sessions": len(sessions), "ticks": ticks,
            "identical": mismatched == 0 and missing == 0, "ticks_differing": mismatched,
            "inputs_missing_from_bag": missing, "first_difference": first_mismatch,
            "transitions": {"live": len(live_tr), "replay": len(replay_tr),
                            "same_at_same_stamps": live_tr == replay_tr},
            "interventions": {"live": entered(live_tr), "replay": entered(replay_tr)},
            "sessions_with_interventions": {"live": episodes_with(live_tr), "replay": episodes_with(replay_tr)},
            "mode_ticks": {"live": dict(live_ticks), "replay": dict(replay_ticks)},
            "core_tick_ms": ({"p50": round(float(np.percentile(tick_ms, 50)), 3),
                              "p99": round(float(np.percentile(tick_ms, 99)), 3),
                              "max": round(float(np.max(tick_ms)), 3)} if tick_ms else None),
            "replay_transitions": [{"session": s, "stamp_s": t, "transition": tr} for s, t, tr in replay_tr]}


def conformal_upper(scores: np.ndarray, alpha: float) -> float:
    """The ceil((n+1)(1-alpha))-th smallest of n exchangeable nominal scores: a new nominal score
    exceeds it with probability at most alpha. inf when n < 1/alpha - 1 (too few to say)."""
    s = np.sort(np.asarray(scores, np.float64))
    k = math.ceil((len(s) + 1) * (1.0 - alpha))
    return float(s[k - 1]) if 1 <= k <= len(s) else math.inf


def calibrated_intervention(reasons: Sequence[str]) -> bool:
    """Whether a mode event's reasons ("A->B", cause, ...) are an intervention decided by a calibrated
    score: SAFE_STOP on ambiguity alone, or OPTIMISING on plan clearance."""
    target = reasons[0].split("->")[-1]
    if target == "SAFE_STOP":
        return len(reasons) > 1 and all(r.startswith("ambiguity") for r in reasons[1:])
    return target == "OPTIMISING" and len(reasons) > 1 and reasons[1].startswith("plan clearance")


def split_alpha(alpha: float, others: int, n: int, scores: int = 2) -> tuple[float, float]:
    """(alpha per calibrated score, the rate set aside for the interventions no calibrated score
    decides): those happened in ``others`` of ``n`` nominal episodes, taken as (others + 1) / (n + 1),
    and the rest of ``alpha`` is split evenly over ``scores`` (Bonferroni). The first is <= 0 when the
    others alone use up alpha."""
    rest = (others + 1) / (n + 1)
    return (alpha - rest) / scores, rest


def calibrate(bags: list[Path], ctx: ReplayContext, alpha: float,
              other_rate: float | None = None, stop_alpha: float | None = None) -> tuple[dict[str, Any], dict]:
    """Thresholds from nominal recorded runs (every session in ``bags`` an exchangeable nominal
    episode) so that each intervention the watchdog decides from a score fires in at most ``alpha``
    of nominal episodes (split conformal, per score; module doc of tune_main), replayed with ``ctx`` (whose
    thresholds YAML is the one copied). Returns (the new thresholds as a dict, the report)."""
    import yaml

    if not 0.0 < alpha < 1.0:
        raise ValueError(f"tune calibrate: --alpha must be in (0, 1), got {alpha}")
    cfg = ctx.cfg
    amb_max: dict[str, float] = {}
    plan_min: dict[str, float] = {}
    z_max: dict[str, float] = {}
    charge_max: dict[str, float] = {}
    track: dict[str, deque] = defaultdict(deque)   # per episode: (tick, m/s error, rad/s error) over the slip window
    track_max: dict[str, list[float]] = {}
    others: dict[str, list[str]] = {}   # episodes with an intervention no calibrated score decided: why
    before: dict[str, str] = {}   # per episode: the mode the next tick starts in (the journal's, after a tick)
    for key, entry, core, out in started_ticks(bags, ctx):
        if core.ambiguity is None:
            continue
        amb_max[key] = max(amb_max.get(key, -math.inf), core.ambiguity)
        for ev in out.events:
            if (ev.kind == "mode" and ev.transition.after in INTERVENTIONS
                    and not calibrated_intervention(ev.text())):
                others.setdefault(key, list(ev.text()))
        z = out.readings.get("risk_z")
        z_max[key] = max(z_max.get(key, -math.inf), -math.inf if z is None else float(z))
        charge_max[key] = max(charge_max.get(key, 0.0), core.charge)
        vals = out.readings
        if vals["tracking_error_mps"] is not None:   # the error held over the slip window: its minimum there
            win = track[key]
            win.append((entry["tick"], float(vals["tracking_error_mps"]), float(vals["tracking_error_rps"])))
            while win[0][0] < entry["tick"] - cfg.slip_window_s:
                win.popleft()
            if win[-1][0] - win[0][0] >= cfg.slip_window_s - 1e-6:
                held = [min(x[1] for x in win), min(x[2] for x in win)]
                prev = track_max.get(key, [0.0, 0.0])
                track_max[key] = [max(prev[0], held[0]), max(prev[1], held[1])]
        # the clearance check runs in the mode the tick started in: the tick that left PLANNING for
        # OPTIMISING (its journal mode already OPTIMISING) is the one whose clearance matters most
        plan = core.clearances(entry["tick"])[1]
        if before.get(key) == "PLANNING" and plan is not None:
            plan_min[key] = min(plan_min.get(key, math.inf), float(plan))
        else:
            plan_min.setdefault(key, math.inf)
        before[key] = entry["mode"]
    n = len(amb_max)
    if n == 0:
        raise ValueError("tune calibrate: no episode in the runs got past the start-up SAFE_STOP")
    # two scores decide interventions; the others (stale inputs, limits, the stall rule's OPTIMISING)
    # are not thresholds calibrate sets: their nominal rate is set aside, and the rest of alpha split
    # over the two scores (Bonferroni), so that together they fire in at most alpha of nominal episodes
    if other_rate is None:
        each, rest = split_alpha(alpha, len(others), n)
    else:
        each, rest = (alpha - other_rate) / 2.0, other_rate
    if each <= 0.0 and not others and other_rate is None:
        need = next(m for m in range(n + 1, 100000) if split_alpha(alpha, 0, m)[0] > 0.0
                    and m >= 1.0 / split_alpha(alpha, 0, m)[0] - 1.0)
        raise ValueError(f"tune calibrate: {n} nominal episodes are too few for alpha {alpha}: even with no "
                         f"intervention that no threshold decides, their rate is taken as 1/(n+1) = {rest:.3f}, which "
                         f"leaves nothing for the two scores; needs at least {need}; record more (hjepa-agent sim "
                         f"--episodes N)")
    if each <= 0.0:
        raise ValueError(f"tune calibrate: interventions no calibrated threshold decides happened in {len(others)} of "
                         f"{n} nominal episodes (rate taken as {rest:.3f} >= alpha {alpha}): "
                         f"{'; '.join(' '.join(r) for r in list(others.values())[:3])}; fix their cause or record "
                         f"more nominal episodes")
    # the stop may take less of what is left than the re-plan (--stop-alpha): a false SAFE_STOP halts the
    # robot until someone clears it, a false OPTIMISING costs a slower plan
    a_stop = each if stop_alpha is None else float(stop_alpha)
    a_opt = 2.0 * each - a_stop
    if not 0.0 < a_stop < 2.0 * each:
        raise ValueError(f"tune calibrate: --stop-alpha {stop_alpha} must be in (0, {2.0 * each:.4f}): alpha {alpha} "
                         f"less {rest:.4f} set aside for interventions no threshold decides")
    amb = conformal_upper(np.array(list(amb_max.values())), a_stop)
    neg = conformal_upper(-np.array(list(plan_min.values())), a_opt)   # a low clearance is the alarm
    if not math.isfinite(amb) or neg == math.inf:   # inf: too few for a share (-inf: no plans, nothing to set)
        least = min(a_stop, a_opt)
        raise ValueError(f"tune calibrate: {n} nominal episodes are too few for alpha {alpha} ({least:.4f} for the "
                         f"smaller score's share, {rest:.4f} set aside for interventions no threshold decides): needs "
                         f"at least {math.ceil(1.0 / least - 1.0)}; record more (hjepa-agent sim --episodes N)")
    doc = yaml.safe_load(Path(ctx.thresholds).read_text())
    old = {"ambiguity_stop": cfg.ambiguity_stop, "clearance_optimise_m": cfg.clearance_optimise_m}
    doc["ambiguity_stop"] = round(amb + 1e-3, 3)
    # OPTIMISING below the clearance that at most alpha of nominal PLANNING episodes reach; never above
    # the clearance at which PLANNING starts, nor below 0 (touching)
    clear = -neg if math.isfinite(neg) else cfg.clearance_plan_m
    doc["clearance_optimise_m"] = round(float(np.clip(clear - 1e-3, 0.0, cfg.clearance_plan_m)), 3)
    # graded responses (not interventions): their own alpha, split the same way, so that the robot is
    # slowed down in at most alpha of nominal episodes by the risk deviation and the charge together
    slowed = {}
    zs = np.array([v for v in z_max.values() if math.isfinite(v)])
    if len(zs) == n:   # the typical-risk network was on (ctx.typical)
        z_hi = conformal_upper(zs, alpha / 2.0)
        slowed["risk_limit_z"] = round(float(np.clip(z_hi + 1e-3, 1e-3, 100.0)), 3)
        # SLOW keeps its distance from LIMIT (the ratio of the thresholds it started with)
        slowed["risk_slow_z"] = round(min(100.0, slowed["risk_limit_z"] * cfg.risk_slow_z / cfg.risk_limit_z), 3)
    c_hi = conformal_upper(np.array(list(charge_max.values())), alpha / 2.0)
    slowed["charge_slow"] = round(float(np.clip(c_hi + 1e-3, 1e-3, 10.0)), 3)
    for k in ("risk_limit_z", "risk_slow_z", "charge_slow"):
        old[k] = getattr(cfg, k)
    doc.update(slowed)
    report = {"runs": [str(b) for b in bags], "episodes": n, "alpha": alpha, "alpha_per_score": each,
              "alpha_ambiguity_stop": a_stop, "alpha_clearance_optimise": a_opt,
              "set_aside_for_other_interventions": {"rate": rest, "episodes": len(others),
                                                    "reasons": list(others.values())}, "before": old,
              "after": {k: doc[k] for k in old},
              "scores": {"episode_max_ambiguity": {"p50": float(np.median(list(amb_max.values()))),
                                                   "max": float(max(amb_max.values()))},
                         "episode_min_plan_clearance_m": {
                             "p50": float(np.median(list(plan_min.values()))), "min": float(min(plan_min.values()))},
                         "episode_max_risk_z": ({"p50": float(np.median(zs)), "max": float(zs.max())}
                                                if len(zs) else None),
                         "episode_max_charge": {"p50": float(np.median(list(charge_max.values()))),
                                                "max": float(max(charge_max.values()))},
                         "episode_max_tracking_error": (
                             {unit: {"p50": float(np.median([v[i] for v in track_max.values()])),
                                     "max": float(max(v[i] for v in track_max.values()))}
                              for i, unit in enumerate(("mps", "rps"))} if track_max else None)}}
    return doc, report


# ---- tune sweep -----------------------------------------------------------------------------------
TickRecord = tuple[float, str, Sequence[tuple[str, Sequence[str]]]]
"""One replayed tick: (tick time s, mode after the tick, events of the tick as (kind, reasons))."""


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
    onset_s: the fault's onset (None: a nominal episode); reaction: the first (time, response) at or
    after the onset, response a mode entered or "graded" (None: none, or no fault)."""

    started_s: float | None
    interventions: tuple[tuple[float, str], ...]
    graded: tuple[float, ...]
    onset_s: float | None = None
    reaction: tuple[float, str] | None = None

    @property
    def false_alarm(self) -> bool:
        """An intervention with nothing wrong: any after the start-up (before the onset, with a fault), or
        no start at all (before the onset): a watchdog that never lets the robot move stops it too."""
        limit = math.inf if self.onset_s is None else self.onset_s
        never = self.started_s is None or self.started_s >= limit
        return never or any(t < limit for t, _ in self.interventions)

    @property
    def detected(self) -> bool | None:
        """Whether the fault got a reaction (None without a fault)."""
        return None if self.onset_s is None else self.reaction is not None

    @property
    def delay_s(self) -> float | None:
        """Reaction time minus onset (s), or None."""
        return None if self.reaction is None or self.onset_s is None else self.reaction[0] - self.onset_s


def score_episode(ticks: Sequence[TickRecord], onset_s: float | None = None,
                  responses: Collection[str] = ("SAFE_STOP",)) -> EpisodeScore:
    """Score one episode's replayed ticks (in order; the first tick is taken as the episode's start).

    Interventions are entries of INTERVENTIONS after the start-up (the watchdog starts in SAFE_STOP;
    leaving it the first time is the start-up, not an intervention). With a fault at ``onset_s`` (s
    since the start), the reaction is the first, at or after the onset, entry of a mode in
    ``responses`` or GRADED event (other than a step back to NORMAL)."""
    if not ticks:
        raise ValueError("score_episode: an episode without ticks")
    start = float(ticks[0][0])
    started: float | None = None
    interventions: list[tuple[float, str]] = []
    graded: list[float] = []
    reaction: tuple[float, str] | None = None
    for tick_s, mode, events in ticks:
        t = float(tick_s) - start
        after_onset = onset_s is not None and t >= onset_s - 1e-9
        for kind, reasons in events:
            if kind == GRADED:
                if reasons and str(reasons[0]).endswith("->NORMAL"):   # back to full speed: no reaction
                    continue
                graded.append(t)
                if after_onset and reaction is None:
                    reaction = (t, GRADED)
                continue
            if kind != "mode" or not reasons:
                continue
            before, _, entered = str(reasons[0]).partition("->")
            if started is None:
                if before == "SAFE_STOP" and entered != "SAFE_STOP":
                    started = t
                continue
            if entered in INTERVENTIONS:
                interventions.append((t, entered))
            if after_onset and reaction is None and entered in responses:
                reaction = (t, entered)
        if started is None and mode != "SAFE_STOP":   # out of SAFE_STOP without its event: started anyway
            started = t
    return EpisodeScore(started, tuple(interventions), tuple(graded), onset_s, reaction)


def fault_of(faults: Sequence[str]) -> tuple[str, float, tuple[str, ...]]:
    """An episode's injected faults (episodes.jsonl "faults": ["kind@onset_s", ...]) -> (label: the kinds
    joined by "+", onset: the earliest (s since the episode start), responses: the modes whose entry
    counts as its detection: SAFE_STOP, and PLANNING or OPTIMISING too when every fault is obstacle_drop)."""
    from hjepa_agent.sim.faults import parse_faults

    parsed = parse_faults(",".join(faults))
    if not parsed:
        raise ValueError("no faults")
    kinds = sorted({f.kind for f in parsed})
    responses = ("SAFE_STOP", "PLANNING", "OPTIMISING") if kinds == ["obstacle_drop"] else ("SAFE_STOP",)
    return "+".join(kinds), min(f.onset_s for f in parsed), responses


def _delays(delays: list[float]) -> dict[str, float] | None:
    return ({"median": round(float(np.median(delays)), 3), "max": round(float(np.max(delays)), 3)}
            if delays else None)


def point_summary(values: Mapping[str, float], nominal: Sequence[EpisodeScore],
                  faulted: Sequence[tuple[str, EpisodeScore]]) -> dict[str, Any]:
    """One grid point's figures from its episode scores: false_rate (nominal episodes with a false alarm,
    EpisodeScore.false_alarm), detection_rate (faulted episodes with a reaction; None without any), the
    detection delays (s, median and max), and the same per fault label (``faulted``: (label, score))."""
    false = [s.false_alarm for s in nominal]
    det = [s.detected for _, s in faulted]
    by_kind: dict[str, dict[str, Any]] = {}
    for label in sorted({k for k, _ in faulted}):
        mine = [s for k, s in faulted if k == label]
        hit = sum(bool(s.detected) for s in mine)
        by_kind[label] = {"episodes": len(mine), "detected": hit, "rate": round(hit / len(mine), 4),
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


@dataclasses.dataclass
class _Run:
    """A recorded run, parsed once: the watchdog's inputs and journal, its sessions (= episodes, in
    order) and their episodes.jsonl lines."""

    path: Path
    inputs: dict[str, dict[int, deque]]
    journal: list[dict[str, Any]]
    sessions: list[str]
    episodes: list[dict[str, Any]]


def _load_run(path: Path, faulted: bool, remaps: Mapping[str, str]) -> _Run:
    """Parse the run directory ``path`` (run.mcap + episodes.jsonl, as `hjepa-agent sim` writes; the
    rosbag2 folder itself is taken too): the i-th journal session is the i-th episode."""
    path = Path(path)
    if path.name.endswith(".mcap") and not (path / "run.mcap").exists():
        bag, run_dir = path, path.parent
    else:
        bag, run_dir = path / "run.mcap", path
    if not bag.exists():
        raise FileNotFoundError(f"{path}: no run.mcap in it (a run directory written by hjepa-agent sim)")
    inputs, journal = read_run(bag, remaps)
    sessions = list(dict.fromkeys(e["session"] for e in journal))
    jsonl = run_dir / "episodes.jsonl"
    if jsonl.is_file():
        episodes = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    elif faulted:
        raise FileNotFoundError(f"{jsonl}: missing; a faulted run needs it (the episodes' faults and onsets)")
    else:
        episodes = [{} for _ in sessions]
    if len(sessions) < len(episodes):
        raise ValueError(f"{bag}: {len(sessions)} watchdog sessions in the journal but {len(episodes)} episodes in "
                         f"{jsonl}: cannot tell which session is which episode")
    if len(sessions) > len(episodes):   # the run was cut short in its last episode: it has no line
        log.warning("%s: %d sessions in the journal, %d episodes in %s: the last %d session(s) left out", bag,
                    len(sessions), len(episodes), jsonl, len(sessions) - len(episodes))
        sessions = sessions[:len(episodes)]
        keep = set(sessions)
        journal = [e for e in journal if e["session"] in keep]
    if faulted:
        for i, ep in enumerate(episodes):
            if not ep.get("faults"):
                raise ValueError(f"{jsonl}: episode {ep.get('episode', i)} has no \"faults\": a faulted run must "
                                 f"have a fault in every episode (hjepa-agent sim --faults)")
            try:
                fault_of(ep["faults"])
            except ValueError as exc:
                raise ValueError(f"{jsonl}: episode {ep.get('episode', i)}: faults {ep['faults']}: {exc}") from None
    return _Run(run_dir, inputs, journal, sessions, episodes)


def _replay_sessions(run: _Run, ctx: ReplayContext) -> tuple[dict[str, list[TickRecord]], int]:
    """Replay ``run`` with ``ctx``: each session's ticks (TickRecord), and the inputs missing from the bag."""
    per: dict[str, list[TickRecord]] = defaultdict(list)
    missing = 0
    for entry, _, out, _, miss in rerun(run.journal, run.inputs, ctx):
        per[entry["session"]].append((entry["tick"], out.mode.name, [(ev.kind, ev.text()) for ev in out.events]))
        missing += miss
    return per, missing


def _score_run(run: _Run, ctx: ReplayContext, faulted: bool) -> tuple[list[tuple[str, EpisodeScore]], int]:
    """(fault label or "", score) per episode of ``run`` replayed with ``ctx``; and the missing inputs."""
    per, missing = _replay_sessions(run, ctx)
    scores = []
    for session, ep in zip(run.sessions, run.episodes):
        if faulted:
            label, onset, responses = fault_of(ep["faults"])
            scores.append((label, score_episode(per[session], onset, responses)))
        else:
            scores.append(("", score_episode(per[session])))
    return scores, missing


def _timeline(run: _Run, session: str, ctx: ReplayContext) -> dict[str, Any]:
    """One episode replayed with ``ctx``, tick by tick (times in s since its first tick): ambiguity,
    habitual and plan clearance (m; NaN: none, or no obstacle in reach), speed_scale, mode, and the status
    values risk_z and charge where the core reports them; and the measured speed (recorded odom)."""
    from hjepa_agent.core.types import Mode

    journal = [e for e in run.journal if e["session"] == session]
    start, end = journal[0]["tick"], journal[-1]["tick"]
    rows: dict[str, list[float]] = defaultdict(list)
    extra: dict[str, list[tuple[float, float]]] = defaultdict(list)
    nan = float("nan")
    for entry, core, out, _, _ in rerun(journal, run.inputs, ctx):
        t = entry["tick"] - start
        hab, plan = core.clearances(entry["tick"])
        rows["t"].append(t)
        rows["ambiguity"].append(nan if core.ambiguity is None else core.ambiguity)
        rows["habitual_clearance_m"].append(nan if hab is None or not math.isfinite(hab) else hab)
        rows["plan_clearance_m"].append(nan if plan is None or not math.isfinite(plan) else plan)
        rows["speed_scale"].append(out.speed_scale)
        rows["mode"].append(int(out.mode))
        for name in ("risk_z", "charge"):
            v = out.readings.get(name)
            if v is not None and math.isfinite(v):
                extra[name].append((t, v))
    odom = sorted((ns * 1e-9 - start, m.twist.twist.linear.x) for ns, q in run.inputs.get("odom", {}).items()
                  if start <= ns * 1e-9 <= end for m in q)
    return {"rows": {k: np.asarray(v) for k, v in rows.items()}, "extra": dict(extra), "odom": odom,
            "modes": [m.name for m in Mode]}


def _plot_roc(points: list[dict[str, Any]], rec: int | None, alpha: float, path: Path) -> None:
    """roc.png: every grid point's nominal false-intervention rate against its detection rate."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.array([p["false_rate"] for p in points], dtype=np.float64)
    y = np.array([np.nan if p["detection_rate"] is None else p["detection_rate"] for p in points])
    fig, ax = plt.subplots(figsize=(6.0, 6.0))
    ax.scatter(x, np.nan_to_num(y), s=36, alpha=0.6, color="tab:blue", label=f"grid points ({len(points)})")
    ax.axvline(alpha, color="tab:red", ls="--", lw=1, label=f"alpha = {alpha:g}")
    if rec is not None:
        label = ", ".join(f"{k}={v:g}" for k, v in points[rec]["values"].items())
        ax.scatter([x[rec]], [np.nan_to_num(y[rec])], s=160, facecolors="none", edgecolors="tab:red", lw=2,
                   label=f"recommended: {label}")
    same: dict[tuple[float, float], int] = defaultdict(int)   # grid points on the same spot: say how many
    for xy in zip(x, np.nan_to_num(y)):
        same[xy] += 1
    for (px, py), k in same.items():
        if k > 1:
            ax.annotate(f"x{k}", (px, py), textcoords="offset points", xytext=(5, 5), fontsize=7)
    ax.set_xlabel("nominal false-intervention rate (episodes)")
    ax.set_ylabel("fault detection rate (episodes)" + ("" if np.isfinite(y).any() else ": no faulted runs"))
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), fontsize=8)
    ax.set_title("tune sweep: one point per threshold set")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_timeline(tl: dict[str, Any], cfg: WatchdogConfig, onset_s: float | None, title: str, path: Path) -> None:
    """timeline.png: stacked panels over the episode's time, the fault onset as a vertical line."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r, extra = tl["rows"], tl["extra"]
    n = 5 + bool(extra)
    fig, axes = plt.subplots(n, 1, figsize=(9.0, 1.9 * n), sharex=True)
    ax = axes[0]
    ax.plot(r["t"], r["ambiguity"], color="tab:purple", lw=1)
    ax.axhline(cfg.ambiguity_stop, color="tab:red", ls=":", lw=1, label=f"ambiguity_stop {cfg.ambiguity_stop:g}")
    ax.set_ylabel("ambiguity")
    ax = axes[1]
    ax.plot(r["t"], r["habitual_clearance_m"], lw=1, label="habitual")
    ax.plot(r["t"], r["plan_clearance_m"], lw=1, label="plan")
    ax.axhline(cfg.clearance_plan_m, color="tab:orange", ls=":", lw=1,
               label=f"clearance_plan_m {cfg.clearance_plan_m:g}")
    ax.axhline(cfg.clearance_optimise_m, color="tab:red", ls=":", lw=1,
               label=f"clearance_optimise_m {cfg.clearance_optimise_m:g}")
    ax.set_ylabel("clearance (m)")
    ax = axes[2]
    ax.plot(r["t"], r["speed_scale"], color="tab:green", lw=1)
    ax.set_ylabel("speed_scale")
    ax.set_ylim(-0.05, 1.05)
    ax = axes[3]
    ax.step(r["t"], r["mode"], where="post", color="k", lw=1)
    ax.set_yticks(range(len(tl["modes"])), tl["modes"], fontsize=7)
    ax.set_ylabel("mode")
    ax = axes[4]
    if tl["odom"]:
        od = np.asarray(tl["odom"])
        ax.plot(od[:, 0], od[:, 1], color="tab:blue", lw=1)
    ax.set_ylabel("odom v (m/s)")
    if extra:
        for name, pts in extra.items():
            xy = np.asarray(pts)
            axes[5].plot(xy[:, 0], xy[:, 1], lw=1, label=name)
        axes[5].set_ylabel("status values")
    for i, ax in enumerate(axes):
        if onset_s is not None:
            ax.axvline(onset_s, color="tab:red", lw=1.2, label=None if i else f"fault onset {onset_s:g} s")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper right", fontsize=7)
    axes[-1].set_xlabel("time since the episode's first watchdog tick (s)")
    axes[0].set_title("\n".join(textwrap.wrap(title, 110)), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def sweep(nominal: list[Path], faulted: list[Path], grid: str, ctx: ReplayContext, alpha: float,
          out: Path, timeline_episode: int | None = None, command: str = "", progress: bool = True,
          max_slowed: float | None = None) -> dict[str, Any]:
    """Replay the runs at every grid point (module doc) on top of ``ctx``'s thresholds, write sweep.json,
    roc.png and, when a point qualifies, recommended.yaml and timeline.png to ``out``; returns sweep.json's
    content (its "recommended": the index of the chosen point, or None)."""
    import yaml
    from tqdm import tqdm

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"tune sweep: --alpha must be in [0, 1], got {alpha}")
    base, ego, thresholds = ctx.cfg, ctx.ego, ctx.thresholds
    grid_points = parse_grid(grid, base, ego)
    runs = [(_load_run(p, f, ctx.remaps), f) for p, f in tqdm([(p, False) for p in nominal] + [(p, True) for p in faulted],
                                                   desc="read runs", unit="run", disable=not progress)]
    n_nom = sum(len(r.sessions) for r, f in runs if not f)
    if n_nom == 0:
        raise ValueError("tune sweep: the nominal runs have no episodes")
    # the timeline's candidates: the faulted episodes (the nominal ones without faulted runs), in order
    pool = ([(run, i) for run, f in runs if f for i in range(len(run.sessions))]
            or [(run, i) for run, f in runs if not f for i in range(len(run.sessions))])
    if timeline_episode is not None and not 0 <= timeline_episode < len(pool):
        raise ValueError(f"tune sweep: --timeline-episode {timeline_episode} is not one of the {len(pool)} "
                         f"{'faulted' if faulted else 'nominal'} episodes (0-based, across the runs in order)")
    points: list[dict[str, Any]] = []
    faulted_scores: list[list[EpisodeScore]] = []   # per point, the faulted episodes' scores in pool order
    bar = tqdm(total=len(grid_points) * len(runs), desc="sweep", unit="replay", disable=not progress)
    for values in grid_points:
        point = ctx.with_cfg(dataclasses.replace(base, **values))
        nom: list[EpisodeScore] = []
        flt: list[tuple[str, EpisodeScore]] = []
        false_ids: list[str] = []
        for run, is_faulted in runs:
            scores, missing = _score_run(run, point, is_faulted)
            if missing and not points:
                log.warning("%s: %d recorded inputs are missing from the bag: the replay is not the live run",
                            run.path, missing)
            if is_faulted:
                flt += scores
            else:
                nom += [s for _, s in scores]
                false_ids += [f"{run.path}#{i}" for i, (_, s) in enumerate(scores) if s.false_alarm]
            bar.update(1)
        points.append({**point_summary(values, nom, flt), "false_alarm_episodes": false_ids})
        faulted_scores.append([s for _, s in flt])
    bar.close()
    rec = recommend(points, alpha, {k: getattr(base, k) for k in grid_points[0]}, max_slowed)
    live = [{"run": str(run.path), "episode": ep.get("episode", i), "faults": ep["faults"],
             **{k: ep[k] for k in ("fault_detected", "detection_delay_s", "breach", "lead_s", "outcome") if k in ep}}
            for run, f in runs if f for i, ep in enumerate(run.episodes)]
    report: dict[str, Any] = {
        "command": command, "thresholds": str(thresholds), "ego_model": str(ctx.ego_model), "alpha": alpha,
        "max_slowed": max_slowed,
        "nominal": {"runs": [str(r.path) for r, f in runs if not f], "episodes": n_nom},
        "faulted": {"runs": [str(r.path) for r, f in runs if f], "episodes": len(live)},
        "episode_start": "the first watchdog journal tick of the episode's session (the watchdog starts within "
                         "a tick of the episode); fault onsets are counted from there",
        "grid": {k: sorted({p[k] for p in grid_points}) for k in grid_points[0]},
        "recommended": rec,
        "recommended_values": None if rec is None else points[rec]["values"],
        "points": points,
        "live_faulted_episodes": live,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(json.dumps(report, indent=2) + "\n")
    _plot_roc(points, rec, alpha, out / "roc.png")
    if rec is None:
        return report
    best = points[rec]
    doc = yaml.safe_load(Path(thresholds).read_text())
    doc.update(best["values"])
    det = ("no faulted runs" if best["detection_rate"] is None else
           f"detection rate {best['detection_rate']:.3f} ({best['detected_episodes']}/{len(live)} faulted episodes)")
    head = (f"# Written by hjepa-agent tune sweep: of {len(points)} grid points, the one with the highest fault\n"
            f"# detection among those whose nominal false-intervention rate is <= alpha {alpha:g}"
            + ("" if max_slowed is None else f" and that slow at most {max_slowed:g} of nominal episodes")
            + " (ties: lowest\n"
            f"# false rate, then closest to {thresholds}).\n"
            f"# Nominal false-intervention rate {best['false_rate']:.3f} ({best['false_episodes']}/{n_nom} episodes); "
            f"{det}.\n"
            f"# Swept: {', '.join(f'{k}={v:g}' for k, v in best['values'].items())}; the rest as in {thresholds}.\n"
            f"# Command: {command}\n# See config/watchdog.yaml for what each threshold means.\n")
    (out / "recommended.yaml").write_text(head + yaml.safe_dump(doc, sort_keys=False))
    # the timeline: one episode replayed with the recommended thresholds
    best_ctx = ctx.with_cfg(dataclasses.replace(base, **best["values"]))
    if timeline_episode is not None:
        pick = timeline_episode
    else:
        # the first faulted episode the recommended thresholds detect (else the first episode)
        pick = next((i for i, s in enumerate(faulted_scores[rec]) if s.detected), 0)
    run, i = pool[pick]
    onset = fault_of(run.episodes[i]["faults"])[1] if faulted else None
    what = f"faults {', '.join(run.episodes[i]['faults'])}" if faulted else "nominal"
    title = (f"{run.path} episode {run.episodes[i].get('episode', i)} ({what}); thresholds: "
             + ", ".join(f"{k}={v:g}" for k, v in best["values"].items()))
    _plot_timeline(_timeline(run, run.sessions[i], best_ctx), best_ctx.cfg, onset, title, out / "timeline.png")
    report["timeline"] = {"run": str(run.path), "episode": run.episodes[i].get("episode", i), "pool_index": pick}
    (out / "sweep.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def tune_main(argv: list[str] | None = None) -> int:
    import yaml

    from hjepa_agent.config.paths import data_path
    from hjepa_agent.dataset.bags import find_bags
    ap = argparse.ArgumentParser(prog="hjepa-agent tune", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    r = sub.add_parser("replay", help="re-run the watchdog on a recorded run with given thresholds")
    r.add_argument("--bag", type=Path, required=True, help="run.mcap written by hjepa-agent sim")
    c = sub.add_parser("calibrate", help="thresholds from nominal recorded runs, false alarms <= alpha (conformal)")
    c.add_argument("--runs", type=Path, nargs="+", required=True,
                   help="nominal runs: run dirs (every .mcap in them) or .mcap files; every episode counts")
    c.add_argument("--alpha", type=float, default=0.05, help="false-alarm rate per nominal episode to allow")
    c.add_argument("--stop-alpha", type=float, default=None,
                   help="the share of alpha for ambiguity_stop (SAFE_STOP); the re-plan's clearance gets the rest "
                        "of what is not set aside (default: half each)")
    c.add_argument("--other-rate", type=float, default=None,
                   help="rate of nominal interventions no calibrated threshold decides (stale inputs, the stall "
                        "rule), set aside from alpha; default: (episodes with one + 1) / (episodes + 1) in these runs")
    s = sub.add_parser("sweep", help="replay nominal and faulted runs over a grid of thresholds: false "
                       "interventions against detections; recommends the best set with false rate <= alpha")
    s.add_argument("--nominal", type=Path, nargs="+", required=True,
                   help="fault-free run directories (run.mcap + episodes.jsonl, from hjepa-agent sim)")
    s.add_argument("--faulted", type=Path, nargs="+", default=[],
                   help="run directories from hjepa-agent sim --faults (every episode with its faults)")
    s.add_argument("--grid", required=True, help='thresholds to sweep, "name=v1,v2,...;name2=..." over '
                   "WatchdogConfig fields (config/watchdog.yaml): every combination is replayed")
    s.add_argument("--alpha", type=float, default=0.05,
                   help="largest nominal false-intervention rate (per episode) a recommendation may have")
    s.add_argument("--max-slowed", type=float, default=None,
                   help="largest fraction of nominal episodes a recommendation may slow down with a graded response "
                        "(speed limited or slowed; not an intervention); default: --alpha")
    s.add_argument("--timeline-episode", type=int, default=None,
                   help="timeline.png for this episode (0-based across the --faulted runs in order; --nominal "
                        "without faulted runs); default: the first faulted episode the recommendation detects")
    s.add_argument("--out", type=Path, required=True,
                   help="directory for sweep.json, roc.png, recommended.yaml and timeline.png")
    s.add_argument("--quiet", action="store_true", help="no progress bars")
    for q in (r, c, s):
        q.add_argument("--thresholds", type=Path, default=data_path("config", "watchdog.yaml"),
                       help="watchdog thresholds YAML (default: the shipped config/watchdog.yaml)")
        q.add_argument("--models", type=Path, default=None,
                       help="models dir with the typical-risk network the watchdog ran with (its models_dir; "
                            "default: the package's models)")
        q.add_argument("--no-typical-risk", action="store_true",
                       help="replay without the typical-risk network (the watchdog's typical_risk: false)")
        q.add_argument("--ego-model", type=Path, default=data_path("config", "ego_model.yaml"))
        q.add_argument("--remap", action="append", default=[], metavar="TOPIC=RECORDED",
                       help="a watchdog input the robot launch remapped, e.g. camera/image_raw=/front_camera/image_raw "
                            "(repeatable); the recording's namespace is found from its journal topic")
    for q in (r, c):
        q.add_argument("--out", type=Path, default=None,
                       help="replay: also write the report (JSON) here; calibrate: the thresholds YAML to write")
    args = ap.parse_args(argv)
    remaps = {}
    for spec in args.remap:
        key, sep, val = spec.partition("=")
        if not sep or not key or not val:
            ap.error(f"--remap {spec!r}: expected TOPIC=RECORDED")
        remaps[key.strip("/")] = val
    try:
        check_remaps(remaps)
    except ValueError as exc:
        ap.error(str(exc))
    ctx = ReplayContext.load(args.thresholds, args.ego_model, args.models, not args.no_typical_risk, remaps)
    if args.what == "sweep":
        command = shlex.join(["hjepa-agent", "tune", *(sys.argv[1:] if argv is None else argv)])
        report = sweep(args.nominal, args.faulted, args.grid, ctx, args.alpha, args.out,
                       args.timeline_episode, command, progress=not args.quiet,
                       max_slowed=args.alpha if args.max_slowed is None else args.max_slowed)
        rec = report["recommended"]
        print(json.dumps({"out": str(args.out), "grid_points": len(report["points"]),
                          "nominal_episodes": report["nominal"]["episodes"],
                          "faulted_episodes": report["faulted"]["episodes"], "alpha": args.alpha,
                          "recommended": None if rec is None else report["points"][rec]}, indent=2))
        if rec is None:
            best = min(p["false_rate"] for p in report["points"])
            log.error("tune sweep: no grid point has a nominal false-intervention rate <= alpha %g (the lowest is "
                      "%.3f) with at most %g of nominal episodes slowed; wrote %s and %s, no recommended.yaml",
                      args.alpha, best, args.alpha if args.max_slowed is None else args.max_slowed,
                      args.out / "sweep.json", args.out / "roc.png")
            return 1
        return 0
    if args.what == "replay":
        report = replay(args.bag, ctx)
        text = json.dumps(report, indent=2)
        print(text)
        if args.out:
            args.out.write_text(text + "\n")
        return 0 if report["inputs_missing_from_bag"] == 0 else 1
    doc, report = calibrate(find_bags(args.runs), ctx, args.alpha, args.other_rate, args.stop_alpha)
    print(json.dumps(report, indent=2))
    if args.out:
        head = (f"# Written by hjepa-agent tune calibrate: alpha {args.alpha} over {report['episodes']} nominal "
                f"episodes\n# ({', '.join(report['runs'])}); calibrated: {', '.join(report['after'])}. "
                f"See config/watchdog.yaml for what each threshold means.\n")
        args.out.write_text(head + yaml.safe_dump(doc, sort_keys=False))
        print(f"wrote {args.out}")
    return 0


__all__ = ["GRADED", "INTERVENTIONS", "EpisodeScore", "calibrate", "conformal_upper", "fault_of", "parse_grid",
           "point_summary", "recommend", "replay", "score_episode", "sweep", "tune_main"]
