"""Whether models were trained for this robot (the manifest's fingerprint against the robot's own,
core/fingerprint.py), and what to run when they were not: the one `hjepa-agent train` command per model."""
from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from hjepa_agent.core.fingerprint import RobotFingerprint

if TYPE_CHECKING:
    from hjepa_agent.core.models.manifest import Manifest

RETRAIN_HINT = "retrain with `hjepa-agent train habitual --out DIR` and point models_dir at DIR"
TRAINERS = {"encoder": "habitual --latent encoder", "habitual": "habitual --latent encoder",
            "habitual_world": "habitual --latent world",
            "world_encoder": "world-model", "world_predictor": "world-model", "planner_policy": "planner",
            "planner_logz": "planner", "subgoal_policy": "subgoals", "subgoal_logz": "subgoals",
            "typical_risk": "typical-risk --runs RUNS", "world_look": "world-model --recalibrate"}
"""The `hjepa-agent train` verb (with the options that matter) that makes each model of the manifest."""

class ModelMismatchError(RuntimeError):
    """A model cannot be used by this runtime; the message says what differs and what to do."""


def train_command(name: str, robot: RobotFingerprint | None = None, out: str = "DIR") -> str:
    """The one command that trains model ``name`` into ``out``: its trainer (TRAINERS) with
    ``--robot`` and ``--ego-model`` set to the files ``robot``'s fingerprint was read from (none
    given: the trainers' defaults, the shipped diffbot and ego model)."""
    verb = TRAINERS.get(name)
    if verb is None:
        return f"hjepa-agent train <the trainer of {name}> --out {out}"
    return f"hjepa-agent train {verb}{_robot_args(robot)} --out {out}"


def _robot_args(robot: RobotFingerprint | None) -> str:
    if robot is None:
        return ""
    return (f" --robot {shlex.quote(robot.robot_file or 'ROBOT.yaml')}"
            f" --ego-model {shlex.quote(robot.ego_model_file or 'EGO_MODEL.yaml')}")


def retrain_hint(name: str, robot: RobotFingerprint | None = None, verb: str = "retrain it") -> str:
    """'<verb> with `<train_command>` and point models_dir at DIR' for model ``name`` (for the
    typical risk also where its RUNS come from)."""
    note = ""
    if name == "typical_risk":
        note = (f" (RUNS: nominal runs of the agent on this robot, recorded with `hjepa-agent sim --scenario "
                f"config/scenarios --episodes 40{_robot_args(robot)} --out RUNS`, the watchdog's typical_risk: "
                f"false in its --params)")
    return f"{verb} with `{train_command(name, robot)}`{note} and point models_dir at DIR"


def check_robot(manifest: Manifest, model: str, expected: RobotFingerprint) -> None:
    """Raise ModelMismatchError unless ``manifest``'s robot fingerprint equals ``expected``'s: the
    message names ``expected.user`` (the node), the model's file, each differing key (the value the
    models were trained with, then this robot's) and the command that trains ``model`` for this robot."""
    who = f"{expected.user}: " if expected.user else ""
    entry = manifest.models.get(model)
    what = f"{model} ({manifest.path.parent / entry.file})" if entry is not None else f"{model} ({manifest.path})"
    here = f"{expected.robot_file or '?'} with the ego model {expected.ego_model_file or '?'}"
    fix = retrain_hint(model, expected)
    if manifest.fingerprint is None:
        raise ModelMismatchError(
            f"{who}{what}: {manifest.path} (format {manifest.format}) records no robot fingerprint, so nothing shows "
            f"the model was trained for this robot ({here}); {fix}")
    if manifest.fingerprint.sha256 != expected.sha256:
        diffs = "; ".join(f"{key}: {mine!r} trained, {theirs!r} here"
                          for key, mine, theirs in manifest.fingerprint.differences(expected))
        raise ModelMismatchError(
            f"{who}{what} was trained for another robot than this one ({here}); what differs "
            f"({manifest.path} fingerprint.values vs this robot): {diffs}; {fix}")


__all__ = ["ModelMismatchError", "RETRAIN_HINT", "TRAINERS", "check_robot", "retrain_hint", "train_command"]
