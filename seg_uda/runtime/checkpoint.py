"""Atomic checkpoint writing, rotation of the last K, and safe loading with a fallback."""
from __future__ import annotations

import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch

CKPT_PATTERN = re.compile(r"^iter_(\d+)\.pth$")


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated or not a seg_uda checkpoint; names the file."""


def atomic_save(obj: Any, path: Path) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class OutputDirError(RuntimeError):
    """The run's output directory cannot be created or written; names the directory."""


def ensure_writable_dir(path: str | Path) -> Path:
    """Create `path` (and parents) and prove it is writable, so a bad output path fails before training."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write_test.", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise OutputDirError(f"output directory {path} is not writable: {e}") from None
    return path


def read_checkpoint_file(path: str | Path) -> Any:
    """Whatever `path` holds, read with `weights_only=True`; a missing or unreadable file raises CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, pickle refusing unsafe globals, ...
        raise CheckpointError(f"cannot read checkpoint {path} (truncated or corrupt?): {e}") from None


def load_checkpoint(path: str | Path) -> Dict[str, Any]:
    """Load a checkpoint with `weights_only=True`; a bad file raises CheckpointError naming it."""
    return check_checkpoint(read_checkpoint_file(path), path)


def check_checkpoint(ckpt: Any, path: str | Path) -> Dict[str, Any]:
    """``ckpt`` if it is a seg_uda checkpoint (a dict with a 'model' entry), else a CheckpointError naming `path`."""
    path = Path(path)
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise CheckpointError(f"{path} is not a seg_uda checkpoint (no 'model' entry)")
    return ckpt


def list_checkpoints(ckpt_dir: Path) -> List[Tuple[int, Path]]:
    """Numbered checkpoints in `ckpt_dir`, newest first."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return []
    found = []
    for p in ckpt_dir.iterdir():
        m = CKPT_PATTERN.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found, reverse=True)


class CheckpointManager:
    """Writes `iter_XXXXXXX.pth` + `last.pth` atomically and keeps only the newest `keep_last`."""

    def __init__(self, ckpt_dir: str | Path, keep_last: int = 3) -> None:
        self.dir = Path(ckpt_dir)
        self.keep_last = keep_last

    def save(self, state: Dict[str, Any], iteration: int) -> Path:
        path = self.dir / f"iter_{iteration:07d}.pth"
        atomic_save(state, path)
        # last.pth is a second atomic copy, so it is never half-written either
        atomic_save(state, self.dir / "last.pth")
        for _, old in list_checkpoints(self.dir)[max(self.keep_last, 1):]:
            old.unlink(missing_ok=True)
        for stale in self.dir.glob(".*.pth.*.tmp"):  # left by a process killed mid-save
            stale.unlink(missing_ok=True)
        return path

    def load_latest(self, explicit: Optional[str | Path] = None) -> Optional[Tuple[Dict[str, Any], Path]]:
        """Load `explicit` or `last.pth`; on a corrupt file, warn and fall back to the newest good one."""
        candidates: List[Path] = []
        if explicit is not None:
            if not Path(explicit).is_file():  # a typo in the path is not a corrupt file: no silent fallback
                raise CheckpointError(f"checkpoint to resume from not found: {explicit}")
            candidates.append(Path(explicit))
        else:
            if (self.dir / "last.pth").exists():
                candidates.append(self.dir / "last.pth")
        candidates += [p for _, p in list_checkpoints(self.dir) if p not in candidates]
        if not candidates:
            return None
        errors = []
        for p in candidates:
            try:
                return load_checkpoint(p), p
            except CheckpointError as e:
                errors.append(str(e))
                warnings.warn(f"{e}; falling back to an earlier checkpoint", RuntimeWarning, stacklevel=2)
        raise CheckpointError("no readable checkpoint to resume from:\n  " + "\n  ".join(errors))
