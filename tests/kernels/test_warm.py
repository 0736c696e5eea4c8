"""numba's warm-up in a background thread, and the PyTorch paths that serve until it is done."""

import contextlib
import subprocess
import sys
import textwrap
import threading

import pytest
import torch

import sprig
from sprig.kernels import (
    CSRStructure,
    _compiled,
    _csr,
    _matvec,
    _recurrent_numba,
    _warm,
    csr_linear_train,
)

_KERNELS = {
    _compiled: (
        "matvec",
        "matvec_parallel",
        "sampled",
        "sampled_parallel",
        "gather",
        "scatter",
        "sparse_conv",
        "sparse_conv_parallel",
    ),
    _recurrent_numba: ("loop_vec", "loop_vec_parallel", "loop_mat"),
}


@contextlib.contextmanager
def cold():
    """numba still warming up: compiled_ready() is False and any compiled kernel call fails."""

    def refuse(*_args, **_kwargs):
        raise AssertionError("a compiled kernel ran before the warm-up ended")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_warm, "_ready", threading.Event())
        mp.setattr(_warm, "_thread", threading.current_thread())  # a warm-up "under way"
        for module, names in _KERNELS.items():
            for name in names:
                mp.setattr(module, name, refuse)
        assert not sprig.kernels.compiled_ready()
        yield mp


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("batch", [1, 3])
def test_cold_rnn_matches_compiled(cell, batch):
    net = sprig.compress(sprig.SparseRNN(7, 13, density=0.3, cell=cell, seed=1)).eval()
    x = torch.randn(6, batch, 7)
    lengths = torch.tensor([6, 2, 4][:batch])
    with torch.no_grad():
        warm = net(x, lengths=lengths) if batch > 1 else net(x)
        with cold():
            first = net(x, lengths=lengths) if batch > 1 else net(x)
    torch.testing.assert_close(first[0], warm[0], rtol=1e-5, atol=1e-6)


def test_cold_batch1_linear_skips_matvec(monkeypatch):
    monkeypatch.setattr(_matvec, "MATVEC_MIN_NNZ", 0)  # the MatVec path when warm
    layer = sprig.compress(sprig.SparseLinear(37, 11, density=0.2, seed=2), backend="csr")
    layer.eval()
    x = torch.randn(1, 37)
    calls = []
    matvec = _compiled.matvec
    monkeypatch.setattr(_compiled, "matvec", lambda *a: (calls.append(1), matvec(*a))[1])
    with torch.no_grad():
        warm = layer(x)
        assert calls, "the warm call should run MatVec"
        with cold():
            first = layer(x)
    torch.testing.assert_close(first, warm, rtol=1e-5, atol=1e-6)


def test_cold_conv_runs_dense():
    conv = torch.nn.Conv2d(5, 6, 3, padding=1, stride=2)
    sprig.sparsify(conv, density=0.3, seed=3)
    comp = sprig.compress(conv, backend="csr").eval()
    x = torch.randn(1, 5, 9, 8)
    with torch.no_grad():
        warm = comp(x)
        with cold():
            first = comp(x)
    torch.testing.assert_close(first, warm, rtol=1e-5, atol=1e-6)


def test_cold_gather_and_scatter_are_exact(monkeypatch):
    monkeypatch.setattr(_csr, "GATHER_MIN", 1)  # the compiled gather/scatter when warm
    s = CSRStructure(torch.rand(9, 14) < 0.4)
    v = torch.randn(s.nnz)
    warm = s.scatter(v), s.transpose(v).values()
    with cold():
        first = s.scatter(v), s.transpose(v).values()
    assert all(torch.equal(a, b) for a, b in zip(first, warm, strict=True))


def test_training_waits_for_the_compiled_gradient():
    # a run's gradients must not depend on when the warm-up ended: no PyTorch path for them
    s = CSRStructure(torch.rand(9, 14) < 0.4)
    x = torch.randn(5, 14)
    v = torch.randn(s.nnz, requires_grad=True)
    calls = []
    sampled = _compiled.sampled
    with cold() as mp:
        mp.setattr(_compiled, "sampled", lambda *a: (calls.append(1), sampled(*a))[1])
        csr_linear_train(x, v, s).square().sum().backward()
    assert calls == [1]
    w = s.scatter(v.detach()).requires_grad_()
    torch.nn.functional.linear(x, w).square().sum().backward()
    torch.testing.assert_close(v.grad, w.grad.reshape(-1)[s.flat])


def test_failed_warm_up_warns_and_wait_names_the_error(monkeypatch):
    def broken():
        raise ImportError("no module named numba")

    monkeypatch.setattr(_warm, "_ready", threading.Event())
    monkeypatch.setattr(_warm, "_thread", threading.current_thread())
    monkeypatch.setattr(_warm, "_error", None)
    monkeypatch.setattr(_warm, "_load", broken)
    with pytest.warns(RuntimeWarning, match="failed to load"):
        _warm._load_quietly()
    assert not sprig.kernels.compiled_ready()
    with pytest.raises(RuntimeError, match="no module named numba.*Reinstall numba"):
        sprig.kernels.wait_compiled()


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_compress_starts_the_warm_up_and_first_calls_need_no_numba():
    out = _run(
        """
        import sys, threading, torch, sprig
        net = sprig.SparseRNN(16, 16, density=0.5, cell="lstm", seed=0)
        assert not any(t.name == "sprig-warm-up" for t in threading.enumerate())
        comp = sprig.compress(net).eval()
        assert any(t.name == "sprig-warm-up" for t in threading.enumerate())
        x = torch.randn(5, 1, 16)
        with torch.no_grad():
            first = comp(x)[0]  # on either path, depending on the warm-up's progress
            sprig.kernels.wait_compiled()
            assert sprig.kernels.compiled_ready()
            later = comp(x)[0]
        torch.testing.assert_close(first, later, rtol=1e-5, atol=1e-6)
        print("ok")
        """
    )
    assert out.startswith("ok")


def test_fork_waits_for_the_warm_up():
    # a child forked while the warm-up runs must not inherit a half-done import
    out = _run(
        """
        import os, torch, sprig
        sprig.kernels.warm_up()
        pid = os.fork()
        if pid == 0:
            ok = sprig.kernels.compiled_ready()
            net = sprig.compress(sprig.SparseRNN(8, 8, density=0.5, seed=0)).eval()
            with torch.no_grad():
                net(torch.randn(3, 1, 8))
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        print("child", os.waitstatus_to_exitcode(status))
        """
    )
    assert out.strip() == "child 0"


def test_child_of_an_unfinished_warm_up_starts_its_own():
    # the parent's wait before the fork was cut short: the child must not stay cold forever
    out = _run(
        """
        import os, threading, sprig
        from sprig.kernels import _warm
        dead = threading.Thread(target=lambda: None)
        dead.start()
        dead.join()
        _warm._thread = dead  # a warm-up that never finished
        pid = os.fork()
        if pid == 0:
            sprig.kernels.wait_compiled()
            os._exit(0 if sprig.kernels.compiled_ready() else 3)
        _, status = os.waitpid(pid, 0)
        print("child", os.waitstatus_to_exitcode(status), sprig.kernels.compiled_ready())
        """
    )
    assert out.strip() == "child 0 False"


def test_cold_paths_keep_no_dense_or_int32_copy(monkeypatch):
    monkeypatch.setattr(_matvec, "MATVEC_MIN_NNZ", 0)
    conv = torch.nn.Conv2d(4, 6, 3, padding=1)
    sprig.sparsify(conv, density=0.2, seed=5)
    comp = sprig.compress(conv, backend="csr").eval()
    layer = sprig.compress(sprig.SparseLinear(40, 9, density=0.2, seed=5), backend="csr")
    layer.eval()
    with torch.no_grad():
        with cold():
            comp(torch.randn(1, 4, 7, 7))
            layer(torch.randn(1, 40))
        comp(torch.randn(1, 4, 7, 7))
        layer(torch.randn(1, 40))
    assert "dense" not in comp._cache
    assert "csr" not in layer._cache and "matvec" in layer._cache
