"""Open-set scoring: common / private IoU and H-score, unknown-score metrics (AUROC, AP, FPR95), post-hoc scores
and thresholds, all against hand-computed values."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from seg_uda.openset import (
    BinnedScoreMetrics, h_score, openset_from_confusion, openset_prediction, score_metrics, unknown_score,
)
from seg_uda.openset.posthoc import quantile_from_hist, to_score_threshold


# ------------------------------------------------------------------ metrics
def test_common_private_h_from_hand_confusion():
    # rows GT, cols prediction; classes: 0, 1 known, 2 unknown
    conf = np.array([[8, 2, 0],
                     [0, 6, 2],
                     [1, 1, 4]])
    m = openset_from_confusion(conf)
    iou0 = 8 / (10 + 9 - 8)  # tp / (row + col - tp)
    iou1 = 6 / (8 + 9 - 6)
    iou_u = 4 / (6 + 6 - 4)
    assert m.known_iou == pytest.approx([iou0, iou1])
    assert m.common_miou == pytest.approx((iou0 + iou1) / 2)
    assert m.private_iou == pytest.approx(iou_u)
    c, pr = (iou0 + iou1) / 2, iou_u
    assert m.h_score == pytest.approx(2 * c * pr / (c + pr))
    assert h_score(0.0, 0.0) == 0.0
    # ConfusionMatrix layout: an extra last column (no class predicted) counts as missed pixels
    m2 = openset_from_confusion(np.concatenate([conf, [[0], [0], [2]]], axis=1))
    assert m2.private_iou == pytest.approx(4 / (8 + 6 - 4))


def test_score_metrics_hand_computed():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    unknown = np.array([1, 0, 1, 0, 0, 0], bool)
    r = score_metrics(scores, unknown)
    assert r["auroc"] == pytest.approx(7 / 8)  # pairs (pos, neg) ranked correctly: 4 + 3 of 8
    assert r["ap"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)  # precision 1 at recall .5, 2/3 at recall 1
    assert r["fpr95"] == pytest.approx(1 / 4)  # TPR reaches 1 with one false positive of four negatives
    tied = score_metrics(np.array([0.5, 0.5]), np.array([1, 0], bool))
    assert tied["auroc"] == pytest.approx(0.5) and tied["ap"] == pytest.approx(0.5)
    perfect = score_metrics(np.array([0.9, 0.1, 0.2]), np.array([1, 0, 0], bool))
    assert perfect["auroc"] == 1.0 and perfect["ap"] == 1.0 and perfect["fpr95"] == 0.0
    # void pixels are left out: a misleading void pixel changes nothing
    masked = score_metrics(np.append(scores, 0.95), np.append(unknown, False), valid=np.append(np.ones(6, bool), False))
    assert masked["auroc"] == pytest.approx(7 / 8)


def test_binned_metrics_equal_exact_on_distinct_bins():
    rng = np.random.default_rng(0)
    scores = (rng.permutation(1000)[:200] + 0.5) / 1000  # distinct bin centres for 1000 bins
    unknown = rng.random(200) < 0.3
    exact = score_metrics(scores, unknown)
    binned = BinnedScoreMetrics(num_bins=1000)
    binned.update(torch.tensor(scores[:120]), torch.tensor(unknown[:120]))
    binned.update(torch.tensor(scores[120:]), torch.tensor(unknown[120:]))
    got = binned.compute()
    for key in ("auroc", "ap", "fpr95"):
        assert got[key] == pytest.approx(exact[key], abs=1e-12), key


# ------------------------------------------------------------------ post-hoc scores
def test_posthoc_scores_and_prediction():
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.34, 0.33, 0.33]]).T.reshape(1, 3, 1, 2)
    msp = unknown_score(probs, "msp", 3)
    assert msp.flatten().tolist() == pytest.approx([0.3, 0.66])
    ent = unknown_score(probs, "entropy", 3).flatten()
    h = -sum(p * math.log(p) for p in (0.7, 0.2, 0.1)) / math.log(3)
    assert ent[0].item() == pytest.approx(h, rel=1e-5)
    # MSP below 0.5 -> unknown (id K = 3)
    pred = openset_prediction(probs, 3, "msp", to_score_threshold("msp", 0.5))
    assert pred.flatten().tolist() == [0, 3]
    # a K+1 head: argmax over all channels, 'head' score = p(unknown)
    head = torch.tensor([[0.6, 0.1, 0.3], [0.2, 0.2, 0.6]]).T.reshape(1, 3, 1, 2)
    assert openset_prediction(head, 2).flatten().tolist() == [0, 2]
    assert unknown_score(head, "head", 2).flatten().tolist() == pytest.approx([0.3, 0.6])
    assert unknown_score(head, "msp", 2).flatten().tolist() == pytest.approx([1 - 0.6 / 0.7, 0.5])


def test_quantile_threshold_flags_the_requested_fraction():
    hist = torch.zeros(10, dtype=torch.float64)
    hist[[1, 3, 5, 7, 9]] = torch.tensor([50.0, 20, 20, 5, 5], dtype=torch.float64)  # 100 pixels
    t = quantile_from_hist(hist, 0.10)  # bins >= 7 hold 10 pixels
    assert t == pytest.approx(0.7)
    assert quantile_from_hist(hist, 0.05) == pytest.approx(0.9)
