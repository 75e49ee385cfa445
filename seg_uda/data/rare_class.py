"""Rare-class sampling (RCS) of the source stream, as in DAFormer (Hoyer et al., CVPR 2022).

Uniform sampling shows rare source classes (train, motorcycle, ...) too seldom for them to be learnt. RCS draws a
class c with P(c) = softmax((1 - f_c) / T) over the classes present (f_c: its share of all labelled pixels), then one
image uniformly among those holding at least ``min_pixels`` pixels of c. Per-image class pixel counts are read from
the labels only (no image decoding) once, and cached beside the data. The sampler keeps the contract of
:class:`seg_uda.runtime.sampling.InfiniteStreamSampler`: the draw at a global stream position is a pure function of
(seed, position), so resumes and any number of ranks see the same samples.
"""
from __future__ import annotations

import bisect
import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator, List, Optional, Tuple

import numpy as np
from torch.utils.data import Sampler

LOGGER = logging.getLogger("seg_uda.data")
CACHE_DIR = ".seg_uda_cache"


def _unwrap(dataset: Any) -> Tuple[Any, Any, Optional[int]]:
    """(dataset with ``load_train_ids``, label remap or None, its own number of classes or None)."""
    protocol = getattr(dataset, "protocol", None)
    if protocol is not None and "dataset" in vars(dataset):  # an open-set wrapper (seg_uda.data.openset)
        if getattr(dataset, "role", None) != "source" or not callable(getattr(protocol, "remap_source", None)):
            raise ValueError("rare-class sampling does not support open-set protocols yet "
                             "(only a source-role OpenSetDataset is supported)")
        return dataset.dataset, protocol.remap_source, int(protocol.num_classes)
    return dataset, None, None


def _image_counts(ids: np.ndarray, num_classes: int) -> np.ndarray:
    flat = np.asarray(ids).ravel().astype(np.intp, copy=False)
    return np.bincount(flat, minlength=num_classes)[:num_classes].astype(np.int64)  # ids >= num_classes (255) drop


def _cache_key(dataset: Any, num_classes: int) -> Optional[str]:
    """Hash of the label files (in dataset order, with sizes and mtimes), the dataset type, mapping and num_classes."""
    samples = getattr(dataset, "samples", None)
    if samples is None or getattr(dataset, "root", None) is None or any(s.label is None for s in samples):
        return None
    mapping = getattr(dataset, "mapping", None)
    h = hashlib.sha256(f"{type(dataset).__name__}|{getattr(mapping, 'name', None)}|{num_classes}\n".encode())
    for s in samples:
        st = os.stat(s.label)
        h.update(f"{s.label}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def _load_cache(path: Path, key: str, shape: Tuple[int, int]) -> Optional[np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) == key and z["counts"].shape == shape:
                return z["counts"].astype(np.int64)
    except FileNotFoundError:
        pass
    except Exception as exc:  # corrupt / foreign file: recompute
        LOGGER.warning("ignoring unreadable rare-class cache '%s' (%s)", path, exc)
    return None


def _save_cache(path: Path, key: str, counts: np.ndarray) -> None:
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(tmp, counts=counts, key=np.array(key))
        os.replace(tmp, path)  # atomic: ranks computing at once never read a half-written file
    except OSError as exc:
        LOGGER.warning("cannot write the rare-class cache '%s' (%s); the counts will be recomputed next run", path, exc)
        try:
            tmp.unlink()
        except OSError:
            pass


def _splitmix64(x: int) -> int:
    """A 64-bit mixing hash (SplitMix64): the draw at a position is a cheap pure function of (seed, position)."""
    z = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return z ^ (z >> 31)


def class_pixel_counts(dataset: Any, num_classes: int, cache: bool = True,
                       workers: Optional[int] = None) -> np.ndarray:
    """[N_images, num_classes] int64 pixel counts per train id (255 and ids >= num_classes ignored), from the labels
    only, at file resolution. Cached as ``<root>/.seg_uda_cache/rcs_<hash>.npz`` when the root is writable."""
    base, remap, base_classes = _unwrap(dataset)
    if not callable(getattr(base, "load_train_ids", None)):
        raise ValueError(f"rare-class sampling needs a dataset with load_train_ids (a SegmentationDataset), "
                         f"got {type(base).__name__}")
    if getattr(base, "load_private", False):
        raise ValueError("rare-class sampling does not support a source built with load_private=True "
                         "(its private pixels would be counted)")
    inner_classes = base_classes if base_classes is not None else num_classes
    shape = (len(base), inner_classes)
    key = _cache_key(base, inner_classes) if cache else None
    path = Path(base.root) / CACHE_DIR / f"rcs_{key}.npz" if key is not None else None
    counts = _load_cache(path, key, shape) if path is not None and key is not None else None
    if counts is None:
        LOGGER.info("rare-class sampling: counting the classes of %d labels (once%s)", len(base),
                    f"; cached at {path}" if path is not None else "")
        with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
            rows = list(pool.map(lambda i: _image_counts(base.load_train_ids(i), inner_classes), range(len(base))))
        counts = np.stack(rows).astype(np.int64) if rows else np.zeros(shape, np.int64)
        if path is not None and key is not None:
            _save_cache(path, key, counts)
    if remap is None:
        return counts
    new_ids = np.asarray(remap(np.arange(inner_classes)), dtype=np.int64)
    out = np.zeros((counts.shape[0], num_classes), dtype=np.int64)
    for old, new in enumerate(new_ids):
        if new < num_classes:
            out[:, new] += counts[:, old]
    return out


def source_label_histogram(pixel_counts: np.ndarray) -> List[float]:
    """Share of each class among all labelled source pixels, from [N_images, C] counts (`class_pixel_counts`)."""
    total = np.asarray(pixel_counts, dtype=np.float64).sum(0)
    if total.sum() <= 0:
        raise ValueError("the source labels hold no pixel of any evaluated class")
    return (total / total.sum()).tolist()


def rcs_class_probs(counts: np.ndarray, temperature: float) -> Tuple[np.ndarray, np.ndarray]:
    """DAFormer's ``get_rcs_class_probs``: (present class ids, P(c) = softmax((1 - f_c) / T)) from [N, C] or [C]
    counts, f_c being the class's share of all labelled pixels."""
    if temperature <= 0:
        raise ValueError(f"rare-class sampling temperature must be positive, got {temperature}")
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum(axis=0) if counts.ndim == 2 else counts
    classes = np.flatnonzero(total > 0)
    if classes.size == 0:
        raise ValueError("rare-class sampling: the source labels hold no labelled pixel")
    logits = (1.0 - total[classes] / total.sum()) / temperature
    probs = np.exp(logits - logits.max())
    return classes.astype(np.int64), probs / probs.sum()


class RareClassSampler(Sampler):
    """Yields ``(index, sample_seed)`` forever for one rank: class c ~ P, then an image with >= ``min_pixels`` (and at
    least one) pixels of c. Rank ``r`` of ``W`` takes global positions ``k * W + r`` from ``k = start``, and the draw
    at a position depends only on (seed, position), like :class:`InfiniteStreamSampler` (same sample seeds)."""

    def __init__(self, counts: np.ndarray, temperature: float, min_pixels: int = 3000, seed: int = 0,
                 rank: int = 0, world_size: int = 1, start: int = 0) -> None:
        counts = np.asarray(counts)
        if counts.ndim != 2 or counts.shape[0] == 0:
            raise ValueError("cannot sample from an empty dataset")
        classes, probs = rcs_class_probs(counts, temperature)
        images = [np.flatnonzero(counts[:, c] >= max(int(min_pixels), 1)) for c in classes]
        keep = [i for i, imgs in enumerate(images) if imgs.size]
        if not keep:
            raise ValueError(f"rare-class sampling: no image holds >= {min_pixels} pixels of any class; "
                             "lower data.rcs_min_pixels")
        self.classes, self.probs = classes[keep], probs[keep] / probs[keep].sum()  # classes without images dropped
        self.images = [images[i] for i in keep]
        self._cdf = np.cumsum(self.probs).tolist()
        self.seed, self.rank, self.world_size, self.start = seed, rank, world_size, start

    def draw(self, pos: int) -> Tuple[int, int]:
        """(class, dataset index) drawn at global stream position ``pos``."""
        h1 = _splitmix64(_splitmix64(self.seed % 2**64) ^ int(pos))
        h2 = _splitmix64(h1)
        c = min(bisect.bisect_right(self._cdf, (h1 >> 11) * 2.0**-53), len(self._cdf) - 1)
        imgs = self.images[c]
        return int(self.classes[c]), int(imgs[h2 % imgs.size])

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        k = self.start
        while True:
            pos = k * self.world_size + self.rank  # position in the global stream
            yield self.draw(pos)[1], (self.seed * 1_000_003 + pos) % (2**31 - 1)
            k += 1
