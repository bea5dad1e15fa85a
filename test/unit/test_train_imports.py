"""train/ never imports tune/ or harness/ (ARCHITECTURE.md Layout): parse every module, function-level
imports included, and fail naming the module and the import."""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "hjepa_agent"
TRAIN = PKG / "train"
FORBIDDEN = ("hjepa_agent.tune", "hjepa_agent.harness")


def imported(source: str, package: str) -> list[tuple[int, str]]:
    """(line, dotted name) of every import in ``source`` (a module of ``package``), anywhere in it: ``from
    hjepa_agent import tune`` is hjepa_agent.tune, a relative import is resolved against ``package``."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            out += [(node.lineno, f"{base}.{a.name}") for a in node.names]
    return out


def forbidden(path: Path) -> list[str]:
    package = ".".join(path.relative_to(PKG.parent).parts[:-1])
    return [f"{path.relative_to(PKG.parent)}:{line} imports {name}" for line, name in imported(path.read_text(), package)
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)]


@pytest.mark.parametrize("path", sorted(TRAIN.rglob("*.py")), ids=lambda p: str(p.relative_to(TRAIN)))
def test_train_imports_neither_tune_nor_harness(path):
    bad = forbidden(path)
    assert not bad, "\n".join(bad)


def test_the_check_sees_every_way_of_importing():
    src = ("import hjepa_agent.tune.cli\nfrom hjepa_agent import tune\nfrom hjepa_agent.harness.judge import judge\n"
           "def f():\n    from ..harness import runner\n    from ..nodes.journal import read_run\n")
    names = [n for _, n in imported(src, "hjepa_agent.train")]
    assert names == ["hjepa_agent.tune.cli", "hjepa_agent.tune", "hjepa_agent.harness.judge.judge",
                     "hjepa_agent.harness.runner", "hjepa_agent.nodes.journal.read_run"]
    bad = [n for n in names if any(n == f or n.startswith(f + ".") for f in FORBIDDEN)]
    assert len(bad) == 4


def test_train_has_modules():
    assert len(list(TRAIN.rglob("*.py"))) >= 10
