"""Roll out the scripted expert or a learned policy in the direct (ROS-free) sim loop.

Every control tick (10 Hz) computes exactly what the runtime computes from the same
sensors: the image through :func:`preprocess_image`'s resize rules, the scan through
:func:`scan_to_bins`, and the habitual features through :func:`habitual_features`
(latent left at zero here: the encoder fills it in during training). Each visited
state is labelled with the expert's action, so the same loop gives behaviour-cloning
data (expert drives), DAgger data (policy or a beta-mix drives) and the success
rate of a policy (policy drives).

Commands go through limits like the actuator bridge's: clipped to the ego model's
operating limits and rate-limited to its hard ``max_accel`` (both ways; the bridge also
brakes at ``max_decel`` and limits jerk, which these trainers never did: kept so that
training does what the shipped models were trained with).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from tqdm import tqdm

from hjepa_agent.config.ego_model import EgoModel
from hjepa_agent.core.perception import preprocess_image
from hjepa_agent.core.types import N_LATENT, SCAN_RANGE_MAX_M, habitual_features
from hjepa_agent.sim.expert import ScriptedExpert
from hjepa_agent.sim.scenario import Scenario
from hjepa_agent.sim.sensors import true_world_state
from hjepa_agent.sim.world import SimWorld

log = logging.getLogger(__name__)

CONTROL_DT_S = 0.1
"""Control period, s (10 Hz: one camera image and one scan per tick)."""

PolicyFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(head (21,) float32, image (1, 3, 64, 64) float32) -> normalised action (2,) in [-1, 1]."""


@dataclass(frozen=True)
class Limits:
    """Speed normalisation and command limits of one robot, all from its ego model.

    speed_norm: (max_linear_mps, max_angular_rps) given to habitual_features (hard limits);
    action_scale: operating limits; normalised action * action_scale = (v m/s, w rad/s);
    accel: (m/s^2, rad/s^2) rate limit of the executed command (hard max_accel of each axis).
    """

    speed_norm: tuple[float, float]
    action_scale: tuple[float, float]
    accel: tuple[float, float]

    @staticmethod
    def from_ego(ego: EgoModel) -> "Limits":
        """Hard velocity limits normalise features; operating limits scale actions; hard max_accel rate-limits."""
        k = ego.hard.kinematics
        return Limits((k.linear_x.max_velocity, k.angular_z.max_velocity),
                      (ego.operating.max_linear_mps, ego.operating.max_angular_rps),
                      (k.linear_x.max_accel, k.angular_z.max_accel))


@dataclass
class Samples:
    """Labelled states. images (N, 3, 64, 64) uint8; head (N, 21) non-latent habitual features;
    action (N, 2) expert action normalised by action_scale; scan (N, 16) sectors / SCAN_RANGE_MAX_M;
    episode (N,) int index of the episode each sample came from."""

    images: list[np.ndarray] = field(default_factory=list)
    head: list[np.ndarray] = field(default_factory=list)
    action: list[np.ndarray] = field(default_factory=list)
    scan: list[np.ndarray] = field(default_factory=list)
    episode: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.head)

    def extend(self, other: "Samples", episode_offset: int = 0) -> None:
        """Append ``other``'s samples, shifting its episode ids by ``episode_offset``."""
        self.images += other.images
        self.head += other.head
        self.action += other.action
        self.scan += other.scan
        self.episode += [e + episode_offset for e in other.episode]

    def arrays(self) -> dict[str, np.ndarray]:
        """Stacked arrays (see the class docstring for shapes)."""
        return {"images": np.stack(self.images), "head": np.stack(self.head).astype(np.float32),
                "action": np.stack(self.action).astype(np.float32),
                "scan": np.stack(self.scan).astype(np.float32), "episode": np.asarray(self.episode)}


@dataclass(frozen=True)
class EpisodeResult:
    """Outcome of one episode: success = goal reached without collision within the time limit."""

    scenario: str
    seed: int
    success: bool
    collision: bool
    timeout: bool
    time_s: float
    ticks: int


EXPERT_SIDE_BIAS = 0.15
"""The habitual policy's demonstrator prefers the left of two similar routes (ScriptedExpert.side_bias)."""


def rate_limit(prev: tuple[float, float], cmd: tuple[float, float], limits: Limits,
               dt_s: float = CONTROL_DT_S) -> tuple[float, float]:
    """Clip (v, w) to +-limits.action_scale, then limit its change from ``prev`` to limits.accel * dt_s."""
    out = []
    for p, c, s, a in zip(prev, cmd, limits.action_scale, limits.accel):
        c = min(max(c, -s), s)
        out.append(min(max(c, p - a * dt_s), p + a * dt_s))
    return out[0], out[1]


def observe(world: SimWorld, limits: Limits, goal: tuple[float, float], stamp_s: float
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One tick's observation as the runtime computes it.

    Returns (rgb (64, 64, 3) uint8 after the encoder's resize rules, image (1, 3, 64, 64)
    float32 in [0, 1], head (21,) non-latent habitual features, scan bins (16,) m).
    """
    rgb = world.render_camera()
    image = preprocess_image(rgb)
    ws = true_world_state(world, goal, stamp_s)   # scan bins in base_link, as perception
    feats = habitual_features(ws, *limits.speed_norm)
    image_u8 = (image[0] * 255.0 + 0.5).astype(np.uint8)  # exact: preprocess is x/255 of uint8
    return image_u8, image, feats[:-N_LATENT], ws.scan_bins


def run_episode(world: SimWorld, ego: EgoModel, scenario: Scenario, seed: int, limits: Limits,
                policy: PolicyFn | None = None, beta: float = 1.0, rng: np.random.Generator | None = None,
                record: bool = True, max_time_s: float | None = None,
                teacher: Callable[[SimWorld, EgoModel], Any] | None = None) -> tuple[EpisodeResult, Samples]:
    """Run one episode; the expert labels every tick (``teacher(world, ego)``, called after the
    reset, builds another labeller with the expert's ``act(pose, twist)``: e.g. a planner, see
    hjepa_agent.train.teacher).

    Ends at the goal, a collision, or the scenario's time limit (or ``max_time_s`` if shorter;
    an episode cut short that way counts as a timeout).

    policy None or beta=1: the expert drives. Otherwise at each tick the expert drives
    with probability beta, the policy with 1 - beta (beta=0: policy only).
    """
    rng = rng if rng is not None else np.random.default_rng(seed)
    world.reset(scenario, seed)
    layout = world.layout
    goal = (layout.goal.x_m, layout.goal.y_m)
    expert = (ScriptedExpert(world, ego, side_bias=EXPERT_SIDE_BIAS) if teacher is None else teacher(world, ego))
    samples = Samples()
    prev = (0.0, 0.0)
    ticks, collision, success = 0, False, False
    limit_s = scenario.time_limit_s if max_time_s is None else min(max_time_s, scenario.time_limit_s)
    max_ticks = int(math.ceil(limit_s / CONTROL_DT_S))
    while ticks < max_ticks:
        image_u8, image, head, bins = observe(world, limits, goal, ticks * CONTROL_DT_S)
        v_e, w_e = expert.act(world.pose(), world.twist())
        label = np.clip([v_e / limits.action_scale[0], w_e / limits.action_scale[1]], -1.0, 1.0)
        if record:
            samples.images.append(image_u8)
            samples.head.append(head)
            samples.action.append(label.astype(np.float32))
            samples.scan.append(np.minimum(bins, SCAN_RANGE_MAX_M) / SCAN_RANGE_MAX_M)
            samples.episode.append(0)
        if policy is None or rng.random() < beta:
            cmd = (v_e, w_e)
        else:
            a = policy(head, image)
            cmd = (float(a[0]) * limits.action_scale[0], float(a[1]) * limits.action_scale[1])
        prev = rate_limit(prev, cmd, limits)
        world.set_cmd(*prev)
        world.step(CONTROL_DT_S)
        ticks += 1
        if world.in_collision():
            collision = True
            break
        if world.goal_reached(layout.goal, scenario.goal_tolerance_m):
            success = True
            break
    result = EpisodeResult(scenario.name, seed, success, collision, not (success or collision),
                           ticks * CONTROL_DT_S, ticks)
    return result, samples


def run_many(world: SimWorld, ego: EgoModel, scenarios: list[Scenario], seeds: list[int], limits: Limits,
             policy: PolicyFn | None = None, beta: float = 1.0, desc: str = "episodes",
             record: bool = True, max_time_s: float | None = None,
             teacher: Callable[[SimWorld, EgoModel], Any] | None = None) -> tuple[list[EpisodeResult], Samples]:
    """Run every scenario with every seed (tqdm progress); samples carry unique episode ids."""
    results: list[EpisodeResult] = []
    data = Samples()
    jobs = [(sc, s) for sc in scenarios for s in seeds]
    for i, (sc, seed) in enumerate(tqdm(jobs, desc=desc, unit="ep", leave=False)):
        res, smp = run_episode(world, ego, sc, seed, limits, policy, beta,
                               np.random.default_rng([seed, i]), record, max_time_s, teacher)
        results.append(res)
        data.extend(smp, episode_offset=i)
    return results, data


def success_table(results: list[EpisodeResult]) -> dict[str, dict[str, float]]:
    """Per scenario (and 'all'): episodes, success rate, collisions, timeouts, mean time of successes (s)."""
    table: dict[str, dict[str, float]] = {}
    names = sorted({r.scenario for r in results}) + ["all"]
    for name in names:
        rs = [r for r in results if name in ("all", r.scenario)]
        ok = [r for r in rs if r.success]
        table[name] = {"episodes": len(rs), "success_rate": round(len(ok) / max(len(rs), 1), 4),
                       "collisions": sum(r.collision for r in rs), "timeouts": sum(r.timeout for r in rs),
                       "mean_time_s": round(float(np.mean([r.time_s for r in ok])), 2) if ok else None}
    return table


__all__ = ["CONTROL_DT_S", "EpisodeResult", "Limits", "Samples", "observe", "rate_limit", "run_episode",
           "run_many", "success_table"]
