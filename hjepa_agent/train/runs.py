"""What every dataset trainer shares: a config dataclass with its CLI generated from it, and a run
folder with checkpoints, ``--resume``, the resolved config, metrics (TensorBoard event files and a
CSV) and the seeds.

A trainer declares ``@dataclass class XConfig(TrainConfig)`` whose fields carry their help text
(``field(metadata={"help": ...})``); :func:`parser_for` makes the argparse parser from it (one
``--field-name`` per field, types and defaults from the dataclass, booleans as flags) and
:func:`config_from` the config back. The run folder (``--run-dir``, default ``<out>/runs/<trainer>``)::

    config.yaml          the resolved config (every field, after defaults), written at start
    metrics.csv          step, wall_s, and one column per metric, appended as training goes
    events.out.tfevents  the same metrics for TensorBoard (tensorboard --logdir RUN_DIR)
    ckpt_0000500.pt      every ``checkpoint_every`` steps and at the end: model, optimiser and RNG
    last.pt              states, the step, the config (a copy of the latest checkpoint)

``--resume`` continues from ``last.pt`` with the config saved there (a changed field other than
those in RESUMABLE is refused, naming it): the RNG states come back too, so a resumed run draws the
same batches as one that was never stopped. Checkpoints are written to a temporary name and
renamed, so a run killed while saving keeps the previous one.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import logging
import os
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)

RESUMABLE = ("resume", "run_dir", "quiet", "checkpoint_every")
"""Fields a resumed run may change; any other must equal the saved config."""


@dataclass
class TrainConfig:
    """Fields every dataset trainer has."""

    dataset: Path = field(default=None, metadata={"help": "the dataset (hjepa-agent dataset build|collect)"})
    out: Path = field(default=None, metadata={"help": "models dir to write into (default: the package's models/; "
                                                      "the manifest is merged)"})
    run_dir: Path = field(default=None, metadata={"help": "checkpoints, config and metrics (default: <out>/runs/<trainer>)"})
    seed: int = field(default=0, metadata={"help": "seed of every draw (recorded in config.yaml and each checkpoint)"})
    checkpoint_every: int = field(default=500, metadata={"help": "steps between checkpoints (and one at the end)"})
    resume: bool = field(default=False, metadata={"help": "continue from <run-dir>/last.pt"})
    robot: Path = field(default=None, metadata={"help": "robot description YAML the recordings were made with "
                                                        "(default: the package's diffbot)"})
    ego_model: Path = field(default=None, metadata={"help": "ego model YAML (default: the package's)"})
    quiet: bool = field(default=False, metadata={"help": "no progress bar"})


def _arg_type(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Union or str(origin) == "types.UnionType":
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _arg_type(args[0])
    return {"int": int, "float": float, "str": str, "Path": Path, "bool": bool}.get(getattr(tp, "__name__", ""), str)


def parser_for(cls: type, prog: str, description: str) -> argparse.ArgumentParser:
    """The argparse parser of config dataclass ``cls`` (module doc)."""
    ap = argparse.ArgumentParser(prog=prog, description=description)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        kind = _arg_type(hints[f.name])
        help_text = f.metadata.get("help", "")
        if kind is bool:
            ap.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=help_text)
            continue
        default = f.default if f.default is not dataclasses.MISSING else None
        choices = f.metadata.get("choices")
        extra = {"nargs": f.metadata["nargs"]} if "nargs" in f.metadata else {}
        ap.add_argument(flag, type=kind, default=default, choices=choices, **extra,
                        required=f.metadata.get("required", False),
                        help=f"{help_text} (default {default})" if default is not None else help_text)
    return ap


def config_from(cls: type, argv: list[str] | None, prog: str, description: str,
                presets: dict[str, dict[str, Any]] | None = None) -> Any:
    """Parse ``argv`` into a ``cls`` instance. ``presets``: {boolean field: {field: value}}: a preset
    flag given (e.g. ``--quick``) makes its values the defaults, so flags given with it still win."""
    ap = parser_for(cls, prog, description)
    if presets:
        given = vars(ap.parse_args(argv))
        for flag, values in presets.items():
            if given[flag]:
                ap.set_defaults(**values)
    ns = ap.parse_args(argv)
    cfg = cls(**vars(ns))
    check = getattr(cfg, "check", None)
    if check is not None:
        check()
    return cfg


def to_plain(cfg: Any) -> dict[str, Any]:
    """The config as YAML-safe values (paths as text)."""
    def plain(v: Any) -> Any:
        return str(v) if isinstance(v, Path) else [plain(x) for x in v] if isinstance(v, (list, tuple)) else v
    return {k: plain(v) for k, v in dataclasses.asdict(cfg).items()}


class Run:
    """One training run's folder (module doc). ``state`` of a checkpoint is any torch-saveable dict."""

    def __init__(self, cfg: TrainConfig, trainer: str, default_root: Path, rank: int = 0) -> None:
        self.cfg, self.trainer, self.rank = cfg, trainer, rank
        self.dir = Path(cfg.run_dir or Path(default_root) / "runs" / trainer)
        self.t0 = time.perf_counter()
        self._tb = None
        self._csv_fields: list[str] | None = None
        self.resumed_from: int | None = None
        if rank != 0:
            return
        if cfg.resume:
            if not (self.dir / "last.pt").is_file():
                raise FileNotFoundError(f"--resume: no {self.dir / 'last.pt'}; start without --resume")
            saved = yaml.safe_load((self.dir / "config.yaml").read_text())
            now = to_plain(cfg)
            changed = [k for k in now if k not in RESUMABLE and saved.get(k) != now[k]]
            if changed:
                raise ValueError(f"--resume with a different config than {self.dir / 'config.yaml'}: "
                                 + ", ".join(f"{k} {saved.get(k)!r} -> {now[k]!r}" for k in changed)
                                 + " (give the same options, or a new --run-dir)")
        elif self.dir.exists() and any(self.dir.glob("ckpt_*.pt")):
            raise FileExistsError(f"{self.dir} holds checkpoints of an earlier run: --resume it, or give a new --run-dir")
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "config.yaml").write_text(f"# hjepa-agent train {trainer}: the resolved config\n"
                                              + yaml.safe_dump(to_plain(cfg), sort_keys=False))

    # ---- checkpoints ----
    def load(self) -> dict[str, Any] | None:
        """The last checkpoint's state (with --resume), else None."""
        if not self.cfg.resume:
            return None
        import torch
        state = torch.load(self.dir / "last.pt", map_location="cpu", weights_only=False)
        self.resumed_from = int(state["step"])
        log.info("resuming %s from step %d (%s)", self.trainer, self.resumed_from, self.dir / "last.pt")
        return state

    def save(self, step: int, state: dict[str, Any]) -> Path | None:
        """Write ckpt_<step>.pt and last.pt (rank 0 only); returns the checkpoint's path."""
        if self.rank != 0:
            return None
        import torch
        state = {**state, "step": step, "config": to_plain(self.cfg), "trainer": self.trainer,
                 "saved": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        path = self.dir / f"ckpt_{step:07d}.pt"
        tmp = self.dir / f".{path.name}.tmp"
        torch.save(state, tmp)
        os.replace(tmp, path)
        tmp_last = self.dir / ".last.pt.tmp"
        torch.save(state, tmp_last)
        os.replace(tmp_last, self.dir / "last.pt")
        return path

    def due(self, step: int, total: int) -> bool:
        """Whether a checkpoint is due after ``step`` (0-based) of ``total``."""
        done = step + 1
        return done == total or (self.cfg.checkpoint_every > 0 and done % self.cfg.checkpoint_every == 0)

    # ---- metrics ----
    def log(self, step: int, metrics: dict[str, float]) -> None:
        """Append ``metrics`` at ``step`` to metrics.csv and the TensorBoard events (rank 0 only)."""
        if self.rank != 0:
            return
        row = {"step": step, "wall_s": round(time.perf_counter() - self.t0, 2), **metrics}
        path = self.dir / "metrics.csv"
        if self._csv_fields is None:
            if path.is_file() and self.cfg.resume:
                with path.open() as fh:
                    self._csv_fields = next(csv.reader(fh), None)
                self._truncate(path, step)
            if not self._csv_fields:
                self._csv_fields = list(row)
                with path.open("w", newline="") as fh:
                    csv.writer(fh).writerow(self._csv_fields)
        with path.open("a", newline="") as fh:
            csv.DictWriter(fh, self._csv_fields, extrasaction="ignore").writerow(row)
        tb = self._writer()
        if tb is not None:
            for k, v in metrics.items():
                tb.add_scalar(f"{self.trainer}/{k}", float(v), step)

    def _truncate(self, path: Path, step: int) -> None:
        """On resume: drop rows logged after the checkpoint (they are logged again)."""
        with path.open() as fh:
            rows = list(csv.reader(fh))
        keep = [rows[0]] + [r for r in rows[1:] if r and int(float(r[0])) < step]
        with path.open("w", newline="") as fh:
            csv.writer(fh).writerows(keep)

    def _writer(self):
        if self._tb is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:   # tensorboard not installed: the CSV still has everything
                self._tb = False
                log.warning("tensorboard is not installed: metrics go to %s only", self.dir / "metrics.csv")
            else:
                self._tb = SummaryWriter(str(self.dir), purge_step=self.resumed_from)
        return self._tb or None

    def close(self) -> None:
        if self._tb:
            self._tb.close()


def rng_state(np_rng: Any = None, torch_gen: Any = None) -> dict[str, Any]:
    """The RNG states a checkpoint keeps: a numpy Generator and a torch Generator (each when the loop draws
    from one), torch's global one."""
    import torch
    return {"numpy": None if np_rng is None else np_rng.bit_generator.state,
            "torch_gen": None if torch_gen is None else torch_gen.get_state(), "torch_global": torch.get_rng_state()}


def set_rng_state(state: dict[str, Any], np_rng: Any = None, torch_gen: Any = None) -> None:
    """Restore :func:`rng_state`'s states."""
    import torch
    if np_rng is not None:
        np_rng.bit_generator.state = state["numpy"]
    if torch_gen is not None and state["torch_gen"] is not None:
        torch_gen.set_state(state["torch_gen"])
    torch.set_rng_state(state["torch_global"])


def snapshot(parts: dict[str, Any], np_rng: Any = None, torch_gen: Any = None, **extra: Any) -> dict[str, Any]:
    """A checkpoint's state: the state_dict of each of ``parts`` (models, optimisers, schedulers) under its
    name, the RNG states and ``extra``. One ``parts`` mapping per trainer serves this and :func:`restore`,
    so what is saved and what is loaded cannot drift apart."""
    return {**{name: part.state_dict() for name, part in parts.items()}, "rng": rng_state(np_rng, torch_gen), **extra}


def restore(state: dict[str, Any], parts: dict[str, Any], np_rng: Any = None, torch_gen: Any = None) -> int:
    """Load :func:`snapshot`'s ``state`` back into ``parts`` and the RNGs; returns the step it was saved at."""
    for name, part in parts.items():
        part.load_state_dict(state[name])
    set_rng_state(state["rng"], np_rng, torch_gen)
    return int(state["step"])


__all__ = ["RESUMABLE", "Run", "TrainConfig", "config_from", "parser_for", "restore", "rng_state", "set_rng_state",
           "snapshot", "to_plain"]
