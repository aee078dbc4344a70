"""Auslan HQ (tctodd): the complete real set, its quirks, splits, and corrupt or missing files."""

import shutil
from pathlib import Path

import pytest
import torch

from iirsnn.data import CorruptFileError, MissingDataError
from iirsnn.data.auslan import (
    CHANNELS,
    CLASSES,
    MANIFEST_SHA256,
    Auslan,
    label_of,
    parse_tsd,
    read_tsd,
    sample_files,
    verify,
)
from iirsnn.data.files import read_manifest, sha256_file
from iirsnn.data.timeseries import CurrentLIFEncoding

FRAGMENT_SHA256 = "796461cfdfc10ac6ad676d9e9c1e9e140c28a11fd8c9a553d9e0fc2595901961"


@pytest.fixture(scope="module")
def auslan(shared_data: Path) -> Auslan:
    return Auslan(shared_data)


def tsd_bytes(frames: torch.Tensor) -> bytes:
    """A .tsd file of ``frames`` [T, 22]: tab-separated, 6 decimals, LF line endings."""
    return "".join("\t".join(f"{v:.6f}" for v in row.tolist()) + "\n" for row in frames).encode()


def test_complete_set_has_2565_samples_95_signs_22_channels(auslan: Auslan):
    assert len(auslan) == 2565 and len(auslan.classes) == 95 == len(set(auslan.classes))
    assert auslan.classes == sorted(auslan.classes)  # the sorted list of SOURCE.md (C locale)
    assert torch.bincount(auslan.targets, minlength=95).tolist() == [27] * 95
    assert torch.bincount(auslan.sessions)[1:].tolist() == [285] * 9
    assert all(s.shape[1] == len(CHANNELS) == 22 and s.dtype == torch.float32 for s in auslan.series)
    assert int(auslan.lengths.min()) == 45 and int(auslan.lengths.max()) == 136
    assert round(auslan.lengths.double().mean().item(), 1) == 57.3
    x, y = auslan[0]
    assert x.shape == (136, 22) and y == CLASSES.index("God")
    assert torch.isfinite(torch.cat(auslan.series)).all()


def test_labels_come_from_file_names_with_the_upstream_quirks(auslan: Auslan, shared_data: Path):
    directory = shared_data / "auslan_hq" / "tctodd"
    on_disk = sorted(str(p.relative_to(directory)) for p in directory.glob("tctodd*/*.tsd"))
    assert sorted(f for f, _, _ in sample_files()) == on_disk
    assert sorted({label_of(Path(f).stem) for f in on_disk}) == list(CLASSES)
    assert label_of("not-my-problem-2") == "not-my-problem" and label_of("flash-light-3") == "flash-light"
    assert label_of("her-1") == "his_hers" == label_of("his_hers-1")
    her = [i for i, p in enumerate(auslan.files) if p.name == "her-1.tsd"]
    assert len(her) == 1 and auslan.classes[auslan.targets[her[0]]] == "his_hers"
    assert auslan.sessions[her[0]] == 1


def test_drink_1_with_two_spaces_parses_to_22_values(auslan: Auslan, shared_data: Path):
    path = shared_data / "auslan_hq" / "tctodd" / "tctodd1" / "drink-1.tsd"
    line = path.read_text().split("\n")[54]
    assert "  " in line and line.count("\t") == 20  # the upstream quirk is still there
    frames = read_tsd(path)
    assert frames.shape[1] == 22
    assert frames[54, 10].item() == pytest.approx(0.007699) and frames[54, 11].item() == pytest.approx(0.097939)
    index = auslan.files.index(path)
    assert torch.equal(auslan.series[index], frames)


def test_manifest_checksums_and_verify(shared_data: Path):
    directory = shared_data / "auslan_hq"
    assert sha256_file(directory / "MANIFEST.sha256") == MANIFEST_SHA256
    manifest = read_manifest(directory / "MANIFEST.sha256")
    assert len(manifest) == 2565 and set(manifest) == {f for f, _, _ in sample_files()}
    assert verify(shared_data) == []


def test_fragment_is_the_first_two_frames_of_alive_1(shared_data: Path, auslan: Auslan):
    fragment = shared_data / "auslan_fragment" / "alive-1.tsd"
    assert sha256_file(fragment) == FRAGMENT_SHA256
    assert not fragment.read_bytes().endswith(b"\n")
    full = read_tsd(shared_data / "auslan_hq" / "tctodd" / "tctodd1" / "alive-1.tsd")
    assert torch.equal(read_tsd(fragment), full[:2])
    assert read_tsd(fragment)[0, 0].item() == pytest.approx(-0.097816)
    assert torch.equal(auslan.series[auslan.files.index(fragment.parents[1] / "auslan_hq/tctodd/tctodd1/alive-1.tsd")],
                       full)


def test_session_split_holds_out_one_session(shared_data: Path, auslan: Auslan):
    test = Auslan(shared_data, split="test", test_session=4, length=40, mode="resample")
    assert len(test) == 285 and set(test.sessions.tolist()) == {4}
    held_out = (auslan.sessions == 4).nonzero().flatten()
    assert torch.equal(test.targets, auslan.targets[held_out])
    assert all(torch.equal(a, auslan.series[i]) for a, i in zip(test.series, held_out.tolist(), strict=True))
    assert test[0][0].shape == (40, 22) and test.valid_lengths.tolist() == [40] * 285
    with pytest.raises(ValueError, match="test_session"):
        Auslan(shared_data, split="test", test_session=10)
    with pytest.raises(ValueError, match="split"):
        Auslan(shared_data, split="validation")
    with pytest.raises(ValueError, match="longer than length=50"):
        Auslan(shared_data, split="test", test_session=4, length=50, checksums=False)


def test_encoded_sample_is_a_spike_train_with_two_neurons_per_channel(auslan: Auslan):
    auslan.normalize = auslan.channel_stats()
    auslan.transform = CurrentLIFEncoding()
    try:
        spikes, _ = auslan[5]
    finally:
        auslan.normalize = auslan.transform = None
    assert spikes.shape == (136, 44)
    assert set(spikes.unique().tolist()) == {0.0, 1.0}
    assert not spikes[int(auslan.lengths[5]) + 2:].any()  # padded zeros inject no current


def test_parse_tsd_rejects_truncated_and_garbled_records(tmp_path: Path):
    good = tsd_bytes(torch.rand(3, 22))
    assert parse_tsd(good, "ok.tsd").shape == (3, 22)
    cases = {
        "cut.tsd": (good[:-40], r"line 3 has \d+ values, expected 22"),
        "word.tsd": (good.replace(good.split(b"\t")[5], b"oops", 1), r"line 1: 'oops' is not a number"),
        "empty.tsd": (b"", "empty file"),
        "blank.tsd": (good.replace(b"\n", b"\n\n", 1), "line 2 has 0 values"),
        "binary.tsd": (b"\x89PNG\r\n" + good, "not ASCII"),
        "nan.tsd": (good.replace(good.split(b"\t")[3], b"nan", 1), "NaN or Inf"),
    }
    for name, (data, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(CorruptFileError, match=message) as info:
            read_tsd(path)
        assert name in str(info.value)


@pytest.fixture
def one_session(shared_data: Path, tmp_path: Path) -> Path:
    """A data root holding auslan_hq with only session 9 and the real MANIFEST."""
    source = shared_data / "auslan_hq"
    target = tmp_path / "auslan_hq"
    shutil.copytree(source / "tctodd" / "tctodd9", target / "tctodd" / "tctodd9")
    shutil.copy(source / "MANIFEST.sha256", target / "MANIFEST.sha256")
    return tmp_path


def test_loader_reports_modified_truncated_and_missing_files(one_session: Path):
    assert len(Auslan(one_session, split="test")) == 285
    path = one_session / "auslan_hq" / "tctodd" / "tctodd9" / "yes-2.tsd"
    data = path.read_bytes()
    path.write_bytes(data.replace(b"0", b"1", 1))
    with pytest.raises(CorruptFileError, match=r"yes-2\.tsd: sha256 .* does not match"):
        Auslan(one_session, split="test")
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match=r"yes-2\.tsd: line \d+ has \d+ values"):
        Auslan(one_session, split="test", checksums=False)
    problems = verify(one_session)
    assert len(problems) == 8 * 285 + 1
    assert sum("yes-2.tsd: sha256 does not match" in p for p in problems) == 1
    path.unlink()
    (one_session / "auslan_hq" / "tctodd" / "tctodd9" / "zero-3.tsd").unlink()
    with pytest.raises(MissingDataError, match=r"2 expected file\(s\) missing(.|\n)*yes-2\.tsd(.|\n)*zero-3\.tsd"):
        Auslan(one_session, split="test")
    with pytest.raises(MissingDataError, match="2280 expected file"):
        Auslan(one_session, split="train")


def test_loader_checks_the_manifest_itself(one_session: Path):
    manifest = one_session / "auslan_hq" / "MANIFEST.sha256"
    manifest.write_text(manifest.read_text().replace("3", "4", 1))
    with pytest.raises(CorruptFileError, match=r"MANIFEST\.sha256: sha256 .* is not the expected"):
        Auslan(one_session, split="test")
    assert len(Auslan(one_session, split="test", checksums=False)) == 285
    manifest.unlink()
    with pytest.raises(MissingDataError, match="checksums=False"):
        Auslan(one_session, split="test")
    problems = verify(one_session)
    assert "MANIFEST.sha256 is missing" in problems[0] and len(problems) == 1 + 8 * 285
    assert not any("tctodd9" in p.split(": missing")[0] for p in problems[1:])
    (nowhere,) = verify(one_session / "nowhere")
    assert "nowhere" in nowhere and "not a directory" in nowhere
