"""The associative-memory experiment: the authors' pattern file, its .npy reader and the dataset."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from iirsnn.data import CorruptFileError, MissingDataError
from iirsnn.data.associative import (
    NAME,
    PATTERN_NAMES,
    REMOTES,
    TARGET_FILE,
    AssociativeMemory,
    _check_patterns,
    load_patterns,
    read_npy,
    verify,
)
from iirsnn.data.corruption import Corruption
from iirsnn.data.files import sha256_file
from iirsnn.data.pattern_generator import glyph_images, patterns_from_images, sparsity_grid

SPIKES_PER_PATTERN = [1176, 1145, 1790, 1077, 1416, 1457, 1005, 1011, 1307, 935]


@pytest.fixture(scope="module")
def patterns(shared_data: Path) -> torch.Tensor:
    return load_patterns(shared_data)


# --- the authors' file -------------------------------------------------------------------------------

def test_patterns_shape_and_spike_counts(patterns: torch.Tensor) -> None:
    assert patterns.shape == (10, 300, 300) and patterns.dtype == torch.float32
    assert set(patterns.unique().tolist()) == {0.0, 1.0}
    assert patterns.sum().item() == 12319
    assert patterns.sum((1, 2)).long().tolist() == SPIKES_PER_PATTERN
    assert patterns.mean().item() == pytest.approx(0.0137, abs=1e-4)


def test_patterns_are_the_file_transposed_to_time_major(shared_data: Path, patterns: torch.Tensor) -> None:
    raw = np.load(shared_data / NAME / TARGET_FILE)  # [P, N, T]
    assert torch.equal(patterns, torch.from_numpy(raw).transpose(1, 2))
    # the thinning grid is asymmetric (every 5th step, every 3rd neuron): it fixes which axis is time
    assert bool((patterns.bool() <= sparsity_grid()).all())
    assert not bool((patterns.bool() <= sparsity_grid().T).all())


def test_verify_real_data_and_remotes(shared_data: Path) -> None:
    assert verify(shared_data) == []
    assert len(REMOTES) == 11
    for remote in REMOTES:
        assert sha256_file(shared_data / NAME / remote.path) == remote.sha256
        assert remote.url.endswith(remote.path)


def _copy_dataset(shared_data: Path, tmp_path: Path) -> Path:
    directory = tmp_path / NAME
    shutil.copytree(shared_data / NAME, directory)
    directory.chmod(0o755)
    for path in directory.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return directory


def test_missing_and_corrupt_files_are_reported(shared_data: Path, tmp_path: Path) -> None:
    directory = _copy_dataset(shared_data, tmp_path)
    (directory / "images" / "mult.png").unlink()
    target = directory / TARGET_FILE
    target.write_bytes(target.read_bytes()[:-100])
    problems = verify(tmp_path)
    assert len(problems) == 2
    assert "associative_target.npy: sha256" in problems[0] and "missing" in problems[1] and "mult.png" in problems[1]
    with pytest.raises(CorruptFileError, match=r"associative_target\.npy: sha256"):
        load_patterns(tmp_path)
    target.unlink()
    with pytest.raises(MissingDataError, match=r"(?s)associative_target\.npy.*glyph_images"):
        AssociativeMemory(tmp_path)


# --- the .npy reader -------------------------------------------------------------------------------

def _npy(tmp_path: Path, array: np.ndarray) -> Path:
    path = tmp_path / "p.npy"
    np.save(path, array)
    return path


def test_npy_reader_round_trip(tmp_path: Path) -> None:
    array = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    np.testing.assert_array_equal(read_npy(_npy(tmp_path, array)), array)
    fortran = np.asfortranarray(array)
    np.testing.assert_array_equal(read_npy(_npy(tmp_path, fortran)), array)


def test_npy_reader_rejects_broken_files(tmp_path: Path) -> None:
    path = _npy(tmp_path, np.zeros((2, 3, 4), np.float32))
    good = path.read_bytes()
    path.write_bytes(good[:-1])
    with pytest.raises(CorruptFileError, match=r"p\.npy: truncated: shape \[2, 3, 4\]"):
        read_npy(path)
    path.write_bytes(good + b"\x00")
    with pytest.raises(CorruptFileError, match="has trailing bytes"):
        read_npy(path)
    path.write_bytes(b"GARBAGE!" + good[8:])
    with pytest.raises(CorruptFileError, match=r"p\.npy: not a valid \.npy file"):
        read_npy(path)
    path.write_bytes(good[:20])
    with pytest.raises(CorruptFileError, match=r"p\.npy: not a valid \.npy file"):
        read_npy(path)
    # a header claiming 10^12 float32 fails on the size check before anything is allocated
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (9999999, 99999, 9)})
        f.write(b"\x00" * 16)
    with pytest.raises(CorruptFileError, match=r"truncated: shape \[9999999, 99999, 9\]"):
        read_npy(path)
    for shape in [(-2, -3), (-1, 4)]:  # negative sizes: the product may still match the data
        with open(path, "wb") as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": shape})
            f.write(b"\x00" * 24)
        with pytest.raises(CorruptFileError, match=r"p\.npy: the header declares an impossible shape"):
            read_npy(path)
    path = _npy(tmp_path, np.array([None, 1], dtype=object))
    with pytest.raises(CorruptFileError, match="unsupported dtype object"):
        read_npy(path)


def test_pattern_contents_are_checked() -> None:
    with pytest.raises(CorruptFileError, match="expected non-empty patterns"):
        _check_patterns(np.zeros((3, 4), np.float32), "x.npy")
    with pytest.raises(CorruptFileError, match="only 0 and 1"):
        _check_patterns(np.full((1, 2, 2), 0.5, np.float32), "x.npy")
    assert _check_patterns(np.ones((1, 2, 2), bool), "x.npy").dtype == np.float32


# --- the dataset -----------------------------------------------------------------------------------

def test_dataset_samples(shared_data: Path, patterns: torch.Tensor) -> None:
    dataset = AssociativeMemory(shared_data, n_corrupted=3, seed=1)
    assert len(dataset) == 30 and dataset.classes == PATTERN_NAMES
    assert dataset.targets.tolist() == list(range(10)) * 3
    corrupted, target, label = dataset[13]
    assert label == 3 and corrupted.shape == target.shape == (300, 300)
    assert torch.equal(target, patterns[3])
    assert torch.equal(corrupted, dataset[13][0])  # same sample, same corruption
    assert torch.equal(corrupted, AssociativeMemory(shared_data, n_corrupted=3, seed=1)[13][0])
    assert not torch.equal(corrupted, AssociativeMemory(shared_data, n_corrupted=3, seed=2)[13][0])
    assert torch.equal(dataset[-1][0], dataset[29][0])
    with pytest.raises(IndexError):
        dataset[30]


def test_dataset_from_generated_patterns_with_delay_and_transform() -> None:
    patterns = patterns_from_images(glyph_images("ABC"), n_steps=100, n_neurons=60)
    dataset = AssociativeMemory(patterns=patterns, n_corrupted=2, corruption=Corruption.clean(),
                                   classes=list("ABC"), target_delay=4, transform=lambda x: 2 * x)
    corrupted, target, label = dataset[4]
    assert label == 1 and dataset.classes == ["A", "B", "C"]
    assert torch.equal(corrupted, 2 * patterns[1])
    assert torch.equal(target[4:], patterns[1, :-4]) and target[:4].sum() == 0
    unseeded = AssociativeMemory(patterns=patterns, seed=None, corruption=Corruption(p_background=0.5))
    assert not torch.equal(unseeded[0][0], unseeded[0][0])  # fresh draws at every access
    with pytest.raises(ValueError, match="only 0 and 1"):
        AssociativeMemory(patterns=patterns * 0.5)
    with pytest.raises(ValueError, match="2 class names for 3 patterns"):
        AssociativeMemory(patterns=patterns, classes=["A", "B"])
    with pytest.raises(ValueError, match="exceeds"):
        AssociativeMemory(patterns=patterns[:, :, :30])
