"""Where ADVENT's class-ratio prior acts: per class, the relaxed prior mu * p_s, the mean predicted probability and
argmax share on unlabelled target-train images, and the share of images whose hinge is active (reads no target label).

  python bench/class_prior_probe.py runs/v2/minent_cp_s0 [--every 50] [--mu 0.5]

The images go through the one evaluation loop (``run_evaluation``, un-augmented, as ``--label-free`` scores them);
the argmax shares are the label-free accumulator's histogram.
"""
from __future__ import annotations

import argparse

import torch
from torch.utils.data import Subset

from seg_uda.builders import build_dataset, source_class_prior
from seg_uda.config import load_config
from seg_uda.data.labels import class_names
from seg_uda.evaluation.checkpoint_model import load_models
from seg_uda.evaluation.label_free import PredictionStatsAccumulator
from seg_uda.evaluation.runner import run_evaluation


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", help="a run folder (config.yaml, checkpoints/last.pth)")
    p.add_argument("--every", type=int, default=50, help="score every N-th target-train image (default 50)")
    p.add_argument("--mu", type=float, default=0.5)
    a = p.parse_args()
    torch.set_num_threads(1)
    cfg = load_config(f"{a.run}/config.yaml")
    models = load_models(cfg, [f"{a.run}/checkpoints/last.pth"], torch.device("cpu"))
    prior = torch.tensor(source_class_prior(cfg))
    target = build_dataset(cfg, "target", with_labels=False, transform_role="val")
    images = Subset(target, range(0, len(target), a.every))
    stats = PredictionStatsAccumulator(len(prior))
    means: list = []  # per image: the mean predicted probability of each class
    run_evaluation(models, images, [stats], require_labels=False,
                   on_sample=lambda batch, probs: means.append(probs.mean((2, 3))[0]))
    means_t = torch.stack(means)
    active = (a.mu * prior[None] > means_t).float().mean(0)
    print(f"{a.run}: {len(means)} target-train images (every {a.every}th), mu = {a.mu}")
    print("| class | mu x source share | mean probability | argmax share | hinge active in |\n|---|---|---|---|---|")
    for c, (name, share) in enumerate(zip(class_names(len(prior)), stats.histogram())):
        print(f"| {name} | {100 * a.mu * prior[c]:.2f}% | {100 * means_t[:, c].mean():.2f}% | {100 * share:.2f}% | "
              f"{100 * active[c]:.0f}% of images |")


if __name__ == "__main__":
    main()
