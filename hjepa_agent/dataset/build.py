"""``hjepa-agent dataset build|info``: recordings -> a dataset (bags.py, format.py), and what one holds.

``build`` writes every recording's episodes as it reads them and refuses the whole build (removing
what it wrote, exit 2) when any recording has a problem (bags.py: unreadable, a required topic absent,
camera gaps, stale inputs, frames it cannot place), listing each with its bag, topic and time; with
``--allow-gaps`` gaps and stale inputs cut their episode instead and are kept in meta/problems.jsonl
(an unreadable bag or a missing topic is refused either way). A recording with the watchdog's journal
(agent/watchdog/journal, as the agent records it) also gives the typical-risk trainer its table,
risk/ticks.parquet: the watchdog's core re-run along the journal (train/typical_risk.py collect).
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from hjepa_agent.dataset.bags import BagRefused, BuildOptions, DEFAULT_TOPICS, episodes_from_bag, find_bags
from hjepa_agent.dataset.format import FEATURES, DatasetError, discard, finalize, prepare_out, write_episode

log = logging.getLogger(__name__)
REPLAYED = ("camera", "scan", "odom", "cmd_vel")
"""Roles whose --topic remap the watchdog's replay (the risk table) applies too (nodes/journal.ReplayContext remaps)."""
RISK_TABLE = Path("risk") / "ticks.parquet"
"""Where a dataset keeps the typical-risk trainer's ticks (features, target logits, group)."""


def _has_journal(bag: Path) -> bool:
    from rosbags.rosbag2 import Reader

    from hjepa_agent.nodes.journal import JOURNAL
    with Reader(bag) as r:
        return any(c.topic.endswith("/" + JOURNAL) and c.msgcount for c in r.connections)


def risk_rows(bags: list[Path], thresholds: Path, ego_model: Path, progress: bool,
              remaps: dict[str, str] | None = None) -> dict[str, np.ndarray] | None:
    """The typical-risk ticks of the bags that carry a watchdog journal (None when none does); ``remaps``:
    watchdog inputs recorded under other names."""
    from hjepa_agent.train.typical_risk import collect
    with_journal = [b for b in bags if _has_journal(b)]
    if not with_journal:
        return None
    return collect(with_journal, thresholds, ego_model, progress=progress, remaps=remaps)


def write_risk(root: Path, data: dict[str, np.ndarray]) -> None:
    """risk/ticks.parquet: features (21), targets (2; NaN = no plan), group (episode of the watchdog)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    path = Path(root) / RISK_TABLE
    path.parent.mkdir(parents=True, exist_ok=True)
    f, t = data["features"], data["targets"]
    pq.write_table(pa.table({"features": pa.FixedSizeListArray.from_arrays(pa.array(f.reshape(-1)), f.shape[1]),
                             "targets": pa.FixedSizeListArray.from_arrays(pa.array(t.reshape(-1)), t.shape[1]),
                             "group": pa.array(data["episode"])}), path)


def read_risk(root: Path) -> dict[str, np.ndarray]:
    """risk/ticks.parquet as typical_risk.collect returns it (features, targets, episode)."""
    import pyarrow.parquet as pq
    path = Path(root) / RISK_TABLE
    if not path.is_file():
        raise DatasetError(f"{root}: no {RISK_TABLE}: its recordings had no watchdog journal "
                           f"(record the agent with journal: true) or it was collected in the simulator")
    t = pq.read_table(path)
    f = t.column("features").combine_chunks()
    y = t.column("targets").combine_chunks()
    return {"features": f.flatten().to_numpy().astype(np.float32).reshape(len(t), f.type.list_size),
            "targets": y.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(len(t), y.type.list_size),
            "episode": t.column("group").to_numpy().astype(np.int64)}


def build(bag_paths: list[str], out: Path, opts: BuildOptions, *, held_out: float = 0.3, seed: int = 0,
          risk: bool = True, thresholds: Path | None = None, ego_model: Path | None = None,
          progress: bool = True) -> dict[str, Any]:
    """Build the dataset (module doc); returns its info.json. BagRefused lists every problem found."""
    from hjepa_agent.config.paths import data_path
    bags = find_bags(bag_paths)
    out = prepare_out(out)
    episodes: list[dict[str, Any]] = []
    problems: list = []
    refused: list = []
    notes: list[str] = []
    try:
        for bag in tqdm(bags, desc="dataset: reading recordings", unit="bag", disable=not progress):
            try:
                eps, probs, more = episodes_from_bag(bag, opts)
            except BagRefused as exc:
                refused.extend(exc.problems)
                continue
            problems.extend(probs)
            notes.extend(more)
            for ep in eps:
                meta = write_episode(out, len(episodes), ep, FEATURES)
                episodes.append({**meta, **ep["source"]})
        if refused or (problems and not opts.allow_gaps):
            raise BagRefused(refused + problems)
        if not episodes:
            raise DatasetError(f"no episode of at least {opts.min_episode_s} s in {len(bags)} recording(s)"
                               + (f": {notes[0]}" if notes else ""))
        extra: dict[str, Any] = {"build": {"options": {k: v for k, v in vars(opts).items()},
                                           "topics": {r: opts.topic(r) for r in DEFAULT_TOPICS}, "notes": notes}}
        if risk:
            remaps = {DEFAULT_TOPICS[role]: name for role, name in opts.topics if role in REPLAYED}
            try:
                rows = risk_rows(bags, thresholds or data_path("config", "watchdog.yaml"),
                                 ego_model or data_path("config", "ego_model.yaml"), progress, remaps)
            except ValueError as exc:   # the table is optional: the images, scans and commands stand
                log.warning("no typical-risk table: %s", exc)
                extra["risk_table"] = {"error": str(exc)}
            else:
                if rows is not None:
                    write_risk(out, rows)
                    extra["risk_table"] = {"path": str(RISK_TABLE), "ticks": int(len(rows["features"])),
                                           "thresholds": str(thresholds or "config/watchdog.yaml")}
        return finalize(out, episodes, FEATURES, source="recordings", sources=[str(b) for b in bags],
                        problems=[p.as_dict() for p in problems], held_out=held_out, seed=seed, extra=extra)
    except BaseException:
        discard(out)
        raise


def add_build_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``hjepa-agent dataset build``."""
    d = BuildOptions()
    p.add_argument("--bags", nargs="+", required=True, help="rosbag2 recordings: bag folders, or folders holding them "
                                                            "(e.g. hjepa-agent sim --out dirs)")
    p.add_argument("--out", type=Path, required=True, help="the dataset folder (new or empty; never overwritten)")
    p.add_argument("--namespace", default="", help="the agent's namespace in the recordings (robot.launch.py namespace:=)")
    p.add_argument("--topic", action="append", default=[], metavar="ROLE=NAME",
                   help=f"a role's recorded topic (roles: {', '.join(DEFAULT_TOPICS)}), e.g. camera=/front/image_raw")
    p.add_argument("--urdf", default=None, help="the robot's URDF, for a scan mount the bag's /tf_static lacks")
    p.add_argument("--base-frame", default=d.base_frame)
    p.add_argument("--odom-frame", default=d.odom_frame)
    p.add_argument("--max-gap-s", type=float, default=d.max_gap_s, help="a longer camera gap is a problem")
    p.add_argument("--max-age-s", type=float, default=None,
                   help="an older scan or odometry at a frame is a problem (default: perception's scan_max_age_s "
                        "in --params, the age at which the running agent itself stops trusting a scan)")
    p.add_argument("--params", type=Path, default=None,
                   help="the agent's ros__parameters file the recordings ran with (default config/agent.yaml)")
    p.add_argument("--min-episode-s", type=float, default=d.min_episode_s, help="shorter episodes are dropped")
    p.add_argument("--allow-gaps", action="store_true", help="cut episodes at gaps and stale inputs instead of refusing")
    p.add_argument("--held-out", type=float, default=0.3,
                   help="fraction of the episodes held out: half val (calibration), half test (evaluation)")
    p.add_argument("--seed", type=int, default=0, help="seed of the val split's draw")
    p.add_argument("--no-risk", action="store_true", help="skip the typical-risk table")
    p.add_argument("--thresholds", type=Path, default=None, help="watchdog thresholds for the risk table")
    p.add_argument("--ego-model", type=Path, default=None, help="ego model YAML the recordings were made with")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def build_main(args: argparse.Namespace) -> int:
    """``hjepa-agent dataset build``; exit 2 with the problems on a refused build."""
    topics = []
    for item in args.topic:
        role, sep, name = item.partition("=")
        if not sep or role not in DEFAULT_TOPICS or not name:
            raise DatasetError(f"--topic {item!r}: give ROLE=NAME with ROLE one of {', '.join(DEFAULT_TOPICS)}")
        topics.append((role, name))
    max_age_s = args.max_age_s
    if max_age_s is None:   # one rule: a frame is as fresh as the agent requires its scan to be
        from hjepa_agent.nodes.node_table import load_params
        from hjepa_agent.config.paths import data_path
        params = load_params(args.params or data_path("config", "agent.yaml"), args.namespace)
        max_age_s = float(params.get("perception", {}).get("scan_max_age_s", BuildOptions().max_age_s))
    opts = BuildOptions(namespace=args.namespace, topics=tuple(topics), base_frame=args.base_frame,
                        odom_frame=args.odom_frame, urdf=args.urdf, max_gap_s=args.max_gap_s, max_age_s=max_age_s,
                        min_episode_s=args.min_episode_s, allow_gaps=args.allow_gaps)
    info = build(args.bags, args.out, opts, held_out=args.held_out, seed=args.seed, risk=not args.no_risk,
                 thresholds=args.thresholds, ego_model=args.ego_model, progress=not args.quiet)
    print(json.dumps({k: info[k] for k in ("total_episodes", "total_frames", "problems")} |
                     {"splits": {k: len(v) for k, v in info["splits"].items()}}, indent=1))
    print(f"wrote {args.out} (hjepa-agent dataset info {args.out})")
    return 0


__all__ = ["RISK_TABLE", "add_build_arguments", "build", "build_main", "read_risk", "risk_rows", "write_risk"]
