"""Robot description: which URDF, which joints drive it, and its sensor/power/thermal models.

Loaded from ``config/robots/<name>.yaml`` with :func:`load_robot_description`; the
simulated world reads joint and link names from here and never hard-codes them, so a
different robot (e.g. the skid-steer sample) is a change of configuration only.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from hjepa_agent.config.loader import ConfigError, build, read_yaml, require
from hjepa_agent.config.paths import data_path

DRIVE_TYPES = ("diff",)
"""Supported drive types. Skid-steer robots are driven as 'diff' with several wheels per side, their
sideways slip described by :class:`SkidSteerSpec`."""


@dataclass(frozen=True)
class CameraSpec:
    """Camera on link ``link``, looking along the link's x axis with its z axis up, from the link's pose
    (the URDF's joint chain: position and orientation, yaw included): image size (px), fov (deg), clip
    planes (m)."""

    link: str
    width: int
    height: int
    fov_deg: float
    near_m: float
    far_m: float

    def __post_init__(self) -> None:
        require(bool(self.link), "link", "must not be empty")
        require(8 <= self.width <= 1024, "width", f"must be in [8, 1024] px, got {self.width}")
        require(8 <= self.height <= 1024, "height", f"must be in [8, 1024] px, got {self.height}")
        require(10.0 <= self.fov_deg <= 170.0, "fov_deg", f"must be in [10, 170] deg, got {self.fov_deg}")
        require(0.0 < self.near_m < self.far_m, "near_m",
                f"must satisfy 0 < near_m < far_m={self.far_m}, got {self.near_m}")

    @property
    def square_fov_deg(self) -> float:
        """The field of view (deg) of the largest central square of the image: what the encoder sees
        (core/perception.py preprocess_image crops to it). fov_deg is the vertical one, so a landscape
        image's square has it; a portrait image's square is its full width."""
        if self.width >= self.height:
            return self.fov_deg
        return math.degrees(2.0 * math.atan(math.tan(math.radians(self.fov_deg) / 2.0) * self.width / self.height))

    def pinhole(self) -> tuple[float, float, float, float]:
        """The ideal pinhole camera the simulator renders: (fx, fy, cx, cy) in px, for sensor_msgs/CameraInfo's
        K and P. fov_deg is the vertical field of view (PyBullet's computeProjectionMatrixFOV, as gluPerspective),
        pixels are square, the principal point is the image centre in ROS's convention (pixel centres at
        integers: ((width - 1) / 2, (height - 1) / 2)); no distortion."""
        f = 0.5 * self.height / math.tan(0.5 * math.radians(self.fov_deg))
        return f, f, 0.5 * (self.width - 1), 0.5 * (self.height - 1)


@dataclass(frozen=True)
class ScanSpec:
    """Planar laser on link ``link``: n_beams beams over fov_deg (deg, default 360) in the link's x-y plane,
    counter-clockwise about its z axis, centred on its x axis; ranges in m. 360 deg: beam i at
    -pi + i*2pi/n_beams (rad); less: beam i at -fov/2 + i*fov/(n_beams-1), both edges included. The
    link's pose (position and orientation, yaw included) comes from the URDF's joint chain."""

    link: str
    n_beams: int
    range_min_m: float
    range_max_m: float
    fov_deg: float = 360.0

    def __post_init__(self) -> None:
        require(bool(self.link), "link", "must not be empty")
        require(4 <= self.n_beams <= 4096, "n_beams", f"must be in [4, 4096], got {self.n_beams}")
        require(0.0 <= self.range_min_m < self.range_max_m, "range_min_m",
                f"must satisfy 0 <= range_min_m < range_max_m={self.range_max_m}, got {self.range_min_m}")
        require(self.range_max_m <= 100.0, "range_max_m", f"must be <= 100 m, got {self.range_max_m}")
        require(1.0 <= self.fov_deg <= 360.0, "fov_deg", f"must be in [1, 360] deg, got {self.fov_deg}")

    @property
    def angle_min_rad(self) -> float:
        """Angle of beam 0 from the laser link's x axis, rad (-pi at 360 deg, else -fov/2)."""
        return -math.pi if self.fov_deg >= 360.0 else -0.5 * math.radians(self.fov_deg)

    @property
    def angle_increment_rad(self) -> float:
        """Angle between consecutive beams, rad (2pi/n_beams at 360 deg, else fov/(n_beams - 1))."""
        if self.fov_deg >= 360.0:
            return 2.0 * math.pi / self.n_beams
        return math.radians(self.fov_deg) / (self.n_beams - 1)


@dataclass(frozen=True)
class BatterySpec:
    """Battery: capacity (Wh), nominal voltage (V), idle draw (W), motor efficiency (0, 1]."""

    capacity_wh: float
    nominal_voltage_v: float
    idle_power_w: float
    motor_efficiency: float

    def __post_init__(self) -> None:
        require(self.capacity_wh > 0.0, "capacity_wh", f"must be > 0 Wh, got {self.capacity_wh}")
        require(self.nominal_voltage_v > 0.0, "nominal_voltage_v", f"must be > 0 V, got {self.nominal_voltage_v}")
        require(self.idle_power_w >= 0.0, "idle_power_w", f"must be >= 0 W, got {self.idle_power_w}")
        require(0.0 < self.motor_efficiency <= 1.0, "motor_efficiency",
                f"must be in (0, 1], got {self.motor_efficiency}")


@dataclass(frozen=True)
class ThermalSpec:
    """Lumped motor thermal model: dT/dt = (k * sum(torque^2) - c * (T - ambient)) / C.

    ambient_c (degC); heat_capacity_j_per_k C; heating_coeff_w_per_nm2 k (W per N^2 m^2);
    cooling_w_per_k c.
    """

    ambient_c: float
    heat_capacity_j_per_k: float
    heating_coeff_w_per_nm2: float
    cooling_w_per_k: float

    def __post_init__(self) -> None:
        require(-60.0 <= self.ambient_c <= 80.0, "ambient_c", f"must be in [-60, 80] degC, got {self.ambient_c}")
        require(self.heat_capacity_j_per_k > 0.0, "heat_capacity_j_per_k",
                f"must be > 0 J/K, got {self.heat_capacity_j_per_k}")
        require(self.heating_coeff_w_per_nm2 >= 0.0, "heating_coeff_w_per_nm2",
                f"must be >= 0 W/(N m)^2, got {self.heating_coeff_w_per_nm2}")
        require(self.cooling_w_per_k >= 0.0, "cooling_w_per_k", f"must be >= 0 W/K, got {self.cooling_w_per_k}")


@dataclass(frozen=True)
class SkidSteerSpec:
    """How a skid-steer base turns: its wheels slip sideways, so it turns as a differential drive would
    with a wider track, ``slip_factor`` x the geometric ``wheel_separation_m``.

    slip_factor: effective track / geometric track, dimensionless, in [1, 3] (real bases: about 1.2-2 on
    most floors; ros2_control's diff_drive_controller calls it wheel_separation_multiplier). The
    simulated base controller spreads the wheel speeds over the effective track, so the base turns at
    the commanded rate. It belongs to robot and floor together: measure it (test/system/test_skid_steer.py;
    the simulator's wheels, gripping less sideways than tyres on a floor, give less than real bases).
    lateral_friction_ratio: each wheel's friction sideways (along its axle) / along its rolling direction,
    in [0.05, 1]; the simulator applies it as anisotropic wheel friction (SimWorld).
    """

    slip_factor: float
    lateral_friction_ratio: float

    def __post_init__(self) -> None:
        require(1.0 <= self.slip_factor <= 3.0, "slip_factor",
                f"must be in [1, 3] (effective / geometric track), got {self.slip_factor}")
        require(0.05 <= self.lateral_friction_ratio <= 1.0, "lateral_friction_ratio",
                f"must be in [0.05, 1] (sideways / rolling-direction friction), got {self.lateral_friction_ratio}")


@dataclass(frozen=True)
class RobotDescription:
    """A simulated robot: URDF, drive, joints and sensor models.

    ``urdf`` names the URDF file as :func:`resolve_urdf` finds it; :func:`load_robot_description`
    replaces it with the absolute path it resolved to. ``wheel_separation_m`` is the geometric track
    (centre of the left wheels to centre of the right ones, m); ``skid_steer`` (None: a differential
    drive whose wheels do not slip sideways) says how a skid-steer base slips.
    """

    name: str
    urdf: str
    drive: str
    left_wheel_joints: list[str]
    right_wheel_joints: list[str]
    wheel_radius_m: float
    wheel_separation_m: float
    max_wheel_torque_nm: float
    camera: CameraSpec
    scan: ScanSpec
    battery: BatterySpec
    thermal: ThermalSpec
    skid_steer: SkidSteerSpec | None = None

    def __post_init__(self) -> None:
        require(bool(self.name), "name", "must not be empty")
        require(self.urdf.endswith(".urdf"), "urdf", f"must name a .urdf file, got {self.urdf!r}")
        require(self.drive in DRIVE_TYPES, "drive",
                f"unsupported drive {self.drive!r} (supported: {', '.join(DRIVE_TYPES)})")
        require(len(self.left_wheel_joints) >= 1, "left_wheel_joints", "must list at least one joint")
        require(len(self.right_wheel_joints) >= 1, "right_wheel_joints", "must list at least one joint")
        joints = list(self.left_wheel_joints) + list(self.right_wheel_joints)
        require(len(set(joints)) == len(joints), "right_wheel_joints",
                f"a joint is listed twice across left/right: {joints}")
        require(0.005 <= self.wheel_radius_m <= 1.0, "wheel_radius_m",
                f"must be in [0.005, 1] m, got {self.wheel_radius_m}")
        require(0.02 <= self.wheel_separation_m <= 5.0, "wheel_separation_m",
                f"must be in [0.02, 5] m, got {self.wheel_separation_m}")
        require(0.0 < self.max_wheel_torque_nm <= 1000.0, "max_wheel_torque_nm",
                f"must be in (0, 1000] N m, got {self.max_wheel_torque_nm}")

    @property
    def wheel_joints(self) -> list[str]:
        """All driven joints, left first."""
        return list(self.left_wheel_joints) + list(self.right_wheel_joints)

    @property
    def effective_track_m(self) -> float:
        """Track the base turns with, m: wheel_separation_m, times skid_steer.slip_factor for a skid-steer."""
        slip = 1.0 if self.skid_steer is None else self.skid_steer.slip_factor
        return self.wheel_separation_m * slip


def resolve_urdf(urdf: str | Path, base_dir: str | Path | None = None) -> Path:
    """The URDF file a description's ``urdf`` names, as an absolute path.

    An absolute path is taken as given; a relative one is looked up against ``base_dir`` (the
    description YAML's own directory) first, then the package data directory (the shipped ``urdf/``).
    Raises FileNotFoundError naming every place it looked.
    """
    given = Path(urdf)
    if given.is_absolute():
        places = [given]
    else:
        places = [] if base_dir is None else [Path(base_dir) / given]
        try:
            places.append(data_path(str(given)))
        except FileNotFoundError:   # no package data directory (neither a checkout nor installed)
            pass
    for place in places:
        if place.is_file():
            return place.resolve()
    raise FileNotFoundError(f"URDF {str(urdf)!r} not found (looked at {', '.join(map(str, places))})")


def load_robot_description(path: str | Path) -> RobotDescription:
    """Load and validate a robot description YAML, its ``urdf`` resolved (:func:`resolve_urdf`) against the
    YAML's directory; ConfigError names file, key and value."""
    desc = build(RobotDescription, read_yaml(path), path)
    try:
        urdf = resolve_urdf(desc.urdf, Path(path).parent)
    except FileNotFoundError as exc:
        raise ConfigError(path, "urdf", f"{exc}; give a path relative to this file, one under the package's "
                          "data directory (urdf/<name>.urdf) or an absolute one") from exc
    return dataclasses.replace(desc, urdf=str(urdf))


__all__ = ["BatterySpec", "CameraSpec", "RobotDescription", "ScanSpec", "SkidSteerSpec", "ThermalSpec",
           "load_robot_description", "resolve_urdf"]
