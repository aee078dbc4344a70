"""The README's example runs as written and trains."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_trains_above_chance(capsys, tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    monkeypatch.chdir(tmp_path)  # the example writes runs/readme-example
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    assert namespace["test"]["accuracy"] > 0.3  # chance 0.2
    assert capsys.readouterr().out.startswith("test accuracy ")
    assert (tmp_path / "runs" / "readme-example" / "results.json").is_file()


def test_readme_data_example_runs(monkeypatch, shared_data):
    blocks = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S) if "iirsnn.data" in b]
    assert blocks, "README has no data example"
    monkeypatch.setenv("IIRSNN_DATA", str(shared_data))
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    assert tuple(namespace["x"].shape) == (30, 16, 12) and namespace["y"].shape == (16,)


def test_readme_streaming_example_runs(capsys):
    blocks = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S) if "Stream(" in b]
    assert blocks, "README has no streaming example"
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    assert capsys.readouterr().out.startswith("spikes so far: ") and namespace["stream"].model is None  # closed


def test_readme_nir_example_runs(capsys, tmp_path, monkeypatch):
    blocks = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S) if "export_nir" in b]
    assert blocks, "README has no NIR example"
    monkeypatch.chdir(tmp_path)  # the example writes net.nir
    exec(compile(blocks[0], "README.md", "exec"), {})
    assert capsys.readouterr().out == "same spikes after the round trip: True\n"
    assert (tmp_path / "net.nir").is_file()
