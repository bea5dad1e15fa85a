"""Foundation watchdog: owns the mode (HABITUAL / PLANNING / OPTIMISING / SAFE_STOP).

Decides from input freshness, the ego model's limits (battery floor, temperature range, hard velocity),
the world model's ambiguity and a clearance-based risk proxy, with hysteresis and dwell times; every
transition is an Event with reasons and typed causes. One module per part:

- machine.py: :class:`Watchdog`, the mode state machine (latch, dwell, hysteresis, deliberation, stall
  escalation, graded levels), which reads the monitors;
- the monitors, each small and tested on its own: freshness.py (input ages, presence required /
  optional / absent, the protections of a missing input), slip.py (commanded vs measured motion,
  overspeed, the bridge's heartbeat), trend.py (battery and temperature limits, their trend, the
  derating), stall.py (progress to the goal), risk.py (clearances, typical-risk deviation, affective
  charge, ambiguity), foreign.py (foreign publishers), odometry.py (odometry consistency);
- status.py: the decision (:class:`WatchdogOutput`) and its status, typed; the /diagnostics text is
  made from them;
- the thresholds and their schema are config/thresholds.py's, the roll-out geometry core/geometry.py's;
  both are importable from here too.

Units: m, s, rad, %, degC. Times are seconds on the caller's clock (``now_s``).
"""
from __future__ import annotations

from hjepa_agent.config.thresholds import LIVE_UNITS, TIGHTER, WatchdogConfig, load_watchdog_config, tightened
from hjepa_agent.core.geometry import obstacle_points, predicted_clearance, rollout, rollout_clearance
from hjepa_agent.core.watchdog.freshness import INPUTS, SENSOR_INPUTS
from hjepa_agent.core.watchdog.machine import Watchdog
from hjepa_agent.core.watchdog.slip import COMMAND_LAG_S
from hjepa_agent.core.watchdog.status import LEVELS, PROTECTIONS, Readings, WatchdogOutput, WatchdogStatus
from hjepa_agent.core.watchdog.trend import TREND_WINDOW_S

__all__ = ["COMMAND_LAG_S", "INPUTS", "LEVELS", "LIVE_UNITS", "PROTECTIONS", "Readings", "SENSOR_INPUTS",
           "TIGHTER", "TREND_WINDOW_S", "Watchdog", "WatchdogConfig", "WatchdogOutput", "WatchdogStatus",
           "load_watchdog_config", "obstacle_points", "predicted_clearance", "rollout", "rollout_clearance",
           "tightened"]
