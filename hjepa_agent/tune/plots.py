"""``tune sweep``'s figures: roc.png (every grid point's false-intervention rate against its detection
rate) and timeline.png (one episode replayed, tick by tick)."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
import textwrap
from typing import Any

import numpy as np

from hjepa_agent.core.watchdog import WatchdogConfig


def plot_roc(points: list[dict[str, Any]], rec: int | None, alpha: float, path: Path) -> None:
    """roc.png: every grid point's nominal false-intervention rate against its detection rate."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.array([p["false_rate"] for p in points], dtype=np.float64)
    y = np.array([np.nan if p["detection_rate"] is None else p["detection_rate"] for p in points])
    fig, ax = plt.subplots(figsize=(6.0, 6.0))
    ax.scatter(x, np.nan_to_num(y), s=36, alpha=0.6, color="tab:blue", label=f"grid points ({len(points)})")
    ax.axvline(alpha, color="tab:red", ls="--", lw=1, label=f"alpha = {alpha:g}")
    if rec is not None:
        label = ", ".join(f"{k}={v:g}" for k, v in points[rec]["values"].items())
        ax.scatter([x[rec]], [np.nan_to_num(y[rec])], s=160, facecolors="none", edgecolors="tab:red", lw=2,
                   label=f"recommended: {label}")
    same: dict[tuple[float, float], int] = defaultdict(int)   # grid points on the same spot: say how many
    for xy in zip(x, np.nan_to_num(y)):
        same[xy] += 1
    for (px, py), k in same.items():
        if k > 1:
            ax.annotate(f"x{k}", (px, py), textcoords="offset points", xytext=(5, 5), fontsize=7)
    ax.set_xlabel("nominal false-intervention rate (episodes)")
    ax.set_ylabel("fault detection rate (episodes)" + ("" if np.isfinite(y).any() else ": no faulted runs"))
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), fontsize=8)
    ax.set_title("tune sweep: one point per threshold set")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_timeline(tl: dict[str, Any], cfg: WatchdogConfig, onset_s: float | None, title: str, path: Path) -> None:
    """timeline.png: stacked panels over the episode's time, the fault onset as a vertical line."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r, extra = tl["rows"], tl["extra"]
    n = 5 + bool(extra)
    fig, axes = plt.subplots(n, 1, figsize=(9.0, 1.9 * n), sharex=True)
    ax = axes[0]
    ax.plot(r["t"], r["ambiguity"], color="tab:purple", lw=1)
    ax.axhline(cfg.ambiguity_stop, color="tab:red", ls=":", lw=1, label=f"ambiguity_stop {cfg.ambiguity_stop:g}")
    ax.set_ylabel("ambiguity")
    ax = axes[1]
    ax.plot(r["t"], r["habitual_clearance_m"], lw=1, label="habitual")
    ax.plot(r["t"], r["plan_clearance_m"], lw=1, label="plan")
    ax.axhline(cfg.clearance_plan_m, color="tab:orange", ls=":", lw=1,
               label=f"clearance_plan_m {cfg.clearance_plan_m:g}")
    ax.axhline(cfg.clearance_optimise_m, color="tab:red", ls=":", lw=1,
               label=f"clearance_optimise_m {cfg.clearance_optimise_m:g}")
    ax.set_ylabel("clearance (m)")
    ax = axes[2]
    ax.plot(r["t"], r["speed_scale"], color="tab:green", lw=1)
    ax.set_ylabel("speed_scale")
    ax.set_ylim(-0.05, 1.05)
    ax = axes[3]
    ax.step(r["t"], r["mode"], where="post", color="k", lw=1)
    ax.set_yticks(range(len(tl["modes"])), tl["modes"], fontsize=7)
    ax.set_ylabel("mode")
    ax = axes[4]
    if tl["odom"]:
        od = np.asarray(tl["odom"])
        ax.plot(od[:, 0], od[:, 1], color="tab:blue", lw=1)
    ax.set_ylabel("odom v (m/s)")
    if extra:
        for name, pts in extra.items():
            xy = np.asarray(pts)
            axes[5].plot(xy[:, 0], xy[:, 1], lw=1, label=name)
        axes[5].set_ylabel("status values")
    for i, ax in enumerate(axes):
        if onset_s is not None:
            ax.axvline(onset_s, color="tab:red", lw=1.2, label=None if i else f"fault onset {onset_s:g} s")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper right", fontsize=7)
    axes[-1].set_xlabel("time since the episode's first watchdog tick (s)")
    axes[0].set_title("\n".join(textwrap.wrap(title, 110)), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


__all__ = ["plot_roc", "plot_timeline"]
