"""One-shot pruning with calibration data: Wanda, SparseGPT (against the paper's code), OWL."""

import math
import warnings

import pytest
import torch
from torch import nn

import sprig
from sprig.masks import LeftAloneWarning, parse_pattern
from sprig.prune import SparseGPTPruner, WandaPruner, prune, sparsegpt


def reference_fasterprune(W, H, sparsity, prunen=0, prunem=0, blocksize=128, percdamp=0.01):
    """IST-DASLab/sparsegpt's SparseGPT.fasterprune, ported line by line (float64, no quantizer).

    One change: its unstructured rule ``tmp <= thresh`` prunes one weight more than
    ``int(numel * sparsity)`` in every block; ``<`` here prunes exactly that many.
    """
    W = W.clone().double()
    H = H.clone().double()
    rows, columns = W.shape
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    damp = percdamp * torch.mean(torch.diag(H))
    diag = torch.arange(columns)
    H[diag, diag] += damp
    H = torch.linalg.cholesky(H)
    H = torch.cholesky_inverse(H)
    H = torch.linalg.cholesky(H, upper=True)
    Hinv = H
    for i1 in range(0, columns, blocksize):
        i2 = min(i1 + blocksize, columns)
        count = i2 - i1
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        Err1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        if prunen == 0:
            tmp = W1**2 / (torch.diag(Hinv1).reshape((1, -1))) ** 2
            thresh = torch.sort(tmp.flatten())[0][int(tmp.numel() * sparsity)]
            mask1 = tmp < thresh
        else:
            mask1 = torch.zeros_like(W1) == 1
        for i in range(count):
            w = W1[:, i]
            d = Hinv1[i, i]
            if prunen != 0 and i % prunem == 0:
                tmp = (
                    W1[:, i : (i + prunem)] ** 2
                    / (torch.diag(Hinv1)[i : (i + prunem)].reshape((1, -1))) ** 2
                )  # noqa: E501
                mask1.scatter_(1, i + torch.topk(tmp, prunen, dim=1, largest=False)[1], True)
            q = w.clone()
            q[mask1[:, i]] = 0
            Q1[:, i] = q
            err1 = (w - q) / d
            W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
            Err1[:, i] = err1
        W[:, i1:i2] = Q1
        W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])
    return W


def _inputs(n: int, width: int, seed: int = 0) -> torch.Tensor:
    # correlated inputs with a few large features, as language-model activations have
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(width, width, generator=g) / math.sqrt(width)
    scale = torch.exp(torch.randn(width, generator=g))
    return (
        torch.randn(n, width, generator=g) @ mix + 0.3 * torch.randn(n, width, generator=g)
    ) * scale


@pytest.mark.parametrize(("pattern", "density"), [("unstructured", 0.5), ("2:4", None)])
def test_sparsegpt_matches_the_papers_code(pattern, density):
    torch.manual_seed(0)
    W = torch.randn(24, 48, dtype=torch.float64)
    X = _inputs(200, 48).double()
    X[:, 5] = 0  # a dead input
    H = 2 / 200 * X.t() @ X
    spec = parse_pattern(pattern)
    alive = torch.ones_like(W, dtype=torch.bool)
    ours, keep = sparsegpt(W, H, alive, density or 0.5, spec, damp=0.01, block_size=16)
    n, m = (2, 4) if pattern == "2:4" else (0, 0)
    ref = reference_fasterprune(W, H, 0.5, prunen=m - n, prunem=m, blocksize=16)
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-9)
    assert int(keep.sum()) == W.numel() // 2
    assert bool((ours[~keep] == 0).all())


def _errors(density, pattern="unstructured"):
    torch.manual_seed(1)
    layer = nn.Linear(64, 32, bias=False)
    X = _inputs(512, 64, seed=1)
    ref = layer(X).detach()
    out = {}
    for method in ("magnitude", "wanda", "sparsegpt"):
        copy = nn.Linear(64, 32, bias=False)
        copy.load_state_dict(layer.state_dict())
        opts = {} if method == "magnitude" else {"calibration": X, "pattern": pattern}
        if method == "magnitude" and pattern != "unstructured":
            prune(copy, None, "nm", n=2, m=4)
        else:
            prune(copy, density, method, **opts)
        out[method] = ((copy(X) - ref).square().mean() / ref.square().mean()).item()
    return out


@pytest.mark.parametrize(("density", "pattern"), [(0.5, "unstructured"), (None, "2:4")])
def test_calibrated_reconstruction_beats_magnitude(density, pattern):
    err = _errors(density, pattern)
    assert err["sparsegpt"] < err["wanda"] < err["magnitude"], err


def test_wanda_keeps_counts_per_row_and_never_revives():
    torch.manual_seed(0)
    layer = nn.Linear(20, 6)
    sprig.sparsify(layer, density=0.8, distribution="uniform")
    before = layer.weight_mask.clone()
    WandaPruner(calibration=torch.randn(32, 20)).prune(layer, 0.25)
    assert bool((layer.weight_mask & ~before).sum() == 0)
    assert bool((layer.weight_mask.sum(1) <= 5).all()) and int(layer.weight_mask.sum()) > 20


def test_owl_gives_outlier_layers_more_and_keeps_the_total():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(32, 32), nn.Linear(32, 32), nn.Linear(32, 32))
    with torch.no_grad():
        net[1].weight[:, :2] *= 30  # a few huge input weights: outliers in Wanda's score
    x = torch.randn(256, 32)
    prune(net, 0.4, "wanda", calibration=x, layer_density="owl", owl_lambda=0.1)
    dens = [float(net[i].weight_mask.float().mean()) for i in range(3)]
    assert dens[1] - min(dens) == pytest.approx(0.2, abs=0.035)  # 2 * lambda, in 1/32 steps
    assert sprig.density(net) == pytest.approx(0.4, abs=0.01)
    assert dens[0] < dens[1] and dens[2] < dens[1]


def test_gpt2_sparsegpt_prunes_every_conv1d_and_names_the_rest():
    from tests.masks.test_layouts import gpt2

    model = gpt2()
    tokens = torch.randint(0, 64, (8, 16))
    with pytest.warns(LeftAloneWarning, match=r"(?s)sparsegpt pruning left 1 .*wpe"):
        prune(model, None, "sparsegpt", calibration=[tokens[:4], tokens[4:]], pattern="2:4")
    layer = model.transformer.h[1].mlp.c_fc.weight_mask  # (in, out)
    assert bool((layer.t().reshape(128, 8, 4).sum(-1) == 2).all())
    assert sprig.density(model) == pytest.approx(0.5)
    assert bool(torch.isfinite(model(tokens).logits).all())


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


@pytest.mark.parametrize(
    ("calibration", "options", "match"),
    [
        (None, {}, "needs calibration data"),
        ([], {}, "no batches"),
        (torch.full((4, 8), math.nan), {}, "NaN"),
        (torch.randn(4, 7), {}, r"batch 0 .*does not run through"),
        (torch.randn(4, 8), {"density": 0.01}, "leaves 0.weight empty"),
        (torch.randn(4, 8), {"pattern": "row"}, "'unstructured' or N:M"),
        (torch.randn(4, 8), {"pattern": "2:4", "layer_density": "owl"}, "OWL"),
        (torch.randn(4, 8), {"scope": "global"}, "scope='layer'"),
    ],
)
def test_bad_input_raises_and_changes_nothing(calibration, options, match):
    net = _net()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    density = options.pop("density", None if "pattern" in options else 0.5)
    with pytest.raises((ValueError, TypeError), match=match):
        prune(net, density, "sparsegpt", calibration=calibration, **options)
    assert not sprig.masks.is_sparse(net)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in state.items())


def test_failure_mid_way_rolls_back(monkeypatch):
    net = _net()
    sprig.sparsify(net, density=0.9, distribution="uniform")
    state = {k: v.clone() for k, v in net.state_dict().items()}
    calls = []
    original = WandaPruner.prune_layer

    def fail_second(self, *args):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("boom")
        return original(self, *args)

    monkeypatch.setattr(WandaPruner, "prune_layer", fail_second)
    with pytest.raises(RuntimeError, match="boom"):
        prune(net, 0.5, "wanda", calibration=torch.randn(8, 8))
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in state.items())


def test_layers_that_never_run_or_are_not_linear_are_named():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv1d(2, 4, 3)
            self.used = nn.Linear(4, 4)
            self.unused = nn.Linear(4, 4)

        def forward(self, x):
            return self.used(self.conv(x).mean(-1))

    net = Net()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        prune(net, 0.5, "wanda", calibration=torch.randn(3, 2, 5))
    text = "\n".join(str(w.message) for w in seen if w.category is LeftAloneWarning)
    assert "conv.weight: wanda prunes Linear and Conv1D weights" in text
    assert "unused.weight: its forward never ran" in text
    assert {mp.qualname for mp in sprig.masked_parameters(net)} == {"used.weight"}


def test_sparsegpt_options_are_checked():
    with pytest.raises(ValueError, match="damp"):
        SparseGPTPruner(damp=0)
    with pytest.raises(ValueError, match="block_size"):
        SparseGPTPruner(block_size=0)
    with pytest.raises(TypeError, match="call prune"):
        WandaPruner(calibration=torch.randn(2, 8)).masks(_net(), 0.5)
