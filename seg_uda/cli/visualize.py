"""Render colourised predictions, error / entropy / unknown panels, per-class IoU charts and an HTML report.

  python tools/visualize.py CONFIG CKPT [CKPT ...] [key=value ...] --out DIR [--num 8] [--html]
         [--image PATH ...] [--image-dir DIR] [--unknown-score msp|entropy --unknown-threshold T]
         [--compare runs/a/final_metrics.json runs/b/final_metrics.json --labels source-only AdvEnt]
  python tools/visualize.py --compare A.json B.json --labels a b --out DIR --html     # chart + HTML, no model
  python tools/visualize.py CONFIG A.pth B.pth --side-by-side --model-labels source-only MinEnt --out DIR
  python tools/visualize.py --diagnostics runs/a runs/b --labels a b --out DIR       # alignment diagnostics plot

Each sample row is: input | prediction (unknown pixels in magenta) | ground truth | error (yellow = wrong,
grey = ignored) | normalized softmax entropy, each tile captioned in the image. Single images / folders have no
ground truth and no error tile. ``--side-by-side`` predicts with each checkpoint alone (no ensemble) and shows
their predictions, errors and entropies next to each other.
CONFIG may be '-' or omitted to use the config stored in the checkpoint.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple


IMAGE_EXTS = (".png", ".jpg", ".jpeg")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="*", metavar="CONFIG|CKPT|key=value",
                   help="CONFIG ('-' or omitted: the checkpoint's own), checkpoints, then config overrides")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--num", type=int, default=8, help="number of images to render (dataset split or folder)")
    p.add_argument("--image", nargs="+", default=None, help="render these image files (no ground truth)")
    p.add_argument("--image-dir", default=None, help="render the images of this folder (sorted, first --num)")
    p.add_argument("--compare", nargs="+", default=None, help="metrics JSON files to compare in the IoU chart")
    p.add_argument("--labels", nargs="+", default=None, help="run labels for --compare (default: parent folder)")
    p.add_argument("--html", action="store_true", help="write DIR/index.html gathering everything")
    p.add_argument("--side-by-side", action="store_true", help="one prediction per checkpoint instead of an ensemble")
    p.add_argument("--model-labels", nargs="+", default=None, help="names of the checkpoints for --side-by-side")
    p.add_argument("--diagnostics", nargs="+", default=None, metavar="RUN_DIR",
                   help="plot these runs' alignment diagnostics (labels: --labels, else the folder names)")
    p.add_argument("--title", default="seg_uda report")
    p.add_argument("--unknown-score", choices=("msp", "entropy"), default=None,
                   help="flag unknown pixels by max softmax probability < T or normalized entropy > T")
    p.add_argument("--unknown-threshold", type=float, default=None)
    p.add_argument("--weights", type=float, nargs="+", default=None, help="ensemble weights, one per checkpoint")
    p.add_argument("--fuse", choices=("prob", "logit"), default="prob")
    p.add_argument("--flip", action="store_true")
    p.add_argument("--scales", type=float, nargs="+", default=[1.0])
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--amp", choices=("none", "bf16", "fp16"), default=None,
                   help="autocast for inference (default: the config's schedule.amp, as the trainer evaluates)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    return p.parse_args(argv)


def safe_stem(name: str) -> str:
    """A flat file name for a sample name such as 'city/stem' or a path."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name.strip("/\\")) or "sample"


def compare_runs(args: argparse.Namespace) -> List[Tuple[str, Dict[str, Any], str]]:
    from seg_uda.evaluation.runner import load_metrics_json

    files = args.compare or []
    if not files:  # --labels then name the --diagnostics runs
        return []
    labels = args.labels or [Path(f).resolve().parent.name or Path(f).stem for f in files]
    if len(labels) != len(files):
        raise ValueError(f"got {len(labels)} --labels for {len(files)} --compare files")
    return [(lab, load_metrics_json(f), str(f)) for lab, f in zip(labels, files)]


def image_files(args: argparse.Namespace) -> List[Path]:
    files: List[Path] = [Path(p) for p in (args.image or [])]
    if args.image_dir:
        d = Path(args.image_dir)
        if not d.is_dir():
            raise FileNotFoundError(f"--image-dir {d} is not a folder")
        found = sorted(p for p in d.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())
        if not found:
            raise FileNotFoundError(f"no .png/.jpg images under {d}")
        files += found[: args.num]
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"image {f} does not exist")
    return files


def read_rgb(path: Path):
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def render_samples(args: argparse.Namespace, out: Path) -> List[Tuple[str, Path]]:
    """Load the model(s), predict the requested images, write panels + colour predictions; [(caption, png)]."""
    import numpy as np
    import torch

    from seg_uda.data.labels import palette as builtin_palette
    from seg_uda.builders import build_dataset, dataset_transform
    from seg_uda.evaluation.checkpoint_model import load_models, resolve_config, split_cli_inputs
    from seg_uda.evaluation.inference import InferenceOptions, predict_sample_probs
    from seg_uda.visualization import (
        colorize_labels, compose_row, prediction_and_unknown, sample_tiles, save_rgb_png,
    )

    config, checkpoints, overrides = split_cli_inputs(args.inputs)
    if not checkpoints:
        raise ValueError("no checkpoint given (usage: visualize.py CONFIG CKPT ... --out DIR)")
    if args.weights is not None and len(args.weights) != len(checkpoints):
        raise ValueError(f"got {len(args.weights)} --weights for {len(checkpoints)} checkpoints")
    if (args.unknown_score is None) != (args.unknown_threshold is None):
        raise ValueError("--unknown-score and --unknown-threshold go together")
    cfg, first = resolve_config(config, checkpoints, overrides)
    use_cuda = torch.cuda.is_available() if args.device == "auto" else args.device == "cuda"
    device = torch.device("cuda" if use_cuda else "cpu")
    models = load_models(cfg, checkpoints, device, first=first)
    options = InferenceOptions(flip=args.flip, scales=tuple(args.scales))
    from seg_uda.builders import num_known_classes

    k = num_known_classes(cfg)  # K known classes (open-set: a (K+1)-th output channel is *unknown*)

    files = image_files(args)
    samples = []  # (name, rgb uint8, normalized tensor [1,3,h,w], gt or None, out size)
    if files:
        transform = dataset_transform(cfg, "val")
        for f in files:
            rgb = read_rgb(f)
            samples.append((f.stem, rgb, transform(rgb, None)[0][None], None, rgb.shape[:2]))
        pal = builtin_palette(k)
    else:
        if cfg.data.val is None:
            raise ValueError("the config has no data.val split; pass --image/--image-dir")
        ds = build_dataset(cfg, "val")
        pal = getattr(ds, "palette", None) or builtin_palette(k)
        for i in range(min(args.num, len(ds))):
            item = ds[i]
            raw = ds.load_arrays(i)["image"] if hasattr(ds, "load_arrays") else None
            label = item.get("label")
            size = tuple(label.shape[-2:]) if label is not None else tuple(raw.shape[:2])
            if raw is None:
                raise ValueError("dataset has no raw image access (load_arrays)")
            samples.append((item["name"], raw, item["image"][None], None if label is None else label.numpy(), size))

    groups = [[m] for m in models] if args.side_by_side else [models]
    names = args.model_labels or [Path(c).resolve().parent.parent.name for c in checkpoints]
    if args.side_by_side and len(names) != len(models):
        raise ValueError(f"got {len(names)} --model-labels for {len(models)} checkpoints")
    amp = args.amp or cfg.schedule.amp
    rows: List[Tuple[str, Path]] = []
    for name, rgb, x, gt, size in samples:
        per_group = []
        for group in groups:
            probs = predict_sample_probs(group, x, size, args.weights if not args.side_by_side else None,
                                         args.fuse, options, amp)[0].cpu()
            pred, unknown = prediction_and_unknown(probs, num_known=k, unknown_score=args.unknown_score,
                                                   unknown_threshold=args.unknown_threshold)
            per_group.append((pred, unknown, sample_tiles(rgb, probs, pal, gt=gt, unknown=unknown, pred=pred)))
        pred, unknown, tiles = per_group[0]
        if args.side_by_side:
            tiles = {"input": tiles["input"]}
            for kind in ("prediction", "ground_truth", "error", "entropy"):
                for label, (_, _, t) in zip(names, per_group):
                    if kind == "ground_truth" and kind in t:
                        tiles[kind] = t[kind]
                    elif kind in t and kind != "ground_truth":
                        tiles[f"{label}: {kind}"] = t[kind]
        stem = safe_stem(name)
        save_rgb_png(out / "predictions" / f"{stem}_color.png", colorize_labels(pred, pal))
        png = save_rgb_png(out / "panels" / f"{stem}.png", compose_row(tiles, captions=True))
        caption = f"{name}: " + " | ".join(tiles)
        if unknown is not None:
            caption += f" (unknown pixels: {100.0 * float(np.mean(unknown)):.1f}%)"
        rows.append((caption, png))
        print(f"wrote {png}")
    return rows


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    from seg_uda.cli import one_line
    from seg_uda.config import ConfigError
    from seg_uda.data import DatasetError
    from seg_uda.runtime.checkpoint import CheckpointError

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    out = Path(args.out)
    try:
        runs = compare_runs(args)
        if not args.inputs and not runs and not args.diagnostics:
            raise ValueError("nothing to do: give CONFIG CKPT ..., --compare metrics JSON files or --diagnostics runs")
        out.mkdir(parents=True, exist_ok=True)
        panels = render_samples(args, out) if args.inputs else []
        figures = []
        if args.diagnostics:
            from seg_uda.data.labels import class_names
            from seg_uda.visualization import plot_diagnostics

            labels = args.labels if args.labels and not runs else [Path(d).name for d in args.diagnostics]
            if len(labels) != len(args.diagnostics):
                raise ValueError(f"got {len(labels)} --labels for {len(args.diagnostics)} --diagnostics runs")
            fig = plot_diagnostics(list(zip(labels, args.diagnostics)), out / "diagnostics.png", class_names(19))
            figures.append(("Alignment diagnostics (docs/diagnostics.md)", fig))
            print(f"wrote {fig}")
        chart = None
        if runs:
            from seg_uda.visualization import iou_bar_chart

            chart = iou_bar_chart([(lab, m) for lab, m, _ in runs], out / "iou_chart.png")
            print(f"wrote {chart}")
        if args.html:
            from seg_uda.visualization import RunSummary, write_html_report

            report = write_html_report(
                out / "index.html", [RunSummary(lab, m, src) for lab, m, src in runs], chart, panels,
                panel_legend="input | prediction (magenta: unknown) | ground truth | error (yellow: wrong, "
                             "grey: ignored) | normalized entropy (dark: confident)",
                title=args.title, images=figures)
            print(f"wrote {report}")
    except (CheckpointError, ConfigError, DatasetError, FileNotFoundError, ValueError) as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
