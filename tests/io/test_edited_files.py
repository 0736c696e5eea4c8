"""Files edited by hand (or damaged) fail with SprigFileError and change nothing."""

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

import sprig
from sprig.io import SprigFileError, load_checkpoint, save_checkpoint


def _edit(path, manifest=lambda m: None, tensors=lambda t: None):
    """Rewrite ``path`` with its JSON manifest and tensors changed in place by the callables."""
    with safe_open(str(path), framework="pt") as fh:
        meta = json.loads(fh.metadata()["sprig"])
    t = load_file(str(path))
    manifest(meta)
    tensors(t)
    save_file(t, str(path), metadata={"sprig": json.dumps(meta)})


def _snapshot(model, opt):
    return (
        {k: v.clone() for k, v in model.state_dict().items()},
        {k: dict(v) for k, v in opt.state.items()},
    )


def _trained(seed=0):
    torch.manual_seed(seed)
    net = sprig.SparseMLP([4, 8, 2], densities=0.5, seed=seed)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    net(torch.randn(3, 4)).sum().backward()
    opt.step()
    return net, opt


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        ({"tensors": lambda t: t.pop("rng/torch_global")}, "global random state is malformed"),
        ({"manifest": lambda m: m.update(step="x")}, "step must be an int >= 0"),
        ({"manifest": lambda m: m["global_rng"].update(numpy_global=[1, 2])}, "malformed"),
        ({"manifest": lambda m: m["optimizer"].update(param_groups=5)}, "optimizer state"),
    ],
)
def test_a_bad_checkpoint_changes_nothing(tmp_path, edit, match):
    # the model and optimizer used to be replaced before the random states failed to load
    path = tmp_path / "ck.safetensors"
    net, opt = _trained(0)
    save_checkpoint(path, net, step=1, optimizer=opt)
    _edit(path, **edit)
    fresh, fresh_opt = _trained(1)
    weights, state = _snapshot(fresh, fresh_opt)
    rng = torch.get_rng_state()
    with pytest.raises(SprigFileError, match=match):
        load_checkpoint(path, fresh, optimizer=fresh_opt)
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, weights[k]), k
    assert fresh_opt.state.keys() == state.keys()
    for p, s in fresh_opt.state.items():
        assert all(torch.equal(s[k], state[p][k]) for k in s)
    assert torch.equal(torch.get_rng_state(), rng)


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 6), nn.Linear(6, 2)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        ({"manifest": lambda m: m["masks"].update({"nope.weight": "random"})}, "nope.weight"),
        ({"manifest": lambda m: m["masks"].update({"b.weight": 5})}, "must be a string"),
        ({"tensors": lambda t: t.update({"b.weight_mask": 2.0 * t["b.weight_mask"]})}, "0 and 1"),
    ],
)
def test_load_state_of_a_bad_file_leaves_the_model_unmasked(tmp_path, edit, match):
    path = tmp_path / "net.safetensors"
    sprig.save(sprig.sparsify(_Net(), density=0.5, seed=0), path)
    _edit(path, **edit)
    target = _Net()
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(SprigFileError, match=match):
        sprig.load_state(target, path)
    assert target.state_dict().keys() == before.keys()  # no masks were added
    assert all(torch.equal(v, before[k]) for k, v in target.state_dict().items())


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda c: c.update(cell="foo"), "cannot rebuild the model"),
        (lambda c: c.update(hidden_size=-3), "cannot rebuild the model"),
        (lambda c: c.update(dtype="int32"), "is torch.float32 in the file but torch.int32"),
    ],
)
def test_an_edited_config_is_refused(tmp_path, edit, match):
    # a raw KeyError / RuntimeError used to surface, or int weights loaded truncated to 0
    path = tmp_path / "rnn.safetensors"
    sprig.save(sprig.compress(sprig.SparseRNN(3, 4, density=0.5, seed=0)), path)
    _edit(path, manifest=lambda m: edit(m["model"]["config"]))
    with pytest.raises(SprigFileError, match=match):
        sprig.load(path)


def test_an_index_of_another_dtype_is_refused(tmp_path):
    # int64 column indices were wrapped silently into the uint16 buffer
    path = tmp_path / "lin.safetensors"
    sprig.save(sprig.compress(sprig.SparseLinear(6, 5, density=0.5, seed=0)), path)
    _edit(path, tensors=lambda t: t.update(col=t["col"].to(torch.int64) + 65536))
    with pytest.raises(SprigFileError, match="col is torch.int64 in the file but torch.uint16"):
        sprig.load(path)


@pytest.mark.parametrize("version", [1.9, "2", 0, -5, True])
def test_a_format_version_that_is_not_a_positive_int_is_refused(tmp_path, version):
    path = tmp_path / "mlp.safetensors"
    sprig.save(sprig.SparseMLP([4, 8, 2], densities=0.5), path)
    _edit(path, manifest=lambda m: m.update(format_version=version))
    with pytest.raises(SprigFileError, match="without a sprig manifest"):
        sprig.load(path)


@pytest.mark.parametrize(
    ("model", "edit"),
    [
        (
            lambda: sprig.compress(sprig.SparseLinear(6, 5, density=0.5, seed=0)),
            lambda c: c.update(
                in_features=10**6, out_features=10**6, nnz=10**12, index_dtype="int32"
            ),
        ),
        (lambda: sprig.SparseMLP([4, 8, 2], densities=0.5), lambda c: c.update(sizes=[4, 3000, 2])),
        (lambda: sprig.SparseLinear(6, 5, density=0.5), lambda c: c.update(in_features=10**5)),
    ],
)
def test_a_config_that_does_not_fit_the_tensors_fails_before_allocating(tmp_path, model, edit):
    # the config was built first: 1e12 nonzeros asked for 4 TB, a 1e5-wide MLP for 40 GB
    path = tmp_path / "m.safetensors"
    sprig.save(model(), path)
    _edit(path, manifest=lambda m: edit(m["model"]["config"]))
    with pytest.raises(SprigFileError, match="the config does not fit the file's tensors"):
        sprig.load(path)
