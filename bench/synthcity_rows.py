"""The rows of the SynthCity results table (bench/synthcity_results.py): each row's key, label, config and overrides,
and which baseline, oracle and ensemble members it is compared with.

``ROWS`` is the one list of rows: ``bench/accuracy_runs.sh`` runs what ``synthcity_results.py commands`` prints
from it, and ``collect`` / ``table`` read the runs it names.
"""
from __future__ import annotations

X77_ENT = "method.lambda_ent_main=0.077 method.lambda_ent_aux=0.0154"
X77_ADV = "method.lambda_adv_main=0.077 method.lambda_adv_aux=0.0154"
#: DAFormer's rare-class sampling as the self-training runs made before the label-free rule dropped it had it
RCS = "data.rcs_temperature=0.01 data.rcs_min_pixels=340"
#: ADVENT's discriminator-to-segmenter learning-rate ratio (1e-4 / 2.5e-4) and decay, applied to protocol v2's 1e-3
DLR = "optim.disc_lr=4e-4 optim.disc_poly=true"
#: stage 2 of the two-stage rows: start from the protocol's source-only run of the same seed ({runs}, {seed} are
#: filled in per run; docs/synthcity_protocol.md, "Adapting the source-only model")
FROM_SOURCE = "model.init_from={runs}/source_only_s{seed}/checkpoints/last.pth"
#: ADVENT's own BatchNorm policy (batch statistics in training, running statistics updated, affine frozen; session 15,
#: docs/synthcity_protocol.md "ADVENT's own BatchNorm policy"); its rows go to their own results file
BN = "model.bn_policy=frozen_affine"
#: the learning curve's budgets besides the protocol's 600 iterations (docs/self_training.md)
CURVE_BUDGETS = (300, 1200, 2400)
#: (key, label, config under configs/synthcity/ or None for the ensemble, config overrides)
ROWS = [
    ("source_only", "source-only", "source_only_lite0.yaml", ""),
    ("minent", "MinEnt", "minent_lite0.yaml", ""),
    ("advent", "AdvEnt", "advent_lite0.yaml", ""),
    ("ensemble", "AdvEnt+MinEnt (0.5/0.5 ensemble)", None, ""),
    ("minent_cp", "MinEnt + class-ratio prior (ADVENT Sec. 3.3)", "minent_cp_lite0.yaml", ""),
    ("advent_cp", "AdvEnt + class-ratio prior", "advent_cp_lite0.yaml", ""),
    ("ensemble_cp", "AdvEnt+MinEnt with class-ratio prior (0.5/0.5 ensemble)", None, ""),
    ("advent_cp_dlr", "tried: AdvEnt + class-ratio prior, discriminator LR by ADVENT's ratio (4e-4, poly)",
     "advent_cp_lite0.yaml", DLR),
    ("ensemble_cp_dlr", "tried: AdvEnt+MinEnt with class-ratio prior (0.5/0.5 ensemble), AdvEnt's D LR 4e-4",
     None, ""),
    ("source_only_ft", "two-stage control: source-only, 600 more iterations from its own weights",
     "source_only_lite0.yaml", FROM_SOURCE),
    ("minent_cp_ft", "two-stage: MinEnt + class-ratio prior, 600 iterations from the source-only weights",
     "minent_cp_lite0.yaml", FROM_SOURCE),
    ("advent_cp_ft", "two-stage: AdvEnt + class-ratio prior, 600 iterations from the source-only weights",
     "advent_cp_lite0.yaml", FROM_SOURCE),
    ("ensemble_cp_ft", "two-stage: AdvEnt+MinEnt with class-ratio prior (0.5/0.5 ensemble)", None, ""),
    ("self_training_ft", "two-stage: self-training, 600 iterations from the source-only weights",
     "self_training_lite0.yaml", FROM_SOURCE),
    ("self_training_ft_teacher", "two-stage: self-training's EMA teacher", "self_training_lite0.yaml", FROM_SOURCE),
    ("dann", "DANN", "dann_lite0.yaml", ""),
    ("fda", "FDA (β 0.01, η 2)", "fda_lite0.yaml", ""),
    ("self_training", "self-training (ClassMix, EMA teacher, MIC)", "self_training_lite0.yaml", ""),
    ("self_training_teacher", "self-training: its EMA teacher (the student above is the reported model)",
     "self_training_lite0.yaml", ""),
    *[row for n in CURVE_BUDGETS for row in (
        (f"curve{n}_source_only", f"budget {n:,} iterations: source-only", "source_only_lite0.yaml",
         f"schedule.max_iters={n}"),
        (f"curve{n}_self_training", f"budget {n:,} iterations: self-training (EMA by the same rule: 1 - 40/{n})",
         "self_training_lite0.yaml", f"schedule.max_iters={n} method.ema={1 - 40 / n:.4f}"),
        (f"curve{n}_self_training_teacher", f"budget {n:,} iterations: self-training's EMA teacher",
         "self_training_lite0.yaml", f"schedule.max_iters={n} method.ema={1 - 40 / n:.4f}"),
        (f"curve{n}_oracle", f"budget {n:,} iterations: oracle", "oracle_lite0.yaml", f"schedule.max_iters={n}"),
    )],
    ("curve1200_self_training_rcs", "budget 1,200 iterations: self-training with RCS (EMA 1 - 40/1200)",
     "self_training_lite0.yaml", f"schedule.max_iters=1200 method.ema=0.9667 {RCS}"),
    ("self_training_rcs", "ablation: self-training with DAFormer's rare-class sampling (RCS)",
     "self_training_lite0.yaml", RCS),
    ("self_training_no_mic", "ablation: self-training without MIC", "self_training_lite0.yaml", "method.mic=false"),
    ("self_training_no_conf", "ablation: self-training without the confidence weight", "self_training_lite0.yaml",
     "method.confidence_weight=false"),
    ("self_training_rcs_no_mic", "ablation: self-training with RCS, without MIC", "self_training_lite0.yaml",
     f"{RCS} method.mic=false"),
    ("self_training_rcs_no_conf", "ablation: self-training with RCS, without the confidence weight",
     "self_training_lite0.yaml", f"{RCS} method.confidence_weight=false"),
    ("oracle", "oracle", "oracle_lite0.yaml", ""),
    ("frozen_backbone", "source-only, frozen backbone", "source_only_frozen_backbone_lite0.yaml", ""),
    ("scratch", "source-only, from scratch", "source_only_scratch_lite0.yaml", ""),
    ("bn_source_only", "BatchNorm as ADVENT's code (v2a): source-only", "source_only_lite0.yaml", BN),
    ("bn_stats", "v2a: target statistics only (MinEnt at weight 0: target forwards, no target loss)",
     "minent_lite0.yaml", f"{BN} method.lambda_ent_main=0 method.lambda_ent_aux=0"),
    ("bn_minent", "v2a: MinEnt", "minent_lite0.yaml", BN),
    ("bn_advent", "v2a: AdvEnt", "advent_lite0.yaml", BN),
    ("bn_ensemble", "v2a: AdvEnt+MinEnt (0.5/0.5 ensemble)", None, ""),
    ("bn_oracle", "v2a: oracle", "oracle_lite0.yaml", BN),
    ("bn_source_only_adabn", "v2a + AdaBN (500 target images): source-only", None, ""),
    ("bn_stats_adabn", "v2a + AdaBN: target statistics only", None, ""),
    ("bn_minent_adabn", "v2a + AdaBN: MinEnt", None, ""),
    ("bn_advent_adabn", "v2a + AdaBN: AdvEnt", None, ""),
    ("bn_ensemble_adabn", "v2a + AdaBN: AdvEnt+MinEnt (0.5/0.5 ensemble)", None, ""),
    ("advent_minent_single", "AdvEnt+MinEnt (one model, both losses)", "advent_minent_lite0.yaml", ""),
    ("minent_x77", "tried: MinEnt, weights ×77 (collapsed)", "minent_lite0.yaml", X77_ENT),
    ("advent_x77", "tried: AdvEnt, weights ×77 (collapsed)", "advent_lite0.yaml", X77_ADV),
]
#: the two-stage rows compared with their control, source_only_ft (stage 2 of source-only)
FT_ROWS = ("minent_cp_ft", "advent_cp_ft", "ensemble_cp_ft", "self_training_ft", "self_training_ft_teacher")
#: rows whose paired difference (and gap) is to another baseline than the 600-iteration source-only row
CURVE_KINDS = ("source_only", "self_training", "self_training_teacher", "self_training_rcs", "oracle")
BASELINE = {**{f"curve{n}_{k}": f"curve{n}_source_only" for n in CURVE_BUDGETS for k in CURVE_KINDS},
            **{k: "source_only_ft" for k in FT_ROWS},
            "bn_stats": "bn_source_only", **{k: "bn_stats" for k in ("bn_minent", "bn_advent", "bn_ensemble")}}
#: rows whose gap closed is to another oracle than the 600-iteration one: the oracle of the same budget
ORACLE = {**{f"curve{n}_{k}": f"curve{n}_oracle" for n in CURVE_BUDGETS for k in CURVE_KINDS},
          **{k: "curve1200_oracle" for k in ("source_only_ft", *FT_ROWS)},
          **{k: "bn_oracle" for k in ("bn_stats", "bn_minent", "bn_advent", "bn_ensemble")}}
#: the BatchNorm experiment's runs scored again after AdaBN (its addendum): row key -> the run it re-scores
ADABN = {f"{k}_adabn": k for k in ("bn_source_only", "bn_stats", "bn_minent", "bn_advent", "bn_ensemble")}
ADABN_IMAGES = 500
BASELINE.update({"bn_stats_adabn": "bn_source_only_adabn",
                 **{f"{k}_adabn": "bn_stats_adabn" for k in ("bn_minent", "bn_advent", "bn_ensemble")}})
ORACLE.update({k: "bn_oracle" for k in ADABN})
BN_ROWS = ("bn_source_only", "bn_stats", "bn_minent", "bn_advent", "bn_ensemble", "bn_oracle", *ADABN)
#: the paper's AdvEnt+MinEnt rows: key -> its two members, whose final logits are averaged 0.5 / 0.5
ENSEMBLES = {"ensemble": ("minent", "advent"), "ensemble_cp": ("minent_cp", "advent_cp"),
             "ensemble_cp_dlr": ("minent_cp", "advent_cp_dlr"), "ensemble_cp_ft": ("minent_cp_ft", "advent_cp_ft"),
             "bn_ensemble": ("bn_minent", "bn_advent")}
#: config overrides the ensemble's model needs (its members' BatchNorm policy)
ENSEMBLE_OVERRIDES = {"bn_ensemble": BN}
#: rows read from another row's runs: key -> (run folder key, metrics file)
METRICS_FROM = {"self_training_teacher": ("self_training", "final_metrics_teacher.json"),
                "self_training_ft_teacher": ("self_training_ft", "final_metrics_teacher.json"),
                **{f"curve{n}_self_training_teacher": (f"curve{n}_self_training", "final_metrics_teacher.json")
                   for n in CURVE_BUDGETS},
                **{k: (run, "final_metrics_adabn.json") for k, run in ADABN.items()}}
DEFAULT_ROWS = ["source_only", "oracle", "minent", "advent", "minent_cp", "advent_cp", "dann", "fda", "self_training",
                "frozen_backbone", "scratch"]
OUT = "runs/v2"
