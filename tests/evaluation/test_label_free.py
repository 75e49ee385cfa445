"""seg_uda.evaluation.label_free and `tools/evaluate.py --label-free`: hand-computed histograms and entropies, and a
run on a tiny SynthCity whose target-train labels have been deleted (the score reads none)."""
import json
import math
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from conftest import make_tiny_synthcity, tiny_cfg_dict
from seg_uda.evaluation.label_free import (
    PredictionStatsAccumulator, format_label_free, label_free_score, source_label_histogram,
)
from seg_uda.evaluation.runner import MissingLabelsError, run_evaluation


class ConstantLogits(nn.Module):
    """Predicts fixed per-class logits at every pixel of the input."""

    def __init__(self, logits):
        super().__init__()
        self.logits = nn.Parameter(torch.tensor(logits, dtype=torch.float32), requires_grad=False)

    def forward(self, x):
        n, _, h, w = x.shape
        return {"out": self.logits.view(1, -1, 1, 1).expand(n, -1, h, w).contiguous()}


def unlabelled(n=3, size=(4, 6)):
    return [{"image": torch.zeros(3, *size), "name": f"img{i}"} for i in range(n)]


def test_accumulator_counts_argmax_and_normalised_entropy():
    acc = PredictionStatsAccumulator(2)
    # three pixels: a tie (the first max wins, entropy 1), a certain class 0 (entropy 0), 0.2 / 0.8
    probs = torch.tensor([[0.5, 1.0, 0.2], [0.5, 0.0, 0.8]]).view(1, 2, 1, 3)
    acc.update({}, probs)
    acc.reduce()  # no process group: a no-op
    assert acc.histogram() == pytest.approx([2 / 3, 1 / 3])
    h = -(0.2 * math.log(0.2) + 0.8 * math.log(0.8)) / math.log(2)
    assert acc.mean_entropy() == pytest.approx((1.0 + 0.0 + h) / 3)
    assert acc.num_images() == 1


def test_accumulator_rejects_wrong_class_count():
    with pytest.raises(ValueError, match="3 classes"):
        PredictionStatsAccumulator(2).update({}, torch.full((1, 3, 1, 1), 1 / 3))


def test_open_set_accumulator_adds_an_unknown_bin():
    """K=2 known classes: a (K+1)-channel model's unknown argmax fills the last bin, entropy normalised by log(K+1);
    a K-channel model leaves it empty; K+2 channels are refused."""
    acc = PredictionStatsAccumulator(2, open_set=True)
    probs = torch.tensor([[0.1, 0.6], [0.2, 0.3], [0.7, 0.1]]).view(1, 3, 1, 2)  # pixel 0 -> unknown, 1 -> class 0
    acc.update({}, probs)
    assert acc.histogram() == pytest.approx([0.5, 0.0, 0.5])
    h = [-sum(p * math.log(p) for p in ps) / math.log(3) for ps in ((0.1, 0.2, 0.7), (0.6, 0.3, 0.1))]
    assert acc.mean_entropy() == pytest.approx(sum(h) / 2)
    closed = PredictionStatsAccumulator(2, open_set=True)
    closed.update({}, torch.tensor([[0.9], [0.1]]).view(1, 2, 1, 1))
    assert closed.histogram() == pytest.approx([1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="4 classes, label-free scoring expects K=2 or K\\+1"):
        acc.update({}, torch.full((1, 4, 1, 1), 0.25))


def test_open_set_score_charges_unknown_predictions():
    """The source has no unknown pixel: a model that calls every target pixel unknown is at distance 1 from it."""
    source = [0.5, 0.3, 0.2]
    score = label_free_score([ConstantLogits([0.0, 0.0, 0.0, 3.0])], unlabelled(), source, open_set=True)
    assert score.target_prediction_histogram == pytest.approx([0.0, 0.0, 0.0, 1.0])
    assert score.source_label_histogram == [0.5, 0.3, 0.2, 0.0]
    assert score.total_variation == pytest.approx(1.0) and score.unknown_fraction == pytest.approx(1.0)
    assert score.to_dict(["a", "b", "c", "unknown"])["unknown_fraction"] == pytest.approx(1.0)
    assert "target pixels predicted unknown: 100.00%" in format_label_free(score, ["a", "b", "c", "unknown"])
    # a closed-set score, and a K-channel model scored open-set (empty unknown bin), have no unknown share
    assert "unknown_fraction" not in label_free_score([ConstantLogits([1.0, 0.0, 0.0])], unlabelled(), source).to_dict()
    k_channels = label_free_score([ConstantLogits([1.0, 0.0, 0.0])], unlabelled(), source, open_set=True)
    assert k_channels.unknown_fraction is None and k_channels.target_prediction_histogram == [1.0, 0.0, 0.0, 0.0]
    assert k_channels.total_variation == pytest.approx(0.5)


def test_source_label_histogram_sums_all_images():
    counts = np.array([[3, 1, 0], [1, 3, 0], [0, 0, 4]])
    assert source_label_histogram(counts) == pytest.approx([1 / 3, 1 / 3, 1 / 3])
    with pytest.raises(ValueError, match="no pixel"):
        source_label_histogram(np.zeros((2, 3), dtype=np.int64))


def test_constant_model_total_variation_is_one_minus_its_source_share():
    source = [0.5, 0.3, 0.2]
    score = label_free_score([ConstantLogits([0.0, 0.0, 3.0])], unlabelled(), source)
    assert score.target_prediction_histogram == pytest.approx([0.0, 0.0, 1.0])
    assert score.total_variation == pytest.approx(1.0 - 0.2)
    p = torch.softmax(torch.tensor([0.0, 0.0, 3.0]), 0)
    assert score.mean_entropy == pytest.approx(float(-(p * p.log()).sum() / math.log(3)), rel=1e-6)
    assert score.num_images == 3
    d = score.to_dict(["a", "b", "c"])
    assert d["target_prediction_histogram"]["c"] == pytest.approx(1.0) and d["source_label_histogram"]["a"] == 0.5
    assert "total variation" in format_label_free(score, ["a", "b", "c"])


def test_unlabelled_items_need_the_opt_in():
    from seg_uda.evaluation.runner import SegmentationAccumulator

    with pytest.raises(MissingLabelsError):
        run_evaluation([ConstantLogits([1.0, 0.0])], unlabelled(), [SegmentationAccumulator(2)])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(config, config path, checkpoint) of 2 iterations on a tiny SynthCity whose target-train labels are then
    deleted, so that any read of them fails."""
    from seg_uda.config import config_from_dict, save_config
    from seg_uda.engine.trainer import Trainer

    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("labelfree")
    root = make_tiny_synthcity(base / "synthcity")
    cfg = config_from_dict(tiny_cfg_dict(root, "source_only", schedule={"max_iters": 2}))
    save_config(cfg, base / "cfg.yaml")
    Trainer(cfg, work_dir=base / "run", progress=False).train()
    shutil.rmtree(root / "real" / "gtFine" / "train")
    return cfg, base / "cfg.yaml", base / "run" / "checkpoints" / "last.pth"


def test_cli_label_free_reads_no_target_label(trained, tmp_path):
    """The histogram equals the model's own argmax over the un-augmented target-train images, with their labels gone."""
    from seg_uda.builders import build_dataset
    from seg_uda.cli.evaluate import main
    from seg_uda.evaluation.checkpoint_model import load_model
    from seg_uda.evaluation.inference import class_argmax, predict_sample_probs

    cfg, cfg_path, ckpt = trained
    out = tmp_path / "lf.json"
    assert main([str(cfg_path), str(ckpt), "--label-free", "--out-json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["num_images"] == 4

    model = load_model(cfg, ckpt, torch.device("cpu"))
    target = build_dataset(cfg, "target", with_labels=False, transform_role="val")
    counts = torch.zeros(19, dtype=torch.float64)
    for i in range(len(target)):
        image = target[i]["image"][None]
        counts += torch.bincount(class_argmax(predict_sample_probs([model], image, tuple(image.shape[-2:])))
                                 .reshape(-1), minlength=19).double()
    expected = (counts / counts.sum()).tolist()
    assert list(res["target_prediction_histogram"].values()) == pytest.approx(expected, abs=1e-12)
    source = list(res["source_label_histogram"].values())
    assert sum(source) == pytest.approx(1.0)
    assert res["total_variation"] == pytest.approx(0.5 * sum(abs(a - b) for a, b in zip(expected, source)))


def test_cli_label_free_refuses_thresholded_scores(trained, capsys):
    from seg_uda.cli.evaluate import main

    _, cfg_path, ckpt = trained
    assert main([str(cfg_path), str(ckpt), "--label-free", "--unknown-score", "msp"]) == 2
    assert "--label-free scores the models' own argmax" in capsys.readouterr().err
