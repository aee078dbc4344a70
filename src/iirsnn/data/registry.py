"""The datasets iirsnn knows, for ``iirsnn data list|verify|download``.

Each entry names the directory under the data root, the module that reads it, and what
``verify``/``download`` call there. Modules are imported only when an entry is used.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from iirsnn.data.download import Remote, fetch_all
from iirsnn.data.errors import DataError, MissingDataError
from iirsnn.data.files import data_root


@dataclass(frozen=True)
class Entry:
    """A dataset directory ``name`` read by ``iirsnn.data.<module>``; ``verify_kwargs`` go to its
    ``verify``; ``remotes`` is the module attribute listing its public files (empty: no public
    checksummed download, ``no_download`` says why)."""

    name: str
    module: str
    description: str
    verify_kwargs: dict = field(default_factory=dict)
    remotes: str = "REMOTES"
    no_download: str = ""

    def load(self):
        return importlib.import_module(f"iirsnn.data.{self.module}")

    def remote_files(self) -> list[Remote]:
        return list(getattr(self.load(), self.remotes, []))


_LDC = "licensed by the LDC (LDC93S10): copy your own corpus there"
DATASETS: dict[str, Entry] = {e.name: e for e in [
    Entry("mnist", "mnist", "MNIST handwritten digits, IDX files (rate-coded input)"),
    Entry("nmnist", "nmnist", "N-MNIST, original Train/<digit>/*.bin release", {"name": "nmnist"},
          no_download="the release has no published sha256; unpack Train.zip and Test.zip there"),
    Entry("nmnist_small", "nmnist", "N-MNIST subset of SLAYER (1,000 train / 100 test .bs2 files)",
          {"name": "nmnist_small"}, no_download="copy it from SLAYER-PyTorch (see its SOURCE.md)"),
    Entry("dvs128_gesture", "dvs_gesture", "DVS128 Gesture, IBM release (AEDAT 3.1 + labels)",
          {"name": "dvs128_gesture"}, no_download="IBM distributes it from a Box page without checksums; unpack "
          "DvsGesture.tar.gz there"),
    Entry("dvs128_gesture_slayer_samples", "dvs_gesture", "ten DVS128 Gesture streams of SLAYER (.bs2)",
          {"name": "dvs128_gesture_slayer_samples"}, remotes="SAMPLES_REMOTES"),
    Entry("fsdd", "fsdd", "Free Spoken Digit Dataset, WAV (stand-in for TIDIGITS)",
          no_download="upstream is a git repository without a checksummed archive: clone "
          "github.com/Jakobovski/free-spoken-digit-dataset there"),
    Entry("tidigits", "tidigits", "TIDIGITS isolated digits, NIST SPHERE", no_download=_LDC),
    Entry("ntidigits_slayer_sample", "ntidigits", "one N-TIDIGITS cochlea recording (.bs1)"),
    Entry("auslan_hq", "auslan", "Australian Sign Language HQ (tctodd), 2,565 .tsd files",
          no_download="UCI publishes no checksum for its archive; unpack tctodd.tar.gz there"),
    Entry("japanese_vowels", "japanese_vowels", "Japanese Vowels, 9 speakers, 12 LPC channels"),
    Entry("associative_memory", "associative", "the paper authors' ten 300 x 300 target spike patterns"),
    Entry("uea", "uea", "UEA multivariate archive sets (.ts / .arff), one directory per problem",
          no_download="download a problem's zip from timeseriesclassification.com and unpack it as <root>/<Problem>/"),
]}


def entry(name: str) -> Entry:
    """The registry entry of ``name``; KeyError naming the known datasets otherwise."""
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name]


def present(name: str, root: str | os.PathLike | None = None) -> bool:
    """Whether the dataset's directory exists under the root (for ``uea``: any problem directory)."""
    base = data_root(root)
    if name == "uea":
        return any(base.glob("*/*_TRAIN.ts")) or any(base.glob("*/*_TRAIN.arff"))
    return (base / name).is_dir()


def verify(name: str, root: str | os.PathLike | None = None) -> list[str]:
    """The problems the dataset's own ``verify`` finds (empty: all good)."""
    e = entry(name)
    check: Callable[..., list[str]] = e.load().verify
    return check(root, **e.verify_kwargs)


def download(name: str, root: str | os.PathLike | None = None, progress: bool = True) -> list[Path]:
    """Fetch the dataset's public files into ``<root>/<name>/``, each checked against its sha256.

    Raises :class:`DataError` saying where to get the data when there is no public checksummed download.
    """
    e = entry(name)
    remotes = e.remote_files()
    if not remotes:
        raise DataError(f"{name}: no public download with checksums; {e.no_download or 'see its SOURCE.md'}")
    try:
        base = data_root(root)
    except MissingDataError:
        if root is None:
            raise
        base = Path(root).expanduser()
        base.mkdir(parents=True)
    return fetch_all(remotes, base / name, progress)
