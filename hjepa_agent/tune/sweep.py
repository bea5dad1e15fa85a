"""``hjepa-agent tune sweep``: false interventions against detections over a grid of thresholds.

``tune sweep --nominal RUN... [--faulted RUN...] --grid "name=v1,v2;name2=..." [--alpha A] --out DIR``
replays run directories (run.mcap + episodes.jsonl from ``hjepa-agent sim``; ``--faulted`` ones from
``sim --faults``) at every point of a grid of thresholds (the cartesian product of the values given,
each a WatchdogConfig field, on top of ``--thresholds``). Each bag is read once; every grid point
replays every run. Per grid point:

* the nominal false-intervention rate: the fraction of nominal episodes with an intervention (an entry
  of SAFE_STOP or OPTIMISING) after the start-up (the watchdog starts in SAFE_STOP: leaving it the
  first time is not one), or with no start-up at all (a watchdog that never lets the robot go);
* the detection rate: the fraction of faulted episodes detected by the judge's definition, as live
  (harness/judge.py): the first typed causes at or after the fault's onset (the earliest, if several)
  name it; a kind no cause names (obstacle_drop) is detected by the watchdog's response (SAFE_STOP
  entered, deliberating, or a graded slow-down raised). Only the watchdog core's events are replayed,
  so a fault only an input guard or the planner names goes unnamed here. With the delay (detection -
  onset) median and max, overall and per fault kind, and per kind the episodes named wrongly.

An episode's start is taken as the first journal tick of its session (approximation: the watchdog
starts within a tick of the episode; episodes match sessions by order, replay.load_run), and the onsets
in episodes.jsonl (s since the episode start) are counted from there. Lead time (detection to breach)
cannot come from a replay, which cannot show a breach that did not happen live: the live "breach" and
"lead_s" of each faulted episode are copied as recorded.

Recommended: among the points whose false-intervention rate is <= alpha and which slow down (a graded
response: speed limited or slowed) at most ``--max-slowed`` of the nominal episodes (default alpha;
a slowdown is not an intervention, but a watchdog that slows every other run is not a good one), the
one with the highest detection rate (ties: the lowest false rate, then the closest to ``--thresholds``):
DIR/recommended.yaml (``--thresholds`` with the swept keys replaced, a header saying how and with what
rates). Also DIR/sweep.json (every point: values, rates, per fault kind), DIR/roc.png (false rate
against detection rate, alpha as a line) and DIR/timeline.png (one episode replayed with the recommended
thresholds: ambiguity, clearances, speed scale, mode, measured speed, fault onset). No point within
alpha: it says so, writes sweep.json and roc.png only, and exits 1.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import yaml

from hjepa_agent.nodes.journal import ReplayContext
from hjepa_agent.tune.plots import plot_roc, plot_timeline
from hjepa_agent.tune.replay import Run, load_run, replay_sessions, timeline
from hjepa_agent.tune.scoring import EpisodeScore, fault_of, parse_grid, point_summary, recommend, score_episode

log = logging.getLogger(__name__)


def score_run(run: Run, ctx: ReplayContext, faulted: bool) -> tuple[list[tuple[str, EpisodeScore]], int]:
    """(fault label or "", score) per episode of ``run`` replayed with ``ctx``; and the missing inputs."""
    per, missing = replay_sessions(run, ctx)
    scores = []
    for session, ep in zip(run.sessions, run.episodes):
        if faulted:
            label, onset, kinds = fault_of(ep["faults"])
            scores.append((label, score_episode(per[session], onset, kinds)))
        else:
            scores.append(("", score_episode(per[session])))
    return scores, missing


def sweep(nominal: list[Path], faulted: list[Path], grid: str, ctx: ReplayContext, alpha: float,
          out: Path, timeline_episode: int | None = None, command: str = "", progress: bool = True,
          max_slowed: float | None = None) -> dict[str, Any]:
    """Replay the runs at every grid point (module doc) on top of ``ctx``'s thresholds, write sweep.json,
    roc.png and, when a point qualifies, recommended.yaml and timeline.png to ``out``; returns sweep.json's
    content (its "recommended": the index of the chosen point, or None)."""
    from tqdm import tqdm

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"tune sweep: --alpha must be in [0, 1], got {alpha}")
    base, ego, thresholds = ctx.cfg, ctx.ego, ctx.thresholds
    grid_points = parse_grid(grid, base, ego)
    runs = [(load_run(p, f, ctx.remaps), f)
            for p, f in tqdm([(p, False) for p in nominal] + [(p, True) for p in faulted], desc="read runs", unit="run",
                             disable=not progress)]
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
            scores, missing = score_run(run, point, is_faulted)
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
    plot_roc(points, rec, alpha, out / "roc.png")
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
    plot_timeline(timeline(run, run.sessions[i], best_ctx), best_ctx.cfg, onset, title, out / "timeline.png")
    report["timeline"] = {"run": str(run.path), "episode": run.episodes[i].get("episode", i), "pool_index": pick}
    (out / "sweep.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


__all__ = ["score_run", "sweep"]
