"""Injected faults for the simulated robot (issue 5's fault suite): what ``hjepa-agent sim --faults``
does to the sensors and the physics from a given time into each episode.

Spec: comma-separated ``kind@onset_s[:magnitude]``, e.g. ``camera_blackout@4,battery_sag@3:5000``;
``suite`` is every kind at ONSET_S. Kinds (magnitude and its default):

* ``camera_blackout``: every image is black (with the sensor's noise) from the onset.
* ``camera_frozen``: the image at the onset is sent again and again, bit for bit, with new stamps.
* ``sensor_delay``: camera and scan arrive ``magnitude`` s late (0.8), with their old stamps.
* ``battery_sag``: the battery drains ``magnitude`` times as fast (1000: the floor in about 15 s).
* ``overheating``: the motors heat ``magnitude`` times as fast (300).
* ``obstacle_drop``: a 0.3 m box appears ``magnitude`` m ahead of the robot (0.7).
* ``wheel_slip``: the wheels' friction drops to ``magnitude`` (0.05): a slippery patch under the robot.

Each episode starts fault-free (:meth:`FaultInjector.reset`); times are seconds since its start.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ONSET_S = 4.0
"""Onset of every fault in ``suite``: the robot is on its way by then."""
DEFAULTS = {"camera_blackout": None, "camera_frozen": None, "sensor_delay": 0.8, "battery_sag": 1000.0,
            "overheating": 300.0, "obstacle_drop": 0.7, "wheel_slip": 0.05}
"""Fault kinds and their default magnitude (module doc)."""


@dataclass(frozen=True)
class Fault:
    """One fault: ``kind`` (DEFAULTS), from ``onset_s`` into the episode, with ``magnitude``."""

    kind: str
    onset_s: float
    magnitude: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in DEFAULTS:
            raise ValueError(f"unknown fault {self.kind!r} (known: {', '.join(DEFAULTS)})")
        if not (math.isfinite(self.onset_s) and self.onset_s >= 0.0):
            raise ValueError(f"fault {self.kind}: onset must be a finite time >= 0 s, got {self.onset_s}")
        if self.magnitude is not None and not (math.isfinite(self.magnitude) and self.magnitude > 0.0):
            raise ValueError(f"fault {self.kind}: magnitude must be finite and > 0, got {self.magnitude}")

    @property
    def value(self) -> float | None:
        return self.magnitude if self.magnitude is not None else DEFAULTS[self.kind]


def parse_faults(spec: str) -> list[Fault]:
    """Faults from a spec (module doc); '' -> none."""
    out: list[Fault] = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        if part == "suite":
            out += [Fault(k, ONSET_S) for k in DEFAULTS]
            continue
        kind, sep, rest = part.partition("@")
        if not sep:
            raise ValueError(f"fault {part!r}: expected kind@onset_s[:magnitude]")
        onset, _, mag = rest.partition(":")
        try:
            out.append(Fault(kind, float(onset), float(mag) if mag else None))
        except ValueError as exc:
            raise ValueError(f"fault {part!r}: {exc}") from exc
    return out


class FaultInjector:
    """Applies faults to a SimWorld and to the sensor data the simulator sends."""

    def __init__(self, faults: list[Fault]) -> None:
        self.faults = list(faults)
        self.reset(None)

    def reset(self, world) -> None:
        """A new episode: nothing has happened yet; the world's fault knobs back to normal."""
        self._done: set[str] = set()
        self._frozen: np.ndarray | None = None
        if world is not None:
            world.drain_multiplier = world.heating_multiplier = 1.0

    def active(self, kind: str, t_s: float) -> Fault | None:
        """The fault of ``kind`` if it has started at ``t_s``."""
        for f in self.faults:
            if f.kind == kind and t_s >= f.onset_s:
                return f
        return None

    def on_tick(self, world, t_s: float) -> None:
        """Physics faults, once at their onset."""
        for f in self.faults:
            if t_s < f.onset_s or f.kind in self._done:
                continue
            if f.kind == "battery_sag":
                world.drain_multiplier = f.value
            elif f.kind == "overheating":
                world.heating_multiplier = f.value
            elif f.kind == "obstacle_drop":
                x, y, yaw = world.pose()
                world.drop_box(x + f.value * math.cos(yaw), y + f.value * math.sin(yaw), 0.15)
            elif f.kind == "wheel_slip":
                world.set_wheel_friction(f.value)
            self._done.add(f.kind)

    def image(self, rgb: np.ndarray, t_s: float) -> np.ndarray:
        """The image the camera sends at ``t_s`` (the rendered one if no camera fault is on)."""
        if self.active("camera_blackout", t_s):
            return np.zeros_like(rgb)
        if self.active("camera_frozen", t_s):
            if self._frozen is None:
                self._frozen = rgb.copy()
            return self._frozen
        return rgb

    def delay_s(self, t_s: float) -> float:
        """How late camera and scan arrive at ``t_s`` (0 without sensor_delay)."""
        f = self.active("sensor_delay", t_s)
        return 0.0 if f is None else float(f.value)


__all__ = ["DEFAULTS", "Fault", "FaultInjector", "ONSET_S", "parse_faults"]
