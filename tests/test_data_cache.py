"""The parameter-keyed tensor cache of iirsnn.data: new key for new parameters, reuse, rebuild of a bad entry."""

import pytest
import torch

from iirsnn.data.cache import cache_key, cached
from iirsnn.data.errors import CorruptFileError


def test_key_follows_every_parameter_but_not_their_order():
    assert cache_key("d", {"T": 3, "hop": 10}) == cache_key("d", {"hop": 10, "T": 3})
    assert cache_key("d", {"T": 3, "hop": 10}) != cache_key("d", {"T": 4, "hop": 10})
    assert cache_key("d", {"T": 3}) != cache_key("e", {"T": 3})


def test_built_once_then_read_and_a_corrupt_entry_is_rebuilt(tmp_path):
    calls = []

    def build():
        calls.append(1)
        return {"x": torch.arange(5.0)}

    for _ in range(2):
        assert torch.equal(cached("d", {"T": 3}, build, tmp_path)["x"], torch.arange(5.0))
    assert len(calls) == 1
    (entry,) = tmp_path.glob("d-*.pt")
    entry.write_bytes(entry.read_bytes()[:20])
    with pytest.warns(UserWarning, match="unreadable"):
        assert torch.equal(cached("d", {"T": 3}, build, tmp_path)["x"], torch.arange(5.0))
    assert len(calls) == 2
    cached("d", {"T": 4}, build, tmp_path)
    assert len(calls) == 3 and len(list(tmp_path.glob("d-*.pt"))) == 2
    assert not list(tmp_path.glob(".*tmp"))  # written atomically: no temporary left behind


def test_builder_must_return_tensors(tmp_path):
    with pytest.raises(CorruptFileError, match="dict of tensors"):
        cached("d", {}, lambda: {"x": [1, 2]}, tmp_path)


class _Planted:
    """A pickle that would create a file when loaded."""

    def __reduce__(self):
        return (open, (str(_Planted.marker), "w"))


def test_a_planted_or_foreign_cache_entry_runs_no_code_and_is_rebuilt(tmp_path):
    import pickle

    build = lambda: {"x": torch.arange(3.0)}  # noqa: E731
    cached("d", {"T": 1}, build, tmp_path)
    (entry,) = tmp_path.glob("d-*.pt")
    _Planted.marker = tmp_path / "ran"
    for planted in (lambda: torch.save({"x": _Planted()}, entry), lambda: entry.write_bytes(pickle.dumps(_Planted())),
                    lambda: torch.save({"x": "not a tensor"}, entry)):
        planted()
        with pytest.warns(UserWarning, match="unreadable"):
            assert torch.equal(cached("d", {"T": 1}, build, tmp_path)["x"], torch.arange(3.0))
        assert not _Planted.marker.exists()
