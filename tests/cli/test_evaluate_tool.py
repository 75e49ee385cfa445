"""tools/evaluate.py and seg_uda.evaluation.{runner,checkpoint_model} on a tiny SynthCity + a 2-iteration checkpoint."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import ENV, REPO, eval_cfg_dict, load_tool  # the module-scoped `trained` run is a conftest fixture
from seg_uda.config import config_from_dict
from seg_uda.runtime.checkpoint import CheckpointError

def run_cli(*args):
    return subprocess.run([sys.executable, str(REPO / "tools" / "evaluate.py"), *map(str, args)], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_cli_matches_trainer_and_saved_predictions_roundtrip(trained, tmp_path):
    from cityscapesscripts.helpers.labels import trainId2label

    from seg_uda.config import load_config
    from seg_uda.engine.trainer import Trainer

    root, cfg_path, work = trained
    ckpt = work / "checkpoints" / "last.pth"
    out_json, cm_png, pred_dir = tmp_path / "m.json", tmp_path / "cm.png", tmp_path / "pred"
    r = run_cli(cfg_path, ckpt, "--out-json", out_json, "--confusion-png", cm_png, "--save-predictions", pred_dir)
    assert r.returncode == 0, r.stderr
    res = json.loads(out_json.read_text())
    assert 0.0 <= res["miou"] <= 1.0
    assert res["checkpoints"] == [str(ckpt)] and "evaluate.py" in res["command"]
    assert "mIoU" in r.stdout and "road" in r.stdout
    assert cm_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the trainer's own evaluation of the same checkpoint
    torch.set_num_threads(1)
    trainer = Trainer(load_config(cfg_path), resume=str(ckpt), work_dir=tmp_path / "t", progress=False)
    own = trainer.evaluate()
    assert res["miou"] == pytest.approx(own["miou"], abs=1e-12)
    assert res["confusion"] == own["confusion"]

    # label-id PNGs in the submission layout, valid Cityscapes ids, same score when re-evaluated
    pngs = sorted(pred_dir.rglob("*.png"))
    gts = sorted((root / "real" / "gtFine" / "val").glob("*/*_gtFine_labelIds.png"))
    assert len(pngs) == len(gts) == 2
    valid = {trainId2label[t].id for t in range(19)}
    for p in pngs:
        assert p.name.endswith("_pred_labelIds.png") and p.parent.parent == pred_dir
        from PIL import Image

        ids = np.asarray(Image.open(p))
        assert ids.ndim == 2 and ids.dtype == np.uint8 and set(np.unique(ids).tolist()) <= valid
    out2 = tmp_path / "folder.json"
    r2 = run_cli("--predictions", pred_dir, "--gt-dir", root / "real" / "gtFine" / "val", "--out-json", out2)
    assert r2.returncode == 0, r2.stderr
    folder = json.loads(out2.read_text())
    assert folder["miou"] == pytest.approx(res["miou"], abs=1e-12)
    assert folder["confusion"] == res["confusion"]


def test_ensemble_weight_one_zero_equals_single_model(trained):
    from seg_uda.builders import build_dataset
    from seg_uda.evaluation.checkpoint_model import load_model, resolve_config
    from seg_uda.evaluation import InferenceOptions, evaluate_models

    torch.set_num_threads(1)
    _, cfg_path, work = trained
    ckpt = work / "checkpoints" / "last.pth"
    cfg, _ = resolve_config(str(cfg_path), [ckpt])
    m1 = load_model(cfg, ckpt)
    m2 = load_model(cfg, ckpt)
    with torch.no_grad():  # a clearly different second member
        for p in m2.parameters():
            p.add_(torch.randn_like(p))
    ds = build_dataset(cfg, "val")
    single = evaluate_models([m1], ds, 19)
    for fuse in ("prob", "logit"):
        ens = evaluate_models([m1, m2], ds, 19, weights=[1.0, 0.0], fuse=fuse)
        assert np.array_equal(ens.confusion, single.confusion) and ens.miou == single.miou
    flipped = evaluate_models([m1], ds, 19, options=InferenceOptions(flip=True, scales=(1.0, 0.75)))
    assert int(flipped.confusion.sum()) == int(single.confusion.sum())  # same evaluated pixels
    with pytest.raises(ValueError, match="2 ensemble weights for 1 models"):
        evaluate_models([m1], ds, 19, weights=[0.5, 0.5])


def test_checkpoint_config_used_when_config_is_dash(trained, tmp_path):
    _, _, work = trained
    tool = load_tool("evaluate")
    out = tmp_path / "m.json"
    assert tool.main(["-", str(work / "checkpoints" / "last.pth"), "data.max_val_images=1",
                      "--out-json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["num_images"] == 1 and res["config"] is None and 0.0 <= res["miou"] <= 1.0


def test_truncated_and_missing_checkpoint_errors_name_the_file(trained, tmp_path, capsys):
    _, cfg_path, work = trained
    data = (work / "checkpoints" / "last.pth").read_bytes()
    bad = tmp_path / "truncated.pth"
    bad.write_bytes(data[: len(data) // 2])
    tool = load_tool("evaluate")
    assert tool.main([str(cfg_path), str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "truncated" in err
    missing = tmp_path / "nope.pth"
    assert tool.main([str(cfg_path), str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err


def test_wrong_number_of_weights_is_rejected(trained, capsys):
    _, cfg_path, work = trained
    ckpt = str(work / "checkpoints" / "last.pth")
    tool = load_tool("evaluate")
    assert tool.main([str(cfg_path), ckpt, ckpt, "--weights", "1.0"]) == 2
    assert "got 1 --weights for 2 checkpoints" in capsys.readouterr().err


def test_class_count_mismatch_names_checkpoint(trained):
    from seg_uda.evaluation.checkpoint_model import CheckpointMismatchError, load_model

    root, _, work = trained
    d = eval_cfg_dict(root)
    d["data"]["num_classes"] = 16
    ckpt = work / "checkpoints" / "last.pth"
    with pytest.raises(CheckpointMismatchError, match="num_classes=19") as exc:
        load_model(config_from_dict(d), ckpt)
    assert str(ckpt) in str(exc.value)
    assert isinstance(exc.value, CheckpointError)


def test_split_cli_inputs():
    from seg_uda.evaluation.checkpoint_model import split_cli_inputs

    assert split_cli_inputs(["c.yaml", "a.pth", "b.pth", "data.val.split=test"]) == (
        "c.yaml", ["a.pth", "b.pth"], ["data.val.split=test"])
    assert split_cli_inputs(["-", "a.pth"]) == (None, ["a.pth"], [])
    assert split_cli_inputs(["a.pth"]) == (None, ["a.pth"], [])
    with pytest.raises(ValueError, match="only one CONFIG"):
        split_cli_inputs(["a.yaml", "b.yaml"])


def test_synthia_13_class_miou_is_mean_over_the_13_subset():
    from seg_uda.data.labels import SYNTHIA13_IN_16
    from seg_uda.evaluation import ConfusionMatrix
    from seg_uda.evaluation.runner import metrics_dict

    rng = np.random.default_rng(0)
    cm = ConfusionMatrix(16)
    cm.update(torch.from_numpy(rng.integers(0, 16, 2000)), torch.from_numpy(rng.integers(0, 16, 2000)))
    m = cm.compute()
    d = metrics_dict(m, 16)
    assert d["miou_13"] == pytest.approx(float(np.mean(m.iou[list(SYNTHIA13_IN_16)])))
    assert "miou_13" not in metrics_dict(ConfusionMatrix(19).compute(), 19)


def test_cli_adabn_reestimates_statistics_and_refuses_frozen_batchnorm(trained, tmp_path):
    """--adabn N: a model trained with batch statistics is scored after AdaBN on N unlabelled target images (its
    JSON says how many); a model with frozen BatchNorm gets a one-line error naming the policy."""
    from conftest import tiny_cfg_dict
    from seg_uda.config import save_config
    from seg_uda.engine.trainer import Trainer

    root, cfg_path, work = trained
    r = run_cli(cfg_path, work / "checkpoints" / "last.pth", "--adabn", 4)
    assert r.returncode != 0 and "frozen_affine" in r.stderr and "Traceback" not in r.stderr
    torch.set_num_threads(1)
    cfg = config_from_dict(tiny_cfg_dict(root, "source_only", schedule={"max_iters": 2},
                                         model={"bn_policy": "frozen_affine"}))
    Trainer(cfg, work_dir=tmp_path / "run", progress=False).train()
    save_config(cfg, tmp_path / "cfg.yaml")
    ckpt = tmp_path / "run" / "checkpoints" / "last.pth"
    plain, adabn = tmp_path / "plain.json", tmp_path / "adabn.json"
    assert run_cli(tmp_path / "cfg.yaml", ckpt, "--out-json", plain).returncode == 0
    r = run_cli(tmp_path / "cfg.yaml", ckpt, "--adabn", 4, "--out-json", adabn)
    assert r.returncode == 0, r.stderr
    assert "re-estimated on 4 unlabelled" in r.stdout
    got, before = json.loads(adabn.read_text()), json.loads(plain.read_text())
    assert got["adabn_images"] == 4 and before["adabn_images"] is None and 0.0 <= got["miou"] <= 1.0
