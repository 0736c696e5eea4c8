from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

import sprig
from sprig.runs import (
    ConfigError,
    RunError,
    RunFolder,
    _experiment,
    config_from_dict,
    default_out,
    load_config,
    resume_run,
    run_experiment,
)

from . import _methods  # noqa: F401  (registers "swap_one")

EXAMPLES = Path(__file__).parents[2] / "examples"

SMALL = """
steps = 60
seed = 1
batch_size = 16
eval_every = 10
checkpoint_every = 15
plots = false
[data]
name = "moons"
n_samples = 80
n_test = 40
[model]
hidden = [12]
densities = [1.0, 0.5]
[method]
name = "swap_one"
every = 5
[optimizer]
name = "adam"
lr = 0.02
"""


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is fastest on a busy machine
    yield
    torch.set_num_threads(before)


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def small(tmp_path) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    return path


@pytest.mark.slow
def test_static_example_writes_a_complete_run_folder(tmp_path):
    config = EXAMPLES / "experiment_static.toml"
    result = run_experiment(config, tmp_path / "run")
    folder = RunFolder(result.path)
    assert folder.config.read_text() == config.read_text()  # the config, as written
    records = [json.loads(line) for line in folder.metrics.read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(401))
    assert records[-1]["density"] == pytest.approx(0.2)
    assert result.final["test_accuracy"] > 0.8  # the article's static network reaches ~0.88
    model = sprig.load(folder.model)
    assert sprig.density(model) == pytest.approx(0.2)
    assert folder.checkpoint_steps() == [300, 400]  # keep_checkpoints = 2
    names = sorted(p.name for p in result.plots)
    assert names == [
        "decision_boundary.png",
        "masks.png",
        "nnz.png",
        "topology.png",
        "training_curves.png",
    ]
    for p in result.plots:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000
    status = json.loads(folder.status_file.read_text())
    assert status["status"] == "finished" and status["final"] == result.final


def test_dense_example_trains_every_weight(tmp_path):
    result = run_experiment(EXAMPLES / "experiment_dense.toml", tmp_path / "run")
    model = sprig.load(result.path / "model.safetensors")
    assert result.final["density"] == 1.0
    assert all(bool(mp.mask.all()) for mp in sprig.masked_parameters(model))
    assert result.final["test_accuracy"] > 0.95


def test_dense_method_refuses_a_sparse_model_before_writing(tmp_path):
    cfg = config_from_dict(
        {
            "steps": 5,
            "data": {"name": "moons"},
            "model": {"densities": 0.5},
            "method": {"name": "dense"},
        }
    )
    with pytest.raises(ValueError, match="set model.densities = 1.0"):
        run_experiment(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_crashed_run_resumes_to_the_same_end(tmp_path, small, monkeypatch):
    reference = run_experiment(small, tmp_path / "reference")

    real_step = _experiment.train_step

    def crash_at_37(parts, step):
        if step == 37:
            raise KeyboardInterrupt  # a stop mid-training, after the checkpoint at 30
        return real_step(parts, step)

    monkeypatch.setattr(_experiment, "train_step", crash_at_37)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(small, tmp_path / "crashed")
    monkeypatch.setattr(_experiment, "train_step", real_step)
    folder = RunFolder(tmp_path / "crashed")
    assert folder.checkpoint_steps()[-1] == 30 and not folder.model.exists()

    result = resume_run(folder.path, config=small)
    assert result.resumed_from == 30
    assert folder.metrics.read_text() == (reference.path / "metrics.jsonl").read_text()
    got, want = sprig.load(folder.model), sprig.load(reference.path / "model.safetensors")
    for (key, a), b in zip(got.state_dict().items(), want.state_dict().values()):
        assert torch.equal(a, b), key
    # the mask updater really changed the masks (so equality above means something)
    start = sprig.SparseMLP([2, 12, 2], densities=[1.0, 0.5], seed=1)
    assert not torch.equal(got.layers[1].weight_mask, start.layers[1].weight_mask)


def test_resuming_a_finished_run_changes_nothing(tmp_path, small):
    result = run_experiment(small, tmp_path / "run")
    before = _snapshot(result.path)
    again = resume_run(result.path)
    assert again.already_finished and again.final == result.final
    assert _snapshot(result.path) == before


def test_a_taken_or_unwritable_out_folder_is_refused(tmp_path, small):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    with pytest.raises(RunError, match="already exists and is not an empty folder"):
        run_experiment(small, taken)
    assert _snapshot(taken) == {"notes.txt": hashlib.sha256(b"mine").hexdigest()}
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunError, match="cannot create run folder"):
        run_experiment(small, tmp_path / "file" / "run")


def test_bad_config_writes_nothing(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('steps = 5\n[data]\nname = "moons"\n[model]\nhidden = "wide"\n')
    with pytest.raises(ConfigError, match="model.hidden"):
        run_experiment(bad, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_resume_refuses_what_is_not_its_run(tmp_path, small):
    with pytest.raises(RunError, match="not a sprig run folder"):
        resume_run(tmp_path)
    with pytest.raises(RunError, match="is not a folder"):
        resume_run(tmp_path / "nothing")
    (tmp_path / "run.json").write_text('{"format": "something else"}')
    with pytest.raises(RunError, match="not a sprig run folder"):
        resume_run(tmp_path)

    result = run_experiment(small, tmp_path / "run")
    status = json.loads((result.path / "run.json").read_text())
    status["status"] = "running"  # pretend it stopped, so resume would write
    (result.path / "run.json").write_text(json.dumps(status))
    before = _snapshot(result.path)

    other = tmp_path / "other.toml"
    other.write_text(SMALL.replace("steps = 60", "steps = 70"))
    with pytest.raises(RunError, match=r"differs from the config of .* at 'steps' \(60 vs 70\)"):
        resume_run(result.path, config=other)
    assert _snapshot(result.path) == before

    # a checkpoint of another experiment dropped into the folder
    foreign = run_experiment(other, tmp_path / "foreign")
    ckpt = RunFolder(foreign.path).latest_checkpoint()
    assert ckpt is not None
    (result.path / "checkpoints" / "step-00000099.safetensors").write_bytes(ckpt.read_bytes())
    with pytest.raises(RunError, match="written by a different config"):
        resume_run(result.path)
    (result.path / "checkpoints" / "step-00000099.safetensors").unlink()

    # the run's own config.toml edited after the start
    config = result.path / "config.toml"
    config.write_text(SMALL.replace("lr = 0.02", "lr = 0.03"))
    with pytest.raises(RunError, match="no longer matches"):
        resume_run(result.path)


def test_a_config_object_is_written_as_toml(tmp_path):
    cfg = config_from_dict(
        {"steps": 5, "plots": False, "data": {"name": "course_task", "n_train": 64, "n_test": 32}}
    )
    result = run_experiment(cfg, tmp_path / "run")
    assert load_config(result.path / "config.toml") == cfg
    assert result.plots == ()


def test_default_out_never_reuses_a_folder(tmp_path):
    assert default_out("exp", tmp_path) == tmp_path / "exp"
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp-2").mkdir()
    assert default_out("exp", tmp_path) == tmp_path / "exp-3"


def test_truncating_metrics_skips_records_without_an_integer_step(tmp_path):
    # a hand-edited {"step": null} line raised a raw TypeError on resume
    from sprig.runs._folder import RunFolder

    folder = RunFolder.create(tmp_path / "run")
    lines = ['{"step": 1, "loss": 1.0}', '{"step": null}', '{"step": "2"}', "[3]", '{"step": 7}']
    folder.metrics.write_text("\n".join(lines) + '\n{"step": 3, "lo')  # a torn last line
    folder.truncate_metrics(5)
    assert folder.metrics.read_text() == '{"step": 1, "loss": 1.0}\n'
