"""A Llama-architecture model, trained here, pruned with calibration, compressed, decoded greedily.

The model is Hugging Face's ``LlamaForCausalLM`` built from a small config (nothing is
downloaded) and trained for a short time on the standard library's source, character by
character. SparseGPT (or Wanda) prunes the attention and MLP projections with calibration text
from the training data; ``sprig.compress`` turns those masked linears into ``CompressedLinear``
(CSR; batch 1 runs a compiled CSR mat-vec). Greedy decoding of the masked model and of the
compressed one must give the same tokens; tokens per second are printed for dense, masked and
compressed, and for a copy compressed with ``backend="csr"``: at this size the dispatcher runs
the layers dense (smaller than its smallest measured layer), so the forced copy is what runs
the sparse kernels. In so small a model attention, norms and Python take much of a step, so
CSR gains less than in `benchmarks/bench_decode.py`'s larger one
(`benchmarks/results/decode.md` says where the time goes); the example shows the path and
checks it is exact.

python examples/transformer_decode.py [--seconds 25] [--density 0.1] [--method sparsegpt]
"""

from __future__ import annotations

import argparse
import copy
import math
import time
import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import sprig
from sprig.data import VOCAB, stdlib_text
from sprig.masks import LeftAloneWarning
from sprig.prune import prune

PROJECTIONS = ["*_proj"]  # q/k/v/o and gate/up/down; embeddings and lm_head stay dense


def llama(hidden: int, layers: int, heads: int, ctx: int, seed: int) -> nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)  # transformers initialises from the global generator
    cfg = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=hidden,
        intermediate_size=(8 * hidden // 3 + 63) // 64 * 64,  # Llama's ratio, rounded to 64
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=4 * ctx,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(cfg)


def windows(data: torch.Tensor, n: int, ctx: int, gen: torch.Generator) -> torch.Tensor:
    start = torch.randint(0, data.numel() - ctx - 1, (n,), generator=gen)
    return torch.stack([data[s : s + ctx + 1] for s in start.tolist()])  # (n, ctx + 1)


def train(model: nn.Module, data: torch.Tensor, ctx: int, seconds: float, seed: int) -> int:
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    t0 = time.perf_counter()
    step = 0
    model.train()
    while (elapsed := time.perf_counter() - t0) < seconds:
        # warm-up, then cosine decay over the time budget (the step count is not known)
        lr = (
            3e-3
            * min(1.0, (step + 1) / 30)
            * (0.1 + 0.45 * (1 + math.cos(math.pi * elapsed / seconds)))
        )
        for g in opt.param_groups:
            g["lr"] = lr
        xy = windows(data, 16, ctx, gen)
        logits = model(input_ids=xy[:, :-1]).logits  # (B, T, V)
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), xy[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
    model.eval()
    return step


@torch.no_grad()
def greedy(model: nn.Module, prompt: torch.Tensor, n: int) -> tuple[list[int], float]:
    """``n`` greedy tokens after ``prompt`` ``(1, T)`` with the KV cache; (tokens, seconds)."""
    t0 = time.perf_counter()
    out = model(input_ids=prompt, use_cache=True)
    tokens: list[int] = []
    for _ in range(n):
        nxt = out.logits[:, -1].argmax(-1, keepdim=True)  # (1, 1)
        tokens.append(int(nxt))
        out = model(input_ids=nxt, past_key_values=out.past_key_values, use_cache=True)
    return tokens, time.perf_counter() - t0


def text(tokens: list[int]) -> str:
    return "".join(chr(t) if 32 <= t < 127 or t == 10 else "?" for t in tokens)


def main(**kwargs: Any) -> dict[str, object]:
    """Train, prune, compress and decode (arguments as :func:`run`); torch's threads restored."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a shared machine: one thread keeps timings steady
    try:
        return run(**kwargs)
    finally:
        torch.set_num_threads(threads)


def run(
    seconds: float = 25.0,
    density: float = 0.1,
    method: str = "sparsegpt",
    hidden: int = 256,
    layers: int = 4,
    tokens: int = 64,
    seed: int = 0,
) -> dict[str, object]:
    ctx = 64
    train_data, _ = stdlib_text(2_000_000)
    model = llama(hidden, layers, heads=max(1, hidden // 64), ctx=ctx, seed=seed)
    steps = train(model, train_data, ctx, seconds, seed)
    print(f"trained {steps} steps in {seconds:.0f} s ({hidden} wide, {layers} layers)")

    masked = copy.deepcopy(model)
    calib = windows(train_data, 32, ctx, torch.Generator().manual_seed(seed + 1))[:, :-1]
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LeftAloneWarning)  # embeddings, norms, lm_head: by design
        prune(masked, density, method, include=PROJECTIONS, calibration=calib)
        compressed = sprig.compress(masked)  # CSR or dense per layer and call: the dispatcher
        # layers this small run dense under the dispatcher; force CSR to run the sparse kernels
        csr = sprig.compress(masked, backend="csr")
    print(f"{method} to density {density} and compress: {time.perf_counter() - t0:.1f} s")

    prompt = train_data[:ctx][None]  # (1, ctx): the first file's opening lines
    greedy(csr, prompt, 2)  # first call compiles or loads the mat-vec kernel
    results: dict[str, object] = {"steps": steps}
    runs = [("dense", model), ("masked", masked), ("compressed", compressed), ("csr", csr)]
    for name, net in runs:
        toks, secs = greedy(net, prompt, tokens)
        results[name] = toks
        results[f"{name} tokens/s"] = tokens / secs
        print(f"{name:>10}: {tokens / secs:7.1f} tokens/s  {text(toks)[:48]!r}")
    same = results["masked"] == results["compressed"] == results["csr"]
    with torch.no_grad():  # the whole prompt's logits, not only the argmax
        gap = (masked(input_ids=prompt).logits - csr(input_ids=prompt).logits).abs().max()
    results["equal"], results["max logit gap"] = same, float(gap)
    print(f"compressed tokens (dispatcher's and forced CSR) equal masked tokens: {same}")
    print(f"forced CSR's prompt logits within {float(gap):.1e} of the masked model's")
    return results


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=25.0, help="training time budget")
    ap.add_argument(
        "--density", type=float, default=0.1, help="fraction of projection weights kept"
    )
    ap.add_argument("--method", default="sparsegpt", choices=["sparsegpt", "wanda", "magnitude"])
    ap.add_argument("--hidden", type=int, default=256, help="model width (heads of 64)")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=64, help="tokens to decode")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    main(**vars(a))
