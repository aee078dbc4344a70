"""The dataset registry and ``iirsnn data list|verify|download``, on the real data and on broken copies."""

import shutil

import pytest

from iirsnn.cli import main
from iirsnn.data import registry
from iirsnn.data.download import Remote, fetch
from iirsnn.data.errors import CorruptFileError, DataError
from iirsnn.data.files import sha256_bytes


def run_cli(capsys, *args):
    try:
        code = main(["data", *args])
    except SystemExit as exc:  # argparse errors
        code = exc.code
    return code, capsys.readouterr().out


@pytest.mark.parametrize("name", list(registry.DATASETS))
def test_every_entry_has_a_reader_verify_and_a_way_to_get_it(name):
    e = registry.entry(name)
    module = e.load()
    assert callable(module.verify)
    remotes = e.remote_files()
    assert all(isinstance(r, Remote) and len(r.sha256) == 64 for r in remotes)
    assert remotes or e.no_download, f"{name}: neither a download nor a hint where to get it"


def test_unknown_name_is_refused_with_the_known_ones(capsys):
    with pytest.raises(KeyError, match="known: mnist"):
        registry.entry("cifar")
    code, out = run_cli(capsys, "verify", "cifar", "--root", ".")
    assert code == 2 and "unknown dataset 'cifar'" in out


def test_verify_all_present_real_datasets(capsys, shared_data):
    code, out = run_cli(capsys, "verify", "--root", str(shared_data))
    assert code == 0, out
    for name in ("mnist", "fsdd", "auslan_hq", "japanese_vowels", "associative_memory", "nmnist_small"):
        assert f"{name}: ok" in out


def test_verify_reports_a_corrupt_copy_and_a_missing_dataset(capsys, shared_data, tmp_path):
    shutil.copytree(shared_data / "japanese_vowels", tmp_path / "japanese_vowels")
    train = tmp_path / "japanese_vowels" / "ae.train"
    train.write_bytes(train.read_bytes()[:-500])
    code, out = run_cli(capsys, "verify", "japanese_vowels", "mnist", "--root", str(tmp_path))
    assert code == 1
    assert "japanese_vowels: " in out and "ae.train" in out
    assert f"mnist: MISSING, expected {tmp_path / 'mnist'}" in out


def test_list_marks_present_and_absent(capsys, shared_data):
    code, out = run_cli(capsys, "list", "--root", str(shared_data))
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "present" in lines["mnist"] and "absent" in lines["tidigits"] and "manual" in lines["tidigits"]


def test_download_without_public_files_says_where_to_get_them(capsys, tmp_path):
    with pytest.raises(DataError, match="LDC93S10"):
        registry.download("tidigits", tmp_path)
    code, out = run_cli(capsys, "download", "auslan_hq", "--root", str(tmp_path))
    assert code == 1 and "tctodd" in out


def test_fetch_checks_the_checksum_before_writing(tmp_path):
    source = tmp_path / "upstream.bin"
    source.write_bytes(b"spikes" * 1000)
    good = Remote(source.as_uri(), "sub/file.bin", sha256_bytes(source.read_bytes()))
    target = fetch(good, tmp_path / "data", progress=False)
    assert target.read_bytes() == source.read_bytes()
    bad = Remote(source.as_uri(), "other.bin", "0" * 64)
    with pytest.raises(CorruptFileError, match="nothing was written"):
        fetch(bad, tmp_path / "data", progress=False)
    assert not (tmp_path / "data" / "other.bin").exists()
    with pytest.raises(DataError, match="download of"):
        fetch(Remote((tmp_path / "absent").as_uri(), "x.bin", "0" * 64), tmp_path / "data", progress=False)


def test_time_major_collate_stacks_time_major_and_refuses_ragged():
    import torch

    from iirsnn.data import time_major_collate

    batch = [(torch.full((5, 3), float(i)), torch.zeros(5, 3), i) for i in range(4)]
    x, target, labels = time_major_collate(batch)
    assert x.shape == (5, 4, 3) and target.shape == (5, 4, 3)
    assert torch.equal(x[2, :, 0], torch.arange(4.0)) and labels.tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match=r"different shapes \[\(4, 3\), \(5, 3\)\]"):
        time_major_collate([(torch.zeros(5, 3), 0), (torch.zeros(4, 3), 1)])


def test_loaders_feed_a_model_through_a_dataloader(shared_data):
    import torch
    from torch.utils.data import DataLoader

    from iirsnn.data import JapaneseVowels, time_major_collate
    from iirsnn.models import from_spec

    data = JapaneseVowels(shared_data, split="train", length=30)
    x, labels = next(iter(DataLoader(data, batch_size=8, collate_fn=time_major_collate)))
    assert x.shape == (30, 8, 12) and labels.dtype == torch.int64
    out = from_spec("16-9", input_shape=(12,))(x)
    assert out.shape == (30, 8, 9)


def test_download_checks_every_name_before_fetching(tmp_path):
    from iirsnn.data import commands

    with pytest.raises(KeyError, match="unknown dataset 'cifar'"):
        commands.download(["japanese_vowels", "cifar"], tmp_path)
    assert not (tmp_path / "japanese_vowels").exists()


def test_names_after_the_root_option_are_read(capsys, shared_data):
    code, out = run_cli(capsys, "verify", "--root", str(shared_data), "mnist", "fsdd")
    assert code == 0 and out.splitlines() == ["mnist: ok", "fsdd: ok"]
    with pytest.raises(SystemExit) as exc:
        main(["data", "verify", "--root", str(shared_data), "mnist", "--bogus"])
    assert exc.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_list_with_an_unusable_root_says_so_once(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("IIRSNN_DATA", str(tmp_path / "nowhere"))
    code, out = run_cli(capsys, "list")
    assert code == 0
    assert out.splitlines()[0].startswith(f"data root: none usable: data root '{tmp_path / 'nowhere'}' is not a")
    assert "not set" not in out and "present" not in out


def test_parallel_loader_workers_give_the_same_batches(shared_data, tmp_path):
    import torch
    from torch.utils.data import DataLoader

    from iirsnn.data import NMNIST, time_major_collate

    data = NMNIST(shared_data, train=False, T=10, name="nmnist_small", cache_dir=tmp_path / "cache")
    batches = {}
    for workers in (0, 2):
        loader = DataLoader(data, batch_size=16, collate_fn=time_major_collate, num_workers=workers)
        batches[workers] = list(loader)
    assert len(batches[0]) == len(batches[2]) == 7  # 100 samples
    for (x0, y0), (x2, y2) in zip(batches[0], batches[2], strict=True):
        assert torch.equal(x0, x2) and torch.equal(y0, y2)
