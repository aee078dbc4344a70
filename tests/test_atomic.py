"""The package's one atomic-write helper: old or new content, never half of one, no temporary files left."""

import json
import os

import pytest

from iirsnn.atomic import atomic_path, atomic_write_bytes, atomic_write_json


def test_write_replaces_content_and_sets_mode(tmp_path):
    target = tmp_path / "sub" / "file.bin"
    atomic_write_bytes(target, b"old")
    atomic_write_bytes(target, b"new content")
    assert target.read_bytes() == b"new content"
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)
    assert os.listdir(target.parent) == ["file.bin"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "state.json"
    atomic_write_json(target, {"epoch": 1})
    with pytest.raises(RuntimeError, match="killed"), atomic_path(target) as tmp:
        tmp.write_bytes(b'{"epoch": 2, "half')
        raise RuntimeError("killed while writing")
    assert json.loads(target.read_text()) == {"epoch": 1}
    assert os.listdir(tmp_path) == ["state.json"]


def test_a_killed_writer_leaves_the_previous_file(tmp_path):
    """A child process killed (SIGKILL) between writing and renaming: the target keeps its old bytes."""
    import signal
    import subprocess
    import sys

    target = tmp_path / "ckpt"
    atomic_write_bytes(target, b"complete")
    code = ("import os, signal, sys\nfrom iirsnn.atomic import atomic_path\n"
            "with atomic_path(sys.argv[1]) as tmp:\n    tmp.write_bytes(b'partial')\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    result = subprocess.run([sys.executable, "-c", code, str(target)])
    assert result.returncode == -signal.SIGKILL
    assert target.read_bytes() == b"complete"
