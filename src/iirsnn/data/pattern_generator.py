"""Spike patterns for the associative-memory experiment (paper sec. 5.1), generated from images.

A pattern is time-major ``[T, N]`` (T time steps, N neurons), float32 0/1. The authors made theirs
(:func:`iirsnn.data.associative.load_patterns`) from the drawings in ``images/``: each drawing,
resized to N x T pixels (image row = neuron, image column = time step), thresholded, then thinned
by a fixed grid (one spike every 5 steps, on every third neuron, shifted by one neuron from one such
step to the next; see :func:`sparsity_grid`). :func:`patterns_from_images` does the same, for
where the file is absent or other patterns are wanted::

    patterns = patterns_from_images(glyph_images("ABCDEFGHIJ"))   # built-in 5x7 font, no extra
    patterns = patterns_from_images(read_drawings(root))          # images/*.png, needs Pillow

The dataset's directory name ``NAME`` and the drawings' ``PATTERN_NAMES`` live here so that
:mod:`~iirsnn.data.associative` imports from this module and never the other way round.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from iirsnn.data.errors import CorruptFileError, MissingDataError
from iirsnn.data.files import dataset_dir, require_files

NAME = "associative_memory"
# Label k of the authors' pattern file is the drawing PATTERN_NAMES[k] (their directory-listing order).
PATTERN_NAMES = ["parallel", "intersection", "b", "triangle", "d", "a", "triangle2", "c", "mult", "triangle3"]


def sparsity_grid(n_steps: int = 300, n_neurons: int = 300, step_stride: int = 5,
                  neuron_stride: int = 3) -> torch.Tensor:
    """The authors' thinning grid, bool ``[T, N]``: True at steps ``t`` with ``t % step_stride == 0``
    and neurons ``n`` with ``n % neuron_stride == (t // step_stride) % neuron_stride``."""
    steps = torch.arange(n_steps).unsqueeze(1)
    neurons = torch.arange(n_neurons).unsqueeze(0)
    return (steps % step_stride == 0) & (neurons % neuron_stride == (steps // step_stride) % neuron_stride)


def _resize_nearest(image: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """``image`` [H, W] sampled at the centres of a ``rows x cols`` grid over it (nearest neighbour)."""
    h, w = image.shape
    row_index = ((2 * np.arange(rows) + 1) * h) // (2 * rows)
    col_index = ((2 * np.arange(cols) + 1) * w) // (2 * cols)
    return image[np.ix_(row_index, col_index)]


def patterns_from_images(images: Sequence[np.ndarray] | np.ndarray, n_steps: int = 300, n_neurons: int = 300,
                         step_stride: int = 5, neuron_stride: int = 3, threshold: float = 0.5) -> torch.Tensor:
    """Spike patterns ``[P, T, N]`` float32 0/1 from P images of darkness ``[H, W]`` (1 = black ink;
    a list of such arrays, or one ``[P, H, W]`` array).

    Each image is resized to ``n_neurons x n_steps`` pixels (nearest neighbour; image row = neuron,
    column = time step), a pixel with darkness >= ``threshold`` is a spike, and only spikes on
    :func:`sparsity_grid` are kept (the authors' settings are the defaults).
    """
    if len(images) == 0:
        raise ValueError("patterns_from_images needs at least one image")
    grid = sparsity_grid(n_steps, n_neurons, step_stride, neuron_stride).numpy()
    patterns = []
    for k, image in enumerate(images):
        image = np.asarray(image)
        if image.ndim != 2 or 0 in image.shape:
            raise ValueError(f"image {k} must be a non-empty 2-D array of darkness [H, W], got shape {image.shape}")
        dark = _resize_nearest(image, n_neurons, n_steps) >= threshold
        patterns.append((dark.T & grid).astype(np.float32))
    return torch.from_numpy(np.stack(patterns))


def read_drawing(path: str | os.PathLike) -> np.ndarray:
    """Darkness ``[H, W]`` float32 in [0, 1] of an image file: 1 - luminance after compositing any
    transparency over white (needs Pillow: ``pip install iirsnn[images]``)."""
    try:
        from PIL import Image
    except ImportError as exc:
        raise ImportError("reading drawings needs Pillow: pip install iirsnn[images]") from exc
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"drawing {path} not found")
    try:
        with Image.open(path) as image:
            rgba = image.convert("RGBA")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise CorruptFileError(f"{path}: not a readable image ({exc})") from exc
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    luminance = np.asarray(Image.alpha_composite(white, rgba).convert("L"), dtype=np.float32)
    return 1.0 - luminance / 255.0


def read_drawings(root: str | os.PathLike | None = None, names: Sequence[str] = PATTERN_NAMES) -> list[np.ndarray]:
    """Darkness ``[H, W]`` of ``images/<name>.png`` for each name (default: the file's pattern order)."""
    directory = dataset_dir(NAME, root) / "images"
    paths = require_files(directory, [f"{name}.png" for name in names], NAME,
                          "the drawings are in the paper authors' repository Snow-Crash/snn-iir, "
                          "examples/dataset/images/")
    return [read_drawing(path) for path in paths]


# A 5x7 font: per glyph seven rows, two hex digits each, the low five bits left to right.
_FONT_HEX = {
    "0": "0E11131519110E", "1": "040C040404040E", "2": "0E11010204081F", "3": "1F02040201110E",
    "4": "02060A121F0202", "5": "1F101E0101110E", "6": "0608101E11110E", "7": "1F010204080808",
    "8": "0E11110E11110E", "9": "0E11110F01020C", "A": "0E1111111F1111", "B": "1E11111E11111E",
    "C": "0E11101010110E", "D": "1C12111111121C", "E": "1F10101E10101F", "F": "1F10101E101010",
    "G": "0E11101711110F", "H": "1111111F111111", "I": "0E04040404040E", "J": "0702020202120C",
    "K": "11121418141211", "L": "1010101010101F", "M": "111B1515111111", "N": "11111915131111",
    "O": "0E11111111110E", "P": "1E11111E101010", "Q": "0E11111115120D", "R": "1E11111E141211",
    "S": "0F10100E01011E", "T": "1F040404040404", "U": "1111111111110E", "V": "11111111110A04",
    "W": "1111111515150A", "X": "11110A040A1111", "Y": "1111110A040404", "Z": "1F01020408101F",
}


def glyph_images(text: str, margin: int = 1) -> list[np.ndarray]:
    """One darkness image per character of ``text`` from a built-in 5x7 bitmap font (digits and
    letters, case-insensitive): float32 ``[7 + 2 margin, 5 + 2 margin]``, 1 = ink, with ``margin``
    blank pixels around the glyph."""
    images = []
    for char in text.upper():
        if char not in _FONT_HEX:
            raise ValueError(f"no glyph for {char!r}; the built-in font has {''.join(_FONT_HEX)}")
        rows = bytes.fromhex(_FONT_HEX[char])
        bits = np.array([[(row >> (4 - col)) & 1 for col in range(5)] for row in rows], dtype=np.float32)
        images.append(np.pad(bits, margin))
    return images
