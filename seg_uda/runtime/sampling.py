"""Deterministic, resumable, rank-sharded infinite sampling with a per-sample augmentation seed.

Every sample drawn is identified by its position in one global stream: epoch `e` is a
permutation of the dataset seeded by (seed, e). Rank `r` of `W` takes positions r, r+W, r+2W...,
so 2 ranks x batch 1 see exactly the samples of 1 process x batch 2, and resuming at
iteration `i` only needs the position `i * batch_size`. Each sample also gets a seed derived
from its position, which seeds its augmentation, so worker count and resumes don't change it.
"""
from __future__ import annotations

import random
from typing import Any, Dict, Iterator, Optional, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler


def _epoch_permutation(n: int, seed: int, epoch: int, shuffle: bool) -> torch.Tensor:
    if not shuffle:
        return torch.arange(n)
    g = torch.Generator()
    g.manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=g)


class InfiniteStreamSampler(Sampler):
    """Yields `(index, sample_seed)` forever for one rank, starting at this rank's `start` position."""

    def __init__(self, size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 shuffle: bool = True, start: int = 0) -> None:
        if size <= 0:
            raise ValueError("cannot sample from an empty dataset")
        self.size, self.seed, self.rank, self.world_size = size, seed, rank, world_size
        self.shuffle, self.start = shuffle, start

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        k = self.start
        cached_epoch, perm = -1, None
        while True:
            pos = k * self.world_size + self.rank  # position in the global stream
            epoch, offset = divmod(pos, self.size)
            if epoch != cached_epoch:
                perm, cached_epoch = _epoch_permutation(self.size, self.seed, epoch, self.shuffle), epoch
            yield int(perm[offset]), (self.seed * 1_000_003 + pos) % (2**31 - 1)
            k += 1


def seed_everything_for_sample(seed: int, transform: Any = None) -> None:
    """Seed python, numpy, torch and (albumentations >= 2) the transform's own generator."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    for obj in (transform, getattr(transform, "pipeline", None), getattr(transform, "compose", None)):
        setter = getattr(obj, "set_random_seed", None)
        if callable(setter):
            setter(seed)


class SeededDataset(Dataset):
    """Wraps a dataset so that item `(index, seed)` is loaded with its augmentation seeded by `seed`."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, item: Tuple[int, int]) -> Dict[str, Any]:
        index, seed = item
        seed_everything_for_sample(seed, getattr(self.dataset, "transform", None))
        # the seed travels with the sample: a method's own random draws (e.g. ClassMix) keyed on it are then the
        # same whatever the rank split, worker count or resume point
        return {**self.dataset[index], "sample_seed": seed}


def infinite_loader(dataset: Dataset, batch_size: int, seed: int, rank: int, world_size: int,
                    start_batch: int = 0, num_workers: int = 0, shuffle: bool = True,
                    sampler: Optional[Sampler] = None) -> Iterator[Dict[str, Any]]:
    """An endless iterator of batches, positioned after `start_batch` batches already consumed.

    `sampler` replaces the InfiniteStreamSampler (e.g. rare-class sampling): it must yield `(index, sample_seed)`
    forever with the same contract, already positioned at `start_batch * batch_size` for this rank.
    """
    if sampler is None:
        sampler = InfiniteStreamSampler(len(dataset), seed, rank, world_size, shuffle,  # type: ignore[arg-type]
                                        start=start_batch * batch_size)
    loader = DataLoader(SeededDataset(dataset), batch_size=batch_size, sampler=sampler,
                        num_workers=num_workers, drop_last=True, persistent_workers=num_workers > 0,
                        pin_memory=torch.cuda.is_available())
    return iter(loader)


def shard_indices(n: int, rank: int, world_size: int, limit: Optional[int] = None) -> list:
    """Indices of an evaluation split handled by `rank`: round-robin, no padding, so sums are exact."""
    total = n if limit is None else min(n, limit)
    return list(range(rank, total, world_size))
