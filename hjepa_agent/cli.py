"""hjepa-agent: the command line. Verbs: sim (run the agent in PyBullet), rehearse (the agent as on a robot,
one process per node, against the simulator acting as the robot's drivers), check (a bring-up check of a
robot's topics, frames and models before the agent starts), record (record a running agent's
topics to an MCAP rosbag2), dataset (recordings or simulator roll-outs -> a training dataset), train (fit
and export models, from datasets or the simulator), eval (judge trained models on held-out data),
tune (the watchdog's thresholds on recordings), bench (measurements that are not tests), security (an
SROS2 policy for a robot)."""
from __future__ import annotations

import argparse
import faulthandler
import json
import logging
import signal
import sys
from pathlib import Path

from hjepa_agent.config.loader import ConfigError
from hjepa_agent.core.models import ModelMismatchError


def _sim(args: argparse.Namespace) -> int:
    from hjepa_agent.harness.runner import RunConfig, run
    from hjepa_agent.sim.faults import parse_faults

    faults = parse_faults(args.faults or "")
    if bool(args.scenario) == bool(args.layouts):
        raise SystemExit("hjepa-agent sim: give --scenario FILE|DIR or --layouts procedural (not both)")
    cfg = RunConfig(scenarios=tuple(Path(s) for s in args.scenario or ()), episodes=args.episodes, seed=args.seed,
                    split=args.split if args.layouts else None,
                    families=tuple(f for f in (args.families or "").split(",") if f),
                    out=Path(args.out), gui=args.gui, params_file=tuple(args.params) if args.params else None,
                    ego_model=args.ego_model,
                    robot=args.robot, record=not args.no_record, faults=tuple(faults),
                    fault_per_episode="suite" in (args.faults or ""), watchdog_off=args.watchdog == "off")
    try:
        summary = run(cfg, progress=not args.quiet)
    except KeyboardInterrupt:   # Ctrl-C: the run closed its recording and nodes on the way out
        logging.getLogger("hjepa_agent").error("interrupted: the finished episodes are in %s/episodes.jsonl"
                                               "%s; no summary", args.out, "" if args.no_record else " and run.mcap")
        return 130
    brief = {k: summary[k] for k in ("episodes", "successes", "success_rate", "collisions", "limit_violations",
                                     "mean_time_to_goal_s", "cmd_latency_ms", "mode_time_fraction", "safe_stops",
                                     "safe_stop_episodes", "by_family", "lockstep_misses", "lost_messages", "node_failures", "foreign_commands", "rss_mb",
                                     "faults") if k in summary}
    if "reflex_path_ms" in summary:   # camera -> cmd_vel: the habitual policy's answers, and those of a plan
        brief["reflex_ms"] = {k: summary["reflex_path_ms"][k] for k in ("reflex", "answered_by_plan")}
    print(json.dumps(brief, indent=2))
    print(f"wrote {args.out}/summary.json, episodes.jsonl, trajectories.png" + ("" if args.no_record else ", run.mcap"))
    return 0


def _rehearse(args: argparse.Namespace) -> int:
    from hjepa_agent.config.paths import data_path
    from hjepa_agent.harness.rehearse import RehearsalConfig, run

    scenarios = tuple(Path(s) for s in (args.scenario or [data_path("config", "scenarios")]))
    cfg = RehearsalConfig(profile=args.profile, scenarios=scenarios, episodes=args.episodes, seed=args.seed,
                          out=Path(args.out))

    def _terminate(signum, frame):   # SIGTERM as Ctrl-C: the episode's node processes are stopped on the way out
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    try:
        summary = run(cfg, progress=not args.quiet)
    except KeyboardInterrupt:
        logging.getLogger("hjepa_agent").error("interrupted: the finished episodes are in %s/episodes.jsonl; "
                                               "no summary", args.out)
        return 130
    brief = {k: summary[k] for k in ("profile", "episodes", "successes", "success_rate", "collisions",
                                     "limit_violations", "mean_time_to_goal_s", "cmd_latency_ms",
                                     "mode_time_fraction", "safe_stops", "node_failures", "foreign_commands",
                                     "realtime_factor_p50", "realtime_factor_min") if k in summary}
    print(json.dumps(brief, indent=2))
    print(f"wrote {args.out}/summary.json, episodes.jsonl, logs/")
    return 0


def _check(args: argparse.Namespace) -> int:
    import tempfile

    from hjepa_agent.harness.check import CheckSetup, parse_remap, run_check, setup_for_profile
    from hjepa_agent.core.bringup_report import render, report_json

    given = {"namespace": args.namespace, "params_files": tuple(str(p) for p in args.params or ()),
             "ego_model": args.ego_model and str(args.ego_model), "robot": args.robot and str(args.robot),
             "remaps": tuple(parse_remap(r) for r in args.remap or ()), "duration_s": args.duration,
             "models_dir": args.models_dir and str(args.models_dir)}
    with tempfile.TemporaryDirectory(prefix="hjepa_check_") as work:
        if args.profile is not None:
            setup = setup_for_profile(args.profile, Path(work), **given)
        else:
            setup = CheckSetup(**{k: v for k, v in given.items() if v is not None})
        report = run_check(setup)
    print(render(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report_json(report), indent=2) + "\n")
        print(f"wrote {args.json}")
    return report.exit_code


def _record(args: argparse.Namespace, ros_args: list[str]) -> int:
    from hjepa_agent.nodes.recorder import record

    try:
        result = record(args.out, args.duration, namespace=args.namespace, ros_args=ros_args,
                        progress=not args.quiet)
    except FileExistsError as exc:
        logging.getLogger("hjepa_agent").error("%s", exc)
        return 2
    print(json.dumps(result, indent=2))
    print(f"wrote {result['bag']}")
    return 0


def _positive_s(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0 s, got {text}")
    return value


def _bench_planners(args: argparse.Namespace) -> int:
    from hjepa_agent.harness.bench_planners import bench
    from hjepa_agent.config.ego_model import load_ego_model
    from hjepa_agent.config.paths import data_path

    ego = load_ego_model(args.ego_model or data_path("config", "ego_model.yaml"))
    groups = None
    if args.layouts:   # one episode per layout; --episodes layouts, the families in turn
        from hjepa_agent.sim.layouts import layout_ids, make_layout
        ids = layout_ids(args.split, args.episodes, args.seed)
        files = [make_layout(lid, ego) for lid in ids]
        groups = {lid.name: lid.family for lid in ids}
        episodes = 1
    else:
        scen = Path(args.scenario) if args.scenario else data_path("config", "scenarios")
        files = sorted(scen.glob("*.yaml")) if scen.is_dir() else [scen]
        episodes = args.episodes
    result = bench(args.planners.split(","), files, episodes, args.seed,
                   args.robot or data_path("config", "robots", "diffbot.yaml"), ego, progress=not args.quiet,
                   models_dir=args.models_dir, refine=args.refine, deadline_ms=args.deadline_ms, samples=args.samples,
                   hierarchy=args.hierarchy, groups=groups)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


def _bench(args: argparse.Namespace) -> int:
    if args.what == "planners":
        return _bench_planners(args)
    if args.what == "latency":
        from hjepa_agent.harness.bench_latency import bench as bench_latency
        from hjepa_agent.config.paths import data_path
        scen = Path(args.scenario) if args.scenario else data_path("config", "scenarios")
        result = bench_latency((scen,), args.episodes, args.seed, Path(args.out) if args.out else None,
                               progress=not args.quiet)
        print(json.dumps(result, indent=2))
        return 0
    import rclpy

    from hjepa_agent.config.ego_model import load_ego_model
    from hjepa_agent.nodes.node_table import load_params
    from hjepa_agent.config.paths import data_path
    from hjepa_agent.harness.runner import feeder_loss, isolate_dds

    isolate_dds()
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        result = feeder_loss(ctx, feeder=args.feeder)
    finally:
        rclpy.shutdown(context=ctx)
    params = load_params(data_path("config", "agent.yaml"))
    bridge = params["bridge"]
    lin = load_ego_model(data_path("config", "ego_model.yaml")).hard.kinematics.linear_x
    if args.feeder == "bridge":   # the watchdog notices the silence, then sends its ramp at its next tick
        from hjepa_agent.core.watchdog import load_watchdog_config
        wd = load_watchdog_config(data_path("config", "watchdog.yaml"))
        tick_hz = float(params.get("watchdog", {}).get("tick_hz", 20.0))
        result["bound_decel_start_after_kill_s"] = wd.bridge_max_age_s + 1.0 / tick_hz
    else:
        result["bound_decel_start_s"] = bridge["source_timeout_s"] + 1.0 / bridge["rate_hz"]
    result["limit_decel_mps2"] = lin.max_decel
    print(json.dumps(result, indent=2))
    return 0


def _train(args: argparse.Namespace, rest: list[str]) -> int:
    if args.what == "habitual":
        from hjepa_agent.train.habitual import train_main
    elif args.what == "planner":
        from hjepa_agent.train.planner_gfn import train_main
    elif args.what == "subgoals":
        from hjepa_agent.train.subgoal_gfn import train_main
    elif args.what == "typical-risk":
        from hjepa_agent.train.typical_risk import train_main
    elif args.what == "fingerprint":
        from hjepa_agent.train.manifest import stamp_main as train_main
    else:
        from hjepa_agent.train.world_model import train_main
    return int(train_main(rest) or 0)


def _dataset(argv: list[str]) -> int:
    """``hjepa-agent dataset build|collect|info``: each subcommand's options are its module's."""
    ap = argparse.ArgumentParser(prog="hjepa-agent dataset", description="training datasets (docs/datasets.md)")
    sub = ap.add_subparsers(dest="what", required=True)
    from hjepa_agent.dataset.build import add_build_arguments
    add_build_arguments(sub.add_parser("build", help="recordings (rosbag2/MCAP) -> a dataset"))
    c = sub.add_parser("collect", help="simulator expert roll-outs -> a dataset, spread over Ray workers")
    from hjepa_agent.dataset.collect import add_arguments
    add_arguments(c)
    i = sub.add_parser("info", help="what a dataset holds")
    i.add_argument("dataset", type=Path)
    args = ap.parse_args(argv)
    if args.what == "build":
        from hjepa_agent.dataset.build import build_main
        return build_main(args)
    if args.what == "collect":
        from hjepa_agent.dataset.collect import collect_main
        return collect_main(args)
    from hjepa_agent.dataset.format import describe, open_dataset
    print(describe(open_dataset(args.dataset)))
    return 0


def _eval(args: argparse.Namespace, rest: list[str]) -> int:
    from hjepa_agent.train.eval_world_model import eval_main
    return int(eval_main(rest) or 0)


def _stacks_on_sigusr1() -> None:
    """`kill -USR1 PID` prints every thread's stack on stderr (where a long run waits), when stderr is a file
    (not where it is captured in memory: a test's capsys)."""
    if not hasattr(signal, "SIGUSR1"):
        return
    try:
        faulthandler.register(signal.SIGUSR1, file=sys.stderr.fileno(), all_threads=True)
    except (AttributeError, OSError, ValueError):   # io.UnsupportedOperation is both OSError and ValueError
        pass


def main(argv: list[str] | None = None) -> int:
    """Entry point of the hjepa-agent console script."""
    parser = argparse.ArgumentParser(prog="hjepa-agent", description=__doc__)
    sub = parser.add_subparsers(dest="verb", required=True)
    p = sub.add_parser("sim", help="run the agent in PyBullet (all nodes in one process, real DDS)")
    p.add_argument("--scenario", action="append", default=None,
                   help="scenario YAML or a folder of them (repeatable)")
    p.add_argument("--layouts", choices=["procedural"], default=None,
                   help="instead of --scenario: procedural layouts (sim/layouts.py), one per episode, the families "
                        "in turn; --seed is the first layout index of each family and the first episode seed")
    p.add_argument("--split", choices=["train", "val", "test"], default="test", help="--layouts: which split")
    p.add_argument("--families", default=None, help="--layouts: comma-separated families (default all: rooms, "
                                                     "corridor, gap, dead_end, clutter, long_wall, goal_behind)")
    p.add_argument("--episodes", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/latest")
    p.add_argument("--gui", action="store_true", help="open the PyBullet GUI")
    p.add_argument("--params", type=Path, action="append", default=None,
                   help="ros__parameters YAML (default config/agent.yaml); repeat to apply several in order "
                        "(a robot's own overlay after config/agent.yaml)")
    p.add_argument("--ego-model", type=Path, default=None, help="ego model YAML (default config/ego_model.yaml)")
    p.add_argument("--robot", type=Path, default=None, help="robot description YAML (default config/robots/diffbot.yaml)")
    p.add_argument("--no-record", action="store_true", help="skip the MCAP recording")
    p.add_argument("--watchdog", choices=["on", "off"], default="on",
                   help="off: the watchdog decides but does not enforce (mode HABITUAL, full speed): the fault "
                        "suite's comparison; the bridge's own limits and staleness stops stay")
    p.add_argument("--faults", default=None,
                   help="inject faults: kind@onset_s[:magnitude],... into every episode, or 'suite' (every kind) / "
                        "'suite_new' (the kinds added for fault containment): one kind per episode in turn. Kinds: "
                        "camera_blackout, camera_frozen, sensor_delay, battery_sag, overheating, obstacle_drop, "
                        "wheel_slip, clock_back, clock_forward, clock_back_blind, clock_negative, foreign_cmd_20, "
                        "foreign_cmd_100, odom_jump, far_goal, goal_in_obstacle, nan_flood, estop_storm "
                        "(hjepa_agent/sim/faults.py)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    h = sub.add_parser("rehearse", help="the agent as on a robot (one process per node, wall clock, no lockstep) "
                                         "against the simulator acting as the robot's drivers (a driver profile)")
    h.add_argument("--profile", type=Path, required=True, help="driver profile YAML (config/profiles/*.yaml)")
    h.add_argument("--scenario", action="append", default=None,
                   help="scenario YAML or folder (repeatable; default config/scenarios)")
    h.add_argument("--episodes", type=int, default=4)
    h.add_argument("--seed", type=int, default=0)
    h.add_argument("--out", default="runs/rehearsal")
    h.add_argument("--quiet", action="store_true", help="no progress bar")
    k = sub.add_parser("check", help="bring-up check on the robot's DDS domain before the agent starts: every input "
                                     "the agent needs (topic, type, rate, age, frames, format), cmd_vel's subscriber "
                                     "and the models' fingerprint; exit 1 while anything required fails",
                       description="Resolves the agent's robot-facing topics as robot.launch.py would start it "
                                   "(namespace, params files, remaps), listens --duration seconds on this "
                                   "ROS_DOMAIN_ID, judges each input against the agent's parameters and the ego "
                                   "model, and says the remap or parameter that fixes each problem "
                                   "(hjepa_agent/harness/check.py).")
    k.add_argument("--profile", type=Path, default=None,
                   help="driver profile YAML: fills the others as `hjepa-agent rehearse` would run the agent")
    k.add_argument("--namespace", default=None, help="the agent's namespace (as robot.launch.py namespace:=)")
    k.add_argument("--params", type=Path, action="append", default=None,
                   help="ros__parameters YAML, repeatable, in order (default config/agent.yaml)")
    k.add_argument("--ego-model", type=Path, default=None, help="ego model YAML (default config/ego_model.yaml)")
    k.add_argument("--robot", type=Path, default=None,
                   help="robot description YAML (default: each node's robot parameter, else "
                        "config/robots/diffbot.yaml)")
    k.add_argument("--remap", action="append", default=None, metavar="TOPIC:=NAME",
                   help="a robot-facing topic's name on this robot (repeatable), as robot.launch.py's *_topic "
                        "arguments: e.g. battery_state:=platform/bms/state")
    k.add_argument("--duration", type=_positive_s, default=3.0, help="seconds to listen (default 3)")
    k.add_argument("--models-dir", type=Path, default=None, help="models directory for every node (default: each "
                                                                   "node's models_dir, else the package's models/)")
    k.add_argument("--json", type=Path, default=None, help="also write the report as JSON here")
    r = sub.add_parser("record", help="record the topics of whatever runs on this DDS domain (ROS_DOMAIN_ID) to an "
                                      "MCAP rosbag2, until --duration or Ctrl-C",
                       description="Runs the recorder node (nodes/recorder.py) standalone: its topics resolved under "
                                   "--namespace, written to --out with a running message count. Arguments after "
                                   "--ros-args go to the node (e.g. --ros-args -r odom:=/wheel/odom).")
    r.add_argument("--out", type=Path, default=None,
                   help="bag directory (default: hjepa_run_<UTC time> here); an existing non-empty one is refused, "
                        "never overwritten")
    r.add_argument("--duration", type=_positive_s, default=None, help="stop after this many seconds (default: Ctrl-C)")
    r.add_argument("--namespace", default="", help="the agent's namespace (as robot.launch.py namespace:=)")
    r.add_argument("--quiet", action="store_true", help="no progress line")
    # train/eval: --help goes through to the trainer's or evaluator's own options
    t = sub.add_parser("train", help="collect data in sim, train in torch, export ONNX + manifest", add_help=False)
    t.add_argument("what", choices=["habitual", "world-model", "planner", "subgoals", "typical-risk", "fingerprint"],
                   help="habitual: encoder + habitual policy (BC + DAgger); world-model: JEPA encoder + "
                        "predictor ensemble (self-supervised); planner: GFlowNet planner (trajectory "
                        "balance); subgoals: the planner's slow level (routes of subgoals, learned P_B); "
                        "typical-risk: the watchdog's typical risk from nominal recorded runs (--runs); "
                        "each trains for --robot and --ego-model (default: the sample diffbot) and records "
                        "their fingerprint in the manifest; fingerprint: maintainer step, re-stamp an existing "
                        "manifest with the fingerprint of the robot its models were trained on, without "
                        "retraining; further options go to the trainer (--help)")
    sub.add_parser("dataset", add_help=False,
                   help="training datasets: build (from recordings), collect (simulator, Ray workers), info")
    e = sub.add_parser("eval", help="evaluate trained models on held-out data", add_help=False)
    e.add_argument("what", choices=["world-model"], help="world-model: prediction error, probes, calibration, OOD")
    u = sub.add_parser("tune", help="the watchdog's thresholds on recorded runs (replay, calibrate, sweep)",
                       add_help=False)
    u.add_argument("what", choices=["replay", "calibrate", "sweep"],
                   help="replay: re-run the watchdog on a recorded run; calibrate: thresholds from nominal runs "
                        "(conformal); sweep: a grid of thresholds on nominal and faulted runs; options: --help")
    b = sub.add_parser("bench", help="measurements that are not tests")
    b.add_argument("what", choices=["feeder-loss", "planners", "latency"],
                   help="feeder-loss: kill the node feeding the bridge mid-run, measure cmd_vel on the wire; "
                        "planners: each planner drives alone in the sim (success, latency, calls, route diversity); "
                        "latency: the reflex path camera -> cmd_vel per hop, timed as the nodes publish, beside the "
                        "executor's floor measured in the same run (hjepa_agent/harness/bench_latency.py)")
    b.add_argument("--feeder", default="habitual", choices=["habitual", "bridge"],
                   help="node to kill while driving in HABITUAL: habitual (the bridge stops on its silence) or "
                        "bridge (the watchdog stops the base alone)")
    b.add_argument("--planners", default="cem,mppi", help="planners: comma-separated (cem, mppi, gflownet)")
    b.add_argument("--models-dir", type=Path, default=None, help="planners: models dir for gflownet")
    b.add_argument("--scenario", default=None, help="planners: scenario YAML or folder (default config/scenarios)")
    b.add_argument("--episodes", type=int, default=5, help="planners: episodes per scenario (with --layouts: layouts)")
    b.add_argument("--layouts", choices=["procedural"], default=None,
                   help="planners: procedural layouts (sim/layouts.py) instead of --scenario, one episode each, "
                        "the families in turn, summarised per family; --seed is the first layout index")
    b.add_argument("--split", choices=["train", "val", "test"], default="test", help="planners: --layouts split")
    b.add_argument("--seed", type=int, default=0, help="planners: first episode seed")
    b.add_argument("--robot", type=Path, default=None, help="planners: robot description YAML")
    b.add_argument("--ego-model", type=Path, default=None, help="planners: ego model YAML")
    b.add_argument("--refine", action="store_true", help="planners: every call in the optimisation mode")
    b.add_argument("--hierarchy", action="store_true",
                   help="planners: the two-level planner (slow subgoal GFlowNet over each planner)")
    b.add_argument("--deadline-ms", type=float, default=60.0, help="planners: deadline per decision (ms)")
    b.add_argument("--samples", type=int, default=None, help="planners: N samples (default: the node's)")
    b.add_argument("--out", default=None, help="planners: also write the JSON here; latency: keep the run here")
    b.add_argument("--quiet", action="store_true", help="planners: no progress bar")
    c = sub.add_parser("security", help="an SROS2 access-control policy for the agent, from its topic table")
    c.add_argument("what", choices=["policy"], help="policy: one enclave per node, allowed to publish what it owns "
                   "and subscribe to its inputs (docs/safety.md has the recipe)")
    c.add_argument("--namespace", default="", help="the agent's namespace (as robot.launch.py namespace:=)")
    c.add_argument("--out", type=Path, default=None, help="write the XML here (default: standard output)")
    args, rest = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    _stacks_on_sigusr1()
    try:
        if args.verb == "sim":
            if rest:
                parser.error(f"unrecognized arguments: {' '.join(rest)}")
            return _sim(args)
        if args.verb == "rehearse":
            if rest:
                parser.error(f"unrecognized arguments: {' '.join(rest)}")
            return _rehearse(args)
        if args.verb == "check":
            if rest:
                parser.error(f"unrecognized arguments: {' '.join(rest)}")
            return _check(args)
        if args.verb == "record":
            if rest and rest[0] != "--ros-args":
                parser.error(f"unrecognized arguments: {' '.join(rest)}")
            return _record(args, rest)
        if args.verb == "bench":
            return _bench(args)
        if args.verb == "security":
            from hjepa_agent.nodes.security import policy_xml
            xml = policy_xml(args.namespace)
            if args.out is None:
                sys.stdout.write(xml)
            else:
                args.out.write_text(xml)
                print(f"wrote {args.out}")
            return 0
        if args.verb == "eval":
            return _eval(args, rest)
        if args.verb == "dataset":
            return _dataset(rest)
        if args.verb == "tune":
            from hjepa_agent.tune.cli import tune_main
            return int(tune_main([args.what, *rest]) or 0)
        return _train(args, rest)
    except (ConfigError, ModelMismatchError, FileNotFoundError, ValueError) as exc:   # DatasetError, BagRefused too
        logging.getLogger("hjepa_agent").error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
