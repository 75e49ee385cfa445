#!/usr/bin/env python
"""Per-rank entry point for the distributed tests: `tools/train.py`, optionally with one rank made to fail.

Run as `torchrun ... tests/dist_worker.py [--fail-rank R --fail-at I] CONFIG [train.py args]`.
With `--fail-rank R`, rank R raises `RuntimeError` when it starts iteration I, so the tests can
check that a crashing rank makes the whole job exit non-zero instead of hanging the other ranks.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))


class InjectedRankFailure(RuntimeError):
    """The failure injected into one rank by `--fail-rank`."""


def _inject_failure(rank: int, at_iteration: int) -> None:
    """Make `Trainer.run_step` raise on `rank` once the trainer reaches `at_iteration`."""
    if int(os.environ.get("RANK", "0")) != rank:
        return
    from seg_uda.engine.trainer import Trainer

    original = Trainer.run_step

    def run_step(self):  # type: ignore[no-untyped-def]
        if self.iteration >= at_iteration:
            raise InjectedRankFailure(f"injected failure on rank {rank} at iteration {self.iteration}")
        return original(self)

    Trainer.run_step = run_step  # type: ignore[method-assign]


def main(argv: list[str]) -> int:
    import torch

    torch.set_num_threads(1)
    fail_rank, fail_at = None, 0
    while argv and argv[0] in ("--fail-rank", "--fail-at"):
        flag, value, argv = argv[0], int(argv[1]), argv[2:]
        if flag == "--fail-rank":
            fail_rank = value
        else:
            fail_at = value
    if fail_rank is not None:
        _inject_failure(fail_rank, fail_at)
    import train  # tools/train.py

    return train.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
