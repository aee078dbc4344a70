"""MNIST from its IDX files (gzip or raw) and the IDX reader/writer, on the real data and on broken files."""

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from iirsnn.data import CorruptFileError, MissingDataError
from iirsnn.data.files import sha256_file
from iirsnn.data.idx import IDX_DTYPES, idx_bytes, idx_content, parse_idx, read_idx, write_idx
from iirsnn.data.mnist import FILES, MNIST, REMOTES, rate_encode, verify

# The standard per-digit counts of MNIST (digits 0..9).
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def train(shared_data: Path) -> MNIST:
    return MNIST(shared_data, train=True)


@pytest.fixture(scope="module")
def t10k(shared_data: Path) -> MNIST:
    return MNIST(shared_data, train=False)


def _copy_test_split(shared_data: Path, target: Path, decompress: bool) -> Path:
    """The two t10k files of the shared data in ``target/mnist`` (decompressed or as .gz)."""
    directory = target / "mnist"
    directory.mkdir(parents=True)
    for key in [("test", "images"), ("test", "labels")]:
        stem = FILES[key].stem
        source = shared_data / "mnist" / f"{stem}.gz"
        if decompress:
            (directory / stem).write_bytes(gzip.decompress(source.read_bytes()))
        else:
            shutil.copy(source, directory / f"{stem}.gz")
    return directory


# --- the real data ---------------------------------------------------------------------------------

def test_split_sizes_and_per_class_counts(train: MNIST, t10k: MNIST) -> None:
    assert len(train) == 60000 and len(t10k) == 10000
    assert torch.bincount(train.targets, minlength=10).tolist() == TRAIN_COUNTS
    assert torch.bincount(t10k.targets, minlength=10).tolist() == TEST_COUNTS
    assert train.classes == [str(d) for d in range(10)]


def test_samples_are_unit_range_images_with_int_labels(train: MNIST, t10k: MNIST) -> None:
    image, label = train[0]
    assert image.shape == (1, 28, 28) and image.dtype == torch.float32
    assert image.min() == 0.0 and image.max() == 1.0
    assert isinstance(label, int) and label == 5  # the well-known first training digit
    assert t10k[0][1] == 7 and t10k[-1][1] == int(t10k.targets[-1])
    assert torch.equal(t10k[123][0][0], t10k.images[123].float() / 255)
    assert train.targets.dtype == torch.int64


def _raw_split(shared_data: Path, prefix: str) -> tuple[bytes, bytes]:
    """The decompressed images and labels files of one split, read here with gzip alone (not the loader)."""
    directory = shared_data / "mnist"
    return (gzip.decompress((directory / f"{prefix}-images-idx3-ubyte.gz").read_bytes()),
            gzip.decompress((directory / f"{prefix}-labels-idx1-ubyte.gz").read_bytes()))


def _raw_sample(images: bytes, labels: bytes, index: int) -> tuple[np.ndarray, int]:
    """Image ``index`` and its label at the IDX offsets of SOURCE.md: a 16-byte images header (magic 2051,
    count, 28, 28) then 784 bytes per image; an 8-byte labels header (magic 2049, count) then one byte each."""
    start = 16 + 784 * index
    return np.frombuffer(images[start:start + 784], dtype=np.uint8).reshape(28, 28), labels[8 + index]


@pytest.mark.parametrize("split, indices", [
    ("train", [0, 1, 2, 12345, 30000, 59998, 59999]),
    ("t10k", [0, 1, 2, 4999, 5000, 9998, 9999]),
])
def test_samples_equal_the_raw_idx_bytes(shared_data: Path, split: str, indices: list[int],
                                         request: pytest.FixtureRequest) -> None:
    """Image and label i of the loader are the i-th 784 bytes and the i-th label byte of the files."""
    dataset: MNIST = request.getfixturevalue(split)
    images, labels = _raw_split(shared_data, split)
    count = len(dataset)
    assert images[:16] == (2051).to_bytes(4, "big") + count.to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    assert labels[:8] == (2049).to_bytes(4, "big") + count.to_bytes(4, "big")
    assert len(images) == 16 + 784 * count and len(labels) == 8 + count
    for i in indices:
        raw_image, raw_label = _raw_sample(images, labels, i)
        assert raw_image.any(), f"raw image {i} is blank: the comparison would be vacuous"
        assert np.array_equal(dataset.images[i].numpy(), raw_image), f"{split} image {i} differs from the file"
        assert int(dataset.targets[i]) == raw_label, f"{split} label {i} differs from the file"
        image, label = dataset[i]
        assert torch.equal(image[0], torch.from_numpy(raw_image.astype(np.float32) / 255)) and label == raw_label
    neighbours = [_raw_sample(images, labels, i)[0] for i in (0, 1)]
    assert not np.array_equal(*neighbours), "adjacent raw images are equal: a shift by one would not show"


def test_first_training_labels_are_the_known_ones(train: MNIST) -> None:
    assert train.targets[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert [train[i][1] for i in range(10)] == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]


def test_pixel_statistics_match_source(train: MNIST) -> None:
    pixels = train.images.float() / 255
    assert pixels.mean().item() == pytest.approx(0.1307, abs=1e-4)
    assert pixels.std().item() == pytest.approx(0.3081, abs=1e-4)


def test_transform_is_applied(shared_data: Path) -> None:
    flipped = MNIST(shared_data, train=False, transform=lambda x: 1 - x)
    plain = MNIST(shared_data, train=False)
    assert torch.equal(flipped[5][0], 1 - plain[5][0])


def test_verify_real_data_is_clean(shared_data: Path) -> None:
    assert verify(shared_data) == []


def test_remotes_are_the_shared_gz_files(shared_data: Path) -> None:
    assert len(REMOTES) == 4
    for remote in REMOTES:
        assert remote.url.endswith(remote.path) and remote.path.endswith(".gz")
        assert sha256_file(shared_data / "mnist" / remote.path) == remote.sha256


def test_rate_encode_is_a_seeded_bernoulli_code(t10k: MNIST) -> None:
    images = torch.stack([t10k[i][0] for i in range(8)])
    spikes = rate_encode(images, T=50, generator=torch.Generator().manual_seed(1))
    again = rate_encode(images, T=50, generator=torch.Generator().manual_seed(1))
    assert spikes.shape == (50, 8, 784) and torch.equal(spikes, again)
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    flat = images.flatten(1)
    assert (spikes[:, flat == 0] == 0).all() and (spikes[:, flat == 1] == 1).all()
    assert rate_encode(images, T=5, gain=0.0).sum() == 0


# --- raw and recompressed files, missing and corrupt ones -----------------------------------------

def test_decompressed_files_are_accepted(shared_data: Path, tmp_path: Path, t10k: MNIST) -> None:
    _copy_test_split(shared_data, tmp_path, decompress=True)
    raw = MNIST(tmp_path, train=False)
    assert torch.equal(raw.images, t10k.images) and torch.equal(raw.targets, t10k.targets)
    problems = verify(tmp_path)
    assert len(problems) == 2 and all("train-" in p for p in problems)


def test_recompressed_gz_passes_the_content_checksum(shared_data: Path, tmp_path: Path) -> None:
    directory = _copy_test_split(shared_data, tmp_path, decompress=False)
    labels = directory / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(gzip.compress(gzip.decompress(labels.read_bytes()), compresslevel=1, mtime=12345))
    assert sha256_file(labels) != FILES["test", "labels"].gz_sha256
    assert len(MNIST(tmp_path, train=False)) == 10000


def test_missing_files_are_all_named(tmp_path: Path) -> None:
    (tmp_path / "mnist").mkdir()
    with pytest.raises(MissingDataError) as info:
        MNIST(tmp_path)
    message = str(info.value)
    assert "train-images-idx3-ubyte.gz" in message and "train-labels-idx1-ubyte.gz" in message
    assert "REMOTES" in message and "t10k" not in message
    assert len(verify(tmp_path)) == 4
    assert "not a directory" in verify(tmp_path / "nowhere")[0]


def test_wrong_content_fails_the_checksum(shared_data: Path, tmp_path: Path) -> None:
    directory = _copy_test_split(shared_data, tmp_path, decompress=False)
    write_idx(directory / "t10k-labels-idx1-ubyte.gz", np.zeros(10000, np.uint8))
    with pytest.raises(CorruptFileError, match=r"t10k-labels-idx1-ubyte\.gz: sha256"):
        MNIST(tmp_path, train=False)
    assert any("t10k-labels" in p and "sha256" in p for p in verify(tmp_path))


def test_truncated_gz_is_reported(shared_data: Path, tmp_path: Path) -> None:
    directory = _copy_test_split(shared_data, tmp_path, decompress=False)
    images = directory / "t10k-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[: 1_000_000])
    with pytest.raises(CorruptFileError, match=r"t10k-images-idx3-ubyte\.gz: not a complete gzip file"):
        MNIST(tmp_path, train=False)
    assert any("not a complete gzip file" in p for p in verify(tmp_path))


# --- the IDX reader and writer ---------------------------------------------------------------------

@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", sorted({d.newbyteorder("=").str for d in IDX_DTYPES.values()}))
def test_idx_round_trip(tmp_path: Path, dtype: str, suffix: str) -> None:
    rng = np.random.default_rng(0)
    array = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    path = write_idx(tmp_path / f"x.idx{suffix}", array)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.shape == (3, 4, 5)
    np.testing.assert_array_equal(back, array)
    assert idx_content(path) == idx_bytes(array)


def test_idx_layout_is_big_endian_with_the_spec_header() -> None:
    assert idx_bytes(np.array([[1, 2, 3]], np.uint8)) == bytes.fromhex("00000802" "00000001" "00000003" "010203")
    assert idx_bytes(np.array([258], np.int16)) == bytes.fromhex("00000B01" "00000001" "0102")
    np.testing.assert_array_equal(parse_idx(idx_bytes(np.arange(7, dtype=np.float64))), np.arange(7.0))


def test_idx_writer_refuses_unknown_dtypes(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="IDX cannot store dtype"):
        write_idx(tmp_path / "x.idx", np.zeros(3, np.uint16))


GOOD = idx_bytes(np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4))


@pytest.mark.parametrize(("content", "message"), [
    (b"\x00\x00", "2 bytes, too short for an IDX header"),
    (b"\x01" + GOOD[1:], "bad IDX magic"),
    (GOOD[:2] + b"\x07" + GOOD[3:], "unknown IDX dtype code 0x07"),
    (GOOD[:3] + b"\xff" + GOOD[4:], "header announces 255 dimensions"),
    (GOOD[:-1], "truncated: dims \\[2, 3, 4\\]"),
    (GOOD + b"\x00", "has trailing bytes"),
    (GOOD[:4] + bytes.fromhex("FFFFFFFF" "0000001C" "0000001C") + GOOD[16:],
     "truncated: dims \\[4294967295, 28, 28\\]"),
])
def test_corrupt_idx_is_reported_by_name(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "broken-idx3-ubyte"
    path.write_bytes(content)
    with pytest.raises(CorruptFileError, match=f"broken-idx3-ubyte: {message}"):
        read_idx(path)


def test_garbled_gzip_is_reported(tmp_path: Path) -> None:
    compressed = bytearray(gzip.compress(GOOD * 100))
    compressed[len(compressed) // 2] ^= 0xFF
    path = tmp_path / "garbled.gz"
    path.write_bytes(bytes(compressed))
    with pytest.raises(CorruptFileError, match=r"garbled\.gz: not a complete gzip file"):
        read_idx(path)
    path.write_bytes(GOOD)  # raw bytes named .gz
    with pytest.raises(CorruptFileError, match=r"garbled\.gz: not a complete gzip file"):
        read_idx(path)
