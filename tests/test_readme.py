"""The README's example runs as written and trains."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs_and_lowers_the_loss(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    assert namespace["loss"].item() < 2.0  # cross-entropy of 10 classes starts near ln 10 = 2.30
    assert capsys.readouterr().out.startswith("loss ")


def test_readme_data_example_runs(monkeypatch, shared_data):
    blocks = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S) if "iirsnn.data" in b]
    assert blocks, "README has no data example"
    monkeypatch.setenv("IIRSNN_DATA", str(shared_data))
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    assert tuple(namespace["x"].shape) == (30, 16, 12) and namespace["y"].shape == (16,)
