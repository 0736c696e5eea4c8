"""The README's Python examples run as written, in order, in one namespace (docs that rot fail)."""

import os
import re
from pathlib import Path

import pytest
import torch

README = Path(__file__).parents[1] / "README.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_an_example_per_capability():
    text = README.read_text()
    for heading in (
        "Masking any model",
        "Compressing for speed",
        "Sparse RNNs",
        "Pruning and lottery tickets",
        "Dynamic sparse training",
        "Bonsai networks",
    ):
        section = text.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
        assert "```python" in section, heading


@pytest.mark.slow
def test_readme_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples write files such as mlp.safetensors
    (tmp_path / "examples").symlink_to(README.parent / "examples")  # as from the repo root
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    namespace: dict[str, object] = {}
    try:
        for block in _blocks():
            if "import keras" in block and os.environ.get("KERAS_BACKEND", "torch") != "torch":
                continue
            exec(compile(block, str(README), "exec"), namespace)
    finally:
        torch.set_num_threads(threads)
    assert (tmp_path / "mlp.safetensors").is_file()
