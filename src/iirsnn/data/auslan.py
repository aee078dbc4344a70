"""Australian Sign Language signs, High Quality ("tctodd", UCI; Kadous 2002): 95 signs, 22 channels.

Layout under ``<root>/auslan_hq/``: ``tctodd/tctodd{1..9}/<sign>-<k>.tsd`` (2,565 files: 95 signs
x 3 repetitions x 9 recording sessions) and ``MANIFEST.sha256`` (sha256 of every file). A ``.tsd``
file is ASCII text, one frame per line, 22 whitespace-separated decimals per frame (45-136
frames, about 100 Hz); columns 1-11 are the left hand, 12-22 the right hand (:data:`CHANNELS`).

Upstream quirks handled here: ``tctodd1/drink-1.tsd`` has two spaces instead of a tab on one line
(so lines are split on any whitespace); the sign ``his_hers`` is named ``her`` in ``tctodd1``; sign
names may contain ``-`` (the label is the file stem before the last ``-``).

Split (none upstream): by recording session. ``split="train"`` is every session except
``test_session`` (default 9), ``split="test"`` that session alone; looping ``test_session`` over
1..9 gives the 9-fold leave-one-session-out protocol. The paper does not publish its split.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from iirsnn.data.download import Remote
from iirsnn.data.errors import CorruptFileError, DataError, MissingDataError
from iirsnn.data.files import dataset_dir, read_manifest, require_files, sha256_bytes, sha256_file
from iirsnn.data.timeseries import SeriesDataset, SeriesTransform, parse_rows

NAME = "auslan_hq"
SESSIONS = tuple(range(1, 10))
REPETITIONS = (1, 2, 3)
SPLITS = ("all", "train", "test")
MANIFEST = "MANIFEST.sha256"
MANIFEST_SHA256 = "aae470314c0e79ffc002928ff421353eaf812a9b0245bc6bcf97cac803c8b82d"
CLASSES = (
    "God", "I", "Norway", "alive", "all", "answer", "boy", "building", "buy", "change_mind_", "cold", "come",
    "computer_PC_", "cost", "crazy", "danger", "deaf", "different", "draw", "drink", "eat", "exit", "flash-light",
    "forget", "girl", "give", "glove", "go", "happy", "head", "hear", "hello", "his_hers", "hot", "how", "hurry",
    "hurt", "innocent", "is_true_", "joke", "juice", "know", "later", "lose", "love", "make", "man", "maybe",
    "mine", "money", "more", "name", "no", "not-my-problem", "paper", "pen", "please", "polite", "question", "read",
    "ready", "research", "responsible", "right", "sad", "same", "science", "share", "shop", "soon", "sorry",
    "spend", "stubborn", "surprise", "take", "temper", "thank", "think", "tray", "us", "voluntary", "wait_notyet_",
    "what", "when", "where", "which", "who", "why", "wild", "will", "write", "wrong", "yes", "you", "zero",
)
CHANNELS = tuple(f"{hand}_{quantity}" for hand in ("left", "right") for quantity in (
    "x", "y", "z", "roll", "pitch", "yaw", "thumb", "fore", "middle", "ring", "little"))
FILE_NAME_ALIASES = {"her": "his_hers"}  # tctodd1 names the sign his_hers "her"
HINT = ("Unpack UCI's tctodd.tar.gz (Australian Sign Language signs, High Quality) into <root>/auslan_hq/tctodd/ "
        "so that it holds tctodd1/ ... tctodd9/, with MANIFEST.sha256 beside tctodd/")

# UCI ships one tarball without a published checksum, and the per-file checksums live in the
# dataset's own MANIFEST.sha256 (2,565 entries), so there is no checksummed remote to list here.
REMOTES: list[Remote] = []


def label_of(stem: str) -> str:
    """The sign name of a file stem such as ``not-my-problem-2`` or ``her-1`` (-> ``his_hers``)."""
    name = stem.rsplit("-", 1)[0]
    return FILE_NAME_ALIASES.get(name, name)


def sample_files(sessions: tuple[int, ...] = SESSIONS) -> list[tuple[str, int, int]]:
    """(path relative to ``tctodd/``, class index, session) of every expected file of ``sessions``,
    session by session, then class, then repetition."""
    aliases = {sign: name for name, sign in FILE_NAME_ALIASES.items()}
    files = []
    for session in sessions:
        for index, sign in enumerate(CLASSES):
            stem = aliases[sign] if session == 1 and sign in aliases else sign
            files.extend((f"tctodd{session}/{stem}-{k}.tsd", index, session) for k in REPETITIONS)
    return files


def parse_tsd(data: bytes, path: str | os.PathLike) -> np.ndarray:
    """The frames of one ``.tsd`` file's bytes as float32 [T, 22]; ``path`` names it in errors.

    Raises :class:`CorruptFileError` for non-text bytes, an empty file, a blank line, a line
    without exactly 22 values (a truncated record), a token that is not a number, or NaN/Inf.
    """
    try:
        text = data.decode("ascii").rstrip()
    except UnicodeDecodeError as exc:
        raise CorruptFileError(f"{path}: not ASCII text (byte {exc.start}); a .tsd file is text") from None
    if not text:
        raise CorruptFileError(f"{path}: empty file, expected frames of {len(CHANNELS)} values")
    rows, _ = parse_rows(text.split("\n"), len(CHANNELS), path)
    return rows.astype(np.float32)


def read_tsd(path: str | os.PathLike) -> torch.Tensor:
    """One Auslan ``.tsd`` file as float32 [T, 22] (see :func:`parse_tsd` for the errors)."""
    return torch.from_numpy(parse_tsd(Path(path).read_bytes(), path))


def _checked_manifest(directory: Path) -> dict[str, str]:
    """The MANIFEST's entries, after checking the MANIFEST itself against :data:`MANIFEST_SHA256`."""
    path = directory / MANIFEST
    if not path.is_file():
        raise MissingDataError(f"{NAME}: {path} is missing; it holds the checksums of the .tsd files "
                               "(pass checksums=False to load without checking them)")
    actual = sha256_file(path)
    if actual != MANIFEST_SHA256:
        raise CorruptFileError(f"{path}: sha256 {actual} is not the expected {MANIFEST_SHA256}")
    return read_manifest(path)


class Auslan(SeriesDataset):
    """Auslan HQ signs as series [length, 22] (float32, time-major), labels 0..94 (:data:`CLASSES`).

    Args:
        root: the data root holding ``auslan_hq/`` (default ``$IIRSNN_DATA``), or that directory.
        split: ``"all"`` (2,565 samples), ``"train"`` (sessions other than ``test_session``,
            2,280) or ``"test"`` (``test_session`` alone, 285).
        test_session: the held-out recording session, 1..9 (default 9).
        length, mode: the common length and how series reach it (:mod:`iirsnn.data.timeseries`);
            ``length=None`` pads to the longest series of this split.
        normalize: e.g. a :class:`~iirsnn.data.timeseries.ChannelStats` of the training split.
        transform: applied to each fitted sample, e.g. :class:`~iirsnn.data.timeseries.CurrentLIFEncoding`.
        checksums: check every file against ``MANIFEST.sha256`` while reading (default True).

    Attributes (besides :class:`~iirsnn.data.timeseries.SeriesDataset`'s): ``sessions`` [N] long,
    the recording session 1..9 of each sample; ``files``, the path of each sample.
    """

    def __init__(self, root: str | os.PathLike | None = None, split: str = "all", test_session: int = 9,
                 length: int | None = None, mode: str = "pad", normalize: SeriesTransform | None = None,
                 transform: SeriesTransform | None = None, checksums: bool = True) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
        if test_session not in SESSIONS:
            raise ValueError(f"test_session must be one of {list(SESSIONS)}, got {test_session!r}")
        directory = dataset_dir(NAME, root)
        sessions = {"all": SESSIONS, "test": (test_session,),
                    "train": tuple(s for s in SESSIONS if s != test_session)}[split]
        files = sample_files(sessions)
        paths = require_files(directory / "tctodd", [f for f, _, _ in files], NAME, HINT)
        manifest = _checked_manifest(directory) if checksums else {}
        series = []
        for (relative, _, _), path in zip(files, paths, strict=True):
            data = path.read_bytes()
            if checksums:
                if relative not in manifest:
                    raise CorruptFileError(f"{directory / MANIFEST}: no entry for {relative}")
                if sha256_bytes(data) != manifest[relative]:
                    raise CorruptFileError(f"{path}: sha256 {sha256_bytes(data)} does not match "
                                           f"{manifest[relative]} in {MANIFEST} (corrupt or modified file)")
            series.append(torch.from_numpy(parse_tsd(data, path)))
        targets = torch.tensor([c for _, c, _ in files], dtype=torch.long)
        super().__init__(series, targets, list(CLASSES), length, mode, normalize, transform)
        self.sessions = torch.tensor([s for _, _, s in files], dtype=torch.long)
        self.files = paths


def verify(root: str | os.PathLike | None = None) -> list[str]:
    """Problems with ``auslan_hq`` on disk (empty list: all good): missing directory, MANIFEST or
    ``.tsd`` files, checksums that do not match, MANIFEST entries for no expected file. Never raises
    for missing or corrupt files."""
    try:
        directory = dataset_dir(NAME, root)
    except DataError as exc:
        return [str(exc)]
    problems, manifest = [], None
    try:
        manifest = _checked_manifest(directory)
    except DataError as exc:
        problems.append(str(exc))
    expected = [relative for relative, _, _ in sample_files()]
    if manifest is not None:
        problems += [f"{directory / MANIFEST}: entry {name} is not one of the {len(expected)} expected files"
                     for name in sorted(set(manifest) - set(expected))]
    for relative in expected:
        path = directory / "tctodd" / relative
        if not path.is_file():
            problems.append(f"{path}: missing ({HINT})")
        elif manifest is None:
            continue
        elif relative not in manifest:
            problems.append(f"{directory / MANIFEST}: no entry for {relative}")
        elif sha256_file(path) != manifest[relative]:
            problems.append(f"{path}: sha256 does not match {MANIFEST} (corrupt or modified file)")
    return problems
