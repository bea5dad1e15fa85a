"""Risk: the predicted clearances of the habitual command and of the plan, their risks against the
typical risk in this context, the affective charge, and the world model's ambiguity.

Risk proxy (for now; the GFlowNet's log-probability risk against a learned typical risk replaces it
later): roll a unicycle out over ``risk_horizon_s`` with the proposed (v, w), or the plan's actions,
from the world state's pose, and take the minimum clearance to the obstacles its scan sectors imply,
minus the footprint radius (core/geometry.py, which says how unknown sectors count and what the proxy
does not see). A clearance's risk is core/risk.py's clearance_risk, 0.5 at ``clearance_plan_m``; the
fresh plan brings its own risk. With the typical-risk network (core/risk.py TypicalRisk), each risk's
deviation from the typical risk here, in spreads; the larger one, ``z``, is what the graded responses
read (LIMIT at risk_limit_z, SLOW at risk_slow_z).

Affective charge (nats, >= 0): how much the log reward (log(1 - risk)) of the course being followed
(the plan's remaining actions, or the habitual command held) drops when a new world state arrives and
the course is kept (an obstacle appearing on it); SLOW at charge_slow.

Units: m, s, nats, spreads.
"""
from __future__ import annotations

import numpy as np

from hjepa_agent.config.thresholds import WatchdogConfig
from hjepa_agent.core.events import Cause
from hjepa_agent.core.geometry import predicted_clearance, rollout_clearance
from hjepa_agent.core.risk import TypicalRisk, clearance_risk, course_log_reward, deviation, risk_features
from hjepa_agent.core.types import Plan, Proposal, WorldState

Course = tuple[np.ndarray, float, float]
"""What the robot follows: (actions (H, 2) of v m/s and w rad/s, dt s each, start time s)."""


class RiskMonitor:
    """Clearances, risks and the affective charge (module doc). ``speed_norm`` (m/s, rad/s): what the
    risk features' speeds are divided by; ``radius_m``: the footprint radius."""

    def __init__(self, typical: TypicalRisk | None, speed_norm: tuple[float, float], radius_m: float) -> None:
        self.typical = typical
        self.speed_norm = speed_norm
        self.radius_m = radius_m
        self.typical_here: tuple[np.ndarray, np.ndarray] | None = None
        """The typical risk (mean, spread), habitual and plan, at the latest world state; None without one."""
        self.charge = 0.0
        """The affective charge at the latest world state (nats, >= 0)."""
        self._course: Course | None = None
        self._course_lr: float | None = None   # its log reward at the last world state

    def on_world_state(self, ws: WorldState, now_s: float, course: Course | None, cfg: WatchdogConfig) -> None:
        """A new world state: the typical risk in its context, and the charge of the course kept from the
        last world state, scored again from this one; ``course`` is what the robot follows from now."""
        if self.typical is not None:
            self.typical_here = self.typical(risk_features(ws, *self.speed_norm))
        self.charge = 0.0
        if self._course is not None and self._course_lr is not None:
            self.charge = max(0.0, self._course_lr - self._log_reward(ws, self._course, now_s, cfg))
        self._course = course
        self._course_lr = None if course is None else self._log_reward(ws, course, now_s, cfg)

    def _log_reward(self, ws: WorldState, course: Course, now_s: float, cfg: WatchdogConfig) -> float:
        """log(1 - risk) of the rest of ``course`` (its actions from ``now_s`` on) from ``ws``."""
        acts, dt, t0 = course
        k = min(int(max(now_s - t0, 0.0) / dt), acts.shape[0] - 1)
        clear = rollout_clearance(ws.scan_bins, acts[k:], dt, cfg.risk_horizon_s, self.radius_m)
        return course_log_reward(clearance_risk(clear, 2.0 * cfg.clearance_plan_m))

    def clearances(self, ws: WorldState | None, hab: Proposal | None, plan: Plan | None,
                   cfg: WatchdogConfig) -> tuple[float | None, float | None]:
        """Predicted clearance (m) of the habitual proposal ``hab`` and of ``plan`` (pass None for a plan
        that is not fresh) over risk_horizon_s; None where there is none (or no world state)."""
        if ws is None:
            return None, None
        horizon = cfg.risk_horizon_s
        hab_clear = None if hab is None else predicted_clearance(ws.scan_bins, hab.v, hab.w, horizon, self.radius_m)
        plan_clear = None
        if plan is not None and plan.horizon > 0:
            plan_clear = rollout_clearance(ws.scan_bins, plan.actions, plan.dt_s, horizon, self.radius_m)
        return hab_clear, plan_clear

    def risks(self, hab: float | None, plan: float | None, plan_risk: float | None,
              cfg: WatchdogConfig) -> dict[str, float | None]:
        """The habitual proposal's risk (from its predicted clearance ``hab``), the fresh plan's own risk
        ``plan_risk`` (if ``plan``, its clearance, is not None), their deviations from the typical risk
        here (None without the network) and the larger one, ``z``."""
        out: dict[str, float | None] = {"habitual_risk": None, "plan_risk": None, "habitual_z": None,
                                        "plan_z": None, "z": None}
        if hab is not None:
            out["habitual_risk"] = clearance_risk(hab, 2.0 * cfg.clearance_plan_m)
        if plan is not None and plan_risk is not None:
            out["plan_risk"] = float(plan_risk)
        if self.typical_here is not None:
            mean, spread = self.typical_here
            for i, name in enumerate(("habitual", "plan")):
                r = out[f"{name}_risk"]
                if r is not None:
                    out[f"{name}_z"] = deviation(r, mean[i], spread[i])
            zs = [z for z in (out["habitual_z"], out["plan_z"]) if z is not None]
            out["z"] = max(zs) if zs else None
        return out

    def slow_downs(self, risks: dict[str, float | None], cfg: WatchdogConfig) -> list[tuple[int, str, Cause]]:
        """Graded wants (level: 1 LIMIT, 2 SLOW; reason; cause): a risk deviation ``z`` at risk_limit_z
        (LIMIT) or risk_slow_z (SLOW), and the charge at charge_slow (SLOW)."""
        c, want = cfg, []
        z = risks["z"]
        if z is not None and z >= c.risk_limit_z:
            lvl = 2 if z >= c.risk_slow_z else 1
            which = "habitual" if z == risks["habitual_z"] else "plan"
            want.append((lvl, f"{which} risk {risks[which + '_risk']:.2f} is {z:.1f} spreads above the typical "
                              f"risk here (>= {c.risk_slow_z if lvl == 2 else c.risk_limit_z:.1f})", Cause.RISK))
        if self.charge >= c.charge_slow:
            want.append((2, f"affective charge {self.charge:.2f} >= {c.charge_slow:.2f}: the course's log reward "
                            f"dropped with the new world state", Cause.AFFECTIVE_CHARGE))
        return want

    @staticmethod
    def ambiguity(ws: WorldState | None, cfg: WatchdogConfig) -> list[tuple[Cause, str]]:
        """An AMBIGUITY cause while the world state's ambiguity is above ambiguity_stop (NaN too)."""
        if ws is None or ws.ambiguity <= cfg.ambiguity_stop:
            return []
        return [(Cause.AMBIGUITY, f"ambiguity {ws.ambiguity:.3f} > {cfg.ambiguity_stop:.3f}")]


__all__ = ["Course", "RiskMonitor"]
