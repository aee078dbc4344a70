"""Process-wide settings: none at import; tune_process applies the asked ones; the CLI makes the call.

Each check runs in a fresh interpreter, since these settings cannot be undone within a process. The
allocator mode is read from its effect: whether glibc serves a block with its own mapping (mallinfo2).
"""

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import iirsnn
from iirsnn import benchmark

_SRC = str(Path(iirsnn.__file__).resolve().parents[1])
glibc = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt, Linux only")

# Prints, as JSON: whether a 64 MB block and, after an 8 MB block was freed, a 2 MB block get their own
# mapping, and how many of a subnormal float32 product's elements stay nonzero on the calling thread
# (one element) and over torch's two intra-op threads (2**20 elements).
_PROBE = textwrap.dedent("""
    import ctypes, json, torch

    class Mallinfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in
                    "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

    def probe():
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = Mallinfo2
        def mapped_growth(numel):
            before = libc.mallinfo2().hblkhd
            block = torch.empty(numel)
            return libc.mallinfo2().hblkhd - before >= 4 * numel
        big = mapped_growth(16 << 20)
        torch.empty(2 << 20)  # made and freed: freeing an 8 MB block raises glibc's moving threshold to 8 MB
        torch.set_num_threads(2)
        return {"big_mapped": big, "medium_mapped": mapped_growth(512 << 10),
                "subnormal_here": int((torch.tensor([2e-30]) * 1e-10 != 0).sum()),
                "subnormal_pool": int((torch.full((1 << 20,), 2e-30) * 1e-10 != 0).sum())}
""")
# what each allocator mode does to the two blocks of the probe
_MAPPED = {"system": (True, False), "reuse": (False, False), "lean": (True, True)}


def _run(code: str, **env: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", _PROBE + textwrap.dedent(code)], capture_output=True, text=True,
                          env={"PATH": "", "PYTHONPATH": _SRC, **env}, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@glibc
def test_import_changes_nothing_process_wide():
    out = _run("""
        import iirsnn
        print(json.dumps({"malloc": iirsnn.process_settings().malloc, **probe()}))
    """, IIRSNN_MALLOC="lean", IIRSNN_FLUSH_DENORMAL="1")  # the environment is read only by tune_process
    assert out["malloc"] is None
    assert (out["big_mapped"], out["medium_mapped"]) == _MAPPED["system"]
    assert out["subnormal_here"] == 1 and out["subnormal_pool"] == 1 << 20  # no flush-to-zero anywhere


@glibc
@pytest.mark.parametrize("mode", ["reuse", "lean", "system"])
def test_tune_process_applies_the_malloc_mode(mode):
    out = _run(f"""
        import iirsnn
        settings = iirsnn.tune_process(malloc={mode!r})
        print(json.dumps({{"malloc": settings.malloc, "flush": settings.flush_denormal, **probe()}}))
    """)
    assert out["malloc"] == (None if mode == "system" else mode)
    assert (out["big_mapped"], out["medium_mapped"]) == _MAPPED[mode]
    assert out["flush"] == "off" and out["subnormal_pool"] == 1 << 20


def test_flush_denormal_reaches_the_intra_op_threads():
    out = _run("""
        import iirsnn
        settings = iirsnn.tune_process(malloc="system", flush_denormal=True)
        print(json.dumps({"flush": settings.flush_denormal, "now": iirsnn.process_settings().flush_denormal,
                          **probe()}))
    """)
    assert out["flush"] == out["now"] == "on"
    assert out["subnormal_here"] == 0 and out["subnormal_pool"] == 0


def test_flush_denormal_after_the_threads_started_is_partial_and_warns():
    out = _run("""
        import warnings
        import iirsnn
        torch.set_num_threads(2)
        torch.ones(1 << 20).sum()  # starts torch's intra-op threads
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            settings = iirsnn.tune_process(malloc="system", flush_denormal=True)
        print(json.dumps({"flush": settings.flush_denormal, "warnings": [str(w.message) for w in caught],
                          **probe()}))
    """)
    assert out["flush"] == "partial"
    assert len(out["warnings"]) == 1 and "intra-op threads had already started" in out["warnings"][0]
    assert out["subnormal_here"] == 0 and 0 < out["subnormal_pool"] < 1 << 20


@glibc
def test_the_first_malloc_mode_stays():
    out = _run("""
        import iirsnn
        first = iirsnn.tune_process(malloc="lean")
        again, default = iirsnn.tune_process(malloc="lean"), iirsnn.tune_process()  # IIRSNN_MALLOC says reuse
        try:
            iirsnn.tune_process(malloc="reuse")
            error = None
        except RuntimeError as exc:
            error = str(exc)
        print(json.dumps({"modes": [first.malloc, again.malloc, default.malloc], "error": error, **probe()}))
    """, IIRSNN_MALLOC="reuse")
    assert out["modes"] == ["lean", "lean", "lean"]
    assert "already 'lean'" in out["error"] and "cannot become 'reuse'" in out["error"]
    assert (out["big_mapped"], out["medium_mapped"]) == _MAPPED["lean"]


@glibc
@pytest.mark.parametrize(("call", "env", "message"), [
    ("malloc='fast'", {}, r"malloc must be one of \['reuse', 'lean', 'system'\], got 'fast'"),
    ("", {"IIRSNN_MALLOC": "fast"}, r"IIRSNN_MALLOC must be one of .*got 'fast'"),
    ("", {"IIRSNN_FLUSH_DENORMAL": "maybe"}, r"IIRSNN_FLUSH_DENORMAL must be one of .*got 'maybe'"),
    ("flush_denormal=1", {}, r"flush_denormal must be True, False or None, got 1"),
])
def test_unknown_settings_are_named_and_nothing_is_applied(call, env, message):
    out = _run(f"""
        import iirsnn
        try:
            iirsnn.tune_process({call})
            error = None
        except ValueError as exc:
            error = str(exc)
        print(json.dumps({{"error": error, "malloc": iirsnn.process_settings().malloc, **probe()}}))
    """, **env)
    assert out["error"] is not None
    assert re.search(message, out["error"]), out["error"]
    assert out["malloc"] is None and (out["big_mapped"], out["medium_mapped"]) == _MAPPED["system"]


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "iirsnn.cli", *args], capture_output=True, text=True,
                          env={"PATH": "", "PYTHONPATH": _SRC, **env}, check=False)


@glibc
@pytest.mark.parametrize(("env", "shown"), [({}, "malloc mode reuse (IIRSNN_MALLOC), flush-to-zero off"),
                                            ({"IIRSNN_MALLOC": "lean", "IIRSNN_FLUSH_DENORMAL": "on"},
                                             "malloc mode lean (IIRSNN_MALLOC), flush-to-zero on"),
                                            ({"IIRSNN_MALLOC": "System"}, "malloc mode system (glibc defaults)")])
def test_cli_applies_the_settings_before_its_command(env, shown):
    proc = _cli("info", **env)
    assert proc.returncode == 0, proc.stderr
    assert shown in proc.stdout


def test_cli_names_an_unknown_setting():
    proc = _cli("info", IIRSNN_MALLOC="fast")
    assert proc.returncode == 2
    assert "IIRSNN_MALLOC must be one of ['reuse', 'lean', 'system'], got 'fast'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bench_measurements_get_the_settings_of_their_parent(monkeypatch):
    commands = []

    def fake_run(cmd, **_):
        commands.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, stdout="", stderr="not run")

    monkeypatch.setattr(benchmark.subprocess, "run", fake_run)
    settings = iirsnn.process_settings()
    benchmark.run_isolated(benchmark.plan(["mlp"], [], quick=True)[0])
    cmd = commands[0]
    assert cmd[cmd.index("--malloc") + 1] == (settings.malloc or "system")
    assert cmd[cmd.index("--flush-denormal") + 1] == ("on" if settings.flush_denormal == "on" else "off")
