"""The report of `hjepa-agent check` (the judging is :mod:`hjepa_agent.core.bringup_judge`): one finding per
input and per selected model, the exit code, the display text (made from the values, never parsed back)
and the JSON (the values and the verdicts' names). ROS-free."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from hjepa_agent.core.bringup import Direction, Endpoint, Need
from hjepa_agent.core.bringup_judge import MIN_RATE_FRACTION, Finding, ModelFinding, Verdict, endpoint_nodes


# ---- the report ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Report:
    """The whole check: one finding per input, one per selected model, how long it listened (s) and the
    setup it checked (names of files, the namespace: for display)."""

    inputs: tuple[Finding, ...]
    models: tuple[ModelFinding, ...]
    listen_s: float
    setup: Mapping[str, Any] = field(default_factory=dict)

    @property
    def failures(self) -> list[str]:
        """What fails the check: each failing required input and each model not OK, as 'name VERDICT'."""
        return ([f"{f.expectation.key} {f.verdict.name}" for f in self.inputs if f.failing]
                + [f"{m.node}:{m.model} {m.verdict.name}" for m in self.models if m.verdict is not Verdict.OK])

    @property
    def exit_code(self) -> int:
        """0 when nothing required fails, else 1."""
        return 1 if self.failures else 0


def _short(type_name: str) -> str:
    return type_name.replace("/msg/", "/")


def _num(x: float | None, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def _shape(f: Finding) -> str:
    s = f.stats
    if s.images:
        return ", ".join(f"{w}x{h} {e}" for w, h, e in s.images)
    if s.scans:
        return ", ".join(f"{b} beams {fov:.0f} deg" for b, fov in s.scans)
    return ""


def _row(f: Finding) -> list[str]:
    e, s = f.expectation, f.stats
    if e.direction is Direction.ROBOT_SUBSCRIBES:
        ends = "sub " + (", ".join(f"{x.node} ({_short(x.type)})" for x in f.subscribers) or "none")
        if f.publishers:
            ends += "; pub " + endpoint_nodes(f.publishers)
    else:
        ends = "pub " + (", ".join(f"{x.node} ({_short(x.type)})" for x in f.publishers) or "none")
    rate = "" if e.direction is Direction.ROBOT_SUBSCRIBES or e.need is Need.ABSENT else (
        f"{_num(s.rate_hz, '.1f')}/{_num(e.rate_hz, 'g')}")
    want_ms = None if e.max_age_s is None else 1e3 * e.max_age_s
    age = "" if s.age_p50_s is None else f"{1e3 * s.age_p50_s:.0f}/{_num(want_ms, '.0f')}"
    frames = ", ".join(s.frames) + (f" > {', '.join(s.child_frames)}" if s.child_frames else "")
    need = e.need.name.lower()
    return [e.key, need, e.topic, _short(e.type), ends, str(s.messages) if s.messages else "",
            rate, age, frames, _shape(f), f.verdict.name]


def _columns(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def render(report: Report) -> str:
    """The report as text: the table of inputs, each problem with its fix, the models, the verdict."""
    head = ["input", "need", "topic", "type", "endpoints", "msgs", "rate Hz/want", "age ms/max", "frames", "shape",
            "verdict"]
    lines = [f"{k}: {', '.join(map(str, v)) if isinstance(v, (list, tuple)) else v}"
             for k, v in report.setup.items() if v not in ("", None, [], ())]
    lines += _columns([head] + [_row(f) for f in report.inputs])
    problems = [(f, p) for f in report.inputs for p in f.problems]
    if problems:
        lines.append("")
        for f, p in problems:
            why = "" if f.failing else f" ({f.expectation.need.name.lower()}: does not fail the check)"
            lines.append(f"{f.expectation.key}: {p.verdict.name}{why}: {p.detail}")
            if p.fix:
                lines.append(f"    fix: {p.fix}")
    if report.models:
        lines.append("")
        lines.append("models (fingerprint of this robot with this ego model against each manifest):")
        for m in report.models:
            lines.append(f"  {m.node:<10} {m.model:<16} {m.verdict.name}  {m.manifest}")
            if m.verdict is not Verdict.OK:
                lines.append(f"    {m.detail}")
                for key, trained, here in m.differences[:8]:
                    lines.append(f"      {key}: {trained!r} trained, {here!r} here")
                if len(m.differences) > 8:
                    lines.append(f"      ... {len(m.differences) - 8} more keys differ")
                lines.append(f"    fix: {m.fix}")
    lines.append("")
    fails = report.failures
    lines.append("check: OK: every required input and every model" if not fails else
                 f"check: FAILED ({len(fails)}): {', '.join(fails)}")
    return "\n".join(lines)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def report_json(report: Report) -> dict[str, Any]:
    """The report as JSON-able values: verdicts by name, numbers as numbers, times in s."""
    def ends(xs: Sequence[Endpoint]) -> list[dict[str, Any]]:
        return [{"node": x.node, "type": x.type, "reliable": x.reliable} for x in xs]

    inputs = []
    for f in report.inputs:
        e, s = f.expectation, f.stats
        inputs.append({
            "input": e.key, "topic": e.topic, "type": e.type, "need": e.need.name,
            "direction": e.direction.name, "verdict": f.verdict.name, "failing": f.failing,
            "publishers": ends(f.publishers), "subscribers": ends(f.subscribers),
            "messages": s.messages, "rate_hz": s.rate_hz, "want_rate_hz": e.rate_hz,
            "min_rate_hz": None if e.rate_hz is None else MIN_RATE_FRACTION * e.rate_hz,
            "age_p50_s": s.age_p50_s, "age_max_s": s.age_max_s, "max_age_s": e.max_age_s,
            "frames": list(s.frames), "child_frames": list(s.child_frames),
            "images": [{"width": w, "height": h, "encoding": enc} for w, h, enc in s.images],
            "scans": [{"beams": b, "fov_deg": fov} for b, fov in s.scans],
            "rejected": s.rejected,
            "problems": [{"verdict": p.verdict.name, "detail": p.detail, "fix": p.fix} for p in f.problems]})
    models = [{"node": m.node, "model": m.model, "manifest": m.manifest, "verdict": m.verdict.name,
               "differences": [{"key": k, "trained": _jsonable(a), "here": _jsonable(b)} for k, a, b in m.differences],
               "detail": m.detail, "fix": m.fix} for m in report.models]
    return {"ok": not report.failures, "exit_code": report.exit_code, "failures": report.failures,
            "listen_s": report.listen_s, "min_rate_fraction": MIN_RATE_FRACTION,
            "setup": {k: _jsonable(v) for k, v in report.setup.items()}, "inputs": inputs, "models": models}


__all__ = ["Report", "render", "report_json"]
