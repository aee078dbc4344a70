"""The Free Spoken Digit Dataset (FSDD, Jackson et al., v1.0.10): spoken digits 0-9 as MFCC sequences.

The public stand-in for TIDIGITS (LDC-licensed): 3,000 recordings, 6 male speakers x 10 digits x
50 repetitions, 8 kHz mono 16-bit WAV. Layout (upstream's, plus a checksum manifest)::

    <root>/fsdd/recordings/{digit}_{speaker}_{index}.wav     e.g. 7_jackson_32.wav, index 0..49
    <root>/fsdd/MANIFEST.sha256                              sha256sum lines, names relative to recordings/

Splits: ``held_out_speakers=None`` gives upstream's speaker-dependent split (recordings 0-4 of
each speaker and digit are the test set: 300 test, 2,700 train); a list of speakers gives a
speaker-independent split (all their recordings are the test set, the others' the train set).
Each sample is ``[n_frames, n_mfcc]`` float32 (90 x 20 by default), computed as described in
:mod:`iirsnn.data.audio` (needs the extra ``audio``) and cached.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from iirsnn.data.audio import MfccConfig, MfccFileDataset, read_wav
from iirsnn.data.download import Remote
from iirsnn.data.errors import DataError, MissingDataError
from iirsnn.data.files import check_sha256, dataset_dir, file_problem, read_manifest, require_files

NAME = "fsdd"
RECORDINGS = "recordings"
MANIFEST = "MANIFEST.sha256"
MANIFEST_SHA256 = "048d4a35c25a99138109f9c400bbe4392a9f5e07eb7bc98350f27b5a0fd11269"
CLASSES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
REPETITIONS = 50
TEST_INDICES = range(5)
SPLITS = ("train", "test", "all")
UPSTREAM = "https://github.com/Jakobovski/free-spoken-digit-dataset (release v1.0.10, folder recordings/)"
# Upstream is a git repository of 3,000 loose files with no checksummed archive; the checksums are
# those of MANIFEST.sha256 beside the data, so there is nothing to download verifiably from here.
REMOTES: list[Remote] = []

_NAME = re.compile(r"(\d)_([A-Za-z]+)_(\d+)\.wav")


@dataclass(frozen=True)
class Recording:
    """One FSDD file: its ``name``, the spoken ``digit`` (the label), the ``speaker`` and the repetition ``index``."""

    name: str
    digit: int
    speaker: str
    index: int


def parse_name(name: str) -> Recording:
    """The :class:`Recording` of a file name ``{digit}_{speaker}_{index}.wav``; DataError for another name."""
    match = _NAME.fullmatch(name)
    if match is None:
        raise DataError(f"FSDD file name {name!r} is not '{{digit}}_{{speaker}}_{{index}}.wav'")
    return Recording(name, int(match[1]), match[2], int(match[3]))


def recording_names(directory: Path) -> list[str]:
    """The recordings of the FSDD directory ``directory``: the MANIFEST's names when there is one,
    else the ``*.wav`` files of ``recordings/`` (an upstream clone), sorted."""
    manifest = directory / MANIFEST
    if manifest.is_file():
        return sorted(read_manifest(manifest))
    recordings = directory / RECORDINGS
    if not recordings.is_dir():
        raise MissingDataError(f"FSDD: expected the directory {recordings} with the 3,000 WAV files of {UPSTREAM}")
    return sorted(p.name for p in recordings.glob("*.wav"))


def in_test_set(recording: Recording, held_out_speakers: Sequence[str] | None) -> bool:
    """Whether ``recording`` is in the test set: one of ``held_out_speakers``, or, when None, repetition 0-4."""
    if held_out_speakers is None:
        return recording.index in TEST_INDICES
    return recording.speaker in held_out_speakers


class FSDD(MfccFileDataset):
    """FSDD recordings of one split as MFCC sequences: sample i is ([n_frames, n_mfcc] float32, digit).

    ``split`` is ``"train"``, ``"test"`` or ``"all"``; ``held_out_speakers`` (None: upstream's
    repetition-based split) chooses the test speakers of a speaker-independent split. ``files``
    restricts the dataset to these file names (all of which must be in the split), e.g. for a quick
    look. ``mfcc`` sets the features (default 90 x 20, ``fit="resample"``), computed on first
    access and cached under ``cache_dir`` unless ``cache=False``. Attributes: ``classes`` (10 names),
    ``targets`` [N] long, ``recordings`` (one :class:`Recording` per sample), ``paths``.
    """

    def __init__(self, root: str | os.PathLike | None = None, split: str = "train", *,
                 held_out_speakers: Sequence[str] | None = None, files: Sequence[str] | None = None,
                 mfcc: MfccConfig | None = None, transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 cache: bool = True, cache_dir: str | os.PathLike | None = None) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
        directory = dataset_dir(NAME, root)
        recordings = [parse_name(n) for n in recording_names(directory)]
        if held_out_speakers is not None:
            held_out_speakers = _checked_speakers(held_out_speakers, {r.speaker for r in recordings})
        selected = [r for r in recordings
                    if split == "all" or in_test_set(r, held_out_speakers) == (split == "test")]
        if files is not None:
            selected = _restricted(selected, files, split)
        self.recordings = selected
        paths = require_files(directory / RECORDINGS, [r.name for r in selected], "FSDD", f"get them from {UPSTREAM}")
        super().__init__(NAME, directory, paths, [r.digit for r in selected], CLASSES, read_wav,
                         mfcc or MfccConfig(), transform, cache, cache_dir)


def _checked_speakers(speakers: Sequence[str], known: set[str]) -> tuple[str, ...]:
    """``speakers`` as a sorted tuple, each one of ``known``, at least one (ValueError otherwise)."""
    if isinstance(speakers, str):
        speakers = [speakers]
    unknown = sorted(set(speakers) - known)
    if unknown or not speakers:
        raise ValueError(f"held_out_speakers must be one or more of {sorted(known)}, got {list(speakers)}")
    return tuple(sorted(set(speakers)))


def _restricted(selected: list[Recording], files: Sequence[str], split: str) -> list[Recording]:
    """The recordings of ``selected`` named in ``files`` (in that order); ValueError naming those not in the split."""
    by_name = {r.name: r for r in selected}
    outside = [f for f in files if f not in by_name]
    if outside:
        raise ValueError(f"files not in the {split!r} split (or not FSDD recordings): {outside}")
    return [by_name[f] for f in files]


def verify(root: str | os.PathLike | None = None) -> list[str]:
    """Problems with the FSDD on disk (empty: all good): a missing directory or manifest, a manifest
    other than the published one, missing, extra or corrupt files (sha256), file names and counts
    other than 6 speakers x 10 digits x 50 repetitions."""
    try:
        directory = dataset_dir(NAME, root)
        manifest_path = directory / MANIFEST
        if not manifest_path.is_file():
            return [f"{manifest_path}: missing, so the recordings' checksums cannot be checked"]
        check_sha256(manifest_path, MANIFEST_SHA256)
        manifest = read_manifest(manifest_path)
    except (DataError, OSError) as exc:
        return [str(exc)]
    recordings = directory / RECORDINGS
    problems = []
    for name, digest in sorted(manifest.items()):
        problem = file_problem(recordings / name, digest, f"{MANIFEST} (corrupt or a different version)")
        if problem:
            problems.append(problem)
    if recordings.is_dir():
        problems += [f"{recordings / n}: not in {MANIFEST}" for n in sorted(p.name for p in recordings.glob("*.wav"))
                     if n not in manifest]
    return problems + _count_problems(list(manifest))


def _count_problems(names: list[str]) -> list[str]:
    """Problems with the names and counts of the recordings ``names``."""
    problems, parsed = [], []
    for name in names:
        try:
            parsed.append(parse_name(name))
        except DataError as exc:
            problems.append(str(exc))
    expected = len(SPEAKERS) * len(CLASSES) * REPETITIONS
    keys = {(r.speaker, r.digit, r.index) for r in parsed}
    if len(names) != expected or len(keys) != len(names):
        problems.append(f"{len(names)} recordings ({len(keys)} distinct speaker/digit/index), expected {expected}")
    speakers = sorted({r.speaker for r in parsed})
    if speakers != sorted(SPEAKERS):
        problems.append(f"speakers {speakers}, expected {sorted(SPEAKERS)}")
    if any(not 0 <= r.index < REPETITIONS for r in parsed):
        problems.append(f"repetition indices outside 0..{REPETITIONS - 1}")
    return problems

