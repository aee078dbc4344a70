"""TIDIGITS (LDC93S10, Leonard & Doddington 1993), isolated digits as MFCC sequences, for owners of the corpus.

TIDIGITS is LDC-licensed: nothing here downloads it (``REMOTES`` is empty). 326 speakers (111 men,
114 women, 50 boys, 51 girls), each reading 77 digit sequences, 22 of them isolated digits: two
productions (``a``, ``b``) of each of the 11 digits ``z`` (zero), ``1``-``9`` and ``o`` (oh). The
paper uses the isolated digits, so this loader gives exactly those, with 11 classes (label 0 is
"zero", 1-9 the digits, 10 "oh"). Audio is 20 kHz 16-bit NIST SPHERE (:mod:`iirsnn.data.sphere`)
named ``.wav``; a corpus converted to RIFF WAV (``sph2pipe -f wav``) is read as well, the format
is told by each file's magic. Shorten-compressed SPHERE files are refused with a hint to
decompress them with ``sph2pipe``.

Layouts accepted under ``<root>/tidigits/`` (names in any letter case), as assumed from the LDC
distribution and from the Kaldi recipe that reads it:

- LDC: ``data/adults/{train,test}/{man,woman}/<speaker>/<digits><a|b>.wav`` and
  ``data/children/{train,test}/{boy,girl}/<speaker>/...`` (e.g. ``data/adults/test/woman/pf/1b.wav``)
- flat: ``{train,test}/{man,woman,boy,girl}/<speaker>/<digits><a|b>.wav``

where ``<speaker>`` is the speaker's two-letter code and ``<digits>`` the digit sequence; an
isolated digit is a name of one digit and one production letter (``za.wav``, ``1b.wav``, ``ob.wav``).
The train and test speakers are disjoint, so the standard split is speaker-independent.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from iirsnn.data.audio import MfccConfig, MfccFileDataset, Waveform, read_wav
from iirsnn.data.download import Remote
from iirsnn.data.errors import DataError, MissingDataError
from iirsnn.data.files import dataset_dir
from iirsnn.data.sphere import SPHERE_MAGIC, read_sphere

NAME = "tidigits"
SPLITS = ("train", "test")
GROUPS = ("man", "woman", "boy", "girl")
AGE_DIRS = {"man": "adults", "woman": "adults", "boy": "children", "girl": "children"}
SPEAKERS_PER_GROUP = {"man": 111, "woman": 114, "boy": 50, "girl": 51}  # train and test together
DIGIT_CODES = "z123456789o"  # label = position: z (zero) 0, 1..9, o (oh) 10
CLASSES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "oh"]
ISOLATED_PER_SPEAKER = 2 * len(DIGIT_CODES)
SAMPLE_RATE = 20000
REMOTES: list[Remote] = []  # LDC-licensed (LDC93S10): no public download
_ISOLATED = re.compile(r"([z1-9o])([ab])\.wav", re.IGNORECASE)


@dataclass(frozen=True)
class Utterance:
    """One isolated-digit file: its ``path``, ``split``, speaker ``group``, ``speaker`` code, ``label``
    (index into ``CLASSES``) and ``production`` (``a`` or ``b``)."""

    path: Path
    split: str
    group: str
    speaker: str
    label: int
    production: str


def _child(directory: Path, name: str) -> Path | None:
    """The sub-directory of ``directory`` called ``name`` in any letter case, or None."""
    exact = directory / name
    if exact.is_dir():
        return exact
    if not directory.is_dir():
        return None
    return next((p for p in sorted(directory.iterdir()) if p.name.lower() == name and p.is_dir()), None)


def _descend(directory: Path | None, names: Sequence[str]) -> Path | None:
    """``directory/names[0]/names[1]/...`` matched in any letter case, or None."""
    for name in names:
        if directory is None:
            return None
        directory = _child(directory, name)
    return directory


def group_directory(directory: Path, split: str, group: str) -> Path | None:
    """The directory of the speakers of ``group`` in ``split`` (LDC layout first, then flat), or None."""
    return _descend(directory, ["data", AGE_DIRS[group], split, group]) or _descend(directory, [split, group])


def expected_directories(directory: Path, split: str, group: str) -> list[Path]:
    """Where :func:`group_directory` looks, for error messages."""
    return [directory / "data" / AGE_DIRS[group] / split / group, directory / split / group]


def isolated_digits(directory: Path, split: str, group: str) -> list[Utterance]:
    """The isolated-digit utterances of ``group`` in ``split``, sorted by speaker and file name.

    Raises :class:`MissingDataError` naming the expected directories when the group is absent.
    """
    speakers_dir = group_directory(directory, split, group)
    if speakers_dir is None:
        tried = "\n  ".join(str(p) for p in expected_directories(directory, split, group))
        raise MissingDataError(f"TIDIGITS: no {split}/{group} directory; expected one of:\n  {tried}\n"
                               "TIDIGITS is LDC93S10 (LDC-licensed): put your copy of the corpus there")
    utterances = []
    for speaker in sorted(p for p in speakers_dir.iterdir() if p.is_dir()):
        for path in sorted(speaker.iterdir()):
            match = _ISOLATED.fullmatch(path.name)
            if match and path.is_file():
                utterances.append(Utterance(path, split, group, speaker.name.lower(),
                                            DIGIT_CODES.index(match[1].lower()), match[2].lower()))
    return utterances


def read_utterance(path: Path) -> Waveform:
    """The audio of a TIDIGITS file, SPHERE or RIFF WAV as its magic says; errors name the file."""
    with open(path, "rb") as f:
        magic = f.read(len(SPHERE_MAGIC))
    return read_sphere(path) if magic == SPHERE_MAGIC else read_wav(path)


def _checked_groups(groups: Sequence[str]) -> tuple[str, ...]:
    """``groups`` as a tuple, each one of ``GROUPS``, at least one (ValueError otherwise)."""
    if isinstance(groups, str):
        groups = [groups]
    if not groups or any(g not in GROUPS for g in groups):
        raise ValueError(f"groups must be one or more of {list(GROUPS)}, got {list(groups)}")
    return tuple(groups)


class TIDIGITS(MfccFileDataset):
    """TIDIGITS isolated digits of one split as MFCC sequences: sample i is ([n_frames, n_mfcc] float32, label).

    ``split`` is ``"train"`` or ``"test"``; ``groups`` picks speaker groups (e.g. ``("man", "woman")``
    for adults only). ``mfcc`` sets the features (default 90 x 20, ``fit="resample"``), computed
    on first access and cached under ``cache_dir`` unless ``cache=False``. Attributes: ``classes``
    (11 names, "oh" last), ``targets`` [N] long, ``utterances`` (one :class:`Utterance` per sample), ``paths``.
    """

    def __init__(self, root: str | os.PathLike | None = None, split: str = "train", *,
                 groups: Sequence[str] = GROUPS, mfcc: MfccConfig | None = None,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None, cache: bool = True,
                 cache_dir: str | os.PathLike | None = None) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
        directory = dataset_dir(NAME, root)
        self.utterances = [u for g in _checked_groups(groups) for u in isolated_digits(directory, split, g)]
        if not self.utterances:
            raise MissingDataError(f"TIDIGITS: no isolated-digit files (e.g. 1a.wav, zb.wav) under {directory} "
                                   f"for split {split!r} and groups {list(groups)}")
        super().__init__(NAME, directory, [u.path for u in self.utterances], [u.label for u in self.utterances],
                         CLASSES, read_utterance, mfcc or MfccConfig(), transform, cache, cache_dir)


def verify(root: str | os.PathLike | None = None) -> list[str]:
    """Problems with the TIDIGITS isolated digits on disk (empty: all good): missing split/group
    directories, files that are not readable 16-bit PCM (corrupt, truncated, shorten-compressed) or
    not at 20 kHz, speakers without their 22 isolated digits, speaker counts per group other than
    the corpus's (111 men, 114 women, 50 boys, 51 girls over train and test)."""
    try:
        directory = dataset_dir(NAME, root)
    except DataError as exc:
        return [str(exc)]
    problems: list[str] = []
    speakers: Counter[str] = Counter()
    for split in SPLITS:
        for group in GROUPS:
            try:
                utterances = isolated_digits(directory, split, group)
            except DataError as exc:
                problems.append(str(exc))
                continue
            problems += _file_problems(utterances)
            per_speaker = Counter(u.speaker for u in utterances)
            speakers[group] += len(per_speaker)
            problems += [f"{split}/{group}/{s}: {n} isolated-digit files, expected {ISOLATED_PER_SPEAKER}"
                         for s, n in sorted(per_speaker.items()) if n != ISOLATED_PER_SPEAKER]
    problems += [f"{group}: {speakers[group]} speakers in train and test, expected {n}"
                 for group, n in SPEAKERS_PER_GROUP.items() if speakers[group] != n]
    return problems


def _file_problems(utterances: list[Utterance]) -> list[str]:
    """Problems of the files themselves: unreadable, or not at ``SAMPLE_RATE``."""
    problems = []
    for u in utterances:
        try:
            rate = read_utterance(u.path).sample_rate
        except (DataError, OSError) as exc:
            problems.append(str(exc))
            continue
        if rate != SAMPLE_RATE:
            problems.append(f"{u.path}: sample rate {rate} Hz, expected {SAMPLE_RATE}")
    return problems
