"""Under CI, the optional parts the tests exercise must be there: a pytest plugin used by conftest.py.

With the environment variable CI set to a true value (``CI=true``, as CI systems set it; .ci/run exports
it), a compiled CPU backend that failed to build, or a missing Triton (the ``gpu`` extra, whose kernels the
tests run in its interpreter), stops the run at its start with a non-zero exit status and the reason,
instead of turning a few hundred tests into skips that leave the run green. Without CI nothing changes:
those tests are skipped as before, and this module imports nothing heavy.
"""

from __future__ import annotations

import os

import pytest

FALSE_VALUES = ("", "0", "false", "no", "off")


def in_ci() -> bool:
    """Whether the environment variable CI holds a true value."""
    return os.environ.get("CI", "").strip().lower() not in FALSE_VALUES


def missing_requirements() -> list[str]:
    """Why the compiled CPU kernels or the Triton kernels cannot be tested here (empty: both can)."""
    import torch

    from iirsnn.kernels import cpu, gpu

    problems = []
    if not cpu.available():
        problems.append(f"the compiled CPU backend is unavailable: {cpu.unavailable_reason()}")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if not gpu.available_for(device):
        problems.append("Triton cannot run the gpu backend's kernels (install the gpu extra, pip install -e "
                        "'.[gpu]'; without CUDA they need TRITON_INTERPRET=1, which tests/conftest.py sets)")
    return problems


def pytest_sessionstart(session: pytest.Session) -> None:
    if not in_ci():
        return
    problems = missing_requirements()
    if problems:
        pytest.exit(f"CI={os.environ['CI']}: " + "; ".join(problems) + " (their tests would only be skipped)",
                    returncode=pytest.ExitCode.TESTS_FAILED)
