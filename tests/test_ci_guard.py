"""The CI guard of ci_requirements.py: pytest in a subprocess, with the guard as its plugin, on a throwaway
directory holding one passing test.

Under CI=true a compiled CPU backend that cannot be built (IIRSNN_NO_COMPILE=1) or a missing Triton (hidden
from the subprocess by the directory's conftest) ends the run with a non-zero status and the reason; without
CI, or with CI=false, the same run passes. And this session's pytest runs the guard (conftest.py hooks it in).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import ci_requirements
from iirsnn.kernels.cpu import build

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"
HIDE_TRITON = "import sys\n\nsys.modules['triton'] = None  # importlib.util.find_spec('triton') is then None\n"


def run_pytest(tmp_path: Path, env: dict[str, str], hide_triton: bool = False) -> subprocess.CompletedProcess:
    """pytest with the guard plugin on one passing test (beside a conftest hiding Triton, if asked)."""
    (tmp_path / "test_nothing.py").write_text("def test_nothing():\n    assert True\n")
    if hide_triton:
        (tmp_path / "conftest.py").write_text(HIDE_TRITON)
    full = {k: v for k, v in os.environ.items() if k not in ("CI", "IIRSNN_NO_COMPILE")}
    full.update(env, TRITON_INTERPRET="1")
    full["PYTHONPATH"] = os.pathsep.join([str(SRC), str(TESTS), os.environ.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "ci_requirements", "-p", "no:cacheprovider",
                           str(tmp_path)], cwd=tmp_path, env=full, capture_output=True, text=True, timeout=120)


def no_compile_reason(monkeypatch) -> str:
    """What iirsnn.kernels.cpu.unavailable_reason() reports under IIRSNN_NO_COMPILE=1."""
    monkeypatch.setenv("IIRSNN_NO_COMPILE", "1")
    with pytest.raises(build.BuildError) as info:
        build.load()
    return str(info.value)


def test_ci_fails_without_the_compiled_backend(tmp_path, monkeypatch):
    result = run_pytest(tmp_path, {"CI": "true", "IIRSNN_NO_COMPILE": "1"})
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "compiled CPU backend is unavailable" in output and no_compile_reason(monkeypatch) in output, output
    assert "1 passed" not in output


def test_ci_fails_without_triton(tmp_path):
    result = run_pytest(tmp_path, {"CI": "true"}, hide_triton=True)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Triton cannot run" in output, output


@pytest.mark.parametrize("ci", [None, "false", "0"], ids=["unset", "false", "zero"])
def test_without_ci_missing_parts_do_not_fail(tmp_path, ci):
    result = run_pytest(tmp_path, {"IIRSNN_NO_COMPILE": "1", **({"CI": ci} if ci is not None else {})},
                        hide_triton=True)
    assert result.returncode == 0 and "1 passed" in result.stdout, result.stdout + result.stderr


def test_this_session_runs_the_guard(pytestconfig):
    """tests/conftest.py hooks the guard into every run of the suite."""
    hooked = [impl.function for impl in pytestconfig.hook.pytest_sessionstart.get_hookimpls()]
    assert ci_requirements.pytest_sessionstart in hooked
