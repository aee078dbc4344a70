"""N-MNIST: the real SLAYER subset (labels, sensor range, saccades, checksums), the original
``Train/<digit>/<index>.bin`` layout, the 40-bit record parser and its writer, and corrupt files."""

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from iirsnn.data.errors import CorruptFileError, MissingDataError
from iirsnn.data.events import make_events, to_frames
from iirsnn.data.nmnist import (
    NMNIST,
    SMALL_NAME,
    encode_bin_events,
    read_bin_events,
    read_index,
    verify,
    write_bin_events,
)


def mnist_labels(shared_data: Path, stem: str) -> np.ndarray:
    """The labels of an MNIST IDX label file: 8-byte big-endian header (magic 0x801, count), then uint8."""
    raw = gzip.decompress((shared_data / "mnist" / f"{stem}.gz").read_bytes())
    magic, count = np.frombuffer(raw[:8], ">u4")
    assert magic == 0x801 and len(raw) == 8 + count
    return np.frombuffer(raw[8:], np.uint8).astype(np.int64)


def copy_writable(source: Path, target: Path) -> None:
    """Copy a (read-only) directory tree as writable files and folders."""
    for path in source.rglob("*"):
        if path.is_file():
            (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target / path.relative_to(source))


@pytest.fixture(scope="module")
def small_dir(shared_data: Path) -> Path:
    return shared_data / SMALL_NAME / "NMNISTsmall"


@pytest.fixture(scope="module")
def train(shared_data: Path) -> NMNIST:
    return NMNIST(shared_data, train=True, T=30, duration_us=300_000, name=SMALL_NAME, cache=False)


def test_subset_labels_are_the_first_mnist_labels(shared_data: Path, train: NMNIST):
    test = NMNIST(shared_data, train=False, T=30, duration_us=300_000, name=SMALL_NAME, cache=False)
    assert len(train) == 1000 and len(test) == 100
    assert train.targets.dtype == torch.int64
    np.testing.assert_array_equal(train.targets.numpy(), mnist_labels(shared_data, "train-labels-idx1-ubyte")[:1000])
    np.testing.assert_array_equal(test.targets.numpy(), mnist_labels(shared_data, "t10k-labels-idx1-ubyte")[:100])
    assert torch.bincount(train.targets).tolist() == [97, 116, 99, 93, 105, 92, 94, 117, 87, 100]
    assert torch.bincount(test.targets, minlength=10).tolist() == [8, 14, 8, 11, 14, 7, 10, 15, 2, 11]
    assert train.classes == [str(d) for d in range(10)]
    assert [f.name for f in train.files[:3]] == ["1.bs2", "2.bs2", "3.bs2"] and test.files[0].name == "60001.bs2"


def test_subset_events_lie_on_the_34x34_sensor(small_dir: Path):
    files = sorted(small_dir.glob("*.bs2"))
    assert len(files) == 1100
    largest = np.zeros(2, np.int64)
    for path in files:
        events = read_bin_events(path, (34, 34))  # raises for an event outside
        assert len(events) == path.stat().st_size // 5
        largest = np.maximum(largest, [events["x"].max(), events["y"].max()])
    assert largest.tolist() == [33, 33]


def test_frames_hold_every_event_of_the_window(train: NMNIST):
    for i in (0, 1, 999):
        frames, label = train[i]
        assert frames.shape == (30, 2, 34, 34) and frames.dtype == torch.float32
        assert label == int(train.targets[i])
        events = train.events(i)
        assert frames.sum() == (events["t"] < 300_000).sum()
        np.testing.assert_array_equal(frames.numpy(), to_frames(events, (34, 34), n_time_bins=30, duration=300_000))


def test_frames_keep_the_three_saccades(train: NMNIST):
    """Raw recordings: three ~100 ms saccades, with few events where the motion turns (~100 and ~205 ms)."""
    per_bin = sum(train[i][0].sum(dim=(1, 2, 3)) for i in range(0, 1000, 10))  # 10 ms bins
    for turn, moving in ((9, 5), (21, 15), (21, 26)):
        assert per_bin[turn] < 0.2 * per_bin[moving]


def test_subset_checksums_match_the_manifest(shared_data: Path):
    assert verify(shared_data, SMALL_NAME) == []


def test_verify_reports_changed_missing_and_unlisted_files(shared_data: Path, tmp_path: Path):
    copy_writable(shared_data / SMALL_NAME, tmp_path / SMALL_NAME)
    folder = tmp_path / SMALL_NAME / "NMNISTsmall"
    with open(folder / "5.bs2", "r+b") as f:
        f.seek(7)
        f.write(b"\xff")
    (folder / "6.bs2").unlink()
    problems = verify(tmp_path, SMALL_NAME)
    assert any("5.bs2: sha256 does not match" in p for p in problems)
    assert any("6.bs2: missing" in p for p in problems)
    assert len(problems) == 2
    assert "is not a directory" in verify(tmp_path / "nowhere", SMALL_NAME)[0]


def make_original_layout(root: Path, small_dir: Path, shared_data: Path) -> None:
    """The first 20 training and 20 test samples, copied into ``Train/<digit>/<index>.bin`` (1-based index)."""
    for split, first_id, stem in (("Train", 1, "train-labels-idx1-ubyte"), ("Test", 60001, "t10k-labels-idx1-ubyte")):
        labels = mnist_labels(shared_data, stem)
        for digit in range(10):
            (root / "nmnist" / split / str(digit)).mkdir(parents=True)
        for k in range(20):
            target = root / "nmnist" / split / str(labels[k]) / f"{k + 1:05d}.bin"
            shutil.copyfile(small_dir / f"{first_id + k}.bs2", target)


def test_original_layout_reads_in_mnist_order(shared_data: Path, small_dir: Path, train: NMNIST, tmp_path: Path):
    make_original_layout(tmp_path, small_dir, shared_data)
    original = NMNIST(tmp_path, train=True, T=30, duration_us=300_000, cache=False)
    assert len(original) == 20
    assert original.targets.tolist() == train.targets[:20].tolist()
    for i in range(20):
        torch.testing.assert_close(original[i][0], train[i][0])
    test = NMNIST(tmp_path, train=False, T=30, duration_us=300_000, cache=False)
    assert test.targets.tolist() == mnist_labels(shared_data, "t10k-labels-idx1-ubyte")[:20].tolist()
    problems = verify(tmp_path)
    assert problems == [f"{tmp_path / 'nmnist' / 'Train'}: 20 samples, expected 60000",
                        f"{tmp_path / 'nmnist' / 'Test'}: 20 samples, expected 10000"]


def test_original_layout_errors(tmp_path: Path):
    (tmp_path / "nmnist" / "Train" / "3").mkdir(parents=True)
    with pytest.raises(MissingDataError, match=r"9 class folder\(s\) missing") as error:
        NMNIST(tmp_path, cache=False)
    assert str(tmp_path / "nmnist" / "Train" / "0") in str(error.value)
    for digit in range(10):
        (tmp_path / "nmnist" / "Train" / str(digit)).mkdir(exist_ok=True)
    with pytest.raises(MissingDataError, match=r"no \.bin files"):
        NMNIST(tmp_path, cache=False)
    (tmp_path / "nmnist" / "Train" / "3" / "sample.bin").write_bytes(b"\0" * 5)
    with pytest.raises(CorruptFileError, match="unexpected file name"):
        NMNIST(tmp_path, cache=False)
    with pytest.raises(MissingDataError, match="no N-MNIST test split"):
        NMNIST(tmp_path, train=False, cache=False)


def test_missing_subset_files_are_all_listed(tmp_path: Path):
    folder = tmp_path / SMALL_NAME / "NMNISTsmall"
    folder.mkdir(parents=True)
    (folder / "train1K.txt").write_text("#sample #class\r\n1\t5\r\n2\t0\r\n3\t4\r\n")
    write_bin_events(folder / "1.bs2", make_events([1], [2], [3], [1]))
    with pytest.raises(MissingDataError, match=r"2 expected file\(s\) missing") as error:
        NMNIST(tmp_path, name=SMALL_NAME, cache=False)
    assert str(folder / "2.bs2") in str(error.value) and str(folder / "3.bs2") in str(error.value)
    with pytest.raises(MissingDataError, match=r"test100\.txt"):
        NMNIST(tmp_path, train=False, name=SMALL_NAME, cache=False)


@pytest.mark.parametrize("text, message", [
    ("#sample #class\n1\t5\n2\tfive\n", "line 3"),
    ("#sample #class\n1\t5\n2\t12\n", "line 3"),
    ("#sample #class\n1\t5\t7\n", "line 2"),
    ("#sample #class\n1\t5\n1\t3\n", "listed twice"),
    ("#sample #class\n", "no samples"),
    ("\x00\xff\x13garbage", "line 1"),
    ("#sample #class\n1\t5\n" + "9" * 30 + "\t3\n", "line 3"),  # an id beyond 64 bits
])
def test_garbled_index_files_are_reported(tmp_path: Path, text: str, message: str):
    path = tmp_path / "train1K.txt"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(CorruptFileError, match=message) as error:
        read_index(path)
    assert str(path) in str(error.value)


def test_index_files_with_crlf_line_ends(small_dir: Path):
    ids, labels = read_index(small_dir / "test100.txt")
    assert ids[0] == 60001 and ids[-1] == 60100 and labels[-1] == 9 and len(ids) == 100


def test_writer_round_trip(tmp_path: Path):
    rng = np.random.default_rng(0)
    events = make_events(rng.integers(0, 34, 500), rng.integers(0, 34, 500), np.sort(rng.integers(0, 2**23, 500)),
                         rng.integers(0, 2, 500))
    write_bin_events(tmp_path / "a.bin", events)
    assert (tmp_path / "a.bin").stat().st_size == 2500
    back = read_bin_events(tmp_path / "a.bin", (34, 34))
    np.testing.assert_array_equal(back, events)
    with pytest.raises(ValueError, match="23 bits"):
        encode_bin_events(make_events([0], [0], [2**23], [0]))
    with pytest.raises(ValueError, match="overflow marker"):
        encode_bin_events(make_events([0], [240], [0], [0]))


def test_record_bit_layout(tmp_path: Path):
    """x, y, then polarity in bit 7 of byte 2 and a 23-bit big-endian time."""
    (tmp_path / "one.bin").write_bytes(bytes([7, 9, 0x80 | 0x12, 0x34, 0x56]))
    event = read_bin_events(tmp_path / "one.bin")[0]
    assert (event["x"], event["y"], event["p"], event["t"]) == (7, 9, True, 0x123456)


def test_overflow_markers_shift_later_times(tmp_path: Path):
    records = encode_bin_events(make_events([1, 2], [1, 2], [100, 50], [0, 1]))
    marker = bytes([0, 240, 0, 0, 0])
    (tmp_path / "o.bin").write_bytes(records[:5] + marker + records[5:] + marker)
    events = read_bin_events(tmp_path / "o.bin", (34, 34))
    assert events["t"].tolist() == [100, 50 + 2**13] and events["x"].tolist() == [1, 2]


@pytest.mark.parametrize("content, message", [
    (b"", "empty file"),
    (bytes(7), "truncated record: 7 bytes is not a multiple of 5"),
    (bytes([1, 1, 0, 0, 0, 34, 0, 0, 0, 9]), r"record 1 \(byte 5\) has x=34, y=0, outside the 34 x 34 sensor"),
    (bytes([1, 1, 0, 0, 0, 3, 200, 0, 0, 9]), "y=200, outside"),
])
def test_corrupt_event_files_are_reported(tmp_path: Path, content: bytes, message: str):
    path = tmp_path / "bad.bs2"
    path.write_bytes(content)
    with pytest.raises(CorruptFileError, match=message) as error:
        read_bin_events(path, (34, 34))
    assert str(path) in str(error.value)


def test_corrupt_sample_fails_the_dataset_with_its_name(tmp_path: Path):
    folder = tmp_path / SMALL_NAME / "NMNISTsmall"
    folder.mkdir(parents=True)
    (folder / "train1K.txt").write_text("#sample #class\n1\t5\n2\t0\n")
    write_bin_events(folder / "1.bs2", make_events([1], [2], [3], [1]))
    (folder / "2.bs2").write_bytes(bytes(12))
    with pytest.raises(CorruptFileError, match=r"2\.bs2: truncated record"):
        NMNIST(tmp_path, name=SMALL_NAME, cache=False)
    with pytest.raises(MissingDataError):
        read_bin_events(folder / "absent.bs2")


def test_frames_go_through_the_cache(tmp_path: Path):
    folder = tmp_path / SMALL_NAME / "NMNISTsmall"
    folder.mkdir(parents=True)
    (folder / "train1K.txt").write_text("#sample #class\n1\t5\n")
    write_bin_events(folder / "1.bs2", make_events([1, 1, 2], [2, 2, 3], [3, 4, 250], [1, 1, 0]))
    cache = tmp_path / "cache"
    first = NMNIST(tmp_path, name=SMALL_NAME, T=3, duration_us=300, cache_dir=cache)
    assert len(list(cache.glob("nmnist_small-*.pt"))) == 1
    again = NMNIST(tmp_path, name=SMALL_NAME, T=3, duration_us=300, cache_dir=cache)
    torch.testing.assert_close(again[0][0], first[0][0])
    assert first[0][0][0, 1, 2, 1] == 2 and first[0][0][2, 0, 3, 2] == 1
    NMNIST(tmp_path, name=SMALL_NAME, T=6, duration_us=300, cache_dir=cache)
    assert len(list(cache.glob("nmnist_small-*.pt"))) == 2  # another T, another entry
    binary = NMNIST(tmp_path, name=SMALL_NAME, T=3, duration_us=300, binary=True, cache_dir=cache,
                    transform=lambda f: f[:1])
    assert binary[0][0].shape == (1, 2, 34, 34) and binary[0][0].max() == 1
