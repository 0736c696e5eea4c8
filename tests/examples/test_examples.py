import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parents[2] / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_mask_any_model():
    assert _load("mask_any_model").main(steps=150) > 0.9


@pytest.mark.slow
def test_keras_sparse_layer():
    if importlib.util.find_spec("keras") is None:
        pytest.skip("keras is not installed (pip install 'sprig[keras]')")
    assert _load("keras_sparse_layer").main(n_train=800, n_test=300, epochs=4) > 0.85


def test_scipy_sparse_rnn():
    # sprig's fused loop reproduces the article's scipy CSR loop on its own matrices
    assert _load("scipy_sparse_rnn").main() < 1e-12


def test_bonsai_rnn(tmp_path):
    # a short run: the full one is in benchmarks/results/bonsai.md
    example = _load("bonsai_rnn")
    accuracy = example.main(steps=30, check_sequences=300, validation_sequences=300, out=tmp_path)
    assert 0.5 < accuracy <= 1.0
    assert (tmp_path / "graph.html").is_file()


@pytest.mark.slow
def test_course_module(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default folder: ./course_module, said where
    res = _load("course_module").main(steps=100)
    assert f"writing into {tmp_path / 'course_module'}" in capsys.readouterr().out
    tmp_path = tmp_path / "course_module"
    assert res["dense"] > 0.9 and res["sparse 0.5"] > 0.9
    assert res["ticket density"] == pytest.approx(0.125, abs=0.01)
    assert (tmp_path / "masks.png").stat().st_size > 1000


def test_transformer_decode():
    # a short run: training for a few seconds, a tiny Llama; the speed is measured by
    # benchmarks/bench_decode.py
    if importlib.util.find_spec("transformers") is None:
        pytest.skip("transformers is not installed (the dev extra)")
    res = _load("transformer_decode").main(seconds=2, hidden=128, layers=2, tokens=16)
    assert res["equal"] is True and len(res["csr"]) == 16  # dispatcher's and forced CSR
    assert res["max logit gap"] < 1e-4


def test_resnet_sparse():
    # every 3x3 convolution through the sparse kernel (whatever the measured table says)
    assert _load("resnet_sparse").main(density=0.1, size=32, backend="csr", runs=1) < 1e-5
