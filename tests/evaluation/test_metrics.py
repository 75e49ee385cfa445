"""Tests for ConfusionMatrix scores and prediction-folder evaluation (checked against cityscapesscripts)."""
from __future__ import annotations

import glob
import json
import math
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from seg_uda.evaluation import (
    ConfusionMatrix,
    cityscapes_class_names,
    evaluate_prediction_folder,
    format_table,
    match_predictions,
)

# --------------------------------------------------------------------------- ConfusionMatrix


def _hand_matrix() -> ConfusionMatrix:
    # K=3, ignore 255. Valid (gt, pred) pairs: (0,0) (0,0) (0,1) (1,1) (1,2) (2,2); the two 255 pixels are dropped.
    # rows = GT: [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    cm = ConfusionMatrix(3)
    target = torch.tensor([[0, 0, 0, 1], [1, 2, 255, 255]])
    pred = torch.tensor([[0, 0, 1, 1], [2, 2, 0, 1]])
    cm.update(pred, target)
    return cm


def test_hand_made_matrix_gives_hand_computed_scores() -> None:
    cm = _hand_matrix()
    assert cm.matrix.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    r = cm.compute()
    # IoU_c = tp / (row_c + col_c - tp):  c0: 2/(3+2-2)=2/3, c1: 1/(2+2-1)=1/3, c2: 1/(1+2-1)=1/2
    np.testing.assert_allclose(r.iou, [2 / 3, 1 / 3, 1 / 2])
    assert r.miou == pytest.approx((2 / 3 + 1 / 3 + 1 / 2) / 3)  # = 0.5
    # accuracy_c = tp / row_c: 2/3, 1/2, 1/1; pixel accuracy = trace / total = 4/6
    np.testing.assert_allclose(r.acc, [2 / 3, 1 / 2, 1.0])
    assert r.mean_acc == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert r.pixel_acc == pytest.approx(4 / 6)


def test_ignore_label_pixels_do_not_count() -> None:
    cm = _hand_matrix()
    before = cm.mat.clone()
    # only ignored pixels, whatever the prediction: nothing changes
    cm.update(torch.tensor([0, 1, 2, 7]), torch.tensor([255, 255, 255, 255]))
    assert torch.equal(cm.mat, before)
    assert int(cm.mat.sum()) == 6


def test_custom_ignore_index_and_numpy_input() -> None:
    cm = ConfusionMatrix(2, ignore_index=-1)
    cm.update(np.array([1, 1, 0]), np.array([1, -1, 0]))
    assert cm.matrix.tolist() == [[1, 0], [0, 1]]


def test_prediction_outside_classes_is_false_negative() -> None:
    # GT class 0 twice, predicted 0 and 255 (void): tp=1, fn=1, fp=0 -> IoU 1/2; no class gets a false positive
    cm = ConfusionMatrix(2)
    cm.update(torch.tensor([0, 255, 1]), torch.tensor([0, 0, 1]))
    r = cm.compute()
    assert r.confusion.tolist() == [[1, 0, 1], [0, 1, 0]]
    np.testing.assert_allclose(r.iou, [0.5, 1.0])
    assert r.pixel_acc == pytest.approx(2 / 3)


def test_classes_absent_from_gt_and_prediction_are_excluded() -> None:
    cm = ConfusionMatrix(4)
    # class 3 never appears; class 2 is only predicted (IoU 0, counted)
    cm.update(torch.tensor([0, 1, 2, 1]), torch.tensor([0, 1, 1, 1]))
    r = cm.compute()
    assert math.isnan(r.iou[3]) and math.isnan(r.acc[3])
    # IoU0 = 1, IoU1 = 2/(3+2-2) = 2/3, IoU2 = 0/(0+1-0) = 0
    np.testing.assert_allclose(r.iou[:3], [1.0, 2 / 3, 0.0])
    assert r.miou == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert math.isnan(r.acc[2])  # no GT pixels of class 2
    assert r.mean_acc == pytest.approx((1 + 2 / 3) / 2)


def test_class_subset_averages_only_the_subset() -> None:
    r = _hand_matrix().compute(class_subset=[2, 0])
    assert r.class_subset == [0, 2]
    assert r.miou == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert r.mean_acc == pytest.approx((2 / 3 + 1.0) / 2)
    assert r.pixel_acc == pytest.approx(4 / 6)  # over all classes
    with pytest.raises(ValueError, match="outside"):
        _hand_matrix().compute(class_subset=[0, 3])


def test_bad_inputs_raise_clear_errors() -> None:
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match=r"target has ids \[5\]"):
        cm.update(torch.tensor([0, 1]), torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="shape"):
        cm.update(torch.zeros(2, 3, dtype=torch.long), torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(TypeError, match="argmax"):
        cm.update(torch.zeros(4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="collides"):
        ConfusionMatrix(3, ignore_index=1)


def test_add_counts_matches_update() -> None:
    ref = _hand_matrix()
    cm = ConfusionMatrix(3)
    cm.add_counts(np.array([[2, 1, 0], [0, 1, 1], [0, 0, 1]]))
    assert torch.equal(cm.mat, ref.mat)
    with pytest.raises(ValueError, match="shape"):
        cm.add_counts(np.zeros((2, 2), dtype=np.int64))


def test_reduce_is_noop_without_distributed() -> None:
    cm = _hand_matrix()
    before = cm.mat.clone()
    cm.reduce_from_all_processes()
    assert torch.equal(cm.mat, before)


def test_reduce_with_single_process_group(tmp_path: Path) -> None:
    dist = torch.distributed
    if not dist.is_available() or dist.is_initialized():
        pytest.skip("torch.distributed unavailable or already initialised")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        cm = _hand_matrix()
        before = cm.mat.clone()
        cm.reduce_from_all_processes()  # world size 1: sum over one rank is the identity
        assert torch.equal(cm.mat, before)
    finally:
        dist.destroy_process_group()


def test_to_dict_is_json_and_table_lists_classes() -> None:
    cm = ConfusionMatrix(4)
    cm.update(torch.tensor([0, 1, 2, 1]), torch.tensor([0, 1, 1, 1]))
    r = cm.compute(class_names=["a", "b", "c", "d"])
    d = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert d["iou"]["d"] is None and d["iou"]["a"] == 1.0
    assert d["miou"] == pytest.approx(r.miou)
    table = format_table(r)
    for name in ("a", "b", "c", "d", "mean (4)", "pixel acc"):
        assert name in table
    assert f"{100 * r.miou:.2f}" in table


# --------------------------------------------------------------------------- folder evaluation vs cityscapesscripts

_CITIES = {"aachen": 2, "bremen": 2}
_H, _W = 32, 64


def _make_cityscapes_tree(root: Path, seed: int = 0) -> tuple[Path, Path]:
    """GT tree gt/<city>/<stem>_gtFine_labelIds.png and predictions pred/<city>/<stem>_leftImg8bit.png."""
    rng = np.random.default_rng(seed)
    gt_dir, pred_dir = root / "gt", root / "pred"
    # every id 0..33 except train (31) and motorcycle (32) in GT -> those classes are absent from GT;
    # bus (28) is never in GT but sometimes predicted -> IoU 0
    gt_ids = np.array([i for i in range(34) if i not in (28, 31, 32)], dtype=np.uint8)
    pred_ids = np.array([i for i in range(34) if i not in (31, 32)], dtype=np.uint8)
    n = 0
    for city, count in _CITIES.items():
        (gt_dir / city).mkdir(parents=True)
        (pred_dir / city).mkdir(parents=True)
        for j in range(count):
            stem = f"{city}_{j:06d}_{19 + j:06d}"
            blocks = rng.choice(gt_ids, size=(_H // 8, _W // 8))
            gt = np.kron(blocks, np.ones((8, 8), dtype=np.uint8))
            pred = gt.copy()
            noise = rng.random(gt.shape) < 0.35
            pred[noise] = rng.choice(pred_ids, size=int(noise.sum()))
            cv2.imwrite(str(gt_dir / city / f"{stem}_gtFine_labelIds.png"), gt)
            out = pred_dir / city / f"{stem}_leftImg8bit.png"
            if n == 0:  # one palette PNG: its indices are the ids (cv2 alone would expand it to colours)
                img = Image.frombytes("P", (_W, _H), pred.tobytes())
                img.putpalette(list(rng.integers(0, 256, 768)))
                img.save(out)
            else:
                cv2.imwrite(str(out), pred)
            n += 1
    return gt_dir, pred_dir


def _cityscapes_reference(gt_dir: Path, pred_dir: Path, tmp_path: Path):
    """Run cityscapesscripts' evalPixelLevelSemanticLabeling programmatically (IoU only, no files, no printing)."""
    ev = pytest.importorskip("cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling")
    from seg_uda.benchmarks.folder_eval import cityscapes_eval_args

    args = cityscapes_eval_args(ev, pred_dir, tmp_path / "cs_result.json")  # IoU only: nIoU needs instanceIds
    gts = sorted(glob.glob(os.path.join(str(gt_dir), "*", "*_gtFine_labelIds.png")))
    preds = [ev.getPrediction(args, g) for g in gts]
    return ev.evaluateImgLists(preds, gts, args), gts, preds


def test_folder_eval_matches_cityscapesscripts(tmp_path: Path) -> None:
    gt_dir, pred_dir = _make_cityscapes_tree(tmp_path)
    ref, gts, preds = _cityscapes_reference(gt_dir, pred_dir, tmp_path)
    assert match_predictions(pred_dir, gts) == preds

    ours = evaluate_prediction_folder(pred_dir, gt_dir, num_workers=2)
    names = cityscapes_class_names()
    for i, name in enumerate(names):
        theirs = ref["classScores"][name]
        if math.isnan(theirs):
            assert math.isnan(ours.iou[i]), name
        else:
            assert abs(ours.iou[i] - theirs) < 1e-12, name
    assert abs(ours.miou - ref["averageScoreClasses"]) < 1e-9
    # the generated data exercises NaN exclusion and a predicted-only class
    assert math.isnan(ours.iou[names.index("train")]) and ours.iou[names.index("bus")] == 0.0
    assert not math.isnan(ours.miou)
    # single-threaded path gives the identical matrix
    assert np.array_equal(evaluate_prediction_folder(pred_dir, gt_dir, num_workers=1).confusion, ours.confusion)


def test_folder_eval_with_class_subset_and_custom_lut(tmp_path: Path) -> None:
    gt_dir, pred_dir = _make_cityscapes_tree(tmp_path, seed=1)
    full = evaluate_prediction_folder(pred_dir, gt_dir)
    sub = evaluate_prediction_folder(pred_dir, gt_dir, class_subset=[0, 1, 2])
    assert sub.miou == pytest.approx(np.nanmean(full.iou[:3]))
    with pytest.raises(ValueError, match="train id 5"):
        evaluate_prediction_folder(pred_dir, gt_dir, num_classes=3, id_to_trainid={i: 5 for i in range(34)})


def test_folder_eval_missing_prediction_names_gt(tmp_path: Path) -> None:
    gt_dir, pred_dir = _make_cityscapes_tree(tmp_path)
    os.remove(pred_dir / "bremen" / "bremen_000001_000020_leftImg8bit.png")
    with pytest.raises(FileNotFoundError, match="bremen_000001_000020_gtFine_labelIds.png"):
        evaluate_prediction_folder(pred_dir, gt_dir)


def test_folder_eval_duplicate_prediction(tmp_path: Path) -> None:
    gt_dir, pred_dir = _make_cityscapes_tree(tmp_path)
    src = pred_dir / "aachen" / "aachen_000001_000020_leftImg8bit.png"
    (pred_dir / "copy").mkdir()
    (pred_dir / "copy" / "aachen_000001_000020_pred.png").write_bytes(src.read_bytes())
    with pytest.raises(ValueError, match="several predictions.*aachen_000001_000020"):
        evaluate_prediction_folder(pred_dir, gt_dir)


def test_folder_eval_size_mismatch_names_both_files(tmp_path: Path) -> None:
    gt_dir, pred_dir = _make_cityscapes_tree(tmp_path)
    bad = pred_dir / "aachen" / "aachen_000001_000020_leftImg8bit.png"
    cv2.imwrite(str(bad), np.zeros((_H, _W + 2), dtype=np.uint8))
    with pytest.raises(ValueError, match="size mismatch") as err:
        evaluate_prediction_folder(pred_dir, gt_dir, num_workers=2)
    assert str(bad) in str(err.value) and "aachen_000001_000020_gtFine_labelIds.png" in str(err.value)


def test_folder_eval_prediction_id_outside_label_set(tmp_path: Path) -> None:
    gt_dir, pred_dir = _make_cityscapes_tree(tmp_path)
    bad = pred_dir / "bremen" / "bremen_000000_000019_leftImg8bit.png"
    img = cv2.imread(str(bad), cv2.IMREAD_UNCHANGED)
    img[0, 0] = 200
    cv2.imwrite(str(bad), img)
    with pytest.raises(ValueError, match=r"bremen_000000_000019_leftImg8bit.png.*\[200\]"):
        evaluate_prediction_folder(pred_dir, gt_dir)


def test_folder_eval_unknown_gt_id_and_empty_gt(tmp_path: Path) -> None:
    gt_dir, pred_dir = _make_cityscapes_tree(tmp_path)
    bad = gt_dir / "aachen" / "aachen_000000_000019_gtFine_labelIds.png"
    img = cv2.imread(str(bad), cv2.IMREAD_UNCHANGED)
    img[1, 1] = 40
    cv2.imwrite(str(bad), img)
    with pytest.raises(ValueError, match=r"ground truth .*aachen_000000_000019.*\[40\]"):
        evaluate_prediction_folder(pred_dir, gt_dir)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no ground-truth files"):
        evaluate_prediction_folder(pred_dir, tmp_path / "empty")


def test_decoders_and_histogram_paths_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """libspng and the cv2 fallback decode the same ids; calcHist and bincount count the same pairs."""
    from seg_uda.evaluation import folder_eval

    gt_dir, pred_dir = _make_cityscapes_tree(tmp_path, seed=2)
    fast = evaluate_prediction_folder(pred_dir, gt_dir, num_workers=1).confusion
    pngs = sorted(glob.glob(str(tmp_path / "**" / "*.png"), recursive=True))
    decoded = [folder_eval.read_label_png(p) for p in pngs]
    monkeypatch.setattr(folder_eval, "pyspng", None)
    for p, arr in zip(pngs, decoded):
        assert arr.dtype == np.uint8 and arr.shape == (_H, _W)
        assert np.array_equal(folder_eval.read_label_png(p), arr), p
    monkeypatch.setattr(folder_eval, "_CALCHIST_MAX_PIXELS", 0)  # force the bincount path
    assert np.array_equal(evaluate_prediction_folder(pred_dir, gt_dir, num_workers=1).confusion, fast)


@pytest.mark.parametrize("fallback", [False, True])
def test_corrupt_png_error_names_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fallback: bool) -> None:
    from seg_uda.evaluation import folder_eval

    if fallback:
        monkeypatch.setattr(folder_eval, "pyspng", None)
    gt_dir, pred_dir = _make_cityscapes_tree(tmp_path)
    bad = pred_dir / "bremen" / "bremen_000001_000020_leftImg8bit.png"
    bad.write_bytes(bad.read_bytes()[:40])  # truncated
    with pytest.raises(ValueError, match="bremen_000001_000020_leftImg8bit"):
        evaluate_prediction_folder(pred_dir, gt_dir, num_workers=1)


def test_write_label_png_round_trip_and_checks(tmp_path: Path) -> None:
    from seg_uda.evaluation import read_label_png, write_label_png

    ids = np.random.default_rng(0).integers(0, 34, (37, 53), dtype=np.uint8)
    write_label_png(tmp_path / "a.png", ids)
    assert np.array_equal(read_label_png(str(tmp_path / "a.png")), ids)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), ids)  # what cityscapesscripts reads
    with pytest.raises(ValueError, match="b.png.*2-D uint8"):
        write_label_png(tmp_path / "b.png", ids.astype(np.int32))
