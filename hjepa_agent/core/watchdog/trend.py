"""Battery and motor temperature against the ego model's limits: the limits themselves (the battery
floor, the operating temperature range: stops), the trend towards them (a stop within limit_predict_s,
a slow-down within limit_warn_s) and the derating of the speed scale on the way.

The monitor keeps the readings; which of them are in force (an optional input missing switches its
protections off: freshness.py) is the caller's to say, by passing None for a reading not in force.
The trend is Theil-Sen over the last TREND_WINDOW_S (the median of the slopes between every two
readings, over at least three readings spanning 1 s), so one odd reading is not a trend.

Units: %, degC, s.
"""
from __future__ import annotations

import numpy as np

from hjepa_agent.config.ego_model import EgoModel
from hjepa_agent.config.thresholds import WatchdogConfig
from hjepa_agent.core.events import Cause

TREND_WINDOW_S = 3.0
"""Battery and temperature trends are fitted over this much of their history."""
TRENDED = ("battery", "temperature")
"""The readings this monitor keeps."""


class TrendMonitor:
    """The last battery (%) and motor temperature (degC) readings and their recent history."""

    def __init__(self) -> None:
        self.last: dict[str, float | None] = dict.fromkeys(TRENDED)
        """The last reading of each (None before any)."""
        self._history: dict[str, list[tuple[float, float]]] = {name: [] for name in TRENDED}   # (time, value)

    def on_reading(self, name: str, value: float, now_s: float) -> None:
        """A reading of ``name`` (TRENDED) at ``now_s``; the history keeps the last TREND_WINDOW_S."""
        self.last[name] = float(value)
        hist = self._history[name]
        hist.append((float(now_s), self.last[name]))
        while hist and hist[0][0] < now_s - TREND_WINDOW_S:
            hist.pop(0)

    def forget(self, name: str) -> None:
        """Drop the history of ``name``: no trend across a gap, it starts again from the next readings."""
        self._history[name].clear()

    def time_to(self, name: str, limit: float, falling: bool) -> float | None:
        """Seconds until reading ``name`` reaches ``limit`` at its trend (module doc), or None if it is not
        heading there (or too few readings)."""
        hist = self._history[name]
        if len(hist) < 3 or hist[-1][0] - hist[0][0] < 1.0:
            return None
        t = np.array([h[0] for h in hist])
        v = np.array([h[1] for h in hist])
        i, j = np.triu_indices(len(t), 1)
        dt = t[j] - t[i]
        ok = dt > 1e-6
        slope = float(np.median((v[j] - v[i])[ok] / dt[ok])) if ok.any() else 0.0
        gap = (v[-1] - limit) if falling else (limit - v[-1])
        rate = -slope if falling else slope
        return gap / rate if rate > 1e-9 and gap > 0.0 else None

    @staticmethod
    def limit_causes(battery: float | None, temp: float | None, ego: EgoModel) -> list[tuple[Cause, str]]:
        """A BATTERY cause below the floor, a TEMPERATURE cause outside the operating range (NaN counts as
        outside), for the readings in force (None: not judged)."""
        floor, th = ego.hard.power.battery_floor_pct, ego.hard.thermal
        causes = []
        if battery is not None and not battery >= floor:
            causes.append((Cause.BATTERY, f"battery {battery:.1f} % below floor {floor:.1f} %"))
        if temp is not None and not th.min_operating_temp_c <= temp <= th.max_operating_temp_c:
            causes.append((Cause.TEMPERATURE, f"temperature {temp:.1f} degC outside "
                           f"[{th.min_operating_temp_c:.1f}, {th.max_operating_temp_c:.1f}] degC"))
        return causes

    def trend_causes(self, battery: float | None, temp: float | None, ego: EgoModel,
                     cfg: WatchdogConfig) -> list[tuple[Cause, str]]:
        """A LIMIT_TREND cause when a reading in force reaches its limit within limit_predict_s (0: off) at
        its trend: a stop while the limit is still ahead (the time a stop takes is well inside it)."""
        if cfg.limit_predict_s <= 0.0:
            return []
        floor, tmax = ego.hard.power.battery_floor_pct, ego.hard.thermal.max_operating_temp_c
        causes = []
        t_bat = None if battery is None else self.time_to("battery", floor, falling=True)
        if t_bat is not None and t_bat < cfg.limit_predict_s:
            causes.append((Cause.LIMIT_TREND, f"battery {battery:.1f} % reaches the floor {floor:.1f} % in "
                           f"{t_bat:.1f} s < {cfg.limit_predict_s:.1f} s at its trend"))
        t_hot = None if temp is None else self.time_to("temperature", tmax, falling=False)
        if t_hot is not None and t_hot < cfg.limit_predict_s:
            causes.append((Cause.LIMIT_TREND, f"temperature {temp:.1f} degC reaches {tmax:.1f} degC in "
                           f"{t_hot:.1f} s < {cfg.limit_predict_s:.1f} s at its trend"))
        return causes

    def slow_downs(self, battery: float | None, temp: float | None, ego: EgoModel,
                   cfg: WatchdogConfig) -> list[tuple[int, str, Cause]]:
        """Graded wants (level 2, SLOW; reason; LIMIT_TREND) for each reading in force whose trend reaches
        its limit within limit_warn_s (0: off)."""
        if cfg.limit_warn_s <= 0.0:
            return []
        floor, tmax = ego.hard.power.battery_floor_pct, ego.hard.thermal.max_operating_temp_c
        want = []
        for name, reading, limit, falling, what in (("battery", battery, floor, True, f"the floor {floor:.1f} %"),
                                                    ("temperature", temp, tmax, False, f"{tmax:.1f} degC")):
            t = None if reading is None else self.time_to(name, limit, falling)
            if t is not None and t < cfg.limit_warn_s:
                want.append((2, f"{name} reaches {what} in {t:.0f} s < {cfg.limit_warn_s:.0f} s at its trend",
                             Cause.LIMIT_TREND))
        return want


def derating(battery: float | None, temp: float | None, ego: EgoModel, cfg: WatchdogConfig) -> float:
    """The speed scale in [0, 1] the readings in force allow: linear from 1 at battery_derate_pct down to
    derate_min_scale at the battery floor (0 below it), and from 1 at temperature_derate_c to
    derate_min_scale at the maximum temperature (0 above it); the smaller of the two. A reading not in
    force (None) derates nothing."""
    lo = cfg.derate_min_scale
    bat = tem = 1.0
    if battery is not None:
        floor, b0 = ego.hard.power.battery_floor_pct, cfg.battery_derate_pct
        bat = float(np.interp(battery, [floor, b0], [lo, 1.0])) if battery >= floor else 0.0
    if temp is not None:
        tmax, t0 = ego.hard.thermal.max_operating_temp_c, cfg.temperature_derate_c
        tem = float(np.interp(temp, [t0, tmax], [1.0, lo])) if temp <= tmax else 0.0
    return max(0.0, min(1.0, bat, tem))


__all__ = ["TREND_WINDOW_S", "TRENDED", "TrendMonitor", "derating"]
