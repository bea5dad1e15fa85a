"""Code decides on typed fields, never on display text (STYLE.md): grep every module of the package for
the ways text gets parsed back (an event's "A->B" or its reasons, a status string, /diagnostics values)
and fail naming file:line. Comments and docstrings are not code and are left out."""
import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "hjepa_agent"

PATTERNS = {
    "a string method on an arrow ('A->B' text)":
        re.compile(r"\.(r?split|r?partition|index|r?find|count|startswith|endswith|replace)\(\s*[rbf]?[\"'][^\"']*->"),
    "an arrow literal as an argument":
        re.compile(r"[\"']->[\"']\s*\)"),
    "indexing an event's reasons":
        re.compile(r"\breasons\s*\[|\[[\"']reasons[\"']\]\s*\["),
    "indexing an event's display text":
        re.compile(r"\.text\(\)\s*\["),
    "indexing a journal event's text":
        re.compile(r"(?=.*\[[\"']events[\"']\])(?=.*\b\w+\[\d+\])"),
    "startswith/endswith on a reason, an event's text or a status":
        re.compile(r"(?=.*\.(startswith|endswith)\()(?=.*(\breason|\.text\(\)|\[[\"']events[\"']\]|\bstatus\b|\.message\b))"),
    "a number read back from a status or /diagnostics":
        re.compile(r"\b(float|int)\([^()]*(\bstatus\b|\.message\b|\bkv\b|\[[\"']values[\"']\]|\.values\[)"),
    "indexing /diagnostics values":
        re.compile(r"\[[\"']values[\"']\]\s*\["),
    "a regular expression over a reason, an event's text or a status":
        re.compile(r"\bre\.\w+\(.*(\breason|\.text\(\)|\bstatus\b|\.message\b)"),
}
"""What parsing display text looks like, by what it does."""

ALLOWED: dict[tuple[str, str], str] = {}
"""(file relative to the package's parent, the stripped line) -> why that line is provably not parsing
display text (keep it short: a comment each). Empty: no line of the package needs one."""


def code_lines(source: str) -> dict[int, str]:
    """Line number -> the line's code: comments blanked, docstrings (a module's, a class's, a function's)
    left out."""
    doc_lines: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                doc_lines.update(range(first.lineno, first.end_lineno + 1))
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            doc_lines.update(range(node.lineno, node.end_lineno + 1))   # an attribute's docstring
    lines = source.splitlines()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            row, col = tok.start
            lines[row - 1] = lines[row - 1][:col]
    return {i: line for i, line in enumerate(lines, 1) if i not in doc_lines}


def parsing(source: str, name: str) -> list[str]:
    """Every line of ``source`` (the module ``name``) that parses display text: "name:line: what | code"."""
    out = []
    for i, line in code_lines(source).items():
        for what, pattern in PATTERNS.items():
            if pattern.search(line) and (name, line.strip()) not in ALLOWED:
                out.append(f"{name}:{i}: {what} | {line.strip()}")
    return out


@pytest.mark.parametrize("path", sorted(PKG.rglob("*.py")), ids=lambda p: str(p.relative_to(PKG)))
def test_no_module_parses_display_text(path):
    found = parsing(path.read_text(), str(path.relative_to(PKG.parent)))
    assert not found, "display text parsed back (decide on typed fields instead):\n" + "\n".join(found)


OLD_TUNE = '''
def calibrated_intervention(reasons):
    """Whether a mode event's reasons ("A->B", cause, ...) are an intervention decided by a calibrated score."""
    target = reasons[0].split("->")[-1]
    if target == "SAFE_STOP":
        return len(reasons) > 1 and all(r.startswith("ambiguity") for r in reasons[1:])
    return target == "OPTIMISING" and len(reasons) > 1 and reasons[1].startswith("plan clearance")


def score(events, mode):
    for kind, reasons in events:   # a "graded" event's reasons[0] is "A->B"
        if reasons and str(reasons[0]).endswith("->NORMAL"):
            continue
        before, _, entered = str(reasons[0]).partition("->")
    live = [r[0] for k, r in entry["events"] if k == "mode"]
    n = sum(t[2].split("->")[-1] == m for t in tr)
    z = float(out.status["values"]["risk_z"])
    amb = float(status.message.split()[1])
    first = ev.text()[0]
    if re.match(r"ambiguity", ev.reasons[0]):
        pass
'''
"""What tune.py did before typed events (its calibrated_intervention, score_episode and replay counting, as
they were at 32aab84), plus the status and /diagnostics readings the watchdog's status once needed."""


def test_the_check_finds_the_parsing_tune_did_before_typed_events():
    found = parsing(OLD_TUNE, "old_tune.py")
    lines = {int(f.split(":")[1]) for f in found}
    assert lines == {4, 6, 7, 12, 14, 15, 16, 17, 18, 19, 20}, "\n".join(found)
    # comments and docstrings are not code: line 3's docstring and line 11's comment quote "A->B" and reasons[0]
    assert 3 not in lines and 11 not in lines


def test_the_check_leaves_typed_decisions_alone():
    typed = '''
def calibrated_intervention(event):
    if event.transition.after == "SAFE_STOP":
        return all(c == Cause.AMBIGUITY for c in event.causes)
    z = out.readings["risk_z"]
    text = "; ".join(ev.reasons)        # display text shown as it is, not parsed
    label = f"{tr.before}->{tr.after}"
    name = topic if topic.startswith("/") else ns + "/" + topic
'''
    assert parsing(typed, "typed.py") == []
