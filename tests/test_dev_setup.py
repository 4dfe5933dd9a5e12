"""The first run of the README's commands (``python3 dev.py demo`` / ``test``): pinned
versions are used, nothing is reinstalled when nothing changed, and the packaging config
lists every directory it ships (setuptools otherwise prints "Package would be ignored")."""
from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def dev(monkeypatch):
    spec = importlib.util.spec_from_file_location("velaria_dev_script", ROOT / "dev.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)


def test_unchanged_project_is_not_reinstalled(dev, tmp_path, monkeypatch):
    stamp = tmp_path / "stamp.json"
    stamp.write_text(json.dumps({"source": dev._source_fingerprint(), "extras": ["test"]}))
    monkeypatch.setattr(dev, "STAMP", stamp)
    monkeypatch.setattr(dev, "PY", Path(sys.executable))   # the environment exists

    def no_pip(step, args):
        raise AssertionError(f"pip ran although nothing changed: {step}")

    monkeypatch.setattr(dev, "_pip", no_pip)
    dev.ensure_env(["test"])
    dev.ensure_env([])                                       # demo needs no more than test


def test_a_missing_extra_installs_only_its_packages(dev, tmp_path, monkeypatch):
    stamp = tmp_path / "stamp.json"
    stamp.write_text(json.dumps({"source": dev._source_fingerprint(), "extras": []}))
    monkeypatch.setattr(dev, "STAMP", stamp)
    monkeypatch.setattr(dev, "PY", Path(sys.executable))
    calls = []
    monkeypatch.setattr(dev, "_pip", lambda step, args: calls.append(args))
    dev.ensure_env(["test"])
    assert calls == [sorted(_pyproject()["project"]["optional-dependencies"]["test"])]
    assert json.loads(stamp.read_text())["extras"] == ["test"]


def test_fingerprint_follows_pins_packaging_and_accelerator_sources(dev, tmp_path, monkeypatch):
    for rel in ["pyproject.toml", "setup.py", "constraints.txt", "accel/build_accel.py"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    (tmp_path / "accel" / "src").mkdir()
    (tmp_path / "accel" / "src" / "k.c").write_text("int k;\n")
    monkeypatch.setattr(dev, "ROOT", tmp_path)
    seen = {dev._source_fingerprint()}
    for rel, text in [("constraints.txt", "pyarrow==1.0\n"), ("accel/src/k.c", "int k2;\n"),
                      ("setup.py", "# changed\n"), ("accel/src/new.h", "#define X 1\n")]:
        with open(tmp_path / rel, "a") as handle:
            handle.write(text)
        seen.add(dev._source_fingerprint())
    assert len(seen) == 5
    (tmp_path / "README.md").write_text("docs do not need a rebuild\n")
    assert dev._source_fingerprint() in seen


def test_pip_runs_with_the_constraints_file(dev, monkeypatch):
    ran = {}

    class FakePopen:
        def __init__(self, cmd, cwd, env, stdout, stderr, text):
            ran["cmd"], ran["env"] = cmd, env
            self.stdout = iter(["Collecting pyarrow\n", "noise\n"])
            self.returncode = 0

        def wait(self):
            return 0

    monkeypatch.setattr(dev.subprocess, "Popen", FakePopen)
    dev._pip("installing", ["-e", ".[test]"])
    cmd = ran["cmd"]
    assert cmd[cmd.index("-c") + 1] == str(ROOT / "constraints.txt")
    assert ran["env"]["PIP_CONSTRAINT"] == str(ROOT / "constraints.txt")   # build isolation too


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_constraints_pin_every_dependency_the_suite_uses():
    project = _pyproject()["project"]
    wanted = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]}
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and version.strip(), f"constraints.txt: {line!r} is not an exact pin"
            pins[_name(name)] = version.strip()
    assert wanted <= set(pins), f"not pinned: {sorted(wanted - set(pins))}"


def test_every_shipped_directory_is_a_listed_package():
    config = _pyproject()["tool"]["setuptools"]
    listed = set(config["packages"])
    unlisted = []
    for package, directory in config["package-dir"].items():
        base = ROOT / directory
        for path in [base] + sorted(p for p in base.rglob("*") if p.is_dir()):
            if "__pycache__" in path.parts or path.name.endswith(".egg-info") or path.name == "build":
                continue
            if not any(f.is_file() for f in path.iterdir()):
                continue
            rel = path.relative_to(base).parts
            dotted = ".".join((package,) + rel)
            owner = max((p for p in config["package-dir"] if dotted == p or dotted.startswith(p + ".")),
                        key=len)
            if owner == package and dotted not in listed:
                unlisted.append(dotted)
    assert not unlisted, f"add to [tool.setuptools] packages: {unlisted}"


def test_accelerator_wrapper_declares_every_function_it_calls(tmp_path):
    """cffi's generated wrapper calls each declared C function; without a prototype in scope
    the call is an implicit declaration: GCC 14 and Clang 16 refuse it (the accelerator then
    fails to build on a fresh machine), and older compilers take the result for an ``int``,
    which garbles ``double`` and truncates ``int64_t`` results."""
    import shutil as sh
    import subprocess
    import sysconfig

    cc = sh.which("cc") or sh.which("gcc") or sh.which("clang")
    if cc is None:
        pytest.skip("no C compiler")
    spec = importlib.util.spec_from_file_location("velaria_build_accel", ROOT / "accel" / "build_accel.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    wrapper = tmp_path / "wrapper.c"
    module.ffibuilder.emit_c_code(str(wrapper))
    done = subprocess.run([cc, "-fsyntax-only", "-std=c11", "-Werror=implicit-function-declaration",
                           "-I", str(ROOT / "accel" / "src"), "-I", sysconfig.get_paths()["include"],
                           str(wrapper)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]


def test_failed_accelerator_build_removes_the_stale_module(tmp_path):
    """A build that fails must not leave an older accelerator behind: it would load and run
    code older than the sources while the install reports success."""
    import subprocess

    shutil.copy(ROOT / "setup.py", tmp_path / "setup.py")
    shutil.copytree(ROOT / "accel", tmp_path / "accel",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    sources = re.search(r"SOURCES = \[\s*\"([^\"]+)\"", (ROOT / "accel" / "build_accel.py").read_text())
    first = tmp_path / "accel" / "src" / sources.group(1)
    first.write_text(first.read_text() + "\n#error deliberately broken\n")
    stale = tmp_path / "accel" / "_velaria_accel.abi3.so"
    stale.write_bytes(b"an older build")
    proc = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr   # optional: the install goes on
    assert "the C accelerator was not built" in proc.stdout + proc.stderr
    assert not stale.exists()
