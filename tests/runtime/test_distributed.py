"""DDP on the CPU (gloo, 2 ranks launched by torchrun): equivalence with one big-batch process, sharded
evaluation, and a crashing rank failing the job instead of hanging it.

Why 2 ranks x batch 1 must equal 1 process x batch 2: the sampler shards one global sample stream by
rank, every loss is a mean over the rank's batch and DDP (and `dist.average_gradients` for the
discriminators) averages gradients over ranks, so the averaged gradient is the big-batch gradient
*provided each per-rank loss is a mean with the same denominator on every rank*. That holds for the
entropy / adversarial / discriminator terms (fixed map sizes); `seg_loss` divides by the number of valid
(non-255) pixels, so it sums that count over ranks and scales by the world size (1x2: (S1+S2)/(c1+c2);
2x1: the average of 2*S_r/(c1+c2)). The fixture gives every source frame a different number of ignored
pixels, so the test fails if the count is per rank.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO, tiny_cfg_dict
from seg_uda.config import config_from_dict, save_config

ITERS = 3
TIMEOUT_S = 120  # hard limit per torchrun job: a hang fails the test instead of blocking CI


def _unequal_ignored_source_pixels(game_root: Path) -> list:
    """Rewrite the GTA5-layout label PNGs so frame k has exactly 4k+3 ignored rows (id 0 -> 255), the rest
    valid (255-mapped ids -> road); returns the ignored-pixel counts, all different."""
    from cityscapesscripts.helpers.labels import id2label

    lut = np.arange(256, dtype=np.uint8)
    for i in range(256):
        if i not in id2label or not 0 <= id2label[i].trainId < 255:
            lut[i] = 7  # road
    counts = []
    for k, path in enumerate(sorted((game_root / "labels").glob("*.png"))):
        img = Image.open(path)
        ids = lut[np.array(img)]
        ids[: 4 * k + 3] = 0  # 'unlabeled' -> ignored
        counts.append(int((ids == 0).sum()))
        out = Image.fromarray(ids)  # mode "L"
        if img.mode == "P":  # keep a palette PNG a palette PNG
            out.putpalette(img.getpalette())
        out.save(path)
    return counts


@pytest.fixture(scope="module")
def synthcity(tmp_path_factory):
    from seg_uda.data.synthcity import generate_synthcity

    out = tmp_path_factory.mktemp("synthcity_dist")
    generate_synthcity(out, seed=0, source_size=(64, 48), target_size=(64, 32), num_source=4,
                       num_target_train=4, num_target_val=3, workers=1)  # 3 val images: uneven shards
    counts = _unequal_ignored_source_pixels(out / "game")
    assert len(set(counts)) == len(counts) == 4, counts
    return out


def dist_cfg(root: Path, batch_size: int, max_iters: int = ITERS, **model):
    """The shared tiny AdvEnt config on the CPU: `batch_size` per process, frozen BatchNorm, no periodic checkpoints;
    `model` keys update the model section."""
    return config_from_dict(tiny_cfg_dict(root, "advent", name="tiny_dist", device="cpu",
                                          data={"batch_size": batch_size}, model={"bn_policy": "frozen", **model},
                                          schedule={"max_iters": max_iters, "ckpt_interval": 1000}))


def torchrun(args: list[str], timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node=2 ...` (free rendezvous port) with a hard timeout."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "--max_restarts=0", *args]
    try:
        return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:  # a hang is a failure
        pytest.fail(f"torchrun did not finish within {timeout}s (hang?)\nstdout:\n{e.stdout}\nstderr:\n{e.stderr}")


@pytest.fixture(scope="module")
def ddp_run(synthcity, tmp_path_factory):
    """Train AdvEnt for ITERS iterations with 2 ranks x batch 1 through tools/train.py under torchrun."""
    tmp = tmp_path_factory.mktemp("ddp_run")
    cfg_path = tmp / "config.yaml"
    save_config(dist_cfg(synthcity, batch_size=1), cfg_path)
    work = tmp / "work"
    proc = torchrun(["tools/train.py", str(cfg_path), "--work-dir", str(work), "--no-progress"])
    assert proc.returncode == 0, f"torchrun failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return work, proc


@pytest.mark.slow
def test_two_ranks_batch1_match_one_process_batch2(ddp_run, synthcity, tmp_path):
    _assert_ddp_matches_one_process(ddp_run[0], synthcity, tmp_path)


@pytest.mark.slow
def test_two_ranks_match_one_process_in_the_paper_layout(synthcity, tmp_path):
    """As the ResNet-101 configs run: channels-last model and discriminators, the classifiers and the 1x1
    convolutions as GEMMs (FP32 here, so that the tolerance stays the FP32 one)."""
    layout = {"channels_last": True, "aspp_impl": "gemm", "pointwise_impl": "gemm"}
    cfg_path = tmp_path / "config.yaml"
    save_config(dist_cfg(synthcity, batch_size=1, **layout), cfg_path)
    proc = torchrun(["tools/train.py", str(cfg_path), "--work-dir", str(tmp_path / "ddp"), "--no-progress"])
    assert proc.returncode == 0, f"torchrun failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    _assert_ddp_matches_one_process(tmp_path / "ddp", synthcity, tmp_path / "single", **layout)


def _assert_ddp_matches_one_process(work: Path, synthcity: Path, tmp_path: Path, **model) -> None:
    """The 2-rank x batch-1 run in `work` ends with the weights of one process x batch 2, and they moved."""
    from seg_uda.engine.trainer import Trainer

    torch.set_num_threads(1)
    ddp = torch.load(work / "checkpoints" / "last.pth", weights_only=True)
    assert ddp["iteration"] == ITERS
    single = Trainer(dist_cfg(synthcity, batch_size=2, **model), work_dir=tmp_path, progress=False)
    if model.get("pointwise_impl") == "gemm":
        from seg_uda.models import PointwiseGemmConv2d

        assert any(isinstance(m, PointwiseGemmConv2d) for m in single.model.modules())
    single.train()
    n_checked = 0
    for key in ("model", "method"):  # "method" holds the discriminators
        ref = single.model.state_dict() if key == "model" else single.method.state_dict()
        assert ref.keys() == ddp[key].keys()
        for name, value in ref.items():
            if value.is_floating_point():
                torch.testing.assert_close(ddp[key][name], value, rtol=0, atol=1e-5, msg=f"{key}.{name}")
                n_checked += 1
    assert any(k.startswith("discriminators.") for k in ddp["method"])
    # the run must actually have moved the weights, or equality would be vacuous
    fresh = Trainer(dist_cfg(synthcity, batch_size=2, **model), work_dir=tmp_path / "fresh", progress=False)
    moved = [n for n, p in fresh.method.named_parameters() if not torch.equal(p, ddp["method"][n])]
    assert moved and n_checked > 0


@pytest.mark.slow
@pytest.mark.parametrize("method", ["self_training", "open_self_training"])
def test_self_training_two_ranks_match_one_process(synthcity, tmp_path, method):
    """Mean-teacher self-training (ClassMix, MIC, EMA teacher) under gloo DDP, 2 ranks x 1 image, equals one
    process x 2 images: student, teacher and the per-sample random draws (open set: and the per-image unknown
    pseudo-labels)."""
    from seg_uda.engine.trainer import Trainer

    torch.set_num_threads(1)

    def cfg(batch_size: int):
        d = tiny_cfg_dict(synthcity, method, name="tiny_dist_st", device="cpu",
                          data={"batch_size": batch_size}, model={"bn_policy": "frozen"},
                          schedule={"max_iters": ITERS, "ckpt_interval": 1000})
        d["method"].update({"mic": True, "ema": 0.9, "color_jitter_p": 1.0})
        if method == "open_self_training":
            d["data"]["openset"] = {"enabled": True}
            d["data"]["val"]["load_private"] = True
            d["method"]["confidence_weight"] = False  # the pseudo-labels, unknown ones included, weigh from step 1
        return config_from_dict(d)

    cfg_path = tmp_path / "config.yaml"
    save_config(cfg(1), cfg_path)
    proc = torchrun(["tools/train.py", str(cfg_path), "--work-dir", str(tmp_path / "ddp"), "--no-progress"])
    assert proc.returncode == 0, f"torchrun failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    ddp = torch.load(tmp_path / "ddp" / "checkpoints" / "last.pth", weights_only=True)
    single = Trainer(cfg(2), work_dir=tmp_path / "single", progress=False)
    single.train()
    teacher_keys = [k for k in ddp["method"] if k.startswith("teacher.")]
    assert teacher_keys
    for key, ref in (("model", single.model.state_dict()), ("method", single.method.state_dict())):
        assert ref.keys() == ddp[key].keys()
        for name, value in ref.items():
            if value.is_floating_point():
                torch.testing.assert_close(ddp[key][name], value, rtol=0, atol=1e-5, msg=f"{key}.{name}")
    fresh = Trainer(cfg(2), work_dir=tmp_path / "fresh", progress=False)  # the teacher must have moved
    assert any(not torch.equal(fresh.method.state_dict()[k], ddp["method"][k]) for k in teacher_keys)


@pytest.mark.slow
def test_seg_loss_counts_valid_pixels_over_ranks():
    """Images with 3 and 40 ignored pixels on 2 ranks: same value and averaged gradient as 1 process x 2."""
    proc = torchrun(["tests/runtime/dist_worker.py", "--check-seg-loss"])
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    assert proc.stdout.count("matches the single-process batch") == 2


@pytest.mark.slow
def test_only_rank0_logs_and_checkpoints(ddp_run):
    work, proc = ddp_run
    records = [json.loads(line) for line in (work / "metrics.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in records if r["kind"] == "train"] == list(range(1, ITERS + 1))
    assert sorted(p.name for p in (work / "checkpoints").iterdir()) == [f"iter_{ITERS:07d}.pth", "last.pth"]
    assert proc.stdout.count("final val mIoU") == 1


@pytest.mark.slow
def test_sharded_evaluation_matches_single_process(ddp_run, synthcity, tmp_path):
    from seg_uda.engine.trainer import Trainer

    torch.set_num_threads(1)
    work, _ = ddp_run
    sharded = json.loads((work / "final_metrics.json").read_text())  # 2 ranks, 2 + 1 val images
    trainer = Trainer(dist_cfg(synthcity, batch_size=1), work_dir=tmp_path,
                      resume=str(work / "checkpoints" / "last.pth"), progress=False)
    single = trainer.evaluate()
    assert np.asarray(sharded["confusion"]).sum() == 3 * 64 * 32 - _ignored_val_pixels(trainer)
    assert sharded["confusion"] == single["confusion"]
    assert sharded["miou"] == pytest.approx(single["miou"], abs=1e-12)


@pytest.mark.slow
def test_sharded_label_free_score_matches_single_process(ddp_run, tmp_path):
    """tools/evaluate.py --label-free under 2 ranks (2 + 2 target-train images) sums the counts over ranks."""
    from seg_uda.cli.evaluate import main

    work, _ = ddp_run
    ckpt = work / "checkpoints" / "last.pth"
    proc = torchrun(["tools/evaluate.py", str(ckpt), "--label-free", "--out-json", str(tmp_path / "ddp.json")])
    assert proc.returncode == 0, f"torchrun failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    torch.set_num_threads(1)
    assert main([str(ckpt), "--label-free", "--out-json", str(tmp_path / "one.json")]) == 0
    ddp, one = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("ddp", "one"))
    assert ddp["num_images"] == one["num_images"] == 4
    assert ddp["target_prediction_histogram"] == one["target_prediction_histogram"]  # integer counts: exact
    assert ddp["total_variation"] == one["total_variation"]
    assert ddp["mean_entropy"] == pytest.approx(one["mean_entropy"], rel=1e-12)


def _ignored_val_pixels(trainer) -> int:
    return int(sum((trainer.val_set[i]["label"] == 255).sum() for i in range(len(trainer.val_set))))


@pytest.mark.slow
def test_failing_rank_fails_the_job_instead_of_hanging(synthcity, tmp_path):
    cfg_path = tmp_path / "config.yaml"
    save_config(dist_cfg(synthcity, batch_size=1, max_iters=50), cfg_path)
    proc = torchrun(["tests/runtime/dist_worker.py", "--fail-rank", "1", "--fail-at", "1",
                     str(cfg_path), "--work-dir", str(tmp_path / "work"), "--no-progress"])
    assert proc.returncode != 0
    assert "injected failure on rank 1 at iteration 1" in proc.stdout + proc.stderr


def test_sync_batchnorm_on_cpu_is_a_clear_error(synthcity, tmp_path, monkeypatch):
    """DDP rejects SyncBatchNorm on CPU modules; the trainer says which setting to change instead."""
    from seg_uda.runtime import dist
    from seg_uda.engine.trainer import Trainer

    monkeypatch.setattr(dist, "get_world_size", lambda: 2)  # pretend to be one of 2 ranks, no group needed
    cfg = dist_cfg(synthcity, batch_size=1)
    cfg.model.bn_policy = "sync"
    with pytest.raises(ValueError, match=r"model.bn_policy=sync needs CUDA"):
        Trainer(cfg, work_dir=tmp_path, progress=False)
