"""``hjepa-agent tune``: the watchdog's thresholds, judged on recorded runs (issue 5).

The command line of replay (replay.py), calibrate (calibrate.py) and sweep (sweep.py); each module's
docstring says what its command does.
"""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path

from hjepa_agent.nodes.journal import ReplayContext, check_remaps
from hjepa_agent.tune.calibrate import calibrate
from hjepa_agent.tune.replay import replay
from hjepa_agent.tune.sweep import sweep

log = logging.getLogger("hjepa_agent.tune")


def tune_main(argv: list[str] | None = None) -> int:
    """``hjepa-agent tune replay|calibrate|sweep``: parse ``argv``, run the command, print its report;
    returns the exit status."""
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


__all__ = ["tune_main"]
