"""Bonsai networks: graph sizes per task against the post's, seeds that succeed, validation
accuracy and wall time on this machine.

    python benchmarks/bench_bonsai.py [--tasks delay-2,1to111] [--seeds 5]
    python benchmarks/bench_bonsai.py --user [--budget 180]   # users' tasks, searched

Each run is sprig's whole recipe (``sprig.bonsai.grow_bonsai`` with the task's preset): grow,
threshold search on 5,000 fresh sequences, dead-code elimination, validation of the graph on
50,000 fresh sequences of length 40 scored by sign. A seed succeeds when the validation is
100%. Wall time is the run's own; "cpu s" is the process's CPU time, which on a machine
shared with other jobs is closer to what an idle 2-core machine would take. Runs go one after
another in one process (the first one also pays torch's one-time optimizer import); every
finished run is written at once, so a long run can be stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from _common import RESULTS, write_table

from sprig.bonsai import FSMError, SearchConfig, extract_fsm, grow_bonsai, preset_config

PUBLISHED = {  # neurons / states / edges (state feedback not counted), Primozic 2023
    "delay-2": (3, 2, 4),
    "1to111": (3, 2, 7),
    "parentheses": (4, 2, 11),
    "switcher": (18, 9, 50),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", default=",".join(PUBLISHED))
    ap.add_argument("--seeds", type=int, default=5, help="at most this many seeds per task")
    ap.add_argument("--budget", type=float, default=float("inf"), help="seconds per task")
    ap.add_argument("--table-only", action="store_true", help="only rewrite the table")
    ap.add_argument("--user", action="store_true", help="users' tasks, automatic search")
    ap.add_argument("--cli", metavar="TASK", help="time `sprig bonsai TASK` (whole process)")
    ap.add_argument("--cli-seeds", type=int, default=1, help="its --seeds")
    ap.add_argument("--cli-seed", type=int, default=0, help="its --seed")
    args = ap.parse_args()
    if args.cli:
        cli(args.cli, args.cli_seeds, args.cli_seed)
        return
    if args.user:
        user(180.0 if args.budget == float("inf") else args.budget, args.table_only)
        return
    for task in [] if args.table_only else args.tasks.split(","):
        runs_path = RESULTS / f"bonsai_runs_{task}.json"  # one file per task: runs can be parallel
        runs: list[dict] = json.loads(runs_path.read_text()) if runs_path.exists() else []
        done = {r["seed"] for r in runs}  # resume: seeds already measured are kept
        start = time.perf_counter()
        for seed in range(args.seeds):
            if seed in done:
                continue
            if time.perf_counter() - start > args.budget:
                break
            config = preset_config(task, seed=seed)
            load = os.getloadavg()[0]
            cpu = time.process_time()
            r = grow_bonsai(task, config)
            cpu = time.process_time() - cpu
            c = r.graph.counts()
            run = {
                "task": task,
                "seed": seed,
                "cells": [list(x) for x in config.cells],
                "steps": config.steps,
                "threshold": r.threshold,
                **c,
                "accuracy": r.score.accuracy,
                "sequence_accuracy": r.score.sequence_accuracy,
                "seconds": round(r.seconds, 1),
                "cpu_seconds": round(cpu, 1),  # this process's CPU time: the machine is shared
                "threads": torch.get_num_threads(),
                # the graph at the clip threshold alone, before prune_finetunes (None: no pruning)
                "clipped": r.graph.meta.get("clipped"),
                # the grown network's graph when the compiled machine replaced it
                "grown": r.graph.meta.get("grown"),
                "load_before": round(load, 2),
                "load_after": round(os.getloadavg()[0], 2),
            }
            print(run, flush=True)
            runs.append(run)
            runs_path.write_text(json.dumps(runs, indent=1))
    table(
        [r for p in sorted(RESULTS.glob("bonsai_runs_*.json")) for r in json.loads(p.read_text())]
    )


def table(runs: list[dict]) -> None:
    rows = []
    for task, pub in PUBLISHED.items():
        mine = [r for r in runs if r["task"] == task]
        if not mine:
            continue
        ok = [r for r in mine if r["sequence_accuracy"] == 1.0]
        best = min(ok or mine, key=lambda r: (r["neurons"] + r["states"] + r["edges"], r["seed"]))
        rows.append(
            [
                task,
                "/".join(map(str, pub)),
                f"{best['neurons']}/{best['states']}/{best['edges']}",
                "/".join(str(best["clipped"][k]) for k in ("neurons", "states", "edges"))
                if best.get("clipped")
                else "-",
                "/".join(str(best["grown"][k]) for k in ("neurons", "states", "edges"))
                if best.get("grown")
                else "-",
                f"{len(ok)} of {len(mine)}",
                f"{100 * best['accuracy']:.4f}%",
                f"{best['seconds']:.0f}",
                f"{best['cpu_seconds']:.0f}" if "cpu_seconds" in best else "-",
                f"{min(r['seconds'] for r in mine):.0f}-{max(r['seconds'] for r in mine):.0f}",
                f"{best['cells']}, {best['steps']} steps, seed {best['seed']}"
                + (", its machine compiled" if best.get("grown") else ""),
            ]
        )
    write_table(
        "bonsai",
        [
            "task",
            "published n/s/e",
            "sprig best n/s/e",
            "same run at the clip threshold",
            "same run grown (before compile_machine)",
            "seeds at 100%",
            "validation accuracy (best)",
            "wall s (best)",
            "cpu s (best)",
            "wall s (all seeds)",
            "network",
        ],
        rows,
        {"runs": runs, "published": PUBLISHED},
    )
    md = RESULTS / "bonsai.md"
    md.write_text(md.read_text() + NOTES)
    cli_path = RESULTS / "bonsai_cli.json"
    if cli_path.exists():
        lines = ["", "`sprig bonsai TASK --seeds N`, timed as a whole process (--cli):", ""]
        for c in json.loads(cli_path.read_text()):
            lines.append(
                f"- {c['task']} --seeds {c['seeds']} --seed {c.get('seed', 0)}: "
                f"{c['wall_s']:.0f} s wall, exit "
                f"{c['exit']}, {c['kept']}; {c['graph']}; {c['validation']} "
                f"(OMP_NUM_THREADS={c['threads_env']}, load average {c['load_before']:.1f} "
                f"before, {c['load_after']:.1f} after)"
            )
        md.write_text(md.read_text() + "\n".join(lines) + "\n")


def cli(task: str, seeds: int, seed: int) -> None:
    """Time ``sprig bonsai TASK --seeds N --seed S`` as a user runs it (one process, start to
    exit)."""
    path = RESULTS / "bonsai_cli.json"
    runs: list[dict] = json.loads(path.read_text()) if path.exists() else []
    exe = str(Path(sys.executable).with_name("sprig"))  # the console script beside python
    with tempfile.TemporaryDirectory() as out:
        cmd = [exe, "bonsai", task, "--seeds", str(seeds), "--seed", str(seed), "--out", out]
        load = os.getloadavg()[0]
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - start
    lines = (done.stdout + done.stderr).splitlines()
    run = {
        "task": task,
        "seeds": seeds,
        "seed": seed,
        "exit": done.returncode,
        "wall_s": round(wall, 1),
        "graph": next((x for x in lines if x.startswith("graph:")), ""),
        "validation": next((x for x in lines if x.startswith("validation")), ""),
        "kept": next((x for x in lines if x.startswith("keeping")), ""),
        "threads_env": os.environ.get("OMP_NUM_THREADS"),
        "load_before": round(load, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }
    print(run, flush=True)
    runs = [r for r in runs if (r["task"], r["seeds"], r.get("seed")) != (task, seeds, seed)]
    runs.append(run)
    path.write_text(json.dumps(runs, indent=1))


#: Users' tasks (benchmarks/user_tasks.py) and the states of their minimal Mealy machines.
USER_TASKS = {"PARITY": 2, "MOD3": 3, "THREE_ONES": 4}


def user(budget: float, table_only: bool) -> None:
    """Grow each user task with grow_bonsai's automatic search (no config, no preset)."""
    import os

    import user_tasks

    path = RESULTS / "bonsai_user_runs.json"
    runs: list[dict] = json.loads(path.read_text()) if path.exists() else []
    for name in [] if table_only else USER_TASKS:
        task = getattr(user_tasks, name)
        load = os.getloadavg()[0]
        cpu = time.process_time()
        r = grow_bonsai(task, search=SearchConfig(budget_s=budget))
        cpu = time.process_time() - cpu
        try:
            states: int | str = extract_fsm(r.graph).num_states
        except FSMError as err:
            states = f"none ({str(err)[:60]}...)"
        run = {
            "task": r.task.name,
            "minimal_states": USER_TASKS[name],
            **r.graph.counts(),
            "fsm_states": states,
            "cells": r.model.cell_sizes,
            "seed": r.graph.meta.get("seed"),
            "attempts": [a._asdict() for a in r.attempts],
            "accuracy": r.score.accuracy,
            "sequence_accuracy": r.score.sequence_accuracy,
            "seconds": round(r.seconds, 1),
            "cpu_seconds": round(cpu, 1),
            "budget_s": budget,
            "load_before": round(load, 2),
            "load_after": round(os.getloadavg()[0], 2),
        }
        print({k: v for k, v in run.items() if k != "attempts"}, flush=True)
        runs = [x for x in runs if x["task"] != run["task"]] + [run]
        path.write_text(json.dumps(runs, indent=1))
    rows = []
    for run in runs:
        sizes = sorted({tuple(map(tuple, a["cells"])) for a in run["attempts"]})
        rows.append(
            [
                run["task"],
                run["minimal_states"],
                run["fsm_states"],
                f"{run['neurons']}/{run['states']}/{run['edges']}",
                f"{100 * run['accuracy']:.4f}%",
                f"{run['cells']}, seed {run['seed']}",
                f"{len(run['attempts'])} runs over {len(sizes)} sizes",
                f"{run['seconds']:.0f}",
                f"{run['cpu_seconds']:.0f}",
                f"{run['load_before']:.1f} / {run['load_after']:.1f}",
            ]
        )
    write_table(
        "bonsai_user",
        [
            "task",
            "minimal states",
            "extracted states",
            "n/s/e",
            "validation accuracy",
            "kept network",
            "seeds tried",
            "wall s",
            "cpu s",
            "load avg before / after",
        ],
        rows,
        {"runs": runs},
    )
    md = RESULTS / "bonsai_user.md"
    md.write_text(md.read_text() + USER_NOTES)


USER_NOTES = """
Users' tasks (benchmarks/user_tasks.py), grown by `grow_bonsai(task)` with no config: the
automatic search (sprig.bonsai.SearchConfig defaults: cells from 1x1 up, 3 seeds per size,
curriculum over lengths 4, 8, 16, 40, a 180 s budget), the same as `sprig bonsai
user_tasks:PARITY`. n/s/e: neurons / states / edges of the kept graph; "extracted states":
`extract_fsm` on it (minimal Mealy machine); validation on 50,000 fresh sequences of 40.
"seeds tried" counts every run of the search (each its own size and seed). The machine is a
2-core machine shared with other engineers' jobs: the load averages are the 1-minute ones
before and after each task; "cpu s" is this process's CPU time.

Exploration runs behind the search's recipe (sprig.bonsai.RECIPE; training only, up to 1,500
steps, curriculum 4, 8, 16, 40, scored on 2,000 fresh sequences of 40, load average 1.5-3.3):
- parity, cells 1x1, regularizer intensity 0.05 (the post's): 0 of 3 seeds perfect; two
  learnt the copy y = x (62.5% at length 4) and stopped there. Intensity 0.005: 0 of 4 (one
  reached length 16, 96.8%). Leaky Ameo, 1x1: 0 of 4 (all stuck at y = x).
- parity, intensity 0.005, interpolated Ameo: 1x2 0 of 4; 2x1 0 of 3; 2x2 4 of 4 (in 250-400
  steps); 4x4 2 of 4.
- mod 3: 2x2 0 of 3; 3x3 1 of 3 (the others 98.1% and 70.9%); leaky Ameo 3x3 0 of 3.
- three ones: 2x2 0 of 3 (96.1%, 99.96%, 99.996%); 3x3 1 of 3 (the others 99.95%, 99.98%).
"""


NOTES = """
n/s/e: neurons / states / edges of the pruned graph; "best" is the smallest graph among the
seeds that reach 100% on 50,000 fresh sequences of length 40 (when no seed does, the best
failing one is shown with its accuracy). A threshold that passes the 5,000-sequence check is
confirmed on 50,000 other sequences before it is kept.

How sprig counts, for every task alike: the draft of the post in shared/sources states no
counting rule and has no results section; its one statement is the figure's caption, "square
nodes represent neurons and circles are states from the previous timestep". sprig counts what
its viewer draws the same way: squares (every neuron left after pruning, the output neurons
included: each computes act(bias + sum) or, for the final linear layer, bias + sum), circles
(states), and the arrows within one step (an edge is one nonzero weight between two drawn
nodes; the dashed arrow that carries a neuron's value into its state at the next step is not
counted, nor are biases or initial states). Inputs are not counted. Neurons without inputs are
folded into their consumers' biases (constant folding), as before.

Pruning past the clip threshold (GrowConfig.prune_finetunes, 6 in the parentheses preset since
this run): after the threshold search, whole neurons then single weights are zeroed greedily,
directly or with 300 steps of fine-tuning (zeros frozen; at most 6 fine-tunings, a count so the
result does not depend on the machine's speed: an earlier time budget of 15 s gave seed 1 4/2/7
in one run and 5/2/10 in another), then the graph is minimised (an edge dropped or replaced by
its source's mean value in the target's bias, a one-input neuron that is affine on its source's
values folded into its consumers). Every kept change must be right on 5,000 fresh sequences and
on 50,000 others; the graph is then validated on 50,000 sequences of another seed, as every row
here. The column "same run at the clip threshold" is the graph the plain threshold search gave
that run. Checking on 5,000 sequences alone was not enough: greedy removal on a switcher graph
reached 96 edges from 106 that were wrong on the 50,000. With both checks, a 300 s
(time-budgeted) prune of switcher seed 4 (16/11/106 at the clip threshold) ended at 15/10/93 at
99.998% on the validation (one error in 50,000 sequences: the many changes tried against the
same check sets select for their luck); the switcher preset does not prune.

Parentheses before the pruning (the previous table, commit 31bee34, same preset otherwise): 3
of 5 seeds at 100%, best 5/2/9 (seed 0, 46 s), then 6/3/15 and 6/3/13. On this HEAD the clip
threshold alone gives the column "same run at the clip threshold" (6/3/15 on seeds 0 and 1, not
the 5/2/9 of that table: the earlier runs are not reproduced by this HEAD). Pruning the same
clipped networks without a limit (every candidate tried, exploration): seed 0 5/2/11 after 16
fine-tunings, seed 1 4/2/7 after 13 (reached by the 6th). Its runs and the CLI runs were
single-threaded (OMP_NUM_THREADS=1, torch 1 thread), under the timing lock, one seed per locked
run; load averages are in the JSON.

Against the issue's targets (at or below the published n/s/e, 100% on 50,000 fresh sequences
of 40, parentheses within 2 minutes, switcher within 10): parentheses reaches 4/2/7 (seed 1;
seed 0 gives 5/2/12). `sprig bonsai parentheses --seeds 2` grows its two seeds at once, one
process each on the two cores (`--jobs`, default one per core; `grow_seeds`), and ends within
the 2 minutes (timed below, whole process, no OMP_NUM_THREADS); one after the other, as before
`--jobs`, it took 146 s. The preset grows 2000 steps since this table: with 3000 (commit
87721ca) the five seeds gave the same sizes at the same rate (5/2/12, 4/2/7, 6/3/13, two seeds
not learnt) in 47-98 s each. Switcher reaches 5/2/15 through compile_machine (below), not by
growing and pruning alone.

Switcher (this table: the preset, which compiles the grown graph's machine; single-threaded, one
seed after another, load average 1-2 while other experiments of this session ran): seeds 3 and 4
learn the task; their grown graphs (column "same run grown") are 18/12/145 and 16/11/106 at the
clip threshold. Each graph's minimal machine has 4 states; compile_machine turns it into a
network of 2 state neurons (a 2-bit Gray code of the mode, 3 inputs each, found by exhaustive
search so that plain Ameo gives the next bit exactly) and 2 output neurons plus the final layer
(trained on the machine's 32-row table), which minimize takes from 18 edges to 15 and 16: 5/2/15
and 5/2/16, right on the 50,000 validation sequences. The compiled network's machine equals the
task's own (sprig.bonsai.counterexample, an exact product search): it is right on every input
sequence of any length, where the grown graphs' checks could not see errors of 1 in 500,000
(below). The runs of this table came before that check was part of keeping a compiled graph;
rerun with it, seed 4 again gave 5/2/16 (exact check passed, 131 s), and `sprig bonsai switcher
--seed 3` printed the check passed for its 5/2/15. Seeds 0, 1 and 2 do not learn the task (0%,
97.9% and 68.5% of validation sequences right), and a graph that is not perfect is not compiled.
Published 18/9/50: reached on neurons, states and edges, but by a construction from the machine
the grown network found, which is not the post's method; grown and pruned alone, the best
switcher graph is 12/7/67 (commit aa7428f) and 13/7/76 on the previous HEAD (below).
compile_machine of the task machines directly (tests): delay-2 3/2/3, 1to111 4/2/7 (the grown
3/2/6 is smaller), parentheses none (its 10-state depth counter: no state neurons found within
the default bounds, 4 inputs each and 24 code assignments per code width).

Why not grow small networks instead (exploration, this session, not timed): cells [[4, 2]],
[[6, 3]], [[6, 4]] and [[8, 4]], seeds 0-3, 6000 steps with a curriculum of lengths 10 and 20:
none learnt the task (61-73% of output bits at length 40), nor with the regularizer off ([[4,
2]] and [[6, 4]], 8 runs), nor with the mode as an extra training target (a linear probe on the
states, [[4, 2]], [[4, 4]], [[6, 4]]). Gradient descent on the machine's own table (teacher
forcing: every state code and input, next code and output as targets) fit the outputs but found
exact counter neurons in 0 of 30 starts, while the exhaustive search finds them at once.

Switcher exploration before compile_machine (previous HEAD; niced, single-threaded, load average
2-7, not timed; seed 4 unless said). The preset: seeds 3, 4 and 6 learn the task (16/11/106,
18/12/145, 17/11/169 at the clip threshold), seeds 0 and 5 do not (0% of sequences right), seed
1 reaches 97.9%. Greedy pruning past the clip threshold (prune_finetunes) of seed 4 with 20
fine-tunings: 15/10/91 (677 s); seed 6 with 6 fine-tunings and prune_recheck: 17/11/166.
GrowConfig.group_l1 0.003 (a group lasso on each neuron's outgoing weights): 15/9/102 at the
clip threshold, then 13/7/76 with 6 fine-tunings and prune_recheck (379 s of pruning at load
~5), right on the 50,000 validation sequences. Nothing here reaches 50 edges: the mode counter
is spread over 6-10 states that all read each other, and greedy removal stops at 76-91 edges.
With group_l1 0.003, prune_finetunes 6 and prune_recheck, seed 1 gave 17/12/112 (121 edges at
the clip threshold) at 99.998% of validation sequences, in 636 s at load ~1, and seed 6 was not
learnt (99.968%, not clipped). group_l1 0.01 (seed 4) and 0.003 (seed 3), intensity 0.1, cells
[[8, 8]] and [[12, 6]] (seed 4) did not learn the task; clipping the smallest 13% of the
remaining weights at once, even with 300 steps of fine-tuning, broke both seed-4 networks.
Errors of 1 sequence in 50,000 to 500,000 are below what these checks see: on 500,000 more fresh
sequences, seed 4's clip-threshold network (preset) erred on 1, seed 3's on 4, the 13/7/76 graph
on 5 (and on at least 1 as pruned with the rollback) and seed 6's pruned graph on 10, all right
on their 50,000 validation sequences; only the group_l1 network at the clip threshold was right
on all 500,000. prune_recheck (each kept change also checked on new sequences, and undone when a
later recheck shows it errs) lowers the selection of lucky changes but cannot see errors this
rare either.

Conditions of the delay-2 and 1to111 rows: the earlier 2-thread runs under load average 10-15
(wall several times an idle machine's). Quick single-threaded re-check of seed 0 with the
confirmation step: delay-2 3/2/3 in 7 s, 1to111 3/2/6 in 8 s, both 100%.

History. Parentheses grows with the leaky Ameo (piecewise linear): with the interpolated Ameo
the trained network itself was wrong on ~1 sequence in 3,000 (the depth codes drift apart
because the curved segments make ")" not undo "(" exactly). Cells [[4, 4]]: 5 of 5 seeds at
100% but the best graph 7/4/15; [[2, 2]]: 1 of 5 (5/2/10 on seed 1); [[1, 2]] with or without a
final layer, and with a curriculum: 0 of 4 (exploration, this HEAD). Switcher grows with the
leaky Ameo on sequences of 40: with the interpolated Ameo on length 20, 1 of 5 at 100% (the
mod-4 mode counter drifting late in long sequences). With the preset at commit aa7428f, 3 of 5
reached 100% (best 12/7/67, seed 4), but seed 0's was the unclipped network (25/12/372), seed 1
missed by one bit in 2,000,000 (17/12/127 at 99.99995%) and seed 2 did not learn (91.2%).
"""


if __name__ == "__main__":
    main()
