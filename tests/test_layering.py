"""Dependencies run one way, and the rest of the package uses a Session only through its
explicit context.

    api (session, dataframe, cli)  ->  sql frontend  ->  plan  <-  exec  ->  kernels (reference, accel)

The plan layer never imports the SQL frontend or the API; operators never import the
frontend or the API; the kernels import neither. Outside ``velaria/session.py`` no module
reads a Session's private members: it uses ``session.context``.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# layer directory -> module prefixes it must not import
FORBIDDEN = {
    "velaria/plan": ("velaria.sql", "velaria.session", "velaria.dataframe", "velaria.cli", "velaria.stream"),
    "velaria/exec": ("velaria.sql", "velaria.session", "velaria.dataframe", "velaria.cli"),
    "reference": ("velaria.sql", "velaria.session", "velaria.dataframe", "velaria.cli", "velaria.stream",
                  "velaria.vector", "velaria.accel"),
    "accel": ("velaria.sql", "velaria.session", "velaria.dataframe", "velaria.cli", "velaria.stream",
              "velaria.vector"),
}
# where each directory's modules live in the velaria namespace
PACKAGE = {"velaria/plan": "velaria.plan", "velaria/exec": "velaria.exec", "reference": "velaria.reference",
           "accel": "velaria.accel"}


def _imports(path: Path, package: str) -> list[str]:
    """Absolute names of every module ``path`` imports, function-level imports included."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.append(name)
            out += [f"{name}.{a.name}" for a in node.names]
    return out


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_does_not_import_upward(layer):
    bad = []
    for path in sorted((ROOT / layer).glob("*.py")):
        for name in _imports(path, PACKAGE[layer]):
            if name.startswith(FORBIDDEN[layer]):
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "\n".join(bad)


def test_no_module_reads_session_private_members():
    pattern = re.compile(r"\bsession\._[a-z]|_session\._[a-z]")
    bad = []
    for path in sorted((ROOT / "velaria").rglob("*.py")):
        if path.name in ("session.py", "session_context.py"):
            continue
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                bad.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not bad, "use session.context instead:\n" + "\n".join(bad)
