"""Evaluate seg_uda checkpoints (or an ensemble) on data.val at ground-truth resolution, or score a prediction folder.

  python tools/evaluate.py CONFIG CKPT [CKPT ...] [key.sub=value ...] [--weights 0.5 0.5] [--fuse prob|logit]
         [--mode whole|slide --crop-size W H --stride W H] [--flip] [--scales 0.75 1.0 1.25]
         [--out-json m.json] [--confusion-png cm.png] [--save-predictions DIR] [--amp bf16]
  python tools/evaluate.py - CKPT ...          # or just CKPT ...: use the config stored in the checkpoint
  python tools/evaluate.py PAPER_CONFIG GTA2Cityscapes_DeepLabv2_AdvEnt.pth   # a released ADVENT model (converted)
  python tools/evaluate.py CONFIG run/checkpoints/iter_*.pth --best-of-snapshots   # ADVENT's TEST.MODE best
  python tools/evaluate.py --predictions DIR --gt-dir GTFINE_SPLIT_DIR [--num-classes 19]   # no model
  python tools/evaluate.py OPENSET_CONFIG CKPT [--unknown-score msp|entropy|head --unknown-threshold T|auto]
         # open-set configs (data.openset.enabled) report Common mIoU / Private IoU / H-score, AUROC / AP / FPR95
  python tools/evaluate.py CONFIG CKPT --adabn 500   # AdaBN: BatchNorm statistics from 500 unlabelled target images
  python tools/evaluate.py CONFIG CKPT --label-free [--max-images N]
         # no target label read: the target-train predictions' class histogram vs the source label histogram

Positional arguments containing '=' are config overrides (e.g. data.val.split=test data.max_val_images=50).
Distributed: `torchrun --nproc_per_node=N tools/evaluate.py ...` shards the images over ranks.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence


class UsageError(ValueError):
    """Bad combination of command-line arguments."""


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="*", metavar="CONFIG|CKPT|key=value",
                   help="CONFIG ('-' or omitted: the checkpoint's own), checkpoints, then config overrides")
    p.add_argument("--weights", type=float, nargs="+", default=None, help="ensemble weights, one per checkpoint")
    p.add_argument("--fuse", choices=("prob", "logit"), default="prob", help="ensemble fusion of the members")
    p.add_argument("--mode", choices=("whole", "slide"), default="whole", help="whole image or sliding window")
    p.add_argument("--crop-size", type=int, nargs=2, metavar=("W", "H"), default=None, help="slide window size")
    p.add_argument("--stride", type=int, nargs="+", metavar="S", default=None,
                   help="slide stride: W H or one value for both (default 2/3 of the crop)")
    p.add_argument("--flip", action="store_true", help="average with the horizontally flipped image")
    p.add_argument("--scales", type=float, nargs="+", default=[1.0], help="multi-scale factors")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--amp", choices=("none", "bf16", "fp16"), default=None,
                   help="autocast for inference (default: the config's schedule.amp, so the trainer's number)")
    p.add_argument("--max-images", type=int, default=None, help="evaluate only the first N images")
    p.add_argument("--num-workers", type=int, default=None, help="data loader workers (default: config, max 2)")
    p.add_argument("--out-json", default=None, help="write metrics + command line + checkpoints here")
    p.add_argument("--confusion-png", default=None, help="write the row-normalised confusion matrix plot here")
    p.add_argument("--save-predictions", default=None, metavar="DIR",
                   help="write Cityscapes labelIds PNGs DIR/<city>/<stem>_pred_labelIds.png")
    p.add_argument("--predictions", default=None, metavar="DIR", help="score this prediction folder (no model)")
    p.add_argument("--gt-dir", default=None, help="with --predictions: GT folder <city>/*_gtFine_labelIds.png")
    p.add_argument("--num-classes", type=int, default=None, help="with --predictions: 19 or 16 (default: config or 19)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--best-of-snapshots", action="store_true",
                   help="ADVENT's TEST.MODE 'best': score each checkpoint alone and report the best one. It SELECTS "
                        "ON THE TARGET VAL LABELS, so it is optimistic: not comparable to a final-checkpoint figure")
    p.add_argument("--label-free", action="store_true",
                   help="score without target labels: class histogram of the predictions on the unlabelled "
                        "data.target images (val transform) vs the source label histogram (total variation), "
                        "and the mean prediction entropy; with an open-set config, an 'unknown' bin too")
    p.add_argument("--adabn", type=int, default=None, metavar="N",
                   help="AdaBN: first re-estimate every BatchNorm layer's running statistics on the first N "
                        "unlabelled data.target images (val transform, batches of data.batch_size; no label read)")
    p.add_argument("--unknown-score", choices=("msp", "entropy", "head"), default=None,
                   help="open-set: unknown score (default: 'head' for a K+1 model, else 'msp'); needs data.openset")
    p.add_argument("--unknown-threshold", default=None, metavar="T|auto",
                   help="open-set: msp: unknown if max prob < T; entropy: normalized entropy > T; "
                        "head: p(unknown) > T; "
                        "'auto': flag data.openset.calibration_fraction of the calibration (source) pixels")
    return p.parse_args(argv)


def inference_options(args: argparse.Namespace):
    from seg_uda.evaluation.inference import InferenceOptions

    crop = (args.crop_size[1], args.crop_size[0]) if args.crop_size else None
    stride = None
    if args.stride is not None:
        if len(args.stride) not in (1, 2):
            raise UsageError(f"--stride takes W H or a single value, got {args.stride}")
        stride = (args.stride[0], args.stride[0]) if len(args.stride) == 1 else (args.stride[1], args.stride[0])
    if args.mode == "slide" and crop is None:
        raise UsageError("--mode slide needs --crop-size W H")
    return InferenceOptions(mode=args.mode, crop_size=crop, stride=stride, flip=args.flip, scales=tuple(args.scales))


def print_report(metrics, num_classes: int, title: str) -> None:
    from seg_uda.evaluation import format_table
    from seg_uda.evaluation.runner import miou_subset

    print(title)
    print(format_table(metrics))
    if num_classes == 16:
        m13 = miou_subset(metrics)
        print(f"mIoU* (13 classes): {'nan' if m13 is None else f'{100 * m13:.2f}'}")
    print(f"mIoU: {100 * metrics.miou:.2f}")


def write_outputs(args: argparse.Namespace, metrics, num_classes: int, extra: Dict[str, Any]) -> None:
    from seg_uda.evaluation.runner import metrics_dict

    result = metrics_dict(metrics, num_classes)
    if args.out_json:
        payload = {**result, "command": shlex.join([sys.executable, *sys.argv]), "argv": sys.argv[1:], **extra}
        out = Path(args.out_json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(payload, indent=2))
        print(f"metrics written to {out}")
    if args.confusion_png:
        from seg_uda.visualization.charts import confusion_matrix_png

        names = metrics.class_names or [str(i) for i in range(num_classes)]
        print(f"confusion matrix plot: {confusion_matrix_png(metrics.confusion, names, args.confusion_png)}")


def run_prediction_folder(args: argparse.Namespace, config: Optional[str], overrides: List[str],
                          checkpoints: List[str]) -> int:
    from seg_uda.config import load_config
    from seg_uda.data.labels import class_names
    from seg_uda.evaluation import evaluate_prediction_folder
    from seg_uda.evaluation.runner import cityscapes_id_to_trainid_for

    if checkpoints:
        raise UsageError(f"--predictions evaluates saved PNGs; don't also pass checkpoints {checkpoints}")
    cfg = load_config(config, overrides) if config else None
    n = args.num_classes or (cfg.data.num_classes if cfg else 19)
    gt_dir = args.gt_dir
    if gt_dir is None:
        val = dict(cfg.data.val or {}) if cfg else {}
        if val.get("type") != "cityscapes":
            raise UsageError("--predictions needs --gt-dir (or a CONFIG whose data.val is a cityscapes split)")
        gt_dir = str(Path(val["root"]) / "gtFine" / val.get("split", "val"))
    metrics = evaluate_prediction_folder(args.predictions, gt_dir, num_classes=n,
                                         id_to_trainid=cityscapes_id_to_trainid_for(n),
                                         class_names=list(class_names(n)))
    print_report(metrics, n, f"predictions {args.predictions} vs ground truth {gt_dir}")
    write_outputs(args, metrics, n, {"predictions": str(args.predictions), "gt_dir": str(gt_dir)})
    return 0


def run_models(args: argparse.Namespace, config: Optional[str], overrides: List[str], checkpoints: List[str]) -> int:
    from seg_uda.config import ConfigError
    from seg_uda.runtime import dist
    from seg_uda.builders import build_dataset
    from seg_uda.evaluation.checkpoint_model import load_models, resolve_config
    from seg_uda.evaluation.runner import evaluate_models

    if not checkpoints:
        raise UsageError("no checkpoint given (usage: evaluate.py CONFIG CKPT [CKPT ...])")
    if args.weights is not None and len(args.weights) != len(checkpoints):
        raise UsageError(f"got {len(args.weights)} --weights for {len(checkpoints)} checkpoints")
    options = inference_options(args)
    cfg, first = resolve_config(config, checkpoints, overrides)
    if args.amp is None:  # evaluate as the trainer does, so one model gets one number
        args.amp = cfg.schedule.amp
    if args.label_free:
        return run_label_free(args, cfg, checkpoints, options, first)
    if cfg.data.val is None:
        raise ConfigError("the config has no data.val split to evaluate on (set data.val.type/root/split)")
    if args.best_of_snapshots:
        if args.adabn is not None:
            raise UsageError("--adabn re-estimates one model's statistics; --best-of-snapshots does not take it")
        return run_best_of_snapshots(args, cfg, checkpoints, options, first)
    if (args.unknown_score or args.unknown_threshold) and not cfg.data.openset.enabled:
        raise UsageError("--unknown-score/--unknown-threshold need an open-set config (data.openset.enabled=true, "
                         "e.g. configs/openset/synthcity_source_only_lite0.yaml)")
    if args.unknown_threshold is not None and args.unknown_score is None:
        raise UsageError("--unknown-threshold needs --unknown-score")
    device = dist.init_distributed(args.device)
    try:
        models = load_models(cfg, checkpoints, device, first=first)
        del first
        adabn_images = adapt_bn_statistics(args, cfg, models)
        if cfg.data.openset.enabled:
            return run_openset(args, cfg, config, checkpoints, models, options)
        dataset = build_dataset(cfg, "val")
        names = list(getattr(dataset, "class_names", None) or [])
        if len(names) != cfg.data.num_classes:
            from seg_uda.data.labels import class_names

            names = list(class_names(cfg.data.num_classes))
        workers = args.num_workers if args.num_workers is not None else min(cfg.data.num_workers, 2)
        max_images = args.max_images if args.max_images is not None else cfg.data.max_val_images
        metrics = evaluate_models(models, dataset, cfg.data.num_classes, weights=args.weights, fuse=args.fuse,
                                  options=options, amp=args.amp, max_images=max_images, class_names=names,
                                  save_dir=args.save_predictions, num_workers=workers)
        dist.barrier()
        if dist.is_main_process():
            n_images = len(dataset) if max_images is None else min(len(dataset), max_images)
            print_report(metrics, cfg.data.num_classes,
                         f"{len(checkpoints)} model(s) on {cfg.data.val.get('type')} "
                         f"'{cfg.data.val.get('split', '')}' ({n_images} images)")
            write_outputs(args, metrics, cfg.data.num_classes, {
                "config": config, "checkpoints": [str(Path(c)) for c in checkpoints],
                "weights": args.weights, "fuse": args.fuse,
                "inference": vars(options) | {"scales": list(options.scales)},
                "amp": args.amp, "num_images": n_images, "dataset": cfg.data.val,
                "world_size": dist.get_world_size(), "adabn_images": adabn_images,
                "predictions_dir": args.save_predictions,
            })
            if args.save_predictions:
                print(f"label-id predictions written under {args.save_predictions}")
    finally:
        dist.cleanup_distributed()
    return 0


def adapt_bn_statistics(args: argparse.Namespace, cfg, models) -> Optional[int]:
    """With ``--adabn N``: AdaBN on the first N unlabelled data.target images for each model; the images used."""
    if args.adabn is None:
        return None
    from seg_uda.builders import build_dataset
    from seg_uda.evaluation.adabn import reestimate_bn_statistics

    if args.adabn < 1:
        raise UsageError(f"--adabn needs a positive number of images, got {args.adabn}")
    target = build_dataset(cfg, "target", with_labels=False, transform_role="val")
    try:
        used = [reestimate_bn_statistics(m, target, args.adabn, batch_size=cfg.data.batch_size) for m in models]
    except ValueError as e:
        raise UsageError(f"--adabn: {e}") from None
    print(f"AdaBN: running statistics re-estimated on {used[0]} unlabelled data.target images", flush=True)
    return used[0]


def run_label_free(args: argparse.Namespace, cfg, checkpoints: List[str], options, first) -> int:
    """The label-free score (seg_uda.evaluation.label_free) of (an ensemble of) checkpoints: data.target is built
    without labels and predicted un-augmented; the source histogram comes from all data.source labels. With an
    open-set config, the known classes plus *unknown* (whose source share is 0)."""
    from seg_uda.builders import build_dataset, source_class_prior
    from seg_uda.data.labels import class_names
    from seg_uda.data.openset import protocol_from_config
    from seg_uda.evaluation.checkpoint_model import load_models
    from seg_uda.evaluation.label_free import format_label_free, label_free_score
    from seg_uda.runtime import dist

    if args.best_of_snapshots or args.unknown_score or args.unknown_threshold:
        raise UsageError("--label-free scores the models' own argmax (no --best-of-snapshots or --unknown-*)")
    protocol = protocol_from_config(cfg)  # open-set: K known classes + an unknown bin, where an OSBP argmax counts
    open_set = protocol is not None
    names = list(protocol.known_names) + ["unknown"] if protocol else list(class_names(cfg.data.num_classes))
    device = dist.init_distributed(args.device)
    try:
        models = load_models(cfg, checkpoints, device, first=first)
        adapt_bn_statistics(args, cfg, models)
        source = source_class_prior(cfg)
        target = build_dataset(cfg, "target", with_labels=False, transform_role="val")
        workers = args.num_workers if args.num_workers is not None else min(cfg.data.num_workers, 2)
        score = label_free_score(models, target, source, max_images=args.max_images, num_workers=workers,
                                 open_set=open_set, weights=args.weights, fuse=args.fuse, options=options,
                                 amp=args.amp)
        dist.barrier()
        if dist.is_main_process():
            print(f"{len(checkpoints)} model(s), label-free on {cfg.data.target.get('type')} "
                  f"'{cfg.data.target.get('split', '')}' ({score.num_images} unlabelled images)")
            print(format_label_free(score, names))
            if args.out_json:
                payload = {**score.to_dict(names), "command": shlex.join([sys.executable, *sys.argv]),
                           "argv": sys.argv[1:], "checkpoints": [str(Path(c)) for c in checkpoints],
                           "target": cfg.data.target, "source": cfg.data.source}
                out = Path(args.out_json)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(payload, indent=2))
                print(f"label-free score written to {out}")
    finally:
        dist.cleanup_distributed()
    return 0


def run_best_of_snapshots(args: argparse.Namespace, cfg, checkpoints: List[str], options, first) -> int:
    """Each checkpoint scored alone; the best mIoU is reported as ADVENT's TEST.MODE 'best' does (one model at a time
    in memory). The selection uses the target val labels, and the output says so."""
    from seg_uda.data.labels import class_names
    from seg_uda.runtime import dist
    from seg_uda.builders import build_dataset
    from seg_uda.evaluation.checkpoint_model import load_model
    from seg_uda.evaluation.runner import evaluate_models

    if args.weights is not None or cfg.data.openset.enabled or len(checkpoints) < 2:
        raise UsageError("--best-of-snapshots scores each of 2+ checkpoints alone (closed-set, no --weights)")
    n = cfg.data.num_classes
    device = dist.init_distributed(args.device)
    try:
        dataset = build_dataset(cfg, "val")
        workers = args.num_workers if args.num_workers is not None else min(cfg.data.num_workers, 2)
        max_images = args.max_images if args.max_images is not None else cfg.data.max_val_images
        scores = []
        for i, path in enumerate(checkpoints):
            model = load_model(cfg, path, device, checkpoint=first if i == 0 else None)
            m = evaluate_models([model], dataset, n, options=options, amp=args.amp, max_images=max_images,
                                class_names=list(class_names(n)), num_workers=workers)
            scores.append((m.miou, path, m))
            if dist.is_main_process():
                print(f"{path}: mIoU {100 * m.miou:.2f}", flush=True)
        _, best_path, best = max(scores, key=lambda t: t[0])
        if dist.is_main_process():
            label = (f"BEST of {len(checkpoints)} snapshots: {best_path} -- selected on the target val labels "
                     "(ADVENT's TEST.MODE best); optimistic, not comparable to a final-checkpoint figure")
            print_report(best, n, label)
            write_outputs(args, best, n, {"selection": "best_of_snapshots_on_target_val_labels",
                                          "best_checkpoint": str(best_path), "config": cfg.name,
                                          "per_checkpoint_miou": {str(p): v for v, p, _ in scores}})
    finally:
        dist.cleanup_distributed()
    return 0


def run_openset(args: argparse.Namespace, cfg, config: Optional[str], checkpoints: List[str], models, options) -> int:
    """Open-set evaluation: K+1 classes (last = unknown), Common / Private / H and AUROC / AP / FPR95."""
    from seg_uda.runtime import dist
    from seg_uda.builders import build_calibration_dataset, build_dataset, num_known_classes
    from seg_uda.openset.evaluate import evaluate_openset, format_openset
    from seg_uda.openset.posthoc import calibrate_threshold, to_score_threshold

    k = num_known_classes(cfg)
    threshold = None
    if args.unknown_threshold == "auto":
        calib = build_calibration_dataset(cfg)
        frac = cfg.data.openset.calibration_fraction
        threshold = calibrate_threshold(models, calib, args.unknown_score, k, fraction=frac, options=options,
                                        amp=args.amp)
        if dist.is_main_process():
            shown = 1.0 - threshold if args.unknown_score == "msp" else threshold
            print(f"calibrated {args.unknown_score} threshold {shown:.4f} (CLI convention) on {len(calib)} source "
                  f"frames: flags {100 * frac:.1f}% of their labelled pixels")
    elif args.unknown_threshold is not None:
        try:
            threshold = to_score_threshold(args.unknown_score, float(args.unknown_threshold))
        except ValueError:
            raise UsageError("--unknown-threshold must be a number or 'auto', "
                             f"got {args.unknown_threshold!r}") from None
    dataset = build_dataset(cfg, "val")
    workers = args.num_workers if args.num_workers is not None else min(cfg.data.num_workers, 2)
    max_images = args.max_images if args.max_images is not None else cfg.data.max_val_images
    res = evaluate_openset(models, dataset, k, score=args.unknown_score, threshold=threshold,
                           class_names=list(dataset.class_names), weights=args.weights, fuse=args.fuse,
                           options=options, amp=args.amp, max_images=max_images, num_workers=workers)
    dist.barrier()
    if dist.is_main_process():
        print(f"{len(checkpoints)} model(s), open-set on {cfg.data.val.get('type')} '{cfg.data.val.get('split', '')}'"
              f" ({k} known classes + unknown)")
        for name, v in res["iou"].items():
            print(f"  {name:>16s}: {'nan' if v is None else f'{100 * v:.2f}'}")
        print(format_openset(res))
        if args.out_json:
            payload = {**res, "command": shlex.join([sys.executable, *sys.argv]), "argv": sys.argv[1:],
                       "config": config, "checkpoints": [str(Path(c)) for c in checkpoints], "dataset": cfg.data.val}
            out = Path(args.out_json)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(payload, indent=2))
            print(f"metrics written to {out}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    from seg_uda.cli import one_line
    from seg_uda.config import ConfigError
    from seg_uda.data import DatasetError
    from seg_uda.runtime.allocator import keep_freed_memory
    from seg_uda.runtime.checkpoint import CheckpointError

    keep_freed_memory()  # same numbers, fewer page faults
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        from seg_uda.evaluation.checkpoint_model import split_cli_inputs

        config, checkpoints, overrides = split_cli_inputs(args.inputs)
        if args.predictions:
            return run_prediction_folder(args, config, overrides, checkpoints)
        if args.gt_dir:
            raise UsageError("--gt-dir is only used with --predictions DIR")
        return run_models(args, config, overrides, checkpoints)
    except (UsageError, CheckpointError, ConfigError, DatasetError, FileNotFoundError, ValueError) as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
