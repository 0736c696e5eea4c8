import copy

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import sprig
from sprig.masks import apply_mask, get_mask, make_mask, remove_mask

OPTIMIZERS = {
    "sgd-momentum": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
    "adam": lambda p: torch.optim.Adam(p, lr=0.1),
    "adamw-wd": lambda p: torch.optim.AdamW(p, lr=0.1, weight_decay=0.1),
    "adam-fused": lambda p: torch.optim.Adam(p, lr=0.1, fused=True),
    "rmsprop": lambda p: torch.optim.RMSprop(p, lr=0.1, momentum=0.5),
}


def _pruned_are_zero(model: nn.Module) -> bool:
    return all(bool((mp.param[~mp.mask] == 0).all()) for mp in sprig.masked_parameters(model))


@given(
    n_in=st.integers(1, 17),
    n_out=st.integers(1, 13),
    density=st.floats(0.05, 1.0),
    opt=st.sampled_from(sorted(OPTIMIZERS)),
)
def test_pruned_weights_zero_in_forward_grad_and_after_steps(n_in, n_out, density, opt):
    lin = nn.Linear(n_in, n_out)
    optimizer = OPTIMIZERS[opt](lin.parameters())  # built before masking on purpose
    sprig.sparsify(lin, density=density, seed=1)
    mask = get_mask(lin, "weight")
    assert int(mask.sum()) == sprig.masks.count_for(density, n_in * n_out)
    for _ in range(3):
        optimizer.zero_grad()
        lin(torch.randn(5, n_in)).square().sum().backward()
        assert bool((lin.weight.grad[~mask] == 0).all())
        optimizer.step()
        assert _pruned_are_zero(lin)


def test_momentum_state_from_before_masking_cannot_revive_weights():
    lin = nn.Linear(8, 8)
    opt = torch.optim.SGD(lin.parameters(), lr=0.5, momentum=0.9)
    lin(torch.randn(4, 8)).sum().backward()
    opt.step()  # momentum buffers are now nonzero everywhere
    sprig.sparsify(lin, density=0.25)
    for _ in range(3):
        opt.zero_grad()
        lin(torch.randn(4, 8)).sum().backward()
        opt.step()
    assert _pruned_are_zero(lin)


def test_parameter_identity_survives_masking():
    lin = nn.Linear(6, 4)
    before = lin.weight
    sprig.sparsify(lin, density=0.5)
    assert lin.weight is before
    assert [id(p) for p in lin.parameters()] == [id(lin.weight), id(lin.bias)]


def test_masks_travel_with_deepcopy_state_dict_and_to():
    net = nn.Sequential(nn.Linear(10, 10), nn.ReLU(), nn.Linear(10, 3))
    sprig.sparsify(net, density=0.3)
    clone = copy.deepcopy(net)
    assert torch.equal(clone[0].weight_mask, net[0].weight_mask)
    # the copy's gradient hooks are re-attached: pruned grads stay zero
    opt = torch.optim.Adam(clone.parameters(), lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        clone(torch.randn(3, 10)).sum().backward()
        assert bool((clone[0].weight.grad[~clone[0].weight_mask] == 0).all())
        opt.step()
    assert _pruned_are_zero(clone)
    sd = net.state_dict()
    assert "0.weight_mask" in sd and sd["0.weight_mask"].dtype == torch.bool
    moved = net.to(torch.float64)
    assert moved[0].weight.dtype == torch.float64 and moved[0].weight_mask.dtype == torch.bool
    moved(torch.randn(2, 10, dtype=torch.float64)).sum().backward()
    assert bool((moved[0].weight.grad[~moved[0].weight_mask] == 0).all())


def test_load_state_dict_of_dense_weights_keeps_pruned_zero():
    lin = nn.Linear(5, 5)
    sprig.sparsify(lin, density=0.2)
    dense = {"weight": torch.ones(5, 5), "bias": torch.zeros(5)}
    dense["weight_mask"] = lin.weight_mask.clone()
    lin.load_state_dict(dense)
    assert _pruned_are_zero(lin)
    assert int(lin.weight.count_nonzero()) == int(lin.weight_mask.sum())


def test_remask_replaces_never_stacks():
    lin = nn.Linear(4, 4)
    apply_mask(lin, "weight", torch.eye(4, dtype=torch.bool))
    new = torch.zeros(4, 4, dtype=torch.bool)
    new[0] = True
    apply_mask(lin, "weight", new)
    assert torch.equal(lin.weight_mask, new)
    assert len([b for b in lin.state_dict() if b.endswith("_mask")]) == 1
    lin(torch.randn(2, 4)).sum().backward()
    assert bool((lin.weight.grad[1:] == 0).all()) and bool((lin.weight.grad[0] != 0).any())


def test_remove_mask_lets_weights_train():
    lin = nn.Linear(4, 4)
    sprig.sparsify(lin, density=0.25)
    remove_mask(lin, "weight")
    assert "weight_mask" not in lin.state_dict()
    lin(torch.randn(2, 4)).sum().backward()
    assert bool((lin.weight.grad != 0).all())


@pytest.mark.parametrize("cell", [nn.RNN, nn.GRU, nn.LSTM])
def test_masked_torch_rnn_equals_rnn_with_zeroed_weights(cell):
    rnn = cell(7, 9, num_layers=2, bidirectional=True, batch_first=True)
    ref = copy.deepcopy(rnn)
    sprig.sparsify(rnn, density=0.3, seed=3)
    names = [n for n, _ in rnn.named_parameters() if n.startswith("weight_")]
    assert {mp.name for mp in sprig.masked_parameters(rnn)} == set(names)
    with torch.no_grad():
        for n in names:
            getattr(ref, n).mul_(getattr(rnn, n + "_mask"))
    x = torch.randn(3, 5, 7)
    out, _ = rnn(x)
    ref_out, _ = ref(x)
    assert torch.equal(out, ref_out)
    out.sum().backward()
    for n in names:
        assert bool((getattr(rnn, n).grad[~getattr(rnn, n + "_mask")] == 0).all())


@given(shape=st.tuples(st.integers(1, 6), st.integers(1, 5), st.integers(1, 3), st.integers(1, 3)))
def test_conv2d_masks(shape):
    conv = nn.Conv2d(shape[1], shape[0], (shape[2], shape[3]))
    sprig.sparsify(conv, density=0.5)
    assert int(conv.weight_mask.sum()) == sprig.masks.count_for(0.5, conv.weight.numel())
    conv(torch.randn(1, shape[1], 4, 4)).sum().backward()
    assert bool((conv.weight.grad[~conv.weight_mask] == 0).all())


def test_bad_masks_rejected_model_unchanged():
    lin = nn.Linear(4, 3)
    before = lin.weight.detach().clone()
    with pytest.raises(ValueError, match=r"shape \(4, 4\).*\(3, 4\)"):
        apply_mask(lin, "weight", torch.ones(4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="only 0 and 1"):
        apply_mask(lin, "weight", torch.full((3, 4), 0.5))
    with pytest.raises(ValueError, match="no parameter 'wieght'"):
        apply_mask(lin, "wieght", torch.ones(3, 4))
    assert torch.equal(lin.weight, before) and get_mask(lin, "weight") is None


def test_float_01_mask_accepted():
    lin = nn.Linear(3, 2)
    apply_mask(lin, "weight", make_mask((2, 3), 0.5, generator=0).float())
    assert lin.weight_mask.dtype == torch.bool


def test_dense_gradient_sums_accumulated_backward_passes():
    # the dense gradient was copied from param.grad after each pass, whose pruned entries the
    # first pass had zeroed: they held the last micro-batch's gradient only
    from sprig.masks import dense_gradients, get_dense_grad

    torch.manual_seed(0)
    net = nn.Linear(20, 30)
    sprig.sparsify(net, density=0.2, seed=0)
    ref = nn.Linear(20, 30)
    ref.load_state_dict({"weight": net.weight.detach(), "bias": net.bias.detach()})
    xa, xb = torch.randn(8, 20), torch.randn(8, 20)
    with dense_gradients(net):
        net(xa).square().sum().backward()
        net(xb).square().sum().backward()
    ref(xa).square().sum().backward()
    ref(xb).square().sum().backward()
    torch.testing.assert_close(get_dense_grad(net, "weight"), ref.weight.grad)
    torch.testing.assert_close(net.weight.grad, ref.weight.grad * net.weight_mask)
    net(xa).sum().backward()  # a backward outside the block: the record is stale, so gone
    assert get_dense_grad(net, "weight") is None


def test_masked_parameter_reads_the_live_mask_and_is_the_updaters_layer():
    """One record of "a weight and its mask": it follows a replaced mask (pruning, DST), and
    the mask updaters' layers are that record, not a copy of it."""
    from sprig.dst import RigL

    lin = nn.Linear(6, 4)
    sprig.apply_mask(lin, "weight", torch.ones(4, 6))
    (mp,) = sprig.masked_parameters(lin)
    sprig.prune.prune(lin, 0.5)
    assert mp.nnz == 12 and mp.numel == 24 and mp.mask is sprig.masks.get_mask(lin, "weight")
    assert mp.pattern == sprig.masks.mask_pattern(lin, "weight")
    (layer,) = RigL(lin, t_end=10, every=2).layers
    assert type(layer) is sprig.masks.MaskedParameter and layer == mp
