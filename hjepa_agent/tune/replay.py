"""``hjepa-agent tune replay --bag RUN.mcap [--thresholds FILE]``: the watchdog's core again, offline.

It re-runs the core on a run recorded by ``hjepa-agent sim`` (or a robot launch with the recorder)
along the watchdog node's journal (nodes/journal.py: which input it consumed when, by kind and header
stamp; the recorded messages supply their contents). With the thresholds the run used, every tick's
mode and events must come out as they did live (the report says whether they did, and where they first
differed); with other thresholds it shows what the watchdog would have done: its mode transitions,
interventions (SAFE_STOP and OPTIMISING entries) and ticks in each mode, against the live ones. (The
replay cannot show what the robot would then have done: the recorded inputs are those of the live run.)
It also times the core's decision (``Watchdog.tick``) at every tick: ``core_tick_ms``. A recording
made under a namespace (the robot launch with record:=true) is found from its journal's topic; inputs
the launch remapped are named with ``--remap TOPIC=RECORDED``.

For ``tune sweep``, a run directory (run.mcap + episodes.jsonl from ``hjepa-agent sim``) is parsed once
(:func:`load_run`) and its sessions replayed at every grid point (:func:`replay_sessions`). Its
episodes are matched to the journal by order: the i-th distinct journal session is episode i.
"""
from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from hjepa_agent.core.events import Transition
from hjepa_agent.core.types import Mode
from hjepa_agent.nodes.journal import Inputs, ReplayContext, read_run, rerun
from hjepa_agent.tune.scoring import INTERVENTIONS, TickRecord, fault_of

log = logging.getLogger(__name__)


def replay(bag: Path, ctx: ReplayContext) -> dict[str, Any]:
    """Re-run the watchdog on ``bag`` with ``ctx`` (module doc); returns the report."""
    inputs, journal = read_run(bag, ctx.remaps)
    sessions: set[str] = set()
    ticks = mismatched = missing = 0
    first_mismatch: dict[str, Any] | None = None
    tick_ms: list[float] = []
    live_ticks: dict[str, int] = defaultdict(int)
    replay_ticks: dict[str, int] = defaultdict(int)
    # the mode transitions, live and replayed, from each session's per-tick modes (the watchdog starts in
    # SAFE_STOP): (session, tick s, Transition)
    live_tr: list[tuple[str, float, Transition]] = []
    replay_tr: list[tuple[str, float, Transition]] = []
    last: dict[str, tuple[str, str]] = {}   # session -> (live mode, replayed mode) after its latest tick
    for entry, _, out, dt, miss in rerun(journal, inputs, ctx):
        sessions.add(entry["session"])
        missing += miss
        tick_ms.append(dt * 1e3)
        ticks += 1
        live_ticks[entry["mode"]] += 1
        replay_ticks[out.mode.name] += 1
        live_before, replay_before = last.get(entry["session"], (Mode.SAFE_STOP.name, Mode.SAFE_STOP.name))
        if entry["mode"] != live_before:
            live_tr.append((entry["session"], entry["tick"], Transition(live_before, entry["mode"])))
        if out.mode.name != replay_before:
            replay_tr.append((entry["session"], entry["tick"], Transition(replay_before, out.mode.name)))
        last[entry["session"]] = (entry["mode"], out.mode.name)
        # the identity check: the journal holds each tick's events as [kind, text]; equal text, nothing parsed
        events = [[ev.kind, list(ev.text())] for ev in out.events]
        if out.mode.name != entry["mode"] or events != entry["events"]:
            mismatched += 1
            if first_mismatch is None:
                first_mismatch = {"session": entry["session"], "tick_s": entry["tick"],
                                  "live": {"mode": entry["mode"], "events": entry["events"]},
                                  "replay": {"mode": out.mode.name, "events": events}}

    def entered(tr: list[tuple[str, float, Transition]]) -> dict[str, int]:
        return {m: sum(t[2].after == m for t in tr) for m in INTERVENTIONS}

    def episodes_with(tr: list[tuple[str, float, Transition]]) -> int:
        return len({t[0] for t in tr if t[2].after in INTERVENTIONS})

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
            "replay_transitions": [{"session": s, "stamp_s": t, "transition": str(tr)} for s, t, tr in replay_tr]}


@dataclass
class Run:
    """A recorded run, parsed once: the watchdog's inputs and journal, its sessions (= episodes, in
    order) and their episodes.jsonl lines."""

    path: Path
    inputs: Inputs
    journal: list[dict[str, Any]]
    sessions: list[str]
    episodes: list[dict[str, Any]]


def load_run(path: Path, faulted: bool, remaps: Mapping[str, str]) -> Run:
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
    return Run(run_dir, inputs, journal, sessions, episodes)


def replay_sessions(run: Run, ctx: ReplayContext) -> tuple[dict[str, list[TickRecord]], int]:
    """Replay ``run`` with ``ctx``: each session's ticks (TickRecord), and the inputs missing from the bag."""
    per: dict[str, list[TickRecord]] = defaultdict(list)
    missing = 0
    for entry, _, out, _, miss in rerun(run.journal, run.inputs, ctx):
        per[entry["session"]].append(TickRecord(entry["tick"], out.mode, tuple(out.events),
                                                int(out.readings["graded_level"])))
        missing += miss
    return per, missing


def timeline(run: Run, session: str, ctx: ReplayContext) -> dict[str, Any]:
    """One episode replayed with ``ctx``, tick by tick (times in s since its first tick): ambiguity,
    habitual and plan clearance (m; NaN: none, or no obstacle in reach), speed_scale, mode, and the status
    values risk_z and charge where the core reports them; and the measured speed (recorded odom)."""
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


__all__ = ["Run", "load_run", "replay", "replay_sessions", "timeline"]
