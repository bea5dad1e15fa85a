"""Robot description: which URDF, which joints drive it, and its sensor/power/thermal models.

Loaded from ``config/robots/<name>.yaml`` with :func:`load_robot_description`; the
simulated world reads joint and link names from here and never hard-codes them, so a
different robot (e.g. the skid-steer sample) is a change of configuration only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from hjepa_agent.config.loader import build, read_yaml, require

DRIVE_TYPES = ("diff",)
"""Supported drive types. Skid-steer robots are driven as 'diff' with several wheels per side."""


@dataclass(frozen=True)
class CameraSpec:
    """Forward camera on link ``link`` (forward = link x axis): image size (px), fov (deg), clip planes (m)."""

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


@dataclass(frozen=True)
class ScanSpec:
    """360 deg planar laser on link ``link``: beam i at angle -pi + i*2pi/n_beams (rad), ranges in m."""

    link: str
    n_beams: int
    range_min_m: float
    range_max_m: float

    def __post_init__(self) -> None:
        require(bool(self.link), "link", "must not be empty")
        require(4 <= self.n_beams <= 4096, "n_beams", f"must be in [4, 4096], got {self.n_beams}")
        require(0.0 <= self.range_min_m < self.range_max_m, "range_min_m",
                f"must satisfy 0 <= range_min_m < range_max_m={self.range_max_m}, got {self.range_min_m}")
        require(self.range_max_m <= 100.0, "range_max_m", f"must be <= 100 m, got {self.range_max_m}")

    @property
    def angle_min_rad(self) -> float:
        """Angle of beam 0 relative to the base heading, rad."""
        return -math.pi

    @property
    def angle_increment_rad(self) -> float:
        """Angle between consecutive beams, rad."""
        return 2.0 * math.pi / self.n_beams


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
class RobotDescription:
    """A simulated robot: URDF (relative to the package data dir), drive, joints and sensor models."""

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


def load_robot_description(path: str | Path) -> RobotDescription:
    """Load and validate a robot description YAML; ConfigError names file, key and value."""
    return build(RobotDescription, read_yaml(path), path)


__all__ = ["BatterySpec", "CameraSpec", "RobotDescription", "ScanSpec", "ThermalSpec",
           "load_robot_description"]
