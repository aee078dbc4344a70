"""The Free Spoken Digit Dataset loader (iirsnn.data.fsdd) on the real recordings, and on broken copies."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from iirsnn.data import fsdd
from iirsnn.data.audio import MfccConfig, mfcc, read_wav
from iirsnn.data.errors import CorruptFileError, DataError, MissingDataError
from iirsnn.data.files import sha256_file

FEW = ["0_george_0.wav", "3_theo_2.wav", "7_jackson_4.wav", "9_yweweler_1.wav"]


def test_real_fsdd_is_complete_and_matches_its_manifest(shared_data):
    assert fsdd.verify(shared_data) == []


def test_real_fsdd_counts_classes_and_speakers(shared_data):
    everything = fsdd.FSDD(shared_data, "all")
    assert len(everything) == 3000 and everything.classes[:2] == ["zero", "one"] and len(everything.classes) == 10
    assert everything.targets.dtype == torch.long
    assert everything.targets.bincount().tolist() == [300] * 10
    speakers = {r.speaker for r in everything.recordings}
    assert speakers == set(fsdd.SPEAKERS) and len(speakers) == 6
    assert [int(everything.targets[i]) for i in range(3)] == [r.digit for r in everything.recordings[:3]]


def test_standard_split_puts_recordings_0_to_4_in_the_test_set(shared_data):
    train, test = fsdd.FSDD(shared_data, "train"), fsdd.FSDD(shared_data, "test")
    assert (len(train), len(test)) == (2700, 300)
    assert {r.index for r in test.recordings} == set(range(5))
    assert min(r.index for r in train.recordings) == 5
    assert test.targets.bincount().tolist() == [30] * 10
    assert not {p.name for p in train.paths} & {p.name for p in test.paths}


def test_speaker_independent_split_holds_out_whole_speakers(shared_data):
    train = fsdd.FSDD(shared_data, "train", held_out_speakers=["theo", "lucas"])
    test = fsdd.FSDD(shared_data, "test", held_out_speakers=["theo", "lucas"])
    assert (len(train), len(test)) == (2000, 1000)
    assert {r.speaker for r in test.recordings} == {"theo", "lucas"}
    assert not {r.speaker for r in train.recordings} & {"theo", "lucas"}
    assert len(fsdd.FSDD(shared_data, "test", held_out_speakers="nicolas")) == 500
    with pytest.raises(ValueError, match="held_out_speakers must be one or more of"):
        fsdd.FSDD(shared_data, "test", held_out_speakers=["alice"])


def test_mfcc_features_of_a_few_real_files_are_90_by_20_finite_and_cached(shared_data, tmp_path):
    dataset = fsdd.FSDD(shared_data, "test", files=FEW, cache_dir=tmp_path)
    x, label = dataset[1]
    assert x.shape == (90, 20) and x.dtype == torch.float32 and label == 3
    features = dataset.features()
    assert features.shape == (4, 90, 20) and torch.isfinite(features).all()
    assert features[:, :, 0].std() > 0 and not torch.equal(features[0], features[1])
    waveform = read_wav(dataset.paths[0])
    raw = mfcc(waveform.mono(), waveform.sample_rate)
    np.testing.assert_allclose(features[0, [0, -1]].numpy(), raw[[0, -1]], rtol=1e-5, atol=1e-4)
    assert len(list(tmp_path.glob("fsdd-*.pt"))) == 1
    again = fsdd.FSDD(shared_data, "test", files=FEW, cache_dir=tmp_path, transform=lambda t: t * 2)
    assert torch.equal(again[1][0], x * 2)
    fresh = fsdd.FSDD(shared_data, "test", files=FEW, cache=False, mfcc=MfccConfig(n_frames=40, fit="crop"))
    assert fresh[0][0].shape == (40, 20)
    assert len(list(tmp_path.glob("fsdd-*.pt"))) == 1


def test_files_outside_the_split_are_refused(shared_data):
    with pytest.raises(ValueError, match=r"5_george_7\.wav"):
        fsdd.FSDD(shared_data, "test", files=["0_george_0.wav", "5_george_7.wav"])


def test_fit_pad_names_the_file_that_is_too_long(shared_data):
    dataset = fsdd.FSDD(shared_data, "all", files=["5_lucas_1.wav"], cache=False, mfcc=MfccConfig(fit="pad"))
    with pytest.raises(DataError, match=r"5_lucas_1\.wav.*never cuts"):
        dataset[0]


@pytest.fixture
def small_copy(shared_data, tmp_path):
    """An FSDD directory with the recordings of FEW and a manifest of them."""
    source = shared_data / "fsdd"
    target = tmp_path / "data" / "fsdd"
    (target / "recordings").mkdir(parents=True)
    for name in FEW:
        shutil.copy(source / "recordings" / name, target / "recordings" / name)
    (target / "MANIFEST.sha256").write_text("".join(f"{sha256_file(target / 'recordings' / n)}  {n}\n" for n in FEW))
    return target


def test_missing_dataset_and_missing_files_are_named(small_copy, tmp_path):
    with pytest.raises(MissingDataError, match="'fsdd' not found"):
        fsdd.FSDD(tmp_path)
    (small_copy / "recordings" / FEW[1]).unlink()
    with pytest.raises(MissingDataError, match=r"3_theo_2\.wav") as info:
        fsdd.FSDD(small_copy.parent, "all")
    assert "Jakobovski/free-spoken-digit-dataset" in str(info.value)
    assert "missing" in fsdd.verify(tmp_path)[0]


def test_a_copy_without_manifest_lists_the_recordings_directory(small_copy):
    (small_copy / "MANIFEST.sha256").unlink()
    dataset = fsdd.FSDD(small_copy.parent, "all")
    assert sorted(p.name for p in dataset.paths) == sorted(FEW)
    assert "MANIFEST.sha256: missing" in fsdd.verify(small_copy.parent)[0]


def test_verify_reports_a_manifest_other_than_the_published_one(small_copy):
    problems = fsdd.verify(small_copy.parent)
    assert len(problems) == 1 and "MANIFEST.sha256: sha256" in problems[0] and "does not match" in problems[0]


def test_verify_checks_each_file_against_the_manifest(shared_data, tmp_path):
    target = tmp_path / "fsdd"
    (target / "recordings").mkdir(parents=True)
    shutil.copy(shared_data / "fsdd" / "MANIFEST.sha256", target / "MANIFEST.sha256")
    for name in FEW:
        shutil.copy(shared_data / "fsdd" / "recordings" / name, target / "recordings" / name)
    damaged = target / "recordings" / FEW[0]
    damaged.write_bytes(damaged.read_bytes()[:-10])
    (target / "recordings" / "0_alice_0.wav").write_bytes(b"")
    problems = fsdd.verify(tmp_path)
    assert any(FEW[0] in p and "sha256 does not match" in p for p in problems)
    assert any("0_alice_0.wav: not in MANIFEST.sha256" in p for p in problems)
    assert sum("missing" in p for p in problems) == 3000 - len(FEW)
    assert not any(FEW[1] in p for p in problems)


def test_truncated_recording_gives_a_corrupt_file_error_naming_it(small_copy):
    bad = small_copy / "recordings" / FEW[2]
    bad.write_bytes(bad.read_bytes()[:2000])
    dataset = fsdd.FSDD(small_copy.parent, "all", cache=False)
    with pytest.raises(CorruptFileError, match=r"7_jackson_4\.wav: truncated"):
        dataset[0]


def test_a_file_name_outside_the_convention_is_named(small_copy):
    (small_copy / "MANIFEST.sha256").unlink()
    (small_copy / "recordings" / "seven_jackson.wav").write_bytes(b"")
    with pytest.raises(DataError, match=r"seven_jackson\.wav"):
        fsdd.FSDD(small_copy.parent, "all")


def test_remotes_are_empty_because_upstream_has_no_checksummed_archive():
    assert fsdd.REMOTES == []


def test_speaker_task_validates_on_its_own_speakers_and_normalises_each_utterance(shared_data):
    from iirsnn.data.task_builders import build_task

    options = {"split": "speakers", "held_out_speakers": ["theo"], "val_speakers": ["george"], "limit": 40}
    plain = build_task("fsdd", shared_data, options)
    cmvn = build_task("fsdd", shared_data, {**options, "normalize": "utterance"})
    assert {s: cmvn.size(s) for s in ("train", "val", "test")} == {"train": 40, "val": 40, "test": 40}
    assert "validation speakers george" in cmvn.description
    for split in ("train", "val", "test"):
        # every utterance's mean per channel is the same after its own normalisation (not without it)
        assert float(cmvn.splits[split].x.mean(1).std(0).max()) < 1e-4
        assert float(plain.splits[split].x.mean(1).std(0).max()) > 0.1
    # the validation speaker's recordings are neither training nor test samples
    assert not any(torch.equal(v, t) for v in plain.splits["val"].x for t in plain.splits["train"].x)
    with pytest.raises(ValueError, match="overlap"):
        build_task("fsdd", shared_data, {**options, "val_speakers": ["theo"]})
    with pytest.raises(ValueError, match="needs split='speakers'"):
        build_task("fsdd", shared_data, {"val_speakers": ["george"]})
    with pytest.raises(ValueError, match="normalize must be one of"):
        build_task("fsdd", shared_data, {**options, "normalize": "speaker"})
