"""Japanese Vowels: the real train/test files, speaker labels from block order, corrupt files."""

from pathlib import Path

import pytest
import torch

from iirsnn.data import CorruptFileError, MissingDataError
from iirsnn.data.japanese_vowels import (
    REMOTES,
    SHA256,
    SPEAKER_BLOCKS,
    JapaneseVowels,
    parse_blocks,
    read_blocks,
    verify,
)

SEPARATOR = b"1.0 1.0 1.0 1.0 1.0 1.0 1.0 1.0 1.0 1.0 1.0 1.0\r\n"


def write_blocks(blocks: list[torch.Tensor]) -> bytes:
    """Blocks [T_i, 12] in the upstream layout: 6 decimals, trailing space, CRLF, a separator after each."""
    lines = []
    for block in blocks:
        lines += [(" ".join(f"{v:.6f}" for v in row.tolist()) + " \r\n").encode() for row in block]
        lines.append(SEPARATOR)
    return b"".join(lines)


def random_blocks(lengths: list[int], seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.round((torch.rand(n, 12, generator=g) * 2 - 1) * 1e6) / 1e6 for n in lengths]


def test_train_and_test_splits_match_source(shared_data: Path):
    train = JapaneseVowels(shared_data, split="train")
    test = JapaneseVowels(shared_data, split="test")
    assert (len(train), len(test)) == (270, 370)
    assert len(train.classes) == 9 == len(set(train.classes)) and train.classes == test.classes
    assert torch.bincount(train.targets).tolist() == [30] * 9
    assert torch.bincount(test.targets).tolist() == [31, 35, 88, 44, 29, 24, 40, 50, 29]
    assert (train.lengths.min().item(), train.lengths.max().item(), train.lengths.sum().item()) == (7, 26, 4274)
    assert (test.lengths.min().item(), test.lengths.max().item(), test.lengths.sum().item()) == (7, 29, 5687)
    assert all(s.shape[1] == 12 for s in train.series + test.series)
    first = torch.tensor([1.860936, -0.207383, 0.261557, -0.214562, -0.171253, -0.118167, -0.277557, 0.025668,
                          0.126701, -0.306756, -0.213076, 0.088728])
    assert torch.allclose(train.series[0][0], first)
    assert not (torch.cat(train.series) == 1.0).all(dim=1).any()  # no separator line is left as a frame
    x, y = test[-1]
    assert x.shape == (29, 12) and y == 8
    assert test.valid_lengths[-1] == test.lengths[-1] and not x[int(test.lengths[-1]):].any()


def test_verify_and_remotes(shared_data: Path):
    assert verify(shared_data) == []
    assert {r.path: r.sha256 for r in REMOTES} == SHA256
    assert all(r.url.startswith("https://") and r.url.endswith(r.path) for r in REMOTES)


def test_resampled_and_standardised_samples(shared_data: Path):
    train = JapaneseVowels(shared_data, split="train")
    test = JapaneseVowels(shared_data, split="test", length=20, mode="resample", normalize=train.channel_stats())
    x, _ = test[0]
    assert x.shape == (20, 12)
    assert torch.allclose(x[0], test.normalize(test.series[0][:1])[0])  # end points are kept
    with pytest.raises(ValueError, match="mode='pad' never cuts"):
        JapaneseVowels(shared_data, split="test", length=20)


def test_writer_round_trip_and_a_copy_without_the_final_line_break():
    blocks = random_blocks([7, 3, 12])
    data = write_blocks(blocks)
    parsed = parse_blocks(data, "ae.mine")
    assert len(parsed) == 3 and all(torch.equal(torch.from_numpy(p), b) for p, b in zip(parsed, blocks, strict=True))
    assert all(torch.equal(torch.from_numpy(a), torch.from_numpy(b))
               for a, b in zip(parse_blocks(data.rstrip(), "ae.cut"), parsed, strict=True))
    assert parse_blocks(b"", "ae.empty") == [] and parse_blocks(b"\r\n\r\n", "ae.blank") == []
    with_blanks = data.replace(SEPARATOR, SEPARATOR + b"\r\n")
    assert [p.shape for p in parse_blocks(with_blanks, "ae.blank")] == [(7, 12), (3, 12), (12, 12)]


def test_corrupt_files_name_the_file_and_the_problem(tmp_path: Path):
    good = write_blocks(random_blocks([4, 5]))
    lines = good.split(b"\r\n")
    cases = {
        "ae.midline": (good[:-len(SEPARATOR) - 30], r"line 10 has \d+ values, expected 12"),
        "ae.noseparator": (good[:-len(SEPARATOR)], "no separator line .* truncated"),
        "ae.word": (good.replace(lines[2].split()[3], b"x1.2", 1), r"line 3: 'x1\.2' is not a number"),
        "ae.empty_block": (SEPARATOR + good, "line 1 is a separator that ends an empty block"),
        "ae.inf": (good.replace(lines[0].split()[0], b"inf", 1), "NaN or Inf"),
        "ae.binary": (b"\xff\xfe" + good, "not ASCII"),
    }
    for name, (data, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(CorruptFileError, match=message) as info:
            read_blocks(path)
        assert name in str(info.value)


def write_root(tmp_path: Path, train_blocks: int = 270) -> Path:
    directory = tmp_path / "japanese_vowels"
    directory.mkdir()
    (directory / "ae.train").write_bytes(write_blocks(random_blocks([5] * train_blocks)))
    (directory / "ae.test").write_bytes(write_blocks(random_blocks([6] * sum(SPEAKER_BLOCKS["test"]), seed=1)))
    return tmp_path


def test_loader_checks_checksums_block_counts_and_presence(tmp_path: Path):
    root = write_root(tmp_path)
    with pytest.raises(CorruptFileError, match=r"ae\.train: sha256 .* does not match"):
        JapaneseVowels(root)
    data = JapaneseVowels(root, checksums=False)
    assert len(data) == 270 and data.length == 5
    (root / "japanese_vowels" / "ae.train").write_bytes(write_blocks(random_blocks([5] * 269)))
    with pytest.raises(CorruptFileError, match=r"ae\.train: 269 blocks, expected 270"):
        JapaneseVowels(root, checksums=False)
    problems = verify(root)
    assert len(problems) == 3 and sum("269 blocks" in p for p in problems) == 1
    (root / "japanese_vowels" / "ae.test").unlink()
    with pytest.raises(MissingDataError, match=r"ae\.test"):
        JapaneseVowels(root, split="test")
    assert any("ae.test: missing" in p for p in verify(root))
    with pytest.raises(ValueError, match="split"):
        JapaneseVowels(root, split="all")
