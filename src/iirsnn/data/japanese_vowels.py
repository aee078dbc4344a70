"""UCI Japanese Vowels (Kudo, Toyama, Shimbo 1999): 9 speakers, 12 LPC cepstrum channels, 7-29 frames.

Layout under ``<root>/japanese_vowels/``: ``ae.train`` (270 utterances) and ``ae.test`` (370).
Each line is one frame of 12 whitespace-separated values (CRLF endings, trailing spaces); an
utterance (block) ends with a separator line of twelve ``1.0`` values; blank lines carry nothing
and are skipped. Labels are not in the files: blocks are ordered
by speaker with the counts of upstream ``size_ae.train`` (30 each) and ``size_ae.test``
(31 35 88 44 29 24 40 50 29), so a file with a different number of blocks cannot be labelled and
is reported as corrupt. The split is upstream's train/test files.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from iirsnn.data.download import Remote
from iirsnn.data.errors import CorruptFileError, DataError
from iirsnn.data.files import check_sha256, dataset_dir, require_files
from iirsnn.data.timeseries import SeriesDataset, SeriesTransform, parse_rows

NAME = "japanese_vowels"
CHANNELS = 12
FILES = {"train": "ae.train", "test": "ae.test"}
SHA256 = {"ae.train": "ff9b796fcc33868b65032a706aee221794657200e8554b42d3fba5fbf4f957f1",
          "ae.test": "7894594714a3186f8961c75535654cdc6bd232d3dd97d7c04c99bfa3013f57a9"}
SPEAKER_BLOCKS = {"train": (30,) * 9, "test": (31, 35, 88, 44, 29, 24, 40, 50, 29)}
CLASSES = [f"speaker_{k}" for k in range(1, 10)]
HINT = "Put UCI's Japanese Vowels files ae.train and ae.test into <root>/japanese_vowels/"

# The checksummed bytes are those of this pinned commit (identical to UCI's files, CRLF endings kept).
_PINNED = "https://raw.githubusercontent.com/kikisprdx/NN_Semester_Project/09d1e953da1d2cb59b8a20ab05b9aff48145fd18"
REMOTES = [Remote(f"{_PINNED}/{name}", name, sha) for name, sha in SHA256.items()]


def parse_blocks(data: bytes, path: str | os.PathLike) -> list[np.ndarray]:
    """The utterances of an ``ae.train``/``ae.test`` file's bytes, each float32 [T_i, 12].

    Raises :class:`CorruptFileError` naming ``path`` for non-text bytes, a line without 12 values,
    a token that is not a number, NaN/Inf, an empty block, or frames after the last separator
    (a truncated file).
    """
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise CorruptFileError(f"{path}: not ASCII text (byte {exc.start})") from None
    rows, line_of_row = parse_rows(text.splitlines(), CHANNELS, path, skip_blank=True)
    if not len(rows):
        return []
    separator = (rows == 1.0).all(axis=1)
    if not separator[-1]:
        raise CorruptFileError(f"{path}: the last block (ending at line {line_of_row[-1] + 1}) has no separator "
                               f"line of {CHANNELS} values 1.0 after it; the file is truncated")
    ends = np.flatnonzero(separator)
    sizes = np.diff(ends, prepend=-1) - 1
    if (sizes == 0).any():
        empty = int(ends[np.flatnonzero(sizes == 0)[0]])
        raise CorruptFileError(f"{path}: line {line_of_row[empty] + 1} is a separator that ends an empty block")
    return np.split(rows[~separator].astype(np.float32), np.cumsum(sizes)[:-1])


def read_blocks(path: str | os.PathLike) -> list[torch.Tensor]:
    """The utterances of one Japanese Vowels file, each float32 [T_i, 12] (errors: :func:`parse_blocks`)."""
    return [torch.from_numpy(b) for b in parse_blocks(Path(path).read_bytes(), path)]


def speaker_labels(split: str) -> torch.Tensor:
    """[N] long speaker index (0..8) of every block of ``split``, from the upstream block counts."""
    counts = torch.tensor(SPEAKER_BLOCKS[split])
    return torch.repeat_interleave(torch.arange(len(counts)), counts)


def _labelled_blocks(path: Path, split: str) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The blocks of ``path`` and their speaker labels; CorruptFileError when the count is not upstream's."""
    blocks = read_blocks(path)
    expected = sum(SPEAKER_BLOCKS[split])
    if len(blocks) != expected:
        raise CorruptFileError(f"{path}: {len(blocks)} blocks, expected {expected}; speakers are assigned by "
                               "block order, so the file cannot be labelled (truncated or a different version?)")
    return blocks, speaker_labels(split)


class JapaneseVowels(SeriesDataset):
    """Japanese Vowels utterances as series [length, 12] (float32, time-major), labels 0..8 (speakers).

    Args:
        root: the data root holding ``japanese_vowels/`` (default ``$IIRSNN_DATA``), or that directory.
        split: ``"train"`` (270 utterances, ``ae.train``) or ``"test"`` (370, ``ae.test``).
        length, mode: the common length and how series reach it (:mod:`iirsnn.data.timeseries`);
            ``length=None`` pads to the longest series of this split (26 train, 29 test).
        normalize: e.g. a :class:`~iirsnn.data.timeseries.ChannelStats` of the training split.
        transform: applied to each fitted sample.
        checksums: check the file's sha256 (default True). Copies that lack the final line break
            parse the same but fail it: pass False for them.
    """

    def __init__(self, root: str | os.PathLike | None = None, split: str = "train", length: int | None = None,
                 mode: str = "pad", normalize: SeriesTransform | None = None,
                 transform: SeriesTransform | None = None, checksums: bool = True) -> None:
        if split not in FILES:
            raise ValueError(f"split must be one of {list(FILES)}, got {split!r}")
        directory = dataset_dir(NAME, root)
        (path,) = require_files(directory, [FILES[split]], NAME, HINT)
        if checksums:
            check_sha256(path, SHA256[FILES[split]])
        series, targets = _labelled_blocks(path, split)
        super().__init__(series, targets, list(CLASSES), length, mode, normalize, transform)


def verify(root: str | os.PathLike | None = None) -> list[str]:
    """Problems with ``japanese_vowels`` on disk (empty list: all good): missing files, checksums,
    files that do not parse or do not hold upstream's number of blocks. Never raises for them."""
    try:
        directory = dataset_dir(NAME, root)
    except DataError as exc:
        return [str(exc)]
    problems = []
    for split, name in FILES.items():
        path = directory / name
        if not path.is_file():
            problems.append(f"{path}: missing ({HINT})")
            continue
        try:
            check_sha256(path, SHA256[name])
        except CorruptFileError as exc:
            problems.append(str(exc))
        try:
            _labelled_blocks(path, split)
        except DataError as exc:
            problems.append(str(exc))
    return problems
