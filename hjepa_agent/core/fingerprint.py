"""The robot a set of models was trained for, as numbers: its fingerprint.

A learned model fits the robot whose sensors and dynamics it was trained on, whatever that robot is
called. :func:`robot_fingerprint` turns a robot description (``RobotDescription`` of
hjepa_agent/sim/robot.py: the simulator's config/robots/*.yaml) and an ego model
(hjepa_agent/config/ego_model.py) into a flat, named, canonical set of values, joined by the
observation and action spaces this runtime builds, and the sha256 of its canonical JSON. The trainers
write both into models/manifest.yaml; every node that loads a model compares the manifest's fingerprint
with its own robot's (hjepa_agent/core/models/robot.py), key by key, so that a refusal says what differs.

Keys are dotted paths, as in the YAML files:

* every field of the robot description, nested specs flattened (``wheel_radius_m``,
  ``camera.fov_deg``, ``scan.n_beams``, ``skid_steer.slip_factor``, whatever a spec holds), except
  what names a thing rather than measures it (NAME_KEYS: the robot's name, its URDF path, sensor link
  names) and the battery and thermal models (NOT_SEEN: no model sees them). A list of names (the
  wheel joints) counts as its length: ``left_wheel_joints.count``;
* each sensor's mount (``camera.mount.x_m`` ... ``camera.mount.yaw_rad``): the pose of the spec's
  ``link`` in the URDF's root frame, read from the description's URDF through its fixed joints
  (hjepa_agent/config/urdf.py), as the simulator places the sensor: the numbers behind the names;
* except the camera's pixel size and fov: the encoder sees its largest central square scaled to 64x64
  (CROPPED_SENSORS), so the camera holds ``camera.square_fov_deg``, that square's field of view;
* and except for the sensors the agent reads in the base frame (BASE_FRAME_SENSORS: the scan, binned in
  base_link from its mount by core/perception.py scan_to_bins): the models see which sectors its beams
  cover, not where it sits or how it is turned, so these hold ``scan.coverage`` (one character per
  sector, "1" covered, "0" unknown) instead of their mount and field of view. A 360-deg scanner turned
  by 90 deg fits the models of an unturned one; a 270-deg scanner does not;
* ``ego.hard.kinematics.*``, ``ego.hard.footprint.*`` and ``ego.operating.*`` (EGO_PARTS: the limits
  training runs within);
* ``observation.*`` (EXPECTED_OBSERVATION and ``observation.scan_range_max_m``) and ``action.names``.

Canonical values: floats rounded to FINGERPRINT_DECIMALS decimals (-0.0 as 0.0); ints, bools, strings
and None as they are; tuples as lists. The JSON has sorted keys and no spaces, so the hash depends on
the values only, never on the order they were gathered in. ROS-free; imports no model runtime.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from numbers import Integral, Real
from pathlib import Path
from typing import Any, Mapping

from hjepa_agent.core.perception import IMAGE_SIZE
from hjepa_agent.core.types import N_HABITUAL_FEATURES, N_LATENT, N_SCAN_BINS, SCAN_RANGE_MAX_M

ACTION_NAMES = ("linear_x", "angular_z")
"""Action space of this runtime: what the habitual output and a plan's actions command, in this order."""
EXPECTED_OBSERVATION = {"image": (3, IMAGE_SIZE, IMAGE_SIZE), "scan_bins": N_SCAN_BINS,
                        "latent": N_LATENT, "habitual_features": N_HABITUAL_FEATURES}
"""Observation space this runtime builds (from core/types.py and core/perception.py)."""
FINGERPRINT_DECIMALS = 6
"""Floats of a fingerprint are rounded to this many decimals (1 micrometre, 1 micro-radian...)."""
NAME_KEYS = ("name", "urdf", "link")
"""Robot-description keys that name a thing rather than measure it: left out of the fingerprint."""
NOT_SEEN = ("battery", "thermal")
BASE_FRAME_SENSORS = ("scan",)
"""Sensors the agent reads in the base frame: fingerprinted by their coverage, not their mount and fov."""
BASE_FRAME_GEOMETRY = ("fov_deg",)
"""Fields of a base-frame sensor's spec that its coverage replaces."""
CROPPED_SENSORS = ("camera",)
"""Sensors whose image the encoder sees as its largest central square, scaled (core/perception.py
preprocess_image): fingerprinted by that square's field of view (``camera.square_fov_deg``), not by their
pixel size and aspect (a 640x480 camera with the 64x64 one's vertical fov fits its models)."""
CROPPED_GEOMETRY = ("width", "height", "fov_deg")
"""Fields of a cropped sensor's spec that its square's field of view replaces."""
"""Robot-description parts no learned model sees: left out of the fingerprint."""
EGO_PARTS = ("hard.kinematics", "hard.footprint", "operating")
"""Parts of the ego model in the fingerprint (prefixed ``ego.``): the limits training runs within."""
_RESERVED = ("ego", "observation", "action")


class _Absent:
    """Stands for a key one fingerprint lacks (:meth:`RobotFingerprint.differences`); shows as (absent)."""

    def __repr__(self) -> str:
        return "(absent)"


ABSENT = _Absent()


def canonical(value: Any) -> Any:
    """``value`` as the fingerprint holds it (module docstring); TypeError for what it cannot hold,
    ValueError for a float that is not finite."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        f = float(value)
        if not math.isfinite(f):
            raise ValueError(f"fingerprint: a value must be finite, got {value!r}")
        return round(f, FINGERPRINT_DECIMALS) + 0.0   # + 0.0: -0.0 -> 0.0
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    raise TypeError(f"fingerprint: cannot hold {type(value).__name__} {value!r}")


def canonical_json(values: Mapping[str, Any]) -> str:
    """The canonical JSON of a fingerprint's values: canonical values, sorted keys, no spaces."""
    return json.dumps({str(k): canonical(v) for k, v in values.items()}, sort_keys=True, separators=(",", ":"),
                      allow_nan=False)


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, Mapping):
        for key, sub in value.items():
            if str(key) not in NAME_KEYS:
                _flatten(f"{prefix}.{key}" if prefix else str(key), sub, out)
    elif isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        out[f"{prefix}.count"] = len(value)   # a list of names: how many there are is what matters
    elif isinstance(value, (list, tuple)) and any(isinstance(v, Mapping) or dataclasses.is_dataclass(v)
                                                  for v in value):
        for i, sub in enumerate(value):
            _flatten(f"{prefix}[{i}]", sub, out)
    else:
        out[prefix] = canonical(value)


def _part(obj: Any, dotted: str) -> Any:
    for name in dotted.split("."):
        obj = getattr(obj, name)
    return obj


@dataclass(frozen=True)
class RobotFingerprint:
    """A robot's fingerprint (module docstring): ``values`` {dotted key: canonical value}, sorted by key,
    and ``sha256`` (hex) of their canonical JSON. ``robot_file``, ``ego_model_file`` (where the values
    came from) and ``user`` (who checks models against it, e.g. "habitual node") only serve messages
    and commands; they take no part in comparisons."""

    values: dict[str, Any]
    sha256: str
    robot_file: str = field(default="", compare=False)
    ego_model_file: str = field(default="", compare=False)
    user: str = field(default="", compare=False)

    @classmethod
    def of(cls, values: Mapping[str, Any], robot_file: str = "", ego_model_file: str = "",
           user: str = "") -> "RobotFingerprint":
        """The fingerprint of ``values`` (canonicalised here, in any order)."""
        canon = {str(k): canonical(v) for k, v in sorted(values.items(), key=lambda kv: str(kv[0]))}
        digest = hashlib.sha256(canonical_json(canon).encode()).hexdigest()
        return cls(canon, digest, str(robot_file), str(ego_model_file), user)

    def used_by(self, user: str) -> "RobotFingerprint":
        """A copy whose refusals name ``user`` (e.g. "habitual node")."""
        return dataclasses.replace(self, user=user)

    def differences(self, other: "RobotFingerprint") -> list[tuple[str, Any, Any]]:
        """(key, this value, ``other``'s value) for each key whose values differ, sorted by key; a key
        one side lacks is ABSENT there."""
        keys = sorted(set(self.values) | set(other.values))
        return [(k, self.values.get(k, ABSENT), other.values.get(k, ABSENT)) for k in keys
                if k not in self.values or k not in other.values or self.values[k] != other.values[k]]


def sensor_mounts(robot: Any) -> dict[str, Any]:
    """{field: Mount} for each field of ``robot`` (a RobotDescription) holding a spec with a ``link``:
    that link's pose in the root frame of the description's URDF (``robot.urdf``, a file), through
    hjepa_agent.config.urdf. UrdfError (a ValueError) when the URDF lacks the link or reaches it
    through a moving joint; OSError when the file cannot be read."""
    from hjepa_agent.config.urdf import read_urdf   # ROS-free: xml.etree and numpy
    specs = {f.name: getattr(robot, f.name) for f in dataclasses.fields(robot)}
    linked = {name: spec.link for name, spec in specs.items() if isinstance(getattr(spec, "link", None), str)}
    if not linked:
        return {}
    urdf = read_urdf(robot.urdf)
    return {name: urdf.transform(urdf.root, link) for name, link in sorted(linked.items())}


def scan_coverage(spec: Any, mount: Any) -> str:
    """Which base-frame sectors a scanner (a ScanSpec: beams over its field of view) mounted at ``mount``
    covers: one character per sector, "1" covered, "0" unknown (core/perception.py scan_to_bins, fed a
    scan of no returns)."""
    import numpy as np

    from hjepa_agent.core.perception import scan_to_bins
    from hjepa_agent.core.types import unknown_sectors
    bins = scan_to_bins(np.full(spec.n_beams, np.inf, np.float32), spec.angle_min_rad, spec.angle_increment_rad,
                        spec.range_min_m, spec.range_max_m, mount)
    return "".join("0" if u else "1" for u in unknown_sectors(bins))


def robot_values(robot: Any, ego: Any) -> dict[str, Any]:
    """The fingerprint's values (module docstring) of ``robot`` (a RobotDescription whose ``urdf`` is a
    readable file, as load_robot_description makes it) driven within ``ego`` (an EgoModel), with this
    runtime's observation and action spaces."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(robot):
        if f.name in _RESERVED:
            raise ValueError(f"fingerprint: robot description field {f.name!r} collides with the "
                             f"fingerprint's own {f.name}.* keys; rename it")
        if f.name not in NAME_KEYS + NOT_SEEN and getattr(robot, f.name) is not None:   # an absent part: no keys
            _flatten(f.name, getattr(robot, f.name), out)
    for name in CROPPED_SENSORS:
        if hasattr(robot, name):
            for key in CROPPED_GEOMETRY:
                out.pop(f"{name}.{key}", None)
            out[f"{name}.square_fov_deg"] = canonical(getattr(robot, name).square_fov_deg)
    for name, mount in sensor_mounts(robot).items():
        if name in BASE_FRAME_SENSORS:
            for key in BASE_FRAME_GEOMETRY:
                out.pop(f"{name}.{key}", None)
            out[f"{name}.coverage"] = scan_coverage(getattr(robot, name), mount)
        else:
            _flatten(f"{name}.mount", mount, out)
    for part in EGO_PARTS:
        _flatten(f"ego.{part}", _part(ego, part), out)
    for key, want in EXPECTED_OBSERVATION.items():
        out[f"observation.{key}"] = canonical(want)
    out["observation.scan_range_max_m"] = canonical(SCAN_RANGE_MAX_M)
    out["action.names"] = list(ACTION_NAMES)
    return out


def robot_fingerprint(robot: Any, ego: Any, robot_file: str = "", ego_model_file: str = "",
                      user: str = "") -> RobotFingerprint:
    """The fingerprint of ``robot`` (RobotDescription) with ``ego`` (EgoModel); ``robot_file`` and
    ``ego_model_file``: the YAML files they were read from (``ego_model_file`` defaults to
    ``ego.source``), for messages and the training command a refusal gives."""
    return RobotFingerprint.of(robot_values(robot, ego), robot_file,
                               ego_model_file or str(getattr(ego, "source", "")), user)


def load_robot_fingerprint(robot_file: str | Path, ego_model_file: str | Path, user: str = "") -> RobotFingerprint:
    """The fingerprint of the robot description YAML ``robot_file`` (config/robots/*.yaml) with the ego
    model YAML ``ego_model_file``: what nodes and trainers call. ConfigError (naming file, key and
    value) on a bad file."""
    from hjepa_agent.config.ego_model import load_ego_model
    from hjepa_agent.sim.robot import load_robot_description   # ROS-free, no simulator: dataclasses and YAML
    return robot_fingerprint(load_robot_description(robot_file), load_ego_model(ego_model_file), str(robot_file),
                             str(ego_model_file), user)


__all__ = ["ABSENT", "ACTION_NAMES", "BASE_FRAME_SENSORS", "EGO_PARTS", "EXPECTED_OBSERVATION", "FINGERPRINT_DECIMALS", "NAME_KEYS", "NOT_SEEN",
           "RobotFingerprint", "canonical", "canonical_json", "load_robot_fingerprint", "robot_fingerprint",
           "robot_values", "scan_coverage", "sensor_mounts"]
