"""Fault injection through the trainer and the CLI: corrupt image mid-run, unknown label id, missing label,
config typo, unwritable output path. Each fault must give a clear error and lose nothing already written."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import List

import numpy as np
import pytest
import torch
from PIL import Image

from seg_uda.config import config_from_dict
from seg_uda.data import DatasetError
from seg_uda.runtime.checkpoint import OutputDirError, list_checkpoints, load_checkpoint
from seg_uda.engine.trainer import Trainer

from test_reliability import env, records, rel_cfg_dict, train_losses, write_cfg
from conftest import REPO

TRAIN = REPO / "tools" / "train.py"


def source_only_cfg(root: Path, max_iters: int = 4):
    return config_from_dict(rel_cfg_dict(root, "source_only", max_iters=max_iters, keep_last=10))


@pytest.fixture
def data(synthcity, tmp_path) -> Path:
    """A private copy of the tiny SynthCity that a test may damage."""
    return Path(shutil.copytree(synthcity, tmp_path / "data"))


@pytest.fixture(scope="module")
def draw_order(synthcity, tmp_path_factory) -> List[str]:
    """Names of the source frames the tiny source_only run draws at iterations 0, 1, 2."""
    torch.set_num_threads(1)
    t = Trainer(source_only_cfg(synthcity), work_dir=tmp_path_factory.mktemp("order"), progress=False)
    seen: List[str] = []
    original = t.method.generator_step

    def spy(model, source, target, progress):
        seen.extend(source["name"])
        return original(model, source, target, progress)

    t.method.generator_step = spy
    t.train(until=3)
    return seen


def test_corrupt_image_mid_run_names_file_and_keeps_checkpoints(data, draw_order, tmp_path):
    torch.set_num_threads(1)
    bad = data / "game" / "images" / f"{draw_order[2]}.png"
    raw = bad.read_bytes()
    bad.write_bytes(raw[: len(raw) // 2])  # truncated PNG, drawn at iteration 2
    wd = tmp_path / "run"
    trainer = Trainer(source_only_cfg(data), work_dir=wd, progress=False)
    with pytest.raises(DatasetError, match=f"cannot read image '{bad}'"):
        trainer.train()
    assert trainer.iteration == 2
    assert [k for k, _ in list_checkpoints(wd / "checkpoints")] == [2, 1]
    for k, p in list_checkpoints(wd / "checkpoints"):
        assert load_checkpoint(p)["iteration"] == k
    assert load_checkpoint(wd / "checkpoints" / "last.pth")["iteration"] == 2
    assert sorted(train_losses(records(wd))) == [1, 2]


def test_label_with_unknown_id_names_file_and_id(data, draw_order, tmp_path):
    label = data / "game" / "labels" / f"{draw_order[0]}.png"
    with Image.open(label) as im:
        mode, ids, pal = im.mode, np.array(im), im.getpalette()
    ids[0, 0] = 200  # not a Cityscapes label id (0..33, 255 void)
    out = Image.fromarray(ids.astype(np.uint8)).convert(mode) if mode != "P" else Image.fromarray(ids, "P")
    if mode == "P" and pal:
        out.putpalette(pal)
    out.save(label)
    trainer = Trainer(source_only_cfg(data), work_dir=tmp_path / "run", progress=False)
    with pytest.raises(DatasetError) as e:
        trainer.train()
    assert str(label) in str(e.value) and "200" in str(e.value)


def test_missing_label_fails_at_dataset_construction(data, tmp_path):
    label = data / "game" / "labels" / "00003.png"
    label.unlink()
    with pytest.raises(DatasetError, match=f"no label file '{label}'"):
        Trainer(source_only_cfg(data), work_dir=tmp_path / "run", progress=False)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TRAIN), *args, "--no-progress"], capture_output=True, text=True,
                          env=env(), timeout=120)


@pytest.mark.slow
def test_config_typo_exits_2_naming_key_and_valid_keys_and_creates_nothing(synthcity, tmp_path):
    d = rel_cfg_dict(synthcity, "source_only")
    d["schedule"]["max_iter"] = d["schedule"].pop("max_iters")
    wd = tmp_path / "run"
    r = run_cli(str(write_cfg(tmp_path / "typo.yaml", d)), "--work-dir", str(wd))
    assert r.returncode == 2
    assert "schedule.max_iter" in r.stderr and "Valid keys:" in r.stderr and "ckpt_interval" in r.stderr
    assert not wd.exists()
    ok = write_cfg(tmp_path / "ok.yaml", rel_cfg_dict(synthcity, "source_only"))
    r = run_cli(str(ok), "--work-dir", str(wd), "optim.lrr=0.1")  # a typo in an override, too
    assert r.returncode == 2 and "optim.lrr" in r.stderr and "Valid keys:" in r.stderr
    assert not wd.exists()


@pytest.mark.slow
def test_unwritable_output_path_fails_before_training(synthcity, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a regular file where a directory is needed")  # root ignores chmod, not this
    cfg = write_cfg(tmp_path / "cfg.yaml", rel_cfg_dict(synthcity, "source_only"))
    r = run_cli(str(cfg), "--work-dir", str(blocker / "run"))
    assert r.returncode != 0
    assert "OutputDirError" in r.stderr and f"{blocker / 'run' / 'checkpoints'} is not writable" in r.stderr

    wd = tmp_path / "run2"
    wd.mkdir()
    (wd / "checkpoints").write_text("not a directory")
    with pytest.raises(OutputDirError, match="checkpoints"):
        Trainer(source_only_cfg(synthcity), work_dir=wd, progress=False)
    assert sorted(p.name for p in wd.iterdir()) == ["checkpoints"]  # nothing trained, nothing written
