"""End-to-end training on a tiny generated SynthCity: outputs, determinism, resume, NaN handling, CLI."""
import json
import subprocess
import sys

import pytest
import torch

from conftest import REPO, read_train_losses, tiny_cfg
from seg_uda.engine.trainer import NonFiniteLossError, Trainer


@pytest.mark.slow
def test_short_run_writes_checkpoints_logs_and_metrics(synthcity, tmp_path):
    torch.set_num_threads(1)
    cfg = tiny_cfg(synthcity, "advent_minent", max_iters=4,
                   schedule={"max_iters": 4, "eval_interval": 2, "ckpt_interval": 2, "log_interval": 1,
                             "image_log_interval": 2})
    result = Trainer(cfg, work_dir=tmp_path, progress=False).train()
    ck = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert ck == ["iter_0000002.pth", "iter_0000004.pth", "last.pth"]
    assert (tmp_path / "config.yaml").is_file() and any((tmp_path / "tb").iterdir())
    losses = read_train_losses(tmp_path)
    assert [r["iter"] for r in losses] == [1, 2, 3, 4]
    for key in ("seg_main", "seg_aux", "adv_main", "adv_aux", "ent_main", "ent_aux"):
        assert key in losses[0]
    assert any(k.startswith("d_") for k in losses[0])
    final = json.loads((tmp_path / "final_metrics.json").read_text())
    assert 0.0 <= final["miou"] <= 1.0 and final["miou"] == pytest.approx(result["miou"])
    assert set(final["iou"]) >= {"road", "car", "sky"}
    ckpt = torch.load(tmp_path / "checkpoints" / "last.pth", weights_only=True)
    assert ckpt["iteration"] == 4 and ckpt["config"]["method"]["name"] == "advent_minent"


def test_checkpoint_interval_zero_saves_only_where_training_stops(synthcity, tmp_path):
    torch.set_num_threads(1)
    Trainer(tiny_cfg(synthcity, "source_only", max_iters=3, schedule={"ckpt_interval": 0}),
            work_dir=tmp_path, progress=False).train(until=2)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["iter_0000002.pth", "last.pth"]
    Trainer(tiny_cfg(synthcity, "source_only", max_iters=3, schedule={"ckpt_interval": 0}),
            work_dir=tmp_path, resume=True, progress=False).train()
    env = json.loads((tmp_path / "environment.json").read_text())  # the machine of each part of the run
    assert [r["start_iter"] for r in env] == [0, 2] and all(r["cpu"] and r["torch_threads"] == 1 for r in env)


@pytest.mark.slow
def test_same_seed_gives_identical_losses(synthcity, tmp_path):
    torch.set_num_threads(1)
    runs = []
    for i in range(2):
        Trainer(tiny_cfg(synthcity, "advent", max_iters=3), work_dir=tmp_path / str(i), progress=False).train()
        runs.append(read_train_losses(tmp_path / str(i)))
    assert runs[0] == runs[1]


@pytest.mark.slow
def test_resume_matches_uninterrupted_run(synthcity, tmp_path):
    torch.set_num_threads(1)
    cfg = tiny_cfg(synthcity, "advent", max_iters=4)
    full = Trainer(cfg, work_dir=tmp_path / "full", progress=False)
    full.train()
    first = Trainer(cfg, work_dir=tmp_path / "split", progress=False)
    first.train(until=2)
    resumed = Trainer(cfg, work_dir=tmp_path / "split", resume=True, progress=False)
    assert resumed.iteration == 2
    resumed.train()
    for (k, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k
    for a, b in zip(full.method.state_dict().values(), resumed.method.state_dict().values()):
        assert torch.equal(a, b)


def test_nan_loss_stops_with_iteration_and_term_and_keeps_checkpoint(synthcity, tmp_path):
    torch.set_num_threads(1)
    trainer = Trainer(tiny_cfg(synthcity, "minent", max_iters=4), work_dir=tmp_path, progress=False)
    trainer.train(until=2)
    good = (tmp_path / "checkpoints" / "last.pth").read_bytes()
    original = trainer.method.generator_step

    def poisoned(*a, **k):
        losses, cache = original(*a, **k)
        losses["ent_main"] = losses["ent_main"] * float("nan")
        return losses, cache

    trainer.method.generator_step = poisoned
    with pytest.raises(NonFiniteLossError, match=r"iteration 2: ent_main=nan"):
        trainer.train()
    assert (tmp_path / "checkpoints" / "last.pth").read_bytes() == good


def test_nan_loss_can_be_skipped_and_counted(synthcity, tmp_path):
    torch.set_num_threads(1)
    trainer = Trainer(tiny_cfg(synthcity, "source_only", max_iters=2, schedule={"nonfinite": "skip"}),
                      work_dir=tmp_path, progress=False)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    original = trainer.method.generator_step
    trainer.method.generator_step = lambda *a, **k: ({"seg_main": original(*a, **k)[0]["seg_main"] * float("inf")}, {})
    trainer.train()
    assert trainer.nonfinite_skips == 2
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(v, before[k]), k


@pytest.mark.slow
def test_cli_reports_config_typo_before_heavy_work(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(f"_base_: {REPO / 'configs/_base_/datasets/synthcity.yaml'}\nmethod: {{name: advent}}\n"
                   "model: {name: deeplabv2, encoder_name: resnet18}\noptim: {lr_head: 1.0}\n")
    r = subprocess.run([sys.executable, str(REPO / "tools/train.py"), str(cfg)], capture_output=True, text=True)
    assert r.returncode == 2
    assert "optim.lr_head" in r.stderr and "head_lr_mult" in r.stderr


@pytest.fixture(scope="module")
def source_checkpoint(trained):
    """conftest's 2-iteration source-only run's final checkpoint (what model.init_from starts an adapted run from)."""
    return trained[2] / "checkpoints" / "last.pth"


@pytest.mark.parametrize("method", ["minent", "self_training"])
def test_init_from_starts_every_copy_of_the_model_from_the_checkpoint(synthcity, source_checkpoint, tmp_path, method):
    torch.set_num_threads(1)
    saved = torch.load(source_checkpoint, weights_only=True)["model"]
    trainer = Trainer(tiny_cfg(synthcity, method, max_iters=2, model={"init_from": str(source_checkpoint)}),
                      work_dir=tmp_path, progress=False)
    assert trainer.iteration == 0 and not trainer.optimizer.state  # a fresh start, only the weights carried over
    own = trainer.model.state_dict()
    assert own.keys() == saved.keys() and all(torch.equal(own[k], saved[k]) for k in saved)
    teacher = getattr(trainer.method, "teacher", None)  # self-training's mean teacher copies the initial student
    if teacher is not None:
        assert all(torch.equal(v, saved[k]) for k, v in teacher.state_dict().items())
    plain = Trainer(tiny_cfg(synthcity, method, max_iters=2), work_dir=tmp_path / "plain", progress=False)
    assert any(not torch.equal(v, own[k]) for k, v in plain.model.state_dict().items())  # init_from did the work


def test_init_from_bad_file_names_it(synthcity, source_checkpoint, tmp_path):
    from seg_uda.runtime.checkpoint import CheckpointError

    torch.set_num_threads(1)
    missing = tmp_path / "nothing.pth"
    with pytest.raises(CheckpointError, match=f"not found: {missing}"):
        Trainer(tiny_cfg(synthcity, "minent", model={"init_from": str(missing)}), work_dir=tmp_path / "a",
                progress=False)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(source_checkpoint.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=f"cannot read checkpoint {cut}"):
        Trainer(tiny_cfg(synthcity, "minent", model={"init_from": str(cut)}), work_dir=tmp_path / "b", progress=False)
    cfg = tiny_cfg(synthcity, "minent", model={"init_from": str(source_checkpoint)})
    cfg.data.num_classes = 7  # the checkpoint's model has 19 outputs
    with pytest.raises(CheckpointError, match=f"checkpoint {source_checkpoint} was trained with num_classes=19"):
        Trainer(cfg, work_dir=tmp_path / "c", progress=False)


@pytest.mark.slow
def test_resume_ignores_init_from_and_matches_uninterrupted_run(synthcity, source_checkpoint, tmp_path):
    torch.set_num_threads(1)
    init = tmp_path / "init.pth"
    init.write_bytes(source_checkpoint.read_bytes())
    cfg = tiny_cfg(synthcity, "minent", max_iters=4, model={"init_from": str(init)})
    full = Trainer(cfg, work_dir=tmp_path / "full", progress=False)
    full.train()
    Trainer(cfg, work_dir=tmp_path / "split", progress=False).train(until=2)
    init.unlink()  # the checkpoint resumed from holds the weights: the init file is no longer needed
    resumed = Trainer(cfg, work_dir=tmp_path / "split", resume=True, progress=False)
    resumed.train()
    for (k, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k
