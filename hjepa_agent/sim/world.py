"""PyBullet world for one robot in one scenario: physics, sensors, battery and motor heat.

Each :class:`SimWorld` owns its own PyBullet client (no global state), so several can
coexist in one process. Frames: world x/y on the floor, z up; yaw counter-clockwise from
+x. Units: m, rad, s, m/s, rad/s, N m, W, Wh, V, A, degC. Time advances only in
:meth:`SimWorld.step`; nothing here reads a wall clock.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
from typing import Iterator

import numpy as np
import pybullet as p
from pybullet_utils import bullet_client

from hjepa_agent.config.urdf import read_urdf
from hjepa_agent.core.types import Mount
from hjepa_agent.sim.appearance import Appearance
from hjepa_agent.sim.robot import RobotDescription, resolve_urdf
from hjepa_agent.sim.scenario import (OBSTACLE_HEIGHT_M, WALL_THICKNESS_M, Goal, Scenario,
                                      occupancy_grid)

_LOG = logging.getLogger(__name__)
_TINY_DEFAULT_LIGHT = dict(lightDirection=[-50.0, 30.0, 100.0], lightColor=[1.0, 1.0, 1.0], lightAmbientCoeff=0.6,
                           lightDiffuseCoeff=0.35, lightSpecularCoeff=0.05)
"""PyBullet's tiny renderer's own light (z up), what the default look renders with, passed explicitly: the
renderer keeps the light of its last call, so without it a default-look frame after another look was lit
by that look's light (world-model data's default-look episodes, which follow others in one world)."""

_GRAVITY_MPS2 = 9.81


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """File descriptor 1 goes to 2 for the block (C code's prints included)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


class SimWorld:
    """One robot (from a :class:`RobotDescription`) in a scenario; fixed physics step ``physics_dt_s``."""

    def __init__(self, robot: RobotDescription, *, gui: bool = False, physics_dt_s: float = 0.005) -> None:
        if not 1e-4 <= physics_dt_s <= 0.05:
            raise ValueError(f"physics_dt_s: must be in [1e-4, 0.05] s, got {physics_dt_s}")
        self.robot = robot
        self.physics_dt_s = float(physics_dt_s)
        self.drain_multiplier = 1.0
        """Scales battery drain (fault tests set it > 1 to empty the battery quickly)."""
        self.heating_multiplier = 1.0
        """Scales motor heating (fault tests set it > 1 to overheat quickly)."""
        with _stdout_to_stderr():   # PyBullet's C code prints "argv[0]=" on stdout, which carries JSON output
            self._bc = bullet_client.BulletClient(connection_mode=p.GUI if gui else p.DIRECT)
        self._urdf = str(resolve_urdf(robot.urdf))
        cam = robot.camera
        self._proj = self._bc.computeProjectionMatrixFOV(cam.fov_deg, cam.width / cam.height, cam.near_m, cam.far_m)
        self._body = -1
        self._ground = -1
        self._obstacle_bodies: list[int] = []
        self._wheel_idx: list[int] = []
        self._n_left = len(robot.left_wheel_joints)
        self._cam_link = -1
        self._laser_link = -1
        self._layout: Scenario | None = None
        self._steps = 0
        self._energy_wh = robot.battery.capacity_wh
        self._power_w = 0.0
        self._temp_c = robot.thermal.ambient_c
        self._closed = False
        self.appearance = Appearance.default()
        self._textures: dict[tuple, str] = {}
        self._texture_dir: str | None = None

    @property
    def urdf_path(self) -> str:
        """The robot's URDF file as loaded (the sensors' mounts are its joints; nodes/mounts.py reads them)."""
        return self._urdf

    def scan_mount(self) -> Mount:
        """The laser link's pose in the URDF's root link (the base), read from the URDF's joints as the
        agent reads it (hjepa_agent.config.urdf): what places the scan's beams from the base origin."""
        urdf = read_urdf(self._urdf)
        return urdf.transform(urdf.root, self.robot.scan.link)

    # ----------------------------------------------------------------- episode
    def reset(self, scenario: Scenario, episode_seed: int, appearance: Appearance | None = None) -> None:
        """Rebuild the world for ``scenario`` jittered by ``episode_seed``; robot at the start pose.

        ``appearance`` sets lighting, colours and floor texture (default: the fixed look
        of Appearance.default()). Battery back to 100 %, motor temperature to ambient, time to 0 s.
        """
        bc = self._bc
        look = appearance or Appearance.default()
        self.appearance = look
        layout = scenario.jittered(episode_seed)
        bc.resetSimulation()
        bc.setGravity(0.0, 0.0, -_GRAVITY_MPS2)
        bc.setTimeStep(self.physics_dt_s)
        hx, hy = scenario.arena.size_x_m / 2.0, scenario.arena.size_y_m / 2.0
        self._ground = self._box((hx + 1.0, hy + 1.0, 0.05), (0.0, 0.0, -0.05), 0.0, look.floor_color)
        if look.floor_checker_m > 0.0:
            self._texture_floor(look, 2.0 * (max(hx, hy) + 1.0))
        t, h = WALL_THICKNESS_M, scenario.arena.wall_height_m
        walls = [self._box((t / 2, hy + t, h / 2), (sx * (hx + t / 2), 0.0, h / 2), 0.0, look.wall_color)
                 for sx in (-1.0, 1.0)]
        walls += [self._box((hx + t, t / 2, h / 2), (0.0, sy * (hy + t / 2), h / 2), 0.0, look.wall_color)
                  for sy in (-1.0, 1.0)]
        obstacles = []
        for i, ob in enumerate(layout.obstacles):
            colour = look.obstacle_colors[i % len(look.obstacle_colors)]
            pos = (ob.x_m, ob.y_m, OBSTACLE_HEIGHT_M / 2)
            if ob.shape == "box":
                obstacles.append(self._box((ob.size_x_m / 2, ob.size_y_m / 2, OBSTACLE_HEIGHT_M / 2),
                                           pos, ob.yaw_rad, colour))
            else:
                col = bc.createCollisionShape(p.GEOM_CYLINDER, radius=ob.radius_m, height=OBSTACLE_HEIGHT_M)
                vis = bc.createVisualShape(p.GEOM_CYLINDER, radius=ob.radius_m, length=OBSTACLE_HEIGHT_M,
                                           rgbaColor=colour)
                obstacles.append(bc.createMultiBody(0.0, col, vis, pos))
        self._obstacle_bodies = walls + obstacles
        self._load_robot(layout)
        self._layout = layout
        self._steps = 0
        self._energy_wh = self.robot.battery.capacity_wh
        self._power_w = self.robot.battery.idle_power_w
        self._temp_c = self.robot.thermal.ambient_c
        self.set_cmd(0.0, 0.0)

    def _texture_floor(self, look: Appearance, floor_size_m: float) -> None:
        """Put a checker texture (squares of look.floor_checker_m) on the floor box; textures are
        written once per colour/size to a private temp dir, since PyBullet loads them from files."""
        cells = max(2, min(64, int(round(floor_size_m / look.floor_checker_m))))
        key = (look.floor_color, cells)
        path = self._textures.get(key)
        if path is None:
            import tempfile

            import cv2
            if self._texture_dir is None:
                self._texture_dir = tempfile.mkdtemp(prefix="hjepa_tex_")
            img = look.floor_texture(size_px=4 * cells, cells=cells)
            path = f"{self._texture_dir}/floor_{len(self._textures)}.png"
            cv2.imwrite(path, cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            self._textures[key] = path
        tex = self._bc.loadTexture(path)
        self._bc.changeVisualShape(self._ground, -1, textureUniqueId=tex, rgbaColor=(1.0, 1.0, 1.0, 1.0))

    def _box(self, half_extents: tuple[float, float, float], pos: tuple[float, float, float],
             yaw_rad: float, colour: tuple[float, float, float, float]) -> int:
        bc = self._bc
        col = bc.createCollisionShape(p.GEOM_BOX, halfExtents=half_extents)
        vis = bc.createVisualShape(p.GEOM_BOX, halfExtents=half_extents, rgbaColor=colour)
        return bc.createMultiBody(0.0, col, vis, pos, bc.getQuaternionFromEuler((0.0, 0.0, yaw_rad)))

    def _load_robot(self, layout: Scenario) -> None:
        bc = self._bc
        orn = bc.getQuaternionFromEuler((0.0, 0.0, layout.start.yaw_rad))
        body = bc.loadURDF(self._urdf, (layout.start.x_m, layout.start.y_m, 0.5), orn,
                           flags=p.URDF_USE_INERTIA_FROM_FILE)
        joints: dict[str, int] = {}
        links: dict[str, int] = {bc.getBodyInfo(body)[0].decode(): -1}
        for j in range(bc.getNumJoints(body)):
            info = bc.getJointInfo(body, j)
            joints[info[1].decode()] = j
            links[info[12].decode()] = j
        missing = [n for n in self.robot.wheel_joints if n not in joints]
        if missing:
            raise ValueError(f"{self._urdf}: wheel joints {missing} not found (has {sorted(joints)})")
        for link in (self.robot.camera.link, self.robot.scan.link):
            if link not in links:
                raise ValueError(f"{self._urdf}: link {link!r} not found (has {sorted(links)})")
        self._wheel_idx = [joints[n] for n in self.robot.wheel_joints]
        self._cam_link = links[self.robot.camera.link]
        self._laser_link = links[self.robot.scan.link]
        # Drop the robot so its lowest point just touches the floor.
        lowest = min(bc.getAABB(body, li)[0][2] for li in range(-1, bc.getNumJoints(body)))
        bc.resetBasePositionAndOrientation(body, (layout.start.x_m, layout.start.y_m, 0.5 - lowest + 5e-4), orn)
        self._body = body
        if self.robot.skid_steer is not None:
            self._skid_steer_contact()

    def _skid_steer_contact(self) -> None:
        """Wheel-ground friction of a skid-steer base, so that it turns by slipping sideways as a real one does.

        - Per-axis (pyramid) friction in this world, not PyBullet's implicit cone, under which wheels that
          should slide sideways stick: the pybullet_data Husky, commanded 1 rad/s in place, turned at
          0.19 rad/s and moved 0.5 m. PyBullet aligns the pyramid with the world axes, so a wheel grips up to
          sqrt(2) x more along a diagonal: the yaw rate ripples with the heading (s.d. ~5 % of the command
          with a lateral friction ratio of 0.3, ~13 % with 1).
        - Each wheel's friction along its axle scaled by skid_steer.lateral_friction_ratio (PyBullet's
          anisotropic friction, in the wheel link's frame).
        - Wheel contacts must be compliant (URDF <contact> stiffness and damping, as a tyre is): with rigid
          ones, four wheels on a plane share their load unevenly (in the skidbot two diagonal wheels carried
          80 % of it) and the base turns lopsided.
        set_cmd spreads the wheel speeds over the effective track (RobotDescription.effective_track_m).
        """
        bc, ratio = self._bc, self.robot.skid_steer.lateral_friction_ratio
        bc.setPhysicsEngineParameter(enableConeFriction=0)
        for name, j in zip(self.robot.wheel_joints, self._wheel_idx):
            axle = np.abs(np.asarray(bc.getJointInfo(self._body, j)[13]))
            if axle.max() < 0.999:
                raise ValueError(f"{self._urdf}: wheel joint {name!r} turns about {tuple(axle)}, not one of its "
                                 "link's axes; skid_steer's lateral friction needs the axle along x, y or z")
            damping, stiffness = bc.getDynamicsInfo(self._body, j)[8:10]
            if not (stiffness > 0.0 and damping > 0.0):
                raise ValueError(f"{self._urdf}: the link of wheel joint {name!r} has rigid ground contact; a "
                                 "skid_steer robot needs compliant wheels: add <contact><stiffness value=\"...\"/>"
                                 "<damping value=\"...\"/></contact> to that link (N/m, N s/m)")
            bc.changeDynamics(self._body, j, anisotropicFriction=[ratio if a >= 0.999 else 1.0 for a in axle])

    # ----------------------------------------------------------------- injected faults
    def drop_box(self, x_m: float, y_m: float, half_size_m: float) -> None:
        """A box obstacle appears at (x, y) (fault injection: an obstacle dropped in the robot's way);
        it counts for collisions and clearance like the layout's."""
        colour = self.appearance.obstacle_colors[0]
        self._obstacle_bodies.append(self._box((half_size_m, half_size_m, OBSTACLE_HEIGHT_M / 2),
                                               (x_m, y_m, OBSTACLE_HEIGHT_M / 2), 0.0, colour))

    def set_wheel_friction(self, mu: float) -> None:
        """Lateral friction of every wheel (fault injection: a slippery floor); reset() restores it."""
        for j in self._wheel_idx:
            self._bc.changeDynamics(self._body, j, lateralFriction=float(mu))

    # ----------------------------------------------------------------- actuation
    def set_cmd(self, v_mps: float, w_rps: float) -> None:
        """Command body velocity v (m/s, forward) and w (rad/s, counter-clockwise) via wheel speeds, spread over
        the effective track (RobotDescription.effective_track_m: a skid-steer's slip factor included)."""
        r, half = self.robot.wheel_radius_m, self.robot.effective_track_m / 2.0
        left, right = (v_mps - w_rps * half) / r, (v_mps + w_rps * half) / r
        targets = [left] * self._n_left + [right] * (len(self._wheel_idx) - self._n_left)
        self._bc.setJointMotorControlArray(self._body, self._wheel_idx, p.VELOCITY_CONTROL,
                                           targetVelocities=targets,
                                           forces=[self.robot.max_wheel_torque_nm] * len(self._wheel_idx))

    def step(self, dt_s: float) -> None:
        """Advance by round(dt_s / physics_dt_s) physics steps (at least one); integrate battery and heat."""
        n = max(1, int(round(dt_s / self.physics_dt_s)))
        bat, th = self.robot.battery, self.robot.thermal
        dt = self.physics_dt_s
        for _ in range(n):
            self._bc.stepSimulation()
            states = self._bc.getJointStates(self._body, self._wheel_idx)
            torque = np.array([s[3] for s in states])
            omega = np.array([s[1] for s in states])
            mech_w = float(np.sum(np.abs(torque * omega))) / bat.motor_efficiency
            self._power_w = bat.idle_power_w + mech_w
            self._energy_wh = max(self._energy_wh - self.drain_multiplier * self._power_w * dt / 3600.0, 0.0)
            heat_w = self.heating_multiplier * th.heating_coeff_w_per_nm2 * float(np.sum(torque ** 2))
            self._temp_c += (heat_w - th.cooling_w_per_k * (self._temp_c - th.ambient_c)) * dt / th.heat_capacity_j_per_k
        self._steps += n

    @property
    def time_s(self) -> float:
        """Simulated time since reset, s (a whole number of physics steps)."""
        return self._steps * self.physics_dt_s

    # ----------------------------------------------------------------- state
    @property
    def layout(self) -> Scenario:
        """The current episode's scenario after jitter (obstacles, start and goal as built)."""
        if self._layout is None:
            raise RuntimeError("SimWorld.reset() has not been called")
        return self._layout

    def pose(self) -> tuple[float, float, float]:
        """Base pose in the world: x (m), y (m), yaw (rad)."""
        pos, orn = self._bc.getBasePositionAndOrientation(self._body)
        return float(pos[0]), float(pos[1]), float(self._bc.getEulerFromQuaternion(orn)[2])

    def twist(self) -> tuple[float, float]:
        """Body-frame forward speed v (m/s) and yaw rate w (rad/s)."""
        lin, ang = self._bc.getBaseVelocity(self._body)
        yaw = self.pose()[2]
        return float(lin[0] * math.cos(yaw) + lin[1] * math.sin(yaw)), float(ang[2])

    def lateral_speed(self) -> float:
        """Body-frame sideways speed (m/s, to the left): ~0 for a wheeled base with grip; a slide shows here."""
        lin, _ = self._bc.getBaseVelocity(self._body)
        yaw = self.pose()[2]
        return float(-lin[0] * math.sin(yaw) + lin[1] * math.cos(yaw))

    def joint_states(self) -> tuple[list[str], list[float], list[float], list[float]]:
        """Wheel joints (left then right): names, positions (rad), velocities (rad/s), efforts (N m)."""
        states = self._bc.getJointStates(self._body, self._wheel_idx)
        return (self.robot.wheel_joints, [float(s[0]) for s in states], [float(s[1]) for s in states],
                [float(s[3]) for s in states])

    def battery(self) -> tuple[float, float, float]:
        """Battery voltage (V, 0.85..1.05 x nominal with charge), charge fraction [0, 1], current (A)."""
        frac = self._energy_wh / self.robot.battery.capacity_wh
        volts = self.robot.battery.nominal_voltage_v * (0.85 + 0.2 * frac)
        return volts, frac, self._power_w / volts

    def motor_temperature_c(self) -> float:
        """Lumped motor temperature, degC."""
        return float(self._temp_c)

    # ----------------------------------------------------------------- sensors
    def render_camera(self) -> np.ndarray:
        """RGB image (height, width, 3) uint8 from the camera link's pose (the URDF's joint chain, its
        orientation included: a camera yawed on its mount looks that way), along its x axis, z axis up."""
        bc, cam = self._bc, self.robot.camera
        st = bc.getLinkState(self._body, self._cam_link, computeForwardKinematics=True)
        eye, m = np.asarray(st[4]), bc.getMatrixFromQuaternion(st[5])
        fwd, up = np.array([m[0], m[3], m[6]]), (m[2], m[5], m[8])
        view = bc.computeViewMatrix(eye.tolist(), (eye + fwd).tolist(), up)
        look = self.appearance
        light = _TINY_DEFAULT_LIGHT if look.is_default else dict(
            lightDirection=list(look.light_direction), lightColor=list(look.light_color),
            lightAmbientCoeff=look.ambient, lightDiffuseCoeff=look.diffuse, lightSpecularCoeff=look.specular)
        _, _, rgba, _, _ = bc.getCameraImage(cam.width, cam.height, view, self._proj, shadow=0,
                                             renderer=p.ER_TINY_RENDERER, flags=p.ER_NO_SEGMENTATION_MASK, **light)
        return np.asarray(rgba, dtype=np.uint8).reshape(cam.height, cam.width, 4)[:, :, :3].copy()

    def scan(self) -> np.ndarray:
        """Ranges (n_beams,) float32, m, from the laser link's pose (the URDF's joint chain, orientation
        included): beam i at spec.angle_min_rad + i*spec.angle_increment_rad in the link's x-y plane,
        counter-clockwise about its z axis (a yawed mount turns the scan with it, an upside-down one
        mirrors it; the fov is spec.fov_deg); each ray runs level, along its beam's direction projected
        on the floor plane. No hit = inf.

        Rays start range_min_m from the laser link; hits on the robot itself count as no hit.
        """
        spec = self.robot.scan
        st = self._bc.getLinkState(self._body, self._laser_link, computeForwardKinematics=True)
        origin, rot = np.asarray(st[4]), np.asarray(self._bc.getMatrixFromQuaternion(st[5])).reshape(3, 3)
        ang = spec.angle_min_rad + spec.angle_increment_rad * np.arange(spec.n_beams)
        dirs = np.stack([np.cos(ang), np.sin(ang), np.zeros_like(ang)], axis=1) @ rot.T
        dirs[:, 2] = 0.0
        dirs /= np.maximum(np.linalg.norm(dirs, axis=1, keepdims=True), 1e-9)
        starts = origin + spec.range_min_m * dirs
        ends = origin + spec.range_max_m * dirs
        hits = self._bc.rayTestBatch(starts.tolist(), ends.tolist())
        span = spec.range_max_m - spec.range_min_m
        out = np.full(spec.n_beams, np.inf, dtype=np.float32)
        for i, hit in enumerate(hits):
            if hit[0] >= 0 and hit[0] != self._body:
                out[i] = spec.range_min_m + hit[2] * span
        return out

    # ----------------------------------------------------------------- checks
    def in_collision(self) -> bool:
        """True if the robot touches anything but the floor (contact distance <= 0)."""
        return any(c[2] != self._ground and c[8] <= 0.0
                   for c in self._bc.getContactPoints(bodyA=self._body))

    def goal_reached(self, goal: Goal | tuple[float, float], tol: float) -> bool:
        """True if the base is within ``tol`` m of ``goal`` (a Goal or (x, y) in m)."""
        gx, gy = (goal.x_m, goal.y_m) if isinstance(goal, Goal) else goal
        x, y, _ = self.pose()
        return math.hypot(gx - x, gy - y) <= tol

    def reach_m(self) -> float:
        """Farthest the robot's collision geometry reaches from its base pose in the floor plane, m, an upper
        bound: over the links' bounding boxes, which PyBullet pads by a few cm and aligns with the world
        axes (tightest at yaw 0). An ego model's footprint radius should cover it."""
        x, y, _ = self.pose()
        best = 0.0
        for link in range(-1, self._bc.getNumJoints(self._body)):
            lo, hi = self._bc.getAABB(self._body, link)
            best = max(best, math.hypot(max(abs(lo[0] - x), abs(hi[0] - x)), max(abs(lo[1] - y), abs(hi[1] - y))))
        return best

    def min_obstacle_clearance(self, max_m: float = 5.0) -> float:
        """Smallest distance (m) between the robot and any wall or obstacle; inf if none within max_m."""
        best = math.inf
        for body in self._obstacle_bodies:
            for pt in self._bc.getClosestPoints(self._body, body, max_m):
                best = min(best, float(pt[8]))
        return best

    def occupancy_grid(self, resolution_m: float = 0.05) -> tuple[np.ndarray, tuple[float, float]]:
        """Privileged grid of walls and obstacles of the current layout; see scenario.occupancy_grid."""
        return occupancy_grid(self.layout, resolution_m)

    def close(self) -> None:
        """Disconnect the PyBullet client; safe to call twice."""
        if not self._closed:
            self._closed = True
            self._bc.disconnect()
            if self._texture_dir is not None:
                import shutil
                shutil.rmtree(self._texture_dir, ignore_errors=True)
            _LOG.debug("SimWorld for %s closed", self.robot.name)

    def __enter__(self) -> "SimWorld":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["SimWorld"]
