"""Greedy decoding speed at batch 1: a Llama-architecture model dense against compressed.

Hugging Face's ``LlamaForCausalLM`` is built from a config with random weights (nothing is
downloaded). Quality does not matter for tokens per second, only the shapes and the number of
nonzeros do, so the projections (q/k/v/o, gate/up/down) are magnitude-pruned to each density
(uniform per layer) without training or calibration; embeddings, norms and ``lm_head`` stay
dense. Each compressed model decodes the same tokens as its masked-dense twin (checked). The
models run interleaved in one process, round by round, so a shared machine's drifts fall on
all of them alike. A "floor" model whose projections return zeros at no cost measures what is
left when the linear layers take no time (attention, rotary, norms, embeddings, lm_head,
the KV cache and Python): dense / floor is the largest speed-up any sparse kernel could give.

python benchmarks/bench_decode.py [--hidden 1024] [--layers 4] [--tokens 32] [--rounds 5]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
import warnings

import torch
from _common import append_notes, write_table
from torch import Tensor, nn

import sprig
from sprig.kernels import choose
from sprig.masks import LeftAloneWarning
from sprig.prune import prune

DENSITIES = (0.5, 0.3, 0.1)
PROJECTIONS = ["*_proj"]


def llama(hidden: int, layers: int, vocab: int, seed: int) -> nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)  # transformers initialises from the global generator
    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=(8 * hidden // 3 + 255) // 256 * 256,  # Llama's ratio
        num_hidden_layers=layers,
        num_attention_heads=hidden // 64,
        num_key_value_heads=hidden // 64,
        max_position_embeddings=1024,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(cfg).eval()


class Zero(nn.Module):
    """A projection that costs nothing: zeros of the output's shape (the floor model)."""

    def __init__(self, out_features: int) -> None:
        super().__init__()
        self.out_features = out_features

    def forward(self, x: Tensor) -> Tensor:
        return x.new_zeros(*x.shape[:-1], self.out_features)


def floor_model(model: nn.Module) -> nn.Module:
    net = copy.deepcopy(model)
    for name, module in list(net.named_modules()):
        if name.endswith("_proj") and isinstance(module, nn.Linear):
            parent, _, child = name.rpartition(".")
            setattr(net.get_submodule(parent), child, Zero(module.out_features))
    return net


@torch.no_grad()
def greedy(model: nn.Module, prompt: Tensor, n: int) -> tuple[list[int], float]:
    """``n`` greedy tokens after ``prompt`` ``(1, T)``; (tokens, seconds of the n steps)."""
    out = model(input_ids=prompt, use_cache=True)  # the prefill is not timed
    tokens: list[int] = []
    t0 = time.perf_counter()
    for _ in range(n):
        nxt = out.logits[:, -1].argmax(-1, keepdim=True)  # (1, 1)
        tokens.append(int(nxt))
        out = model(input_ids=nxt, past_key_values=out.past_key_values, use_cache=True)
    return tokens, time.perf_counter() - t0


def linear_share(model: nn.Module, prompt: Tensor, n: int) -> float:
    """Fraction of a decode step spent inside the projections (timed with hooks)."""
    spent = [0.0]
    starts: dict[int, float] = {}

    def pre(m: nn.Module, _args: object) -> None:
        starts[id(m)] = time.perf_counter()

    def post(m: nn.Module, _args: object, _out: object) -> None:
        spent[0] += time.perf_counter() - starts[id(m)]

    handles = []
    for name, m in model.named_modules():
        if name.endswith("_proj"):
            handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
    try:
        greedy(model, prompt, 2)
        spent[0] = 0.0
        _, secs = greedy(model, prompt, n)
    finally:
        for h in handles:
            h.remove()
    return spent[0] / secs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=1024, help="model width (heads of 64)")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=128, help="a character vocabulary")
    ap.add_argument("--tokens", type=int, default=32, help="greedy tokens per timed run")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--name", default="decode", help="results/<name>.md and .json")
    args = ap.parse_args()
    load_before = os.getloadavg()
    model = llama(args.hidden, args.layers, args.vocab, seed=0)
    prompt = torch.randint(0, args.vocab, (1, 8), generator=torch.Generator().manual_seed(1))
    projections = sum(
        m.weight.numel() for n, m in model.named_modules() if n.endswith("_proj")
    )  # fmt: skip
    total = sum(p.numel() for p in model.parameters())

    models: dict[str, nn.Module] = {"dense": model, "floor": floor_model(model)}
    equal: dict[str, bool] = {}
    sprig.kernels.wait_compiled()  # time the compiled kernels, not the warm-up's stand-ins
    torch.set_num_threads(1)
    for d in DENSITIES:
        masked = copy.deepcopy(model)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LeftAloneWarning)  # embeddings, norms, lm_head
            prune(masked, d, "magnitude", include=PROJECTIONS)
            variants = {f"compressed {d}": sprig.compress(masked)}
            plan = choose(d, (args.hidden, args.hidden), 1, torch.float32, torch.device("cpu"))
            if plan.kernel == "dense":  # what CSR would give where the dispatcher picks dense
                variants[f"csr {d}"] = sprig.compress(masked, backend="csr")
        ref, _ = greedy(masked, prompt, args.tokens)
        for name, net in variants.items():
            got, _ = greedy(net, prompt, args.tokens)  # also compiles or loads the kernel
            equal[name] = ref == got
        models.update(variants)
        del masked

    rows: list[list[object]] = []
    shares: dict[str, dict[str, float]] = {}
    for threads in args.threads:
        torch.set_num_threads(threads)
        for net in models.values():
            greedy(net, prompt, 4)  # warm-up at this thread count
        per: dict[str, list[float]] = {name: [] for name in models}
        for _ in range(args.rounds):
            for name, net in models.items():
                _, secs = greedy(net, prompt, args.tokens)
                per[name].append(args.tokens / secs)
        tps = {name: statistics.median(v) for name, v in per.items()}
        shares[str(threads)] = {
            name: round(linear_share(models[name], prompt, args.tokens), 3)
            for name in ("dense", f"compressed {DENSITIES[-1]}")
        }
        for name, v in tps.items():
            kind, _, dens = name.partition(" ")
            kind = {"compressed": "compressed (auto)", "csr": "compressed (csr forced)"}.get(
                kind, kind
            )
            density = float(dens) if dens else (1.0 if kind == "dense" else 0.0)
            rows.append(
                [threads, kind, density, v, 1e3 / v, v / tps["dense"], equal.get(name, "-")]
            )
        print(f"{threads} thread(s): " + ", ".join(f"{k} {v:.1f}" for k, v in tps.items()))
    load_after = os.getloadavg()
    notes = {
        "model": (
            f"LlamaForCausalLM, hidden {args.hidden}, {args.layers} layers, "
            f"{args.hidden // 64} heads, vocab {args.vocab}, random weights"
        ),
        "parameters": total,
        "projection_weights": projections,
        "pruning": "magnitude, uniform per projection; embeddings, norms, lm_head dense",
        "decode": f"batch 1, prompt 8 tokens (prefill not timed), {args.tokens} greedy tokens",
        "rounds": args.rounds,
        "projection_share_of_step": shares,
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "cores": os.cpu_count(),
    }
    md = write_table(
        args.name,
        ["threads", "model", "density", "tokens/s", "ms/token", "x dense", "tokens = masked"],
        rows,
        notes,
    )
    append_notes(md, notes)
    print(md.read_text())


if __name__ == "__main__":
    main()
