"""Training as practitioners expect (train/runs.py, train/jepa_loop.py): the CLI generated from a config
dataclass, checkpoints and a resume that continues the very same run, the resolved config and metrics
on disk, refusals of a changed config."""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from hjepa_agent.train.jepa_loop import train_jepa
from hjepa_agent.train.runs import Run, TrainConfig, config_from, parser_for

pytestmark = pytest.mark.training


def _data(n_eps: int = 4, length: int = 30) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    n = n_eps * length
    return {"image": rng.integers(0, 255, (n, 3, 64, 64), dtype=np.uint8),
            "scan": rng.random((n, 16), dtype=np.float32), "action": rng.uniform(-1, 1, (n, 2)).astype(np.float32),
            "episode": np.repeat(np.arange(n_eps), length), "tick": np.tile(np.arange(length), n_eps)}


@dataclass
class _Cfg(TrainConfig):
    steps: int = field(default=10, metadata={"help": "steps"})
    rate: float = field(default=0.5, metadata={"help": "a rate"})
    flag: bool = field(default=False, metadata={"help": "a flag"})


def test_the_cli_is_generated_from_the_config_dataclass(tmp_path: Path) -> None:
    cfg = config_from(_Cfg, ["--dataset", str(tmp_path), "--steps", "7", "--flag", "--rate", "0.25"], "p", "d")
    assert (cfg.steps, cfg.rate, cfg.flag, cfg.dataset, cfg.seed) == (7, 0.25, True, tmp_path, 0)
    text = parser_for(_Cfg, "p", "d").format_help()
    for option in ("--steps", "--rate", "--flag", "--resume", "--checkpoint-every", "--run-dir", "--seed"):
        assert option in text
    with pytest.raises(SystemExit):
        config_from(_Cfg, ["--steps", "x"], "p", "d")


def test_a_preset_flag_sets_defaults_and_flags_given_with_it_win() -> None:
    presets = {"flag": {"steps": 3, "rate": 0.1}}
    cfg = config_from(_Cfg, ["--flag"], "p", "d", presets)
    assert (cfg.steps, cfg.rate) == (3, 0.1)
    cfg = config_from(_Cfg, ["--steps", "10", "--flag"], "p", "d", presets)     # given, though equal to the default
    assert (cfg.steps, cfg.rate, cfg.flag) == (10, 0.1, True)
    assert config_from(_Cfg, ["--rate", "0.3"], "p", "d", presets).steps == 10
    from hjepa_agent.train.planner_gfn import QUICK, parse_args
    assert parse_args(["--quick"]).steps == QUICK["steps"] and parse_args(["--quick", "--steps", "9"]).steps == 9
    from hjepa_agent.train.subgoal_gfn import QUICK as SUB_QUICK, parse_args as sub_args
    assert sub_args(["--quick", "--every", "3"]).every == 3 and sub_args(["--quick"]).held_out == SUB_QUICK["held_out"]


def _train(tmp_path: Path, run_dir: str, resume: bool = False, stop_at: int | None = None):
    cfg = _Cfg(run_dir=tmp_path / run_dir, checkpoint_every=10, resume=resume, seed=3)
    run = Run(cfg, "world-model", tmp_path)
    if stop_at is not None:   # a run killed after its step-`stop_at` log, past its checkpoint at 10
        real = run.log

        def log(step: int, metrics: dict) -> None:
            real(step, metrics)
            if step >= stop_at:
                raise KeyboardInterrupt
        run.log = log
    torch.set_num_threads(1)
    out = train_jepa(_data(), steps=25, horizon=2, batch=16, lr=2e-3, seed=3, run=run, progress=False, log_every=5)
    run.close()
    return out


def test_a_run_killed_and_resumed_ends_where_the_uninterrupted_run_ends(tmp_path: Path) -> None:
    enc_a, ens_a, hist_a = _train(tmp_path, "a")
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path, "b", stop_at=15)
    assert sorted(p.name for p in (tmp_path / "b").glob("ckpt_*.pt")) == ["ckpt_0000010.pt"]
    with pytest.raises(FileExistsError):          # a new run must not write over the killed one
        _train(tmp_path, "b")
    enc_b, ens_b, hist_b = _train(tmp_path, "b", resume=True)
    for a, b in zip([*enc_a.parameters(), *ens_a.parameters()], [*enc_b.parameters(), *ens_b.parameters()]):
        assert torch.equal(a, b)
    assert hist_a["loss"] == hist_b["loss"] and hist_a["step"] == hist_b["step"]
    rows = list(csv.DictReader((tmp_path / "b" / "metrics.csv").open()))
    assert [int(r["step"]) for r in rows] == hist_a["step"]    # the rows logged after the checkpoint, once
    assert sorted(p.name for p in (tmp_path / "b").glob("ckpt_*.pt"))[-1] == "ckpt_0000025.pt"
    saved = yaml.safe_load((tmp_path / "b" / "config.yaml").read_text())
    assert saved["seed"] == 3 and saved["checkpoint_every"] == 10
    assert list((tmp_path / "b").glob("events.out.tfevents*")), "TensorBoard event file"


def test_resume_refuses_a_changed_config(tmp_path: Path) -> None:
    run = Run(_Cfg(run_dir=tmp_path / "r"), "x", tmp_path)
    run.save(1, {"w": 1})
    with pytest.raises(ValueError, match="steps 10 -> 11"):
        Run(_Cfg(run_dir=tmp_path / "r", steps=11, resume=True), "x", tmp_path)
    assert Run(_Cfg(run_dir=tmp_path / "r", resume=True, quiet=True), "x", tmp_path).load()["w"] == 1
    with pytest.raises(FileNotFoundError, match="last.pt"):
        Run(_Cfg(run_dir=tmp_path / "none", resume=True), "x", tmp_path)
