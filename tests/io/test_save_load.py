import copy
import json
import os

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import sprig
from sprig.io import SprigFileError


@given(
    sizes=st.lists(st.integers(1, 9), min_size=2, max_size=4),
    density=st.floats(0.1, 1.0),
    pattern=st.sampled_from(["unstructured", "row", "column", "block:2x2"]),
)
def test_round_trip_bit_exact(tmp_path_factory, sizes, density, pattern):
    mlp = sprig.SparseMLP(sizes, densities=density, pattern=pattern, seed=3)
    path = tmp_path_factory.mktemp("m") / "mlp.safetensors"
    sprig.save(mlp, path)
    back = sprig.load(path)
    a, b = mlp.state_dict(), back.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a)
    assert [mp.pattern for mp in sprig.masked_parameters(back)] == [
        mp.pattern for mp in sprig.masked_parameters(mlp)
    ]
    # masks are live after loading, not just stored
    back(torch.randn(2, sizes[0])).sum().backward()
    for mp in sprig.masked_parameters(back):
        assert bool((mp.param.grad[~mp.mask] == 0).all())


def test_user_model_via_load_state(tmp_path):
    net = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.LSTM(5, 4))
    sprig.sparsify(net, density=0.3)
    path = tmp_path / "net.safetensors"
    sprig.save(net, path)
    with pytest.raises(SprigFileError, match="load_state"):
        sprig.load(path)
    fresh = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.LSTM(5, 4))
    sprig.load_state(fresh, path)
    for k, v in net.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v)
    assert len(list(sprig.masked_parameters(fresh))) == 3


def test_state_dict_round_trip_into_fresh_model():
    net = nn.Sequential(nn.Linear(6, 5), nn.Linear(5, 2))
    sprig.sparsify(net, density=0.4)
    fresh = copy.deepcopy(nn.Sequential(nn.Linear(6, 5), nn.Linear(5, 2)))
    sprig.load_state_dict(fresh, net.state_dict())
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in net.state_dict().items())


def test_mismatch_leaves_model_unchanged(tmp_path):
    small = sprig.SparseMLP([4, 3, 2], densities=0.5)
    path = tmp_path / "small.safetensors"
    sprig.save(small, path)
    other = nn.Sequential()
    other.add_module("layers", nn.ModuleList([nn.Linear(4, 7), nn.Linear(7, 2)]))
    before = {k: v.clone() for k, v in other.state_dict().items()}
    with pytest.raises(SprigFileError, match=r"shape \(3, 4\).*\(7, 4\)"):
        sprig.load_state(other, path)
    assert not list(sprig.masked_parameters(other))
    assert all(torch.equal(before[k], v) for k, v in other.state_dict().items())


def test_corrupt_truncated_and_foreign_files(tmp_path):
    mlp = sprig.SparseMLP([3, 2], densities=0.5)
    good = tmp_path / "good.safetensors"
    sprig.save(mlp, good)
    data = good.read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.safetensors").write_bytes(b"\x00garbage" * 10)
    for name in ("trunc", "junk"):
        with pytest.raises(SprigFileError, match="not a readable sprig file"):
            sprig.load(tmp_path / f"{name}.safetensors")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(SprigFileError, match="without a sprig manifest"):
        sprig.load(tmp_path / "plain.safetensors")
    meta = json.loads(
        __import__("safetensors").safe_open(str(good), framework="pt").metadata()["sprig"]
    )
    meta["format_version"] = 99
    save_file({"w": torch.zeros(2)}, str(tmp_path / "new.safetensors"), {"sprig": json.dumps(meta)})
    with pytest.raises(SprigFileError, match="upgrade sprig"):
        sprig.load(tmp_path / "new.safetensors")
    with pytest.raises(FileNotFoundError):
        sprig.load(tmp_path / "missing.safetensors")


def test_atomic_save_keeps_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    sprig.save(sprig.SparseMLP([3, 2], densities=0.5), path)
    old = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("sprig.io._model.save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        sprig.save(sprig.SparseMLP([3, 2], densities=0.5), path)
    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == ["m.safetensors"]  # no temp file left behind
    with pytest.raises(FileNotFoundError, match="does not exist"):
        sprig.save(sprig.SparseMLP([3, 2], densities=0.5), tmp_path / "no" / "m.safetensors")


def test_saved_files_get_the_usual_mode(tmp_path):
    # the temporary file came from mkstemp (0600), so every saved file was private
    import os

    import sprig as _sprig

    path = tmp_path / "m.safetensors"
    old = os.umask(0o022)
    try:
        _sprig.save(_sprig.SparseMLP([2, 4, 1], densities=0.5), path)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
    path.chmod(0o600)  # a file that exists keeps its mode
    _sprig.save(_sprig.SparseMLP([2, 4, 1], densities=0.5), path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_load_state_into_compressed_model_of_other_density_takes_the_files(tmp_path):
    path = tmp_path / "c.safetensors"
    saved = sprig.compress(sprig.SparseMLP([8, 16, 2], densities=[0.5, 0.5], seed=0))
    sprig.save(saved, path)
    other = sprig.compress(sprig.SparseMLP([8, 16, 2], densities=[0.25, 0.5], seed=0))
    # compressed linear layers take the file's structure, as masked ones take its masks
    sprig.load_state(other, path)
    assert [la.nnz for la in other.layers] == [64, 16]
    x = torch.randn(3, 8)
    torch.testing.assert_close(other(x), saved(x))
    masked = sprig.SparseMLP([8, 16, 2], densities=[0.25, 0.5], seed=0)
    sprig.load_state(masked, path)  # the fix the message names
    assert sprig.summary(masked).nnz == 80
