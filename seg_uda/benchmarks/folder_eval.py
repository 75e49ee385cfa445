"""Folder evaluation speed: seg_uda's evaluate_prediction_folder vs cityscapesscripts' evalPixelLevelSemanticLabeling on
the same synthetic Cityscapes-layout PNGs (mIoUs, speed ratio); `python -m seg_uda.benchmarks.folder_eval --help`."""
from __future__ import annotations

import argparse
import glob
import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Tuple

import cv2
import numpy as np
import torch
from PIL import Image

from seg_uda.evaluation import evaluate_prediction_folder, folder_eval, write_label_png

from .common import environment, machine_line

#: --help description (the first line of the former bench/bench_folder_eval.py docstring)
DESCRIPTION = "Benchmark: seg_uda's evaluate_prediction_folder vs cityscapesscripts' evalPixelLevelSemanticLabeling."


def _label_weights() -> Tuple[np.ndarray, np.ndarray]:
    """Label ids with a rough Cityscapes-like frequency (stuff classes frequent, instance classes rare)."""
    ids = np.arange(34)
    w = np.full(34, 0.3)
    for i, v in {7: 12, 8: 4, 11: 8, 21: 6, 23: 3, 26: 2, 22: 1, 17: 1, 0: 1, 4: 0.5, 24: 0.6, 20: 0.4}.items():
        w[i] = v
    return ids, w / w.sum()


def generate(root: Path, n: int, height: int, width: int, seed: int = 0) -> Tuple[Path, Path]:
    """Write gt/<city>/<stem>_gtFine_{labelIds,instanceIds}.png and pred/<city>/<stem>_leftImg8bit.png."""
    from cityscapesscripts.helpers.labels import id2label

    rng = np.random.default_rng(seed)
    ids, w = _label_weights()
    gt_root, pred_root = root / "gt", root / "pred"
    cities = ["frankfurt", "lindau", "munster"]
    gb, pb = 64, 16  # GT region block size, prediction error block size
    gh, gw = -(-height // gb), -(-width // gb)
    for i in range(n):
        city = cities[i % len(cities)]
        (gt_root / city).mkdir(parents=True, exist_ok=True)
        (pred_root / city).mkdir(parents=True, exist_ok=True)
        stem = f"{city}_{i:06d}_{19 + i:06d}"
        blocks = rng.choice(ids, size=(gh, gw), p=w).astype(np.uint8)
        gt = np.kron(blocks, np.ones((gb, gb), np.uint8))[:height, :width]
        inst_blocks = blocks.astype(np.uint16)
        has_inst = np.vectorize(lambda v: id2label[int(v)].hasInstances)(blocks)
        instance_ids = np.arange(int(has_inst.sum()), dtype=np.uint16)
        inst_blocks[has_inst] = blocks[has_inst].astype(np.uint16) * 1000 + instance_ids
        inst = np.kron(inst_blocks, np.ones((gb, gb), np.uint16))[:height, :width]
        err = rng.random((-(-height // pb), -(-width // pb))) < 0.3
        wrong = np.kron(err, np.ones((pb, pb), bool))[:height, :width]
        pred_blocks = rng.choice(ids, size=err.shape, p=w).astype(np.uint8)
        pred = np.where(wrong, np.kron(pred_blocks, np.ones((pb, pb), np.uint8))[:height, :width], gt)
        # GT as cityscapesscripts' json2labelImg writes it (PIL), predictions as tools/evaluate.py writes them
        Image.fromarray(gt).save(gt_root / city / f"{stem}_gtFine_labelIds.png")
        cv2.imwrite(str(gt_root / city / f"{stem}_gtFine_instanceIds.png"), inst)
        write_label_png(pred_root / city / f"{stem}_leftImg8bit.png", pred)
    return gt_root, pred_root


def cityscapes_eval_args(ev, pred_root: Path, export_file: Path, instances: bool = False):
    """cityscapesscripts' evalPixelLevelSemanticLabeling arguments for a programmatic IoU run: its defaults, no
    pixel accuracy, JSON, colours or printing; nIoU only with ``instances`` (it needs *_instanceIds.png)."""
    args = ev.CArgs()
    for key, value in vars(ev.args).items():
        setattr(args, key, value)
    args.evalInstLevelScore = instances
    args.evalPixelAccuracy = False
    args.JSONOutput = False
    args.exportFile = str(export_file)
    args.quiet = True
    args.colorized = False
    args.bold = args.nocol = ""
    args.predictionPath = str(pred_root)
    args.predictionWalk = None
    return args


def run_cityscapes(gt_root: Path, pred_root: Path, tmp: Path, instances: bool) -> Tuple[float, float, bool]:
    """Its main() path: glob GT, getPrediction per GT, evaluateImgLists. Returns (seconds, mIoU, cython?)."""
    import cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling as ev

    args = cityscapes_eval_args(ev, pred_root, tmp / "cs.json", instances)
    t0 = time.perf_counter()
    gts = glob.glob(os.path.join(str(gt_root), "*", "*_gtFine_labelIds.png"))
    preds = [ev.getPrediction(args, g) for g in gts]
    res = ev.evaluateImgLists(preds, gts, args)
    return time.perf_counter() - t0, float(res["averageScoreClasses"]), bool(ev.CSUPPORT)


def decode_floor(files: List[str], decoder: str, threads: int) -> float:
    """Seconds to only decode ``files`` (every ground-truth and prediction PNG): the floor any evaluator that reads
    them pays. cv2 releases the GIL, so it decodes in ``threads`` threads; libspng holds it, so one thread."""
    t0 = time.perf_counter()
    if decoder == "cv2":
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(lambda f: cv2.imread(f, cv2.IMREAD_UNCHANGED), files, chunksize=4))
    else:
        for f in files:
            with open(f, "rb") as fh:
                folder_eval.pyspng.load(fh.read())
    return time.perf_counter() - t0


def main(argv=None) -> None:
    """Generate N pairs of PNGs, time both evaluators (median of --repeats runs) and print / save the rows."""
    p = argparse.ArgumentParser(description=DESCRIPTION)
    p.add_argument("--num-images", type=int, default=20)
    p.add_argument("--height", type=int, default=1024)
    p.add_argument("--width", type=int, default=2048)
    p.add_argument("--workers", type=int, default=None, help="threads for seg_uda (default min(8, cpu_count))")
    p.add_argument("--skip-instances", action="store_true", help="skip cityscapesscripts' default IoU+nIoU run")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per evaluator; the median is reported")
    p.add_argument("--out", help="also write the rows as JSON here")
    a = p.parse_args(argv)
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        t0 = time.perf_counter()
        gt_root, pred_root = generate(tmp, a.num_images, a.height, a.width)
        print(f"generated {a.num_images} pairs of {a.width}x{a.height} in {time.perf_counter() - t0:.1f}s "
              f"(cpu_count={os.cpu_count()}, loadavg={os.getloadavg()[0]:.2f})")
        pngs = sorted(glob.glob(str(tmp / "**" / "*.png"), recursive=True))
        for f in pngs:  # warm the page cache for everyone
            Path(f).read_bytes()

        rows: List[Dict[str, object]] = []
        workers = a.workers if a.workers is not None else min(8, os.cpu_count() or 1)
        fast = folder_eval.pyspng
        for decoder in (["libspng", "cv2"] if fast is not None else ["cv2"]):
            folder_eval.pyspng = fast if decoder == "libspng" else None
            for nw in sorted({1, workers}):
                times = []
                for _ in range(a.repeats):
                    t0 = time.perf_counter()
                    r = evaluate_prediction_folder(pred_root, gt_root, num_workers=nw)
                    times.append(time.perf_counter() - t0)
                rows.append({"name": f"seg_uda, {decoder}, {nw} thread{'s' if nw > 1 else ''}",
                             "s": float(np.median(times)), "miou": r.miou})
        folder_eval.pyspng = fast
        files = [f for f in pngs if "instanceIds" not in f]  # what the evaluators read: labelIds + predictions
        floor_s: Dict[str, float] = {}  # seconds to only decode the PNGs, per decoder
        for decoder, nw in [("cv2", workers)] + ([("libspng", 1)] if fast is not None else []):
            floor_s[decoder] = float(np.median([decode_floor(files, decoder, nw) for _ in range(a.repeats)]))
            rows.append({"name": f"decode only, {decoder}, {nw} thread{'s' if nw > 1 else ''}",
                         "s": floor_s[decoder], "floor": True})
        cs = [run_cityscapes(gt_root, pred_root, tmp, instances=False) for _ in range(a.repeats)]
        cs_s, cs_miou, cython = float(np.median([c[0] for c in cs])), cs[0][1], cs[0][2]
        path = "Cython addToConfusionMatrix" if cython else "pure-Python/numpy np.unique path"
        rows.append({"name": "cityscapesscripts IoU only", "s": cs_s, "miou": cs_miou, "ref": True})
        if not a.skip_instances:
            try:
                s, m, _ = run_cityscapes(gt_root, pred_root, tmp, instances=True)
                rows.append({"name": "cityscapesscripts default (IoU+nIoU)", "s": s, "miou": m, "ref": True})
            except Exception as exc:  # e.g. numpy>=2.4 removed np.in1d, which its nIoU code calls
                print(f"cityscapesscripts default (IoU+nIoU) could not run: {type(exc).__name__}: {exc}")

    ref_s = cs_s
    fastest_s, cv2_floor_s = min(floor_s.values()), floor_s["cv2"]
    print(f"cityscapesscripts confusion path: {path}")
    print(f"median of {a.repeats} runs each; decode floor = the fastest decode-only row; cv2 floor = decoding with "
          f"cv2 on {workers} threads (the floor as issue 18 states it)")
    print(f"{'evaluator':<40}{'seconds':>9}{'ms/img':>9}{'mIoU':>12}{'vs cityscapesscripts IoU':>26}"
          f"{'x decode floor':>16}{'x cv2 floor':>13}")
    for r in rows:
        s = float(r["s"])
        miou = f"{float(r['miou']):>12.8f}" if "miou" in r else f"{'-':>12}"
        print(f"{r['name']:<40}{s:>9.2f}{1000 * s / a.num_images:>9.1f}{miou}{ref_s / s:>25.2f}x{s / fastest_s:>15.2f}x"
              f"{s / cv2_floor_s:>12.2f}x")
        r["x_decode_floor"], r["x_cv2_floor"] = s / fastest_s, s / cv2_floor_s
    mious = [float(r["miou"]) for r in rows if "miou" in r]
    print(f"max |mIoU difference| = {max(mious) - min(mious):.3e}")
    env = environment(workers, torch.device("cpu"))
    print(machine_line(env))
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        for r in rows:
            r["speedup_vs_cityscapesscripts"] = ref_s / float(r["s"])
        Path(a.out).write_text(json.dumps({"num_images": a.num_images, "size": [a.width, a.height],
                                           "env": env, "rows": rows}, indent=2))
        print(f"saved {a.out}")


def cmd_eval(a: argparse.Namespace) -> None:
    """`eval` subcommand: IoU only (no cityscapesscripts nIoU run), rows saved as OUT/eval_folder.json."""
    argv = ["--num-images", str(a.num_images), "--skip-instances"]
    if a.out:
        argv += ["--out", str(Path(a.out) / "eval_folder.json")]
    main(argv)


if __name__ == "__main__":
    main()
