"""The allocator mode chosen by IIRSNN_MALLOC: parsed strictly, applied in a fresh process."""

import subprocess
import sys

import pytest

from iirsnn import _malloc


@pytest.mark.parametrize(("env", "mode"), [({}, "reuse"), ({"IIRSNN_MALLOC": "lean"}, "lean"),
                                            ({"IIRSNN_MALLOC": " System "}, "system"),
                                            ({"IIRSNN_TUNE_MALLOC": "0", "IIRSNN_MALLOC": "lean"}, "system")])
def test_requested_mode(monkeypatch, env, mode):
    monkeypatch.delenv("IIRSNN_MALLOC", raising=False)
    monkeypatch.delenv("IIRSNN_TUNE_MALLOC", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert _malloc.requested_mode() == mode


def test_unknown_mode_is_named(monkeypatch):
    monkeypatch.setenv("IIRSNN_MALLOC", "fast")
    with pytest.raises(ValueError, match=r"IIRSNN_MALLOC must be one of .*'fast'"):
        _malloc.requested_mode()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
@pytest.mark.parametrize("mode", ["lean", "system"])
def test_mode_applied_at_import(mode):
    code = "import iirsnn; from iirsnn import _malloc; print(_malloc.applied or 'system')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"IIRSNN_MALLOC": mode, "PATH": ""}).stdout.strip()
    assert out == mode
