"""Test-session setup: without a GPU, Triton kernels run in its interpreter on CPU tensors.

TRITON_INTERPRET must be set before Triton compiles (decorates) any kernel, so it is set here,
before the tests import anything that could. Under CI (``CI=true``) a missing compiled CPU backend or
Triton fails the run instead of skipping their tests (see ci_requirements.py).
"""

import os
from pathlib import Path

import pytest
import torch

from ci_requirements import pytest_sessionstart  # noqa: F401  (a hook: pytest finds it by name here)

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

_SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The directory of the real datasets: ``$IIRSNN_DATA``, else ``../shared/data`` beside the repository.

    CI sets IIRSNN_DATA, so a missing directory fails there; elsewhere the tests that need it are skipped.
    """
    env = os.environ.get("IIRSNN_DATA")
    if env:
        path = Path(env)
        assert path.is_dir(), f"IIRSNN_DATA={env} is not a directory"
        return path
    if not _SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {_SHARED_DATA} and IIRSNN_DATA is not set")
    return _SHARED_DATA
