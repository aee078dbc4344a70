"""MNIST (LeCun, Cortes, Burges) from its four upstream IDX files, gzip-compressed or raw.

Expected in ``<root>/mnist/``: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each either with ``.gz`` (as
distributed) or decompressed. The sha256 of the decompressed IDX bytes is checked on every load
(it does not depend on which gzip made a ``.gz`` file).

Spike input as in the paper (Bernoulli rate coding over T steps) is made per batch, not per
sample, so the dataset stays small and the draws can use a ``torch.Generator`` on the GPU::

    loader = DataLoader(MNIST(train=True), batch_size=64, shuffle=True)
    for images, labels in loader:              # images [B, 1, 28, 28] in [0, 1]
        spikes = rate_encode(images, T=25)     # [T, B, 784] of 0/1
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from iirsnn.data.download import Remote
from iirsnn.data.errors import CorruptFileError, DataError, MissingDataError
from iirsnn.data.files import dataset_dir, sha256_bytes
from iirsnn.data.idx import idx_content, parse_idx
from iirsnn.functional.encoders import bernoulli_rate

NAME = "mnist"
CLASSES = [str(digit) for digit in range(10)]
MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"


@dataclass(frozen=True)
class IdxFile:
    """One upstream file: its ``stem`` (name without ``.gz``), the sha256 of its decompressed
    content (which fixes its shape and values) and the sha256 of the upstream ``.gz`` file."""

    stem: str
    content_sha256: str
    gz_sha256: str


FILES = {
    ("train", "images"): IdxFile("train-images-idx3-ubyte",
                                 "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                                 "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    ("train", "labels"): IdxFile("train-labels-idx1-ubyte",
                                 "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                                 "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    ("test", "images"): IdxFile("t10k-images-idx3-ubyte",
                                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    ("test", "labels"): IdxFile("t10k-labels-idx1-ubyte",
                                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
                                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
}

#: The upstream ``.gz`` files; the sha256 is of the compressed bytes (those of the original
#: distribution, which other mirrors may recompress), so loading checks the content again.
REMOTES = [Remote(MIRROR + f.stem + ".gz", f.stem + ".gz", f.gz_sha256) for f in FILES.values()]

_HINT = (f"Put the MNIST IDX files (.gz as distributed, or decompressed) there, e.g. with "
         f"iirsnn.data.download.fetch_all(iirsnn.data.mnist.REMOTES, directory) or from {MIRROR}")


def _locate(directory: os.PathLike, stem: str) -> str | None:
    """The path of ``stem`` (decompressed, preferred) or ``stem.gz`` in ``directory``, else None."""
    for name in (stem, stem + ".gz"):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    return None


def _load(directory: os.PathLike, spec: IdxFile) -> np.ndarray:
    """The array of one file, after its content sha256 matched."""
    path = _locate(directory, spec.stem)
    if path is None:
        raise MissingDataError(f"mnist: missing {spec.stem}.gz (or {spec.stem}) in {directory}\n{_HINT}")
    content = idx_content(path)
    digest = sha256_bytes(content)
    if digest != spec.content_sha256:
        raise CorruptFileError(f"{path}: sha256 of the IDX content {digest} does not match the expected "
                               f"{spec.content_sha256} (corrupt, truncated or not the MNIST file)")
    return parse_idx(content, path)


def _require_split(directory: os.PathLike, split: str) -> None:
    """Raise :class:`MissingDataError` listing each file of ``split`` ("train" or "test") that is absent."""
    specs = [FILES[split, "images"], FILES[split, "labels"]]
    missing = [f"{f.stem}.gz (or {f.stem})" for f in specs if _locate(directory, f.stem) is None]
    if missing:
        listed = "\n  ".join(missing)
        raise MissingDataError(f"mnist {split}: {len(missing)} expected file(s) missing in {directory}:\n"
                               f"  {listed}\n{_HINT}")


class MNIST(Dataset):
    """The 60,000 training or 10,000 test digits of MNIST.

    Args:
        root: directory holding ``mnist/`` (or ``mnist/`` itself); default ``$IIRSNN_DATA``.
        train: the training split (``train-*``) if True, else the test split (``t10k-*``).
        transform: applied to each image tensor ``[1, 28, 28]``.

    Attributes:
        images: uint8 ``[n, 28, 28]``, 0 = background, 255 = ink (as in the files).
        targets: int64 ``[n]`` digit labels.
        classes: ``["0", ..., "9"]``.

    ``dataset[i]`` is ``(image [1, 28, 28] float32 in [0, 1], label int)``.
    """

    classes = CLASSES

    def __init__(self, root: str | os.PathLike | None = None, train: bool = True,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        directory = dataset_dir(NAME, root)
        split = "train" if train else "test"
        _require_split(directory, split)
        images = _load(directory, FILES[split, "images"])
        labels = _load(directory, FILES[split, "labels"])
        self.root = directory
        self.train = train
        self.transform = transform
        self.images = torch.from_numpy(images)
        self.targets = torch.from_numpy(labels.astype(np.int64))

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.images[index].unsqueeze(0).to(torch.float32).div_(255.0)
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.targets[index])


def rate_encode(images: torch.Tensor, T: int, gain: float = 1.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Bernoulli rate code of a batch (the paper's MNIST input): a spike with probability
    ``gain * pixel`` at each of T steps.

    Args:
        images: ``[B, 1, 28, 28]`` (or any ``[B, ...]``) intensities in [0, 1].
        T: number of time steps.
        gain: factor on the intensity; ``gain * pixel`` must stay in [0, 1].
        generator: optional ``torch.Generator`` on the images' device.

    Returns:
        ``[T, B, prod(...)]`` spikes (0/1, the images' dtype), pixels flattened in row-major order.
    """
    return bernoulli_rate(images.flatten(1), T, gain=gain, generator=generator)


def verify(root: str | os.PathLike | None = None) -> list[str]:
    """Problems with the MNIST files under ``root`` (missing, unreadable, wrong checksum or shape);
    an empty list when all four are present and intact. Never raises for a bad file."""
    try:
        directory = dataset_dir(NAME, root)
    except MissingDataError as exc:
        return [str(exc)]
    problems = []
    for spec in FILES.values():
        try:
            _load(directory, spec)
        except DataError as exc:
            problems.append(str(exc).split("\n")[0])
        except OSError as exc:
            problems.append(f"{spec.stem}: unreadable ({exc})")
    return problems
