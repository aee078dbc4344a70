"""The pattern generator of the associative-memory experiment: grid, images, drawings and font."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from iirsnn.data import CorruptFileError, MissingDataError
from iirsnn.data.associative import load_patterns
from iirsnn.data.pattern_generator import (
    NAME,
    glyph_images,
    patterns_from_images,
    read_drawing,
    read_drawings,
    sparsity_grid,
)


@pytest.fixture(scope="module")
def patterns(shared_data: Path) -> torch.Tensor:
    return load_patterns(shared_data)


def test_drawings_regenerate_the_authors_patterns(shared_data: Path, patterns: torch.Tensor) -> None:
    regenerated = patterns_from_images(read_drawings(shared_data))
    assert regenerated.shape == patterns.shape
    differing = (regenerated != patterns).sum((1, 2))
    # thresholding darkness instead of the authors' palette indices moves at most 4 of ~1,000 spikes
    assert differing.max().item() <= 4 and differing.sum().item() <= 10
    # and each regenerated pattern is nearest to its own label: PATTERN_NAMES is the file's order
    distance = (regenerated.unsqueeze(1) != patterns.unsqueeze(0)).sum((2, 3))
    assert distance.argmin(1).tolist() == list(range(10))


def test_sparsity_grid_is_the_authors_mask() -> None:
    grid = sparsity_grid(300, 300)
    assert grid.sum().item() == 60 * 100
    assert grid[0, 0] and grid[5, 1] and grid[10, 2] and grid[15, 0] and not grid[1, 0] and not grid[0, 1]
    assert grid[:, 299].sum().item() == 20 and grid[295].sum().item() == 100


def test_patterns_from_images_maps_rows_to_neurons_and_columns_to_time() -> None:
    left_half_dark = np.zeros((10, 20), np.float32)
    left_half_dark[:, :10] = 1.0
    top_rows_dark = np.zeros((10, 20), np.float32)
    top_rows_dark[:5] = 0.6
    pattern = patterns_from_images([left_half_dark, top_rows_dark], n_steps=60, n_neurons=30)
    grid = sparsity_grid(60, 30).float()
    assert pattern.shape == (2, 60, 30)
    assert torch.equal(pattern[0, :30], grid[:30]) and pattern[0, 30:].sum() == 0
    assert torch.equal(pattern[1, :, :15], grid[:, :15]) and pattern[1, :, 15:].sum() == 0
    assert patterns_from_images([top_rows_dark], 60, 30, threshold=0.7).sum() == 0
    stacked = patterns_from_images(np.stack([left_half_dark, top_rows_dark]), n_steps=60, n_neurons=30)
    assert torch.equal(stacked, pattern)
    with pytest.raises(ValueError, match="2-D array"):
        patterns_from_images([np.zeros(5)])


def test_glyph_patterns_are_distinct_and_on_the_grid() -> None:
    text = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    images = glyph_images(text)
    assert all(image.shape == (9, 7) for image in images)
    assert images[text.index("I")][1:-1, 1:-1].sum() == 3 + 5 + 3  # the serif I
    patterns = patterns_from_images(images)
    flat = patterns.flatten(1)
    assert len(torch.unique(flat, dim=0)) == len(text)
    assert bool((patterns.bool() <= sparsity_grid()).all())
    assert torch.equal(patterns_from_images(glyph_images("abc")), patterns[10:13])
    with pytest.raises(ValueError, match="no glyph for '!'"):
        glyph_images("A!")


def test_read_drawing_errors(tmp_path: Path) -> None:
    with pytest.raises(MissingDataError, match=r"nothing\.png"):
        read_drawing(tmp_path / "nothing.png")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    with pytest.raises(CorruptFileError, match=r"broken\.png: not a readable image"):
        read_drawing(broken)


def test_read_drawing_without_pillow_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match=r"pip install iirsnn\[images\]"):
        read_drawing(tmp_path / "a.png")


def test_read_drawing_truncated_png(shared_data: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "a.png"
    truncated.write_bytes((shared_data / NAME / "images" / "a.png").read_bytes()[:1500])
    with pytest.raises(CorruptFileError, match=r"a\.png: not a readable image"):
        read_drawing(truncated)
