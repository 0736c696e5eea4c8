"""Errors a new user meets: each names the value and the fix (no raw AttributeError/TypeError
from deep inside torch or Python)."""

import numpy as np
import pytest
import torch
from torch import nn

import sprig
from sprig.dst import RigL


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: sprig.compress(None), "sprig.compress takes a torch.nn.Module"),
        (lambda: sprig.decompress("net"), "sprig.decompress takes a torch.nn.Module"),
        (lambda: sprig.summary(None), "sprig.summary takes a torch.nn.Module"),
        (lambda: sprig.density(torch.ones(3)), "sprig.density takes a torch.nn.Module"),
        (lambda: sprig.save(nn.Linear(2, 2), 5), "sprig.save takes a file path"),
        (lambda: sprig.SparseLinear(2, 3, sparsity=0.9), "pass density= instead"),
        (lambda: sprig.SparseRNN(2, 3, sparsity=0.9), "pass density= instead"),
        (lambda: sprig.SparseMLP([2, 16, 1], density=0.1), "its keyword is densities="),
        (lambda: sprig.SparseMLP("2,16,1", densities=0.5), "a list of ints"),
        (lambda: RigL(sprig.SparseMLP([2, 4, 1], densities=0.5)), "RigL needs t_end"),
    ],
)
def test_type_errors_name_the_fix(call, match):
    with pytest.raises(TypeError, match=match):
        call()


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: sprig.SparseLinear(2.0, 3, density=0.5), "in_features must be a positive int"),
        (lambda: sprig.SparseMLP([2, 16.5, 1], 0.5), "each of sizes must be a positive int"),
        (lambda: RigL(sprig.SparseLinear(4, 4, 0.5), t_end=10, start=True), "start must be"),
    ],
)
def test_value_errors_name_the_value(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_numpy_input_into_linear_layers_says_to_convert():
    x = np.ones((2, 4), dtype=np.float32)
    layer = sprig.SparseLinear(4, 3, density=0.5, seed=0)
    for model in (layer, sprig.SparseMLP([4, 3], 0.5), sprig.compress(layer)):
        with pytest.raises(TypeError, match="torch.from_numpy"):
            model(x)


def test_after_backward_checks_its_argument_order():
    net = sprig.SparseMLP([4, 8, 2], densities=0.5)
    rigl = RigL(net, t_end=10, every=2)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with pytest.raises(TypeError, match=r"after_backward\(step, model, optimizer\)"):
        rigl.after_backward(net, opt, 10)


def test_numpy_sizes_are_ints():
    mlp = sprig.SparseMLP([np.int64(4), 8, 2], densities=0.5)
    assert mlp.sizes == [4, 8, 2] and all(type(s) is int for s in mlp.sizes)


def test_old_run_registry_names_warn():
    import sprig.runs

    with pytest.warns(DeprecationWarning, match="RUN_METHODS"):
        assert sprig.runs.METHODS is sprig.runs.RUN_METHODS


def test_sparse_linear_repr_shows_the_current_density():
    layer = sprig.SparseLinear(10, 10, density=0.5, seed=0)
    sprig.prune.prune(layer, 0.1)
    assert "density=0.1," in repr(layer)


def test_float64_into_float32_rnns_is_refused_alike():
    rnn = sprig.SparseRNN(3, 4, density=0.5, seed=0)
    x = torch.randn(5, 1, 3, dtype=torch.float64)
    with torch.no_grad():
        for model in (rnn, sprig.compress(rnn)):
            with pytest.raises(ValueError, match=r"input dtype torch.float64 does not match"):
                model(x)


def _tiny_gpt2():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(n_embd=32, n_layer=1, n_head=2, vocab_size=50, n_positions=16)
    return transformers.GPT2LMHeadModel(cfg).eval()


def test_tied_lm_head_is_named_and_round_trips(tmp_path):
    """lm_head shares the token embedding: masking it zeroes embedding entries (named in a
    warning), and the saved file loads back into a fresh model (a tied name is no stranger)."""
    import warnings as w

    from sprig.masks import TiedWeightWarning

    model = _tiny_gpt2()
    tied = r"lm_head\.weight is also transformer\.wte\.weight"
    with pytest.warns(TiedWeightWarning, match=tied), w.catch_warnings():
        w.simplefilter("ignore", sprig.masks.LeftAloneWarning)
        sprig.sparsify(model, density=0.5, seed=0)
    sprig.save(model, tmp_path / "gpt2.safetensors")
    fresh = _tiny_gpt2()
    sprig.load_state(fresh, tmp_path / "gpt2.safetensors")
    x = torch.randint(0, 50, (1, 6))
    with torch.no_grad():
        torch.testing.assert_close(fresh(x).logits, model(x).logits)
    assert fresh.lm_head.weight is fresh.transformer.wte.weight


def test_untied_model_gets_no_tied_warning():
    import warnings as w

    from sprig.masks import TiedWeightWarning

    net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
    with w.catch_warnings():
        w.simplefilter("error", TiedWeightWarning)
        sprig.sparsify(net, density=0.5)


def test_file_summary_counts_compressed_layers(tmp_path):
    """`sprig summary FILE` of a user's compressed model lists its layers (it printed an empty
    table: only mask tensors were counted)."""
    import warnings as w

    from sprig.io._model import file_summary

    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))
    sprig.sparsify(net, density=0.3, seed=1)
    with w.catch_warnings():
        w.simplefilter("ignore", sprig.masks.LeftAloneWarning)
        comp = sprig.compress(net)
    sprig.save(comp, tmp_path / "c.safetensors")
    got = [
        (r.tensor, r.shape, r.nnz, r.numel) for r in file_summary(tmp_path / "c.safetensors").rows
    ]
    want = [(r.tensor, r.shape, r.nnz, r.numel) for r in sprig.summary(comp).rows]
    assert got == want and len(got) == 2


def test_global_pruning_that_empties_a_layer_warns():
    from sprig.prune import prune

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 2))
    prune(net, 0.5)
    with pytest.warns(UserWarning, match=r"left no weights in 2\.weight.*scope='layer'"):
        prune(net, 0.2, scope="global")
    assert int(sprig.masks.get_mask(net[2], "weight").sum()) == 0


def test_a_torch_save_file_is_named_as_one(tmp_path):
    from sprig.io import SprigFileError

    path = tmp_path / "model.pt"
    torch.save(nn.Linear(2, 2).state_dict(), path)
    with pytest.raises(SprigFileError, match="torch.save/pickle file.*never unpickles"):
        sprig.load(path)
