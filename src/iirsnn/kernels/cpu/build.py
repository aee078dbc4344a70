"""Build (once, at first use) and load the compiled CPU kernels.

Why plain C through ctypes: the scans are simple loops over raw float arrays that need neither
torch's headers nor pybind11. A torch C++ extension took 27 s to compile here even when empty;
this library compiles in about a second with the system C compiler, is cached per source, compiler
and CPU (it is built with -march=native), and loads in any process with no build-time torch.
OpenMP spreads the lanes over torch's thread count; glibc's libmvec vectorises exp.

Environment: ``IIRSNN_CC`` (compiler, default ``cc``), ``IIRSNN_CACHE`` (cache directory, default
``~/.cache/iirsnn``), ``IIRSNN_NO_COMPILE=1`` (never compile: the ``cpu`` backend is unavailable),
``IIRSNN_SANITIZE=address`` (build with AddressSanitizer, cached apart from the normal build, to find reads
and writes outside the tensors the kernels are handed). Python itself is not instrumented, so the ASan
runtime must be preloaded, and libstdc++ with it (else the first C++ exception torch throws, e.g. for a
shape error, stops the process in ASan's __cxa_throw interceptor), e.g. in bash:

    export IIRSNN_SANITIZE=address ASAN_OPTIONS=detect_leaks=0:log_path=/tmp/asan
    export LD_PRELOAD="$(cc -print-file-name=libasan.so) $(cc -print-file-name=libstdc++.so)"
    python -m pytest tests/test_fast_paths.py

``detect_leaks=0``: the interpreter's own allocations at exit are not our leaks; ``log_path``: reports go to
/tmp/asan.<pid> files, since pytest's capture would swallow them when the process dies inside a test.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import stat
import subprocess
from pathlib import Path

from iirsnn.atomic import atomic_path

SOURCES = ("scans.c", "scans_impl.h", "scans_registers.h", "sparse.c", "sparse_impl.h")
FLAGS = ["-O3", "-march=native", "-fopenmp", "-fno-math-errno", "-shared", "-fPIC", "-std=gnu11"]
LIBS = ["-lmvec", "-lm"]
SANITIZERS = {"address": ["-fsanitize=address", "-fno-omit-frame-pointer", "-g"]}


class BuildError(RuntimeError):
    """The C kernels could not be compiled or loaded (the reason is in the message)."""


def _cpu_signature() -> str:
    try:
        flags = [ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags")][:1]
    except OSError:
        flags = []
    return platform.machine() + "".join(flags)


def sanitizer_flags() -> list[str]:
    """The compiler flags of ``IIRSNN_SANITIZE`` (empty when unset); a BuildError for an unknown sanitizer."""
    name = os.environ.get("IIRSNN_SANITIZE", "").strip()
    if not name:
        return []
    if name not in SANITIZERS:
        raise BuildError(f"IIRSNN_SANITIZE={name!r} is not supported; choose one of {sorted(SANITIZERS)}")
    return SANITIZERS[name]


def _library_path(compiler: str, flags: list[str]) -> Path:
    here = Path(__file__).parent
    h = hashlib.sha256()
    for name in SOURCES:
        h.update((here / name).read_bytes())
    h.update(" ".join([compiler, *flags, *LIBS]).encode())
    h.update(_cpu_signature().encode())
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout
    h.update(version.encode())
    cache = Path(os.environ.get("IIRSNN_CACHE", Path.home() / ".cache" / "iirsnn"))
    return cache / "kernels" / f"iirsnn_cpu_{h.hexdigest()[:16]}.so"


def load() -> ctypes.CDLL:
    """Compile if needed and load the kernel library; raises BuildError with the reason on failure."""
    if os.environ.get("IIRSNN_NO_COMPILE") == "1":
        raise BuildError("compilation disabled by IIRSNN_NO_COMPILE=1")
    compiler = os.environ.get("IIRSNN_CC", "cc")
    if shutil.which(compiler) is None:
        raise BuildError(f"no C compiler {compiler!r} on PATH (set IIRSNN_CC)")
    flags = FLAGS + sanitizer_flags()
    path = _library_path(compiler, flags)
    try:
        if not path.exists():
            _compile(compiler, flags, path)
        _check_private(path)
        return ctypes.CDLL(str(path))
    except OSError as e:  # an unwritable cache, a library that does not load
        raise BuildError(f"building or loading {path} failed: {e}") from e


def _check_private(path: Path) -> None:
    """Refuse to load a library that another user could have planted or changed: the file and its directory
    must belong to this user and be writable by nobody else (a BuildError says which and what to do)."""
    for item in (path.parent, path):
        st = item.stat()
        if st.st_uid != os.getuid():
            raise BuildError(f"refusing to load {path}: {item} belongs to user id {st.st_uid}, not to this user "
                             f"({os.getuid()}); point IIRSNN_CACHE at a directory of your own")
        if st.st_mode & 0o022:
            raise BuildError(f"refusing to load {path}: {item} is writable by other users (mode "
                             f"{stat.filemode(st.st_mode)}); remove it, or point IIRSNN_CACHE at a private directory")


def _compile(compiler: str, flags: list[str], path: Path) -> None:
    """Compile the kernels with ``flags`` into ``path`` (via a temporary file and an atomic rename)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # private whatever the umask: see _check_private
    here = Path(__file__).parent
    with atomic_path(path, mode=0o755) as tmp:  # concurrent builders each write their own temporary file
        cmd = [compiler, *flags, "-o", str(tmp), str(here / "scans.c"), str(here / "sparse.c"), *LIBS]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise BuildError(f"compiling the CPU kernels failed ({' '.join(cmd)}):\n{result.stderr[-2000:]}")
