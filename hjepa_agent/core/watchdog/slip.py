"""The base against its commands: wheel slip (measured speed off every recent command), overspeed
(measured speed above the hard limits) and the bridge's heartbeat (its record of each command it sent;
silent too long, the watchdog stops the base itself).

Units: m/s, rad/s; times are seconds on the caller's receipt clock.
"""
from __future__ import annotations

import math

from hjepa_agent.config.ego_model import Kinematics
from hjepa_agent.config.thresholds import WatchdogConfig
from hjepa_agent.core.events import Cause

COMMAND_LAG_S = 0.4
"""The slip check compares the measured speed with every command of this last stretch of time."""
COMMAND_MEMORY_S = 1.0
"""Commands older than this are forgotten."""


class SlipMonitor:
    """The measured motion (odometry) against the bridge's commands."""

    def __init__(self) -> None:
        self.odom: tuple[float, float] | None = None
        """The last measured (v m/s, w rad/s); None before any."""
        self.odom_vy = 0.0
        """The last measured sideways speed, m/s (0 where the odometry cannot tell)."""
        self.tracking: tuple[float, float] | None = None
        """How far the base is from its commands at the last check (m/s, rad/s); None without both."""
        self._commands: list[tuple[float, float, float]] = []   # (time, v, w), the last COMMAND_MEMORY_S
        self._bridge: tuple[float, float, float] | None = None   # (receipt time, v, w) of the bridge's last command
        self._slip_since: float | None = None

    def on_odom(self, v: float, w: float, vy: float = 0.0) -> None:
        """Measured velocity: v m/s forward, w rad/s, vy m/s sideways (a non-finite vy reads 0)."""
        self.odom = (float(v), float(w))
        self.odom_vy = float(vy) if math.isfinite(vy) else 0.0

    def on_command(self, v: float, w: float, now_s: float) -> None:
        """The bridge's command to the base (v m/s, w rad/s), received at ``now_s``: its heartbeat too."""
        self._bridge = (float(now_s), float(v), float(w))
        self._commands.append((float(now_s), float(v), float(w)))
        while self._commands and self._commands[0][0] < now_s - COMMAND_MEMORY_S:
            self._commands.pop(0)

    def slip(self, now_s: float, cfg: WatchdogConfig) -> str | None:
        """Why the base does not move as commanded (also updates ``tracking``): for slip_window_s (0: off),
        the measured forward speed off every command of the last COMMAND_LAG_S (the base's own lag), or the
        base sliding sideways, by more than slip_tolerance_mps, or the measured yaw rate off every
        command's by more than slip_tolerance_rps. None while it does, or without odometry or commands."""
        recent = [(v, w) for t, v, w in self._commands if t >= now_s - COMMAND_LAG_S]
        self.tracking = None
        if self.odom is None or not recent:
            self._slip_since = None
            return None
        v_meas, w_meas = self.odom
        off_v = min(abs(v_meas - v) for v, _ in recent)
        off_w = min(abs(w_meas - w) for _, w in recent)
        self.tracking = (max(off_v, abs(self.odom_vy)), off_w)
        if cfg.slip_window_s <= 0.0:
            self._slip_since = None
            return None
        if max(off_v, abs(self.odom_vy)) <= cfg.slip_tolerance_mps and off_w <= cfg.slip_tolerance_rps:
            self._slip_since = None
            return None
        if self._slip_since is None:
            self._slip_since = now_s
        if now_s - self._slip_since >= cfg.slip_window_s:
            return (f"wheel slip for {now_s - self._slip_since:.1f} s: measured {v_meas:.2f} m/s (sideways "
                    f"{self.odom_vy:+.2f}) and {w_meas:+.2f} rad/s, commanded {recent[-1][0]:.2f} m/s and "
                    f"{recent[-1][1]:+.2f} rad/s (tolerances {cfg.slip_tolerance_mps:.2f} m/s, "
                    f"{cfg.slip_tolerance_rps:.2f} rad/s)")
        return None

    def overspeed(self, kinematics: Kinematics, tolerance: float) -> list[tuple[Cause, str]]:
        """An OVERSPEED cause per axis whose measured speed is above its hard limit by more than
        ``tolerance`` (a fraction); none before the first odometry."""
        if self.odom is None:
            return []
        k = kinematics
        return [(Cause.OVERSPEED, f"measured |{name}|={abs(val):.3f} above hard limit {lim:.3f}")
                for name, val, lim in (("v", self.odom[0], k.linear_x.max_velocity),
                                       ("w", self.odom[1], k.angular_z.max_velocity))
                if not abs(val) <= lim * (1.0 + tolerance)]

    def bridge_silent(self, now_s: float, max_age_s: float) -> float | None:
        """How long the bridge has been silent (s), if longer than ``max_age_s``, else None (also before
        its first command: until then nothing has moved the base)."""
        if self._bridge is None:
            return None
        age = now_s - self._bridge[0]
        return age if age > max_age_s else None

    def causes(self, now_s: float, cfg: WatchdogConfig) -> list[tuple[Cause, str]]:
        """The stop causes of this monitor but overspeed: wheel slip, then a silent bridge."""
        out = []
        slip = self.slip(now_s, cfg)
        if slip is not None:
            out.append((Cause.WHEEL_SLIP, slip))
        silent = self.bridge_silent(now_s, cfg.bridge_max_age_s)
        if silent is not None:
            out.append((Cause.BRIDGE_SILENT, f"bridge silent {silent:.2f} s > {cfg.bridge_max_age_s:.2f} s: "
                        f"the watchdog stops the base itself"))
        return out

    def bridge_stop(self, now_s: float, max_age_s: float, kinematics: Kinematics) -> tuple[float, float] | None:
        """The command (v m/s, w rad/s) to send the base while the bridge is silent: from the bridge's last
        command down to zero at the deceleration limits of ``kinematics``, from the moment the silence
        was noticed (``max_age_s`` after the last command); None while the bridge is alive."""
        if self.bridge_silent(now_s, max_age_s) is None:
            return None
        t0, v0, w0 = self._bridge
        dt = max(0.0, now_s - (t0 + max_age_s))
        v = math.copysign(max(0.0, abs(v0) - kinematics.linear_x.max_decel * dt), v0)
        w = math.copysign(max(0.0, abs(w0) - kinematics.angular_z.max_decel * dt), w0)
        return v, w


__all__ = ["COMMAND_LAG_S", "SlipMonitor"]
