"""Driver profiles: how a real robot's drivers present themselves on ROS, for `hjepa-agent rehearse`.

A profile says what the simulator, acting as the robot's drivers, publishes and takes: the robot
(description and ego model), the namespace, the command type on cmd_vel, the camera's size, encoding,
transport and rate, the scan's rate, the topic names the drivers use (remapped onto the agent's, as
robot.launch.py's *_topic arguments would be) and which optional sensors exist. Loaded from
``config/profiles/<name>.yaml`` with :func:`load_profile`; relative paths resolve against the profile
file's own directory first, then the package's data directory.

The simulator renders the camera at the robot description's size (its geometry: field of view and
aspect ratio) and the driver scales each frame to the profile's ``width`` x ``height``, whose aspect
ratio must be the description's: PyBullet's software renderer manages a 64-px image at ~80 frames/s on
this machine but not 640x480 at 30 Hz, so a high-resolution profile carries the detail of a small
render (the agent crops and scales to 64x64 anyway: core/perception.py preprocess_image).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hjepa_agent.config.loader import build, read_yaml, require
from hjepa_agent.config.paths import data_path

CMD_VEL_TYPES = ("twist", "twist_stamped")
ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8")
TRANSPORTS = ("raw", "compressed")
COMPRESSED_FORMATS = ("jpeg", "png")


@dataclass(frozen=True)
class CameraProfile:
    """What the camera driver publishes: size (px), encoding, transport (raw sensor_msgs/Image or
    sensor_msgs/CompressedImage), compression format and rate (Hz)."""

    width: int
    height: int
    encoding: str = "rgb8"
    transport: str = "raw"
    format: str = "jpeg"
    rate_hz: float = 10.0

    def __post_init__(self) -> None:
        require(16 <= self.width <= 4096, "width", f"must be in [16, 4096] px, got {self.width}")
        require(16 <= self.height <= 4096, "height", f"must be in [16, 4096] px, got {self.height}")
        require(self.encoding in ENCODINGS, "encoding", f"must be one of {', '.join(ENCODINGS)}, got {self.encoding!r}")
        require(self.transport in TRANSPORTS, "transport",
                f"must be one of {', '.join(TRANSPORTS)}, got {self.transport!r}")
        require(self.format in COMPRESSED_FORMATS, "format",
                f"must be one of {', '.join(COMPRESSED_FORMATS)}, got {self.format!r}")
        require(1.0 <= self.rate_hz <= 100.0, "rate_hz",
                f"must be in [1, 100] Hz, got {self.rate_hz}")


@dataclass(frozen=True)
class DriverProfile:
    """One robot's drivers as the agent meets them on ROS (module docstring)."""

    name: str
    robot: str
    ego_model: str
    camera: CameraProfile
    namespace: str = ""
    params: tuple[str, ...] = ()
    """The agent's params files, in order (later ones override earlier ones, as several --params-file
    arguments do): e.g. config/agent.yaml then the robot's own overlay (cmd_vel_type, image_transport).
    Empty: config/agent.yaml."""
    cmd_vel_type: str = "twist_stamped"
    scan_rate_hz: float = 10.0
    odom_rate_hz: float = 50.0
    topics: dict[str, str] = field(default_factory=dict)
    """The drivers' topic names for the agent's robot-facing topics (node_table.REMAPPABLE): e.g.
    battery_state: battery/state. Unnamed ones are the agent's own names."""
    temperature: bool = True
    """Whether the base publishes a motor temperature at all."""
    battery: bool = True
    """Whether the base publishes a battery state at all."""

    def __post_init__(self) -> None:
        from hjepa_agent.nodes.node_table import REMAPPABLE
        require(bool(self.name), "name", "must not be empty")
        require(self.cmd_vel_type in CMD_VEL_TYPES, "cmd_vel_type",
                f"must be one of {', '.join(CMD_VEL_TYPES)}, got {self.cmd_vel_type!r}")
        require(1.0 <= self.scan_rate_hz <= 100.0, "scan_rate_hz", f"must be in [1, 100] Hz, got {self.scan_rate_hz}")
        require(10.0 <= self.odom_rate_hz <= 100.0, "odom_rate_hz", f"must be in [10, 100] Hz, got {self.odom_rate_hz}")
        unknown = sorted(set(self.topics) - set(REMAPPABLE))
        require(not unknown, "topics", f"{', '.join(unknown)}: not a robot-facing topic of the agent "
                                       f"(remappable: {', '.join(REMAPPABLE)})")
        for k, v in self.topics.items():
            require(bool(v) and " " not in v, "topics", f"{k}: {v!r} is not a topic name")


def _resolve(value: str, base: Path) -> str:
    """A path from a profile: absolute as given; else next to the profile, else in the package data dir."""
    if not value:
        return value
    p = Path(value)
    if p.is_absolute():
        return str(p)
    local = base / p
    return str(local if local.exists() else data_path(*p.parts))


def load_profile(path: str | Path) -> DriverProfile:
    """Load and validate a driver profile; ConfigError names file, key and value."""
    path = Path(path)
    prof = build(DriverProfile, read_yaml(path), path)
    base = path.resolve().parent
    return DriverProfile(**{**prof.__dict__, "robot": _resolve(prof.robot, base),
                            "ego_model": _resolve(prof.ego_model, base),
                            "params": tuple(_resolve(p, base) for p in prof.params)})


__all__ = ["CMD_VEL_TYPES", "CameraProfile", "DriverProfile", "load_profile"]
