"""Associative-memory patterns (the authors' file and the generator), the corruption model and the dataset."""

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from iirsnn.data import CorruptFileError, MissingDataError
from iirsnn.data import associative as am
from iirsnn.data.files import sha256_file

SPIKES_PER_PATTERN = [1176, 1145, 1790, 1077, 1416, 1457, 1005, 1011, 1307, 935]


@pytest.fixture(scope="module")
def patterns(shared_data: Path) -> torch.Tensor:
    return am.load_patterns(shared_data)


def _one_spike_per_neuron(n_steps: int = 300, n_neurons: int = 300, step: int = 150) -> torch.Tensor:
    pattern = torch.zeros(n_steps, n_neurons)
    pattern[step] = 1
    return pattern


# --- the authors' file -------------------------------------------------------------------------------

def test_patterns_shape_and_spike_counts(patterns: torch.Tensor) -> None:
    assert patterns.shape == (10, 300, 300) and patterns.dtype == torch.float32
    assert set(patterns.unique().tolist()) == {0.0, 1.0}
    assert patterns.sum().item() == 12319
    assert patterns.sum((1, 2)).long().tolist() == SPIKES_PER_PATTERN
    assert patterns.mean().item() == pytest.approx(0.0137, abs=1e-4)


def test_patterns_are_the_file_transposed_to_time_major(shared_data: Path, patterns: torch.Tensor) -> None:
    raw = np.load(shared_data / am.NAME / am.TARGET_FILE)  # [P, N, T]
    assert torch.equal(patterns, torch.from_numpy(raw).transpose(1, 2))
    # the thinning grid is asymmetric (every 5th step, every 3rd neuron): it fixes which axis is time
    assert bool((patterns.bool() <= am.sparsity_grid()).all())
    assert not bool((patterns.bool() <= am.sparsity_grid().T).all())


def test_verify_real_data_and_remotes(shared_data: Path) -> None:
    assert am.verify(shared_data) == []
    assert len(am.REMOTES) == 11
    for remote in am.REMOTES:
        assert sha256_file(shared_data / am.NAME / remote.path) == remote.sha256
        assert remote.url.endswith(remote.path)


def test_drawings_regenerate_the_authors_patterns(shared_data: Path, patterns: torch.Tensor) -> None:
    regenerated = am.patterns_from_images(am.read_drawings(shared_data))
    assert regenerated.shape == patterns.shape
    differing = (regenerated != patterns).sum((1, 2))
    # thresholding darkness instead of the authors' palette indices moves at most 4 of ~1,000 spikes
    assert differing.max().item() <= 4 and differing.sum().item() <= 10
    # and each regenerated pattern is nearest to its own label: PATTERN_NAMES is the file's order
    distance = (regenerated.unsqueeze(1) != patterns.unsqueeze(0)).sum((2, 3))
    assert distance.argmin(1).tolist() == list(range(10))


def _copy_dataset(shared_data: Path, tmp_path: Path) -> Path:
    directory = tmp_path / am.NAME
    shutil.copytree(shared_data / am.NAME, directory)
    directory.chmod(0o755)
    for path in directory.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return directory


def test_missing_and_corrupt_files_are_reported(shared_data: Path, tmp_path: Path) -> None:
    directory = _copy_dataset(shared_data, tmp_path)
    (directory / "images" / "mult.png").unlink()
    target = directory / am.TARGET_FILE
    target.write_bytes(target.read_bytes()[:-100])
    problems = am.verify(tmp_path)
    assert len(problems) == 2
    assert "associative_target.npy: sha256" in problems[0] and "missing" in problems[1] and "mult.png" in problems[1]
    with pytest.raises(CorruptFileError, match=r"associative_target\.npy: sha256"):
        am.load_patterns(tmp_path)
    target.unlink()
    with pytest.raises(MissingDataError, match=r"(?s)associative_target\.npy.*glyph_images"):
        am.AssociativeMemory(tmp_path)


# --- the .npy reader -------------------------------------------------------------------------------

def _npy(tmp_path: Path, array: np.ndarray) -> Path:
    path = tmp_path / "p.npy"
    np.save(path, array)
    return path


def test_npy_reader_round_trip(tmp_path: Path) -> None:
    array = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    np.testing.assert_array_equal(am.read_npy(_npy(tmp_path, array)), array)
    fortran = np.asfortranarray(array)
    np.testing.assert_array_equal(am.read_npy(_npy(tmp_path, fortran)), array)


def test_npy_reader_rejects_broken_files(tmp_path: Path) -> None:
    path = _npy(tmp_path, np.zeros((2, 3, 4), np.float32))
    good = path.read_bytes()
    path.write_bytes(good[:-1])
    with pytest.raises(CorruptFileError, match=r"p\.npy: truncated: shape \[2, 3, 4\]"):
        am.read_npy(path)
    path.write_bytes(good + b"\x00")
    with pytest.raises(CorruptFileError, match="has trailing bytes"):
        am.read_npy(path)
    path.write_bytes(b"GARBAGE!" + good[8:])
    with pytest.raises(CorruptFileError, match=r"p\.npy: not a valid \.npy file"):
        am.read_npy(path)
    path.write_bytes(good[:20])
    with pytest.raises(CorruptFileError, match=r"p\.npy: not a valid \.npy file"):
        am.read_npy(path)
    # a header claiming 10^12 float32 fails on the size check before anything is allocated
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (9999999, 99999, 9)})
        f.write(b"\x00" * 16)
    with pytest.raises(CorruptFileError, match=r"truncated: shape \[9999999, 99999, 9\]"):
        am.read_npy(path)
    path = _npy(tmp_path, np.array([None, 1], dtype=object))
    with pytest.raises(CorruptFileError, match="unsupported dtype object"):
        am.read_npy(path)


def test_pattern_contents_are_checked() -> None:
    with pytest.raises(CorruptFileError, match="expected non-empty patterns"):
        am._check_patterns(np.zeros((3, 4), np.float32), "x.npy")
    with pytest.raises(CorruptFileError, match="only 0 and 1"):
        am._check_patterns(np.full((1, 2, 2), 0.5, np.float32), "x.npy")
    assert am._check_patterns(np.ones((1, 2, 2), bool), "x.npy").dtype == np.float32


# --- the generator ---------------------------------------------------------------------------------

def test_sparsity_grid_is_the_authors_mask() -> None:
    grid = am.sparsity_grid(300, 300)
    assert grid.sum().item() == 60 * 100
    assert grid[0, 0] and grid[5, 1] and grid[10, 2] and grid[15, 0] and not grid[1, 0] and not grid[0, 1]
    assert grid[:, 299].sum().item() == 20 and grid[295].sum().item() == 100


def test_patterns_from_images_maps_rows_to_neurons_and_columns_to_time() -> None:
    left_half_dark = np.zeros((10, 20), np.float32)
    left_half_dark[:, :10] = 1.0
    top_rows_dark = np.zeros((10, 20), np.float32)
    top_rows_dark[:5] = 0.6
    pattern = am.patterns_from_images([left_half_dark, top_rows_dark], n_steps=60, n_neurons=30)
    grid = am.sparsity_grid(60, 30).float()
    assert pattern.shape == (2, 60, 30)
    assert torch.equal(pattern[0, :30], grid[:30]) and pattern[0, 30:].sum() == 0
    assert torch.equal(pattern[1, :, :15], grid[:, :15]) and pattern[1, :, 15:].sum() == 0
    assert am.patterns_from_images([top_rows_dark], 60, 30, threshold=0.7).sum() == 0
    stacked = am.patterns_from_images(np.stack([left_half_dark, top_rows_dark]), n_steps=60, n_neurons=30)
    assert torch.equal(stacked, pattern)
    with pytest.raises(ValueError, match="2-D array"):
        am.patterns_from_images([np.zeros(5)])


def test_glyph_patterns_are_distinct_and_on_the_grid() -> None:
    text = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    images = am.glyph_images(text)
    assert all(image.shape == (9, 7) for image in images)
    assert images[text.index("I")][1:-1, 1:-1].sum() == 3 + 5 + 3  # the serif I
    patterns = am.patterns_from_images(images)
    flat = patterns.flatten(1)
    assert len(torch.unique(flat, dim=0)) == len(text)
    assert bool((patterns.bool() <= am.sparsity_grid()).all())
    assert torch.equal(am.patterns_from_images(am.glyph_images("abc")), patterns[10:13])
    with pytest.raises(ValueError, match="no glyph for '!'"):
        am.glyph_images("A!")


def test_read_drawing_errors(tmp_path: Path) -> None:
    with pytest.raises(MissingDataError, match=r"nothing\.png"):
        am.read_drawing(tmp_path / "nothing.png")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    with pytest.raises(CorruptFileError, match=r"broken\.png: not a readable image"):
        am.read_drawing(broken)


def test_read_drawing_without_pillow_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match=r"pip install iirsnn\[images\]"):
        am.read_drawing(tmp_path / "a.png")


def test_read_drawing_truncated_png(shared_data: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "a.png"
    truncated.write_bytes((shared_data / am.NAME / "images" / "a.png").read_bytes()[:1500])
    with pytest.raises(CorruptFileError, match=r"a\.png: not a readable image"):
        am.read_drawing(truncated)


# --- the corruption model --------------------------------------------------------------------------

def test_deletions_remove_exactly_their_region(patterns: torch.Tensor) -> None:
    pattern = patterns[2]
    rows = am.delete_neurons(pattern, 100, 40)
    assert rows[:, 100:140].sum() == 0 and torch.equal(rows[:, :100], pattern[:, :100])
    assert torch.equal(rows[:, 140:], pattern[:, 140:])
    assert (pattern - rows).sum() == pattern[:, 100:140].sum() > 0
    cols = am.delete_steps(pattern, 50, 30)
    assert cols[50:80].sum() == 0 and (pattern - cols).sum() == pattern[50:80].sum() > 0
    assert torch.equal(cols[:50], pattern[:50]) and torch.equal(cols[80:], pattern[80:])
    block = am.delete_block(pattern, 100, 40, 120, 40)
    changed = (block != pattern).nonzero()
    assert block[100:140, 120:160].sum() == 0 and len(changed) == pattern[100:140, 120:160].sum() > 0
    assert changed[:, 0].min() >= 100 and changed[:, 0].max() < 140
    assert changed[:, 1].min() >= 120 and changed[:, 1].max() < 160
    assert torch.equal(pattern, patterns[2])  # inputs untouched
    with pytest.raises(ValueError, match="outside the pattern"):
        am.delete_neurons(pattern, 280, 40)


def test_jitter_moves_each_spike_by_a_rounded_gaussian() -> None:
    pattern = _one_spike_per_neuron()
    assert torch.equal(am.jitter(pattern, 0.0), pattern)
    moved = am.jitter(pattern, 3.0, torch.Generator().manual_seed(0))
    assert moved.sum(0).tolist() == [1.0] * 300  # one spike per neuron still, none lost
    shift = moved.argmax(0).float() - 150
    assert shift.std().item() == pytest.approx(3.0, rel=0.2) and shift.abs().max() <= 15
    assert torch.equal(shift, shift.round())
    edges = am.jitter(_one_spike_per_neuron(step=0), 1e9, torch.Generator().manual_seed(0))
    times = edges.argmax(0)
    assert edges.sum() == 300 and set(times.tolist()) == {0, 299}  # clipped into the window


def test_background_adds_spikes_with_the_given_probability(patterns: torch.Tensor) -> None:
    pattern = patterns[0]
    assert torch.equal(am.add_background(pattern, 0.0), pattern)
    assert am.add_background(pattern, 1.0).sum() == pattern.numel()
    noisy = am.add_background(pattern, 0.01, torch.Generator().manual_seed(0))
    assert bool((noisy >= pattern).all())
    added = (noisy - pattern).sum().item()
    expected = 0.01 * (pattern.numel() - pattern.sum().item())
    assert abs(added - expected) < 5 * expected**0.5


def test_corruption_is_deterministic_with_a_seed(patterns: torch.Tensor) -> None:
    corruption = am.Corruption(p_modify=1.0, p_delete=1.0, deletions=am.DELETIONS)
    first = am.corrupt(patterns[4], corruption, torch.Generator().manual_seed(7))
    again = am.corrupt(patterns[4], corruption, torch.Generator().manual_seed(7))
    other = am.corrupt(patterns[4], corruption, torch.Generator().manual_seed(8))
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert torch.equal(am.corrupt(patterns[4], am.Corruption.clean()), patterns[4])


@pytest.mark.parametrize(("kind", "axis", "width"), [("neurons", 1, 40), ("steps", 0, 30)])
def test_corrupt_deletes_one_band_of_the_configured_width(kind: str, axis: int, width: int) -> None:
    pattern = torch.ones(300, 300)
    corruption = am.Corruption(p_modify=1.0, p_jitter=0.0, p_delete=1.0, deletions=(kind,), p_background=0.0)
    for seed in range(5):
        out = am.corrupt(pattern, corruption, torch.Generator().manual_seed(seed))
        silent = (out.sum(1 - axis) == 0).nonzero().flatten()
        assert len(silent) == width and silent.max() - silent.min() == width - 1
        assert out.sum() == 300 * (300 - width)


def test_corrupt_block_and_full_background() -> None:
    corruption = am.Corruption(p_modify=1.0, p_jitter=0.0, p_delete=1.0, deletions=("block",),
                               block_steps=20, block_neurons=50, p_background=0.0)
    out = am.corrupt(torch.ones(300, 300), corruption, torch.Generator().manual_seed(3))
    zeros = (out == 0).nonzero()
    assert len(zeros) == 20 * 50
    assert (zeros.max(0).values - zeros.min(0).values).tolist() == [19, 49]
    full = am.Corruption(p_modify=0.0, p_background=1.0)
    assert am.corrupt(torch.zeros(30, 20), full).sum() == 600


def test_corruption_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="p_modify"):
        am.Corruption(p_modify=1.5)
    with pytest.raises(ValueError, match="deletions"):
        am.Corruption(deletions=("rows",))
    with pytest.raises(ValueError, match="n_neurons_deleted = 40 exceeds the pattern's 30 neurons"):
        am.corrupt(torch.zeros(100, 30), am.Corruption(deletions=("neurons",)))


# --- the dataset -----------------------------------------------------------------------------------

def test_dataset_samples(shared_data: Path, patterns: torch.Tensor) -> None:
    dataset = am.AssociativeMemory(shared_data, n_corrupted=3, seed=1)
    assert len(dataset) == 30 and dataset.classes == am.PATTERN_NAMES
    assert dataset.targets.tolist() == list(range(10)) * 3
    corrupted, target, label = dataset[13]
    assert label == 3 and corrupted.shape == target.shape == (300, 300)
    assert torch.equal(target, patterns[3])
    assert torch.equal(corrupted, dataset[13][0])  # same sample, same corruption
    assert torch.equal(corrupted, am.AssociativeMemory(shared_data, n_corrupted=3, seed=1)[13][0])
    assert not torch.equal(corrupted, am.AssociativeMemory(shared_data, n_corrupted=3, seed=2)[13][0])
    assert torch.equal(dataset[-1][0], dataset[29][0])
    with pytest.raises(IndexError):
        dataset[30]


def test_dataset_from_generated_patterns_with_delay_and_transform() -> None:
    patterns = am.patterns_from_images(am.glyph_images("ABC"), n_steps=100, n_neurons=60)
    dataset = am.AssociativeMemory(patterns=patterns, n_corrupted=2, corruption=am.Corruption.clean(),
                                   classes=list("ABC"), target_delay=4, transform=lambda x: 2 * x)
    corrupted, target, label = dataset[4]
    assert label == 1 and dataset.classes == ["A", "B", "C"]
    assert torch.equal(corrupted, 2 * patterns[1])
    assert torch.equal(target[4:], patterns[1, :-4]) and target[:4].sum() == 0
    unseeded = am.AssociativeMemory(patterns=patterns, seed=None, corruption=am.Corruption(p_background=0.5))
    assert not torch.equal(unseeded[0][0], unseeded[0][0])  # fresh draws at every access
    with pytest.raises(ValueError, match="only 0 and 1"):
        am.AssociativeMemory(patterns=patterns * 0.5)
    with pytest.raises(ValueError, match="2 class names for 3 patterns"):
        am.AssociativeMemory(patterns=patterns, classes=["A", "B"])
    with pytest.raises(ValueError, match="exceeds"):
        am.AssociativeMemory(patterns=patterns[:, :, :30])
