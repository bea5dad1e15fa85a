"""``hjepa-agent tune calibrate --runs DIR... --alpha A --out FILE``: thresholds from nominal runs.

It sets thresholds from nominal recorded runs (every episode in them exchangeable and fault-free) so
that interventions fire in at most a fraction ``alpha`` of nominal episodes. Some interventions are not
decided by a threshold calibrate sets (a stale input, a limit, the stall rule's OPTIMISING): the
episodes where the replay has one are counted, their rate taken as (count + 1) / (n + 1) (or
``--other-rate``) and set aside. The rest, alpha', is split over the two scores below, alpha'/2 each (or
``--stop-alpha`` for the stop and the rest for the re-plan: a false stop costs more), by split
conformal: with n episodes and a score's share a, the ceil((n+1)(1-a))-th smallest episode score, which
needs n >= 1/a - 1 (59 for 5 %, where nothing else happened and 1/(n+1) is set aside):

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
"""
from __future__ import annotations

import math
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

import numpy as np

from hjepa_agent.nodes.journal import ReplayContext, started_ticks
from hjepa_agent.tune.scoring import INTERVENTIONS, calibrated_intervention, conformal_upper, split_alpha


def calibrate(bags: list[Path], ctx: ReplayContext, alpha: float,
              other_rate: float | None = None, stop_alpha: float | None = None) -> tuple[dict[str, Any], dict]:
    """Thresholds from nominal recorded runs (every session in ``bags`` an exchangeable nominal
    episode) so that each intervention the watchdog decides from a score fires in at most ``alpha``
    of nominal episodes (split conformal, per score; module doc), replayed with ``ctx`` (whose
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
                    and not calibrated_intervention(ev)):
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


__all__ = ["calibrate"]
