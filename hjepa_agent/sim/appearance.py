"""How the world looks: lighting, colours and floor texture, sampled per episode.

Two splits that do not overlap, so "unseen" is really unseen:
* ``nominal`` — what training data is rendered with: light from above within a cone,
  warm-to-neutral light colours, obstacle hues from the first half of the colour wheel,
  a mid-grey floor with a checker texture of a few sizes;
* ``unseen`` — held out for out-of-distribution tests: low, raking light, bluish or dim
  light colours, obstacle hues from the other half of the wheel, a dark or bright floor.

ROS-free and PyBullet-free: the world reads these values when it builds and renders.
"""
from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np

SPLITS = ("nominal", "unseen")


@dataclass(frozen=True)
class Appearance:
    """Rendering parameters. Colours are RGBA in [0, 1]; light_direction is a unit vector
    pointing from the scene to the light; ambient/diffuse/specular are PyBullet's tiny
    renderer coefficients; floor_checker_m is the checker square size (0 = plain floor)."""

    light_direction: tuple[float, float, float]
    light_color: tuple[float, float, float]
    ambient: float
    diffuse: float
    specular: float
    floor_color: tuple[float, float, float, float]
    wall_color: tuple[float, float, float, float]
    obstacle_colors: tuple[tuple[float, float, float, float], ...]
    floor_checker_m: float
    is_default: bool = False
    """True for Appearance.default(): the world then renders with PyBullet's own light settings."""

    @staticmethod
    def default() -> "Appearance":
        """The fixed look the foundation models were trained on."""
        return Appearance((0.0, 0.0, 1.0), (1.0, 1.0, 1.0), 0.6, 0.35, 0.05, (0.45, 0.45, 0.45, 1.0),
                          (0.8, 0.8, 0.78, 1.0), _DEFAULT_OBSTACLES, 0.0, True)

    @staticmethod
    def sample(rng: np.random.Generator, split: str = "nominal") -> "Appearance":
        """Draw an appearance from ``split`` ("nominal" or "unseen")."""
        if split not in SPLITS:
            raise ValueError(f"split: must be one of {SPLITS}, got {split!r}")
        az = rng.uniform(0.0, 2.0 * math.pi)
        if split == "nominal":
            el = rng.uniform(math.radians(55), math.radians(90))
            light = _hsv(rng.uniform(0.05, 0.15), rng.uniform(0.0, 0.25), 1.0)
            ambient, diffuse = rng.uniform(0.5, 0.7), rng.uniform(0.25, 0.45)
            hues = rng.uniform(0.0, 0.5, size=9)
            floor_v = rng.uniform(0.38, 0.55)
            checker = float(rng.choice([0.0, 0.5, 1.0]))
        else:
            el = rng.uniform(math.radians(10), math.radians(30))
            light = _hsv(rng.uniform(0.55, 0.7), rng.uniform(0.4, 0.7), rng.uniform(0.5, 0.8))
            ambient, diffuse = rng.uniform(0.15, 0.35), rng.uniform(0.5, 0.8)
            hues = rng.uniform(0.5, 1.0, size=9)
            floor_v = float(rng.choice([rng.uniform(0.08, 0.2), rng.uniform(0.8, 0.95)]))
            checker = float(rng.choice([0.15, 0.25]))
        direction = (math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el))
        obstacles = tuple(_hsv(h, rng.uniform(0.6, 0.9), rng.uniform(0.6, 0.95)) + (1.0,) for h in hues)
        wall_v = rng.uniform(0.7, 0.85)
        return Appearance(direction, light, float(ambient), float(diffuse), 0.05,
                          (floor_v, floor_v, floor_v, 1.0), (wall_v, wall_v, wall_v * 0.97, 1.0),
                          obstacles, checker)

    def floor_texture(self, size_px: int, cells: int) -> np.ndarray:
        """(size_px, size_px, 3) uint8 checker of ``cells`` x ``cells`` squares, lighter and darker
        than the floor colour."""
        base = np.asarray(self.floor_color[:3]) * 255.0
        ij = (np.arange(size_px) * cells // size_px)
        mask = (ij[:, None] + ij[None, :]) % 2 == 0
        img = np.where(mask[..., None], np.clip(base * 1.25, 0, 255), base * 0.8)
        return img.astype(np.uint8)


def _hsv(h: float, s: float, v: float) -> tuple[float, float, float]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return (float(r), float(g), float(b))


_DEFAULT_OBSTACLES = ((0.85, 0.15, 0.15, 1.0), (0.15, 0.7, 0.2, 1.0), (0.95, 0.6, 0.1, 1.0),
                      (0.6, 0.2, 0.75, 1.0), (0.1, 0.65, 0.75, 1.0), (0.9, 0.85, 0.2, 1.0),
                      (0.55, 0.35, 0.2, 1.0), (0.95, 0.45, 0.65, 1.0), (0.3, 0.3, 0.9, 1.0))
