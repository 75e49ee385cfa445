"""SynthCity driver: renders frames in a process pool and writes the GTA5-layout source ("game") and the
Cityscapes-layout target ("real") domains plus class-frequency tables, metadata and a README.

Every frame is seeded from (seed, domain, split, index) with ``numpy.random.SeedSequence``, so the files
are byte-identical for a given seed whatever the number of workers.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import re
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from .scene import PRIVATE_CLASSES, build_scene
from .style import STYLES, warm_up

GENERATOR_VERSION = "1.0.0"
DOMAINS = ("game", "real")
_DOMAIN_CODE = {"game": 1, "real": 2}
_SPLIT_CODE = {"all": 0, "train": 1, "val": 2}
#: invented city names of the target domain (different cities in train and val, as in Cityscapes)
TRAIN_CITIES: Tuple[str, ...] = ("aldenburg", "brackwater", "corvella", "dunmore")
VAL_CITIES: Tuple[str, ...] = ("eastholm", "farrowgate")
_PNG = [cv2.IMWRITE_PNG_COMPRESSION, 1]  # fastest zlib level; output is still deterministic

SizeLike = Union[str, Sequence[int]]


def eval_classes() -> List[Dict[str, object]]:
    """The 19 Cityscapes evaluation classes (name, label id, train id, colour) in train-id order."""
    from cityscapesscripts.helpers.labels import labels

    out = [dict(name=lb.name, id=lb.id, train_id=lb.trainId, color=list(lb.color))
           for lb in labels if 0 <= lb.trainId < 255]
    return sorted(out, key=lambda d: d["train_id"])  # type: ignore[arg-type,return-value]


def parse_size(size: SizeLike, name: str = "size") -> Tuple[int, int]:
    """Parse 'WxH' (or a (W, H) pair) into positive ints; raise ValueError naming the argument otherwise."""
    if isinstance(size, str):
        m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", size)
        if not m:
            raise ValueError(f"malformed {name} '{size}': expected WIDTHxHEIGHT, e.g. 640x360")
        w, h = int(m.group(1)), int(m.group(2))
    else:
        try:
            w, h = (int(v) for v in size)
        except (TypeError, ValueError):
            raise ValueError(f"malformed {name} {size!r}: expected (width, height) or 'WIDTHxHEIGHT'") from None
    if w < 16 or h < 16:
        raise ValueError(f"{name} {w}x{h} is too small: width and height must be >= 16")
    return w, h


def frame_rng(seed: int, domain: str, split: str, index: int) -> np.random.Generator:
    """Independent generator of one frame, derived from (seed, domain, split, index)."""
    return np.random.default_rng(np.random.SeedSequence([seed, _DOMAIN_CODE[domain], _SPLIT_CODE[split], index]))


def render_frame(domain: str, rng: np.random.Generator, size: SizeLike) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one frame: (RGB uint8 HxWx3, Cityscapes label ids uint8 HxW, private ids uint8 HxW).

    Private ids: 0 none, 1 animal, 2 tuk-tuk (target domain only); their label id is 0 ('unlabeled').
    """
    if domain not in STYLES:
        raise ValueError(f"unknown SynthCity domain '{domain}'; valid: {list(DOMAINS)}")
    w, h = parse_size(size)
    cam, buf, rec = build_scene(domain, rng, w, h)
    rgb = STYLES.get(domain)(cam, buf, rec, rng)
    return rgb, rec["label"][buf], rec["private"][buf]


def target_stem(city: str, seq: int, frame: int = 19) -> str:
    """Cityscapes file stem, e.g. 'aldenburg_000003_000019'."""
    return f"{city}_{seq:06d}_{frame:06d}"


def _city_assignment(n: int, cities: Sequence[str]) -> List[Tuple[str, int]]:
    """Split n frames into contiguous per-city blocks: [(city, seq), ...]."""
    out, counters = [], {c: 0 for c in cities}
    for i in range(n):
        c = cities[i * len(cities) // n]
        out.append((c, counters[c]))
        counters[c] += 1
    return out


def _jobs(out: Path, seed: int, src: Tuple[int, int], tgt: Tuple[int, int], n_src: int, n_train: int,
          n_val: int) -> List[tuple]:
    jobs = []
    for i in range(1, n_src + 1):
        name = f"{i:05d}.png"
        jobs.append(("game", "all", i, src, seed, str(out / "game" / "images" / name),
                     str(out / "game" / "labels" / name), None))
    for split, n, cities in (("train", n_train, TRAIN_CITIES), ("val", n_val, VAL_CITIES)):
        for i, (city, seq) in enumerate(_city_assignment(n, cities)):
            stem = target_stem(city, seq)
            img = out / "real" / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png"
            gt = out / "real" / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png"
            priv = out / "real" / "gtFine" / split / city / f"{stem}_gtFine_privateIds.png"
            jobs.append(("real", split, i, tgt, seed, str(img), str(gt), str(priv)))
    return jobs


def _write_png(path: str, arr: np.ndarray) -> None:
    if arr.ndim == 3:
        arr = arr[..., ::-1]  # RGB -> BGR for OpenCV
    if not cv2.imwrite(path, np.ascontiguousarray(arr), _PNG):
        raise OSError(f"could not write '{path}'")


def _run_job(job: tuple) -> Tuple[str, str, np.ndarray, np.ndarray]:
    domain, split, index, size, seed, p_img, p_lbl, p_priv = job
    rgb, lbl, priv = render_frame(domain, frame_rng(seed, domain, split, index), size)
    _write_png(p_img, rgb)
    _write_png(p_lbl, lbl)
    if p_priv is not None:
        _write_png(p_priv, priv)
    return (domain, split, np.bincount(lbl.ravel(), minlength=256).astype(np.int64),
            np.bincount(priv.ravel(), minlength=len(PRIVATE_CLASSES) + 1).astype(np.int64))


def _worker_init() -> None:
    cv2.setNumThreads(1)


def _freq_table(domain: str, pix: np.ndarray, img: np.ndarray, n_img: int, priv_pix: Optional[np.ndarray] = None,
                priv_img: Optional[np.ndarray] = None) -> Dict[str, object]:
    total = int(pix.sum())
    classes = {}
    for c in eval_classes():
        cid = int(c["id"])  # type: ignore[arg-type]
        classes[str(c["name"])] = {"id": cid, "train_id": c["train_id"],
                                   "pixel_fraction": round(int(pix[cid]) / max(total, 1), 8),
                                   "image_fraction": round(int(img[cid]) / max(n_img, 1), 6)}
    eval_ids = [int(c["id"]) for c in eval_classes()]  # type: ignore[arg-type]
    table: Dict[str, object] = {
        "domain": domain, "num_images": n_img, "num_pixels": total, "classes": classes,
        "ignored_pixel_fraction": round((total - int(pix[eval_ids].sum())) / max(total, 1), 8),
    }
    if priv_pix is not None and priv_img is not None:
        table["private"] = {name: {"private_id": k, "pixel_fraction": round(int(priv_pix[k]) / max(total, 1), 8),
                                   "image_fraction": round(int(priv_img[k]) / max(n_img, 1), 6)}
                            for k, name in PRIVATE_CLASSES.items()}
    return table


def _check_count(name: str, v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) <= 0:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


def _prepare_out(out_dir: Union[str, os.PathLike]) -> Path:
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"output path '{out}' exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PermissionError(f"cannot create output directory '{out}': {e.strerror or e}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise PermissionError(f"output directory '{out}' is not writable")
    return out


def _readme(meta: Dict[str, object]) -> str:
    c = meta["counts"]  # type: ignore[index]
    return f"""# SynthCity (generated)

Procedural synthetic->real street-scene benchmark standing in for GTA5->Cityscapes.
Generator version {meta['version']}, seed {meta['seed']}. Regenerate with
`python tools/generate_synthcity.py --out DIR --seed {meta['seed']}` (byte-identical for the same seed and sizes).

## Source domain "game" (GTA5 layout), {meta['source_size'][0]}x{meta['source_size'][1]}, {c['game']} frames
- `game/images/00001.png` ... RGB, flat-shaded rendering look.
- `game/labels/00001.png` ... uint8 **Cityscapes label ids** (road=7, sky=23, car=26; not train ids).

## Target domain "real" (Cityscapes layout), {meta['target_size'][0]}x{meta['target_size'][1]}
- train: {c['real_train']} frames in cities {', '.join(meta['cities']['train'])}
- val: {c['real_val']} frames in cities {', '.join(meta['cities']['val'])}
- `real/leftImg8bit/<split>/<city>/<city>_<seq:06d>_<frame:06d>_leftImg8bit.png` RGB, photo look
  (real-photo textures, weather, blur, noise, vignetting, JPEG artefacts).
- `real/gtFine/<split>/<city>/<stem>_gtFine_labelIds.png` uint8 Cityscapes label ids.
- `real/gtFine/<split>/<city>/<stem>_gtFine_privateIds.png` uint8 private (open-set) classes:
  0 = not private, 1 = animal, 2 = tuk-tuk. These classes occur **only in the target domain**; their pixels
  have label id 0 ('unlabeled', train id 255) in `_gtFine_labelIds.png`, so closed-set evaluation ignores
  them like void. The ego-vehicle hood (label id 1) is void as in Cityscapes.

## Other files
- `game/class_frequencies.json`, `real/class_frequencies.json`: per class name the pixel fraction and the
  fraction of images containing it (19 Cityscapes evaluation classes; private classes for the target).
- `synthcity_meta.json`: seed, sizes, counts, class names/ids/train ids/colours, private ids, version.
"""


def generate_synthcity(out_dir: Union[str, os.PathLike], seed: int = 0, source_size: SizeLike = (640, 360),
                       target_size: SizeLike = (512, 256), num_source: int = 2500, num_target_train: int = 2000,
                       num_target_val: int = 500, workers: Optional[int] = None,
                       preview: Optional[Union[str, os.PathLike]] = None, progress: bool = False) -> Dict[str, object]:
    """Generate the SynthCity benchmark into ``out_dir``; returns the metadata plus frequency tables.

    ``workers`` processes render frames (default ``os.cpu_count()``; 1 renders in this process).
    ``preview`` optionally writes a PNG grid of frames of both domains with colourised labels.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    src, tgt = parse_size(source_size, "source_size"), parse_size(target_size, "target_size")
    n_src = _check_count("num_source", num_source)
    n_train = _check_count("num_target_train", num_target_train)
    n_val = _check_count("num_target_val", num_target_val)
    if workers is None:
        workers = os.cpu_count() or 1
    workers = _check_count("workers", workers)
    out = _prepare_out(out_dir)
    t0 = time.time()

    jobs = _jobs(out, int(seed), src, tgt, n_src, n_train, n_val)
    for d in {os.path.dirname(p) for j in jobs for p in j[5:8] if p is not None}:
        os.makedirs(d, exist_ok=True)
    warm_up()  # build textures once in the parent so forked workers share them

    def consume(results: Iterable[tuple]) -> Dict[Tuple[str, str], List[np.ndarray]]:
        acc: Dict[Tuple[str, str], List[np.ndarray]] = {}
        for k, (domain, split, pix, priv) in enumerate(results):
            a = acc.setdefault((domain, split), [np.zeros(256, np.int64), np.zeros(256, np.int64),
                                                 np.zeros(len(PRIVATE_CLASSES) + 1, np.int64),
                                                 np.zeros(len(PRIVATE_CLASSES) + 1, np.int64), np.zeros(1, np.int64)])
            a[0] += pix
            a[1] += pix > 0
            a[2] += priv
            a[3] += priv > 0
            a[4] += 1
            if progress and (k + 1) % 250 == 0:
                print(f"[synthcity] {k + 1}/{len(jobs)} frames ({time.time() - t0:.1f}s)", flush=True)
        return acc

    if workers == 1 or len(jobs) < 4:
        n_threads = cv2.getNumThreads()
        cv2.setNumThreads(1)  # same OpenCV threading as in the workers
        try:
            acc = consume(map(_run_job, jobs))
        finally:
            cv2.setNumThreads(n_threads)
    else:
        methods = mp.get_all_start_methods()
        ctx = mp.get_context("fork" if "fork" in methods else None)
        chunk = max(1, min(16, len(jobs) // (workers * 8)))
        with ctx.Pool(workers, initializer=_worker_init) as pool:
            acc = consume(pool.imap(_run_job, jobs, chunksize=chunk))

    freqs: Dict[str, Dict[str, object]] = {}
    g = acc[("game", "all")]
    freqs["game"] = _freq_table("game", g[0], g[1], int(g[4][0]))
    tr, va = acc[("real", "train")], acc[("real", "val")]
    real = _freq_table("real", tr[0] + va[0], tr[1] + va[1], int(tr[4][0] + va[4][0]), tr[2] + va[2], tr[3] + va[3])
    real["splits"] = {s: _freq_table("real", a[0], a[1], int(a[4][0]), a[2], a[3]) for s, a in
                      (("train", tr), ("val", va))}
    freqs["real"] = real
    for domain in DOMAINS:
        (out / domain / "class_frequencies.json").write_text(json.dumps(freqs[domain], indent=2) + "\n")

    meta: Dict[str, object] = {
        "generator": "SynthCity", "version": GENERATOR_VERSION, "seed": int(seed),
        "source_size": list(src), "target_size": list(tgt),
        "counts": {"game": n_src, "real_train": n_train, "real_val": n_val},
        "cities": {"train": list(TRAIN_CITIES), "val": list(VAL_CITIES)},
        "label_format": "uint8 Cityscapes label ids (cityscapesscripts.helpers.labels id, not trainId)",
        "classes": eval_classes(),
        "private_classes": {str(k): v for k, v in PRIVATE_CLASSES.items()},
        "private_label_id": 0,
        "private_ids_suffix": "_gtFine_privateIds.png",
        "layout": {"source": "GTA5: game/images/%05d.png, game/labels/%05d.png",
                   "target": "Cityscapes: real/leftImg8bit/<split>/<city>/<stem>_leftImg8bit.png, "
                             "real/gtFine/<split>/<city>/<stem>_gtFine_labelIds.png"},
    }
    (out / "synthcity_meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    (out / "README.md").write_text(_readme(meta))
    if preview is not None:
        from .preview import write_preview

        write_preview(out, preview)
    result = dict(meta)
    result["frequencies"] = freqs
    result["elapsed_s"] = round(time.time() - t0, 2)
    result["out_dir"] = str(out)
    return result
