"""Reliability: resume after SIGKILL, checkpoint-on-SIGTERM/SIGINT, atomic/rotated/corrupt checkpoints,
non-finite loss through the CLI, and refusal of untrusted checkpoints, configs and dataset paths.

Subprocess runs go through `tools/train.py` on a tiny SynthCity (deeplabv2 + mobilenet_v2 without weights,
advent with 8-channel discriminators) with one CPU thread, so they are bit-for-bit reproducible.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import torch
import yaml

from conftest import REPO, tiny_cfg_dict
from seg_uda.config import ConfigError, config_from_dict, load_config
from seg_uda.data import DatasetError
from seg_uda.builders import build_dataset
from seg_uda.runtime.checkpoint import (
    CheckpointError, CheckpointManager, atomic_save, list_checkpoints, load_checkpoint,
)
from seg_uda.engine.trainer import Trainer

TRAIN = REPO / "tools" / "train.py"
MAX_ITERS = 6

# Runs tools/train.py in-process after patching Trainer.run_step: an optional sleep per step (so that a
# signal lands mid-run) and an optional NaN in `seg_main` at one iteration (fault injection).
HARNESS = """
import os, runpy, sys, time
import torch
torch.set_num_threads(1)
from seg_uda.engine.trainer import Trainer
_sleep = float(os.environ.get("REL_STEP_SLEEP", "0"))
_nan_at = int(os.environ.get("REL_NAN_AT", "-1"))
_run_step = Trainer.run_step
def run_step(self):
    time.sleep(_sleep)
    if self.iteration == _nan_at:
        gen = self.method.generator_step
        def poisoned(*a, **k):
            losses, cache = gen(*a, **k)
            losses["seg_main"] = losses["seg_main"] * float("nan")
            return losses, cache
        self.method.generator_step = poisoned
    return _run_step(self)
Trainer.run_step = run_step
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


# ---------------------------------------------------------------------------------------- helpers


def rel_cfg_dict(root: Path, method: str = "advent", max_iters: int = MAX_ITERS, **schedule: Any) -> Dict[str, Any]:
    """The shared tiny config (a YAML file's plain dict): MobileNet-V2 encoder, CPU, a checkpoint per iteration."""
    margs: Dict[str, Any] = {"disc_ndf": 8} if method in ("advent", "advent_minent") else {}
    d = tiny_cfg_dict(root, method, name=f"rel_{method}", device="cpu", model={"encoder_name": "mobilenet_v2"},
                      schedule={"max_iters": max_iters, "ckpt_interval": 1, "keep_last": 3, **schedule})
    d["method"].update(margs)
    return d


def write_cfg(path: Path, d: Dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(d))
    return path


def env() -> Dict[str, str]:
    e = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    e["PYTHONPATH"] = os.pathsep.join([str(REPO), e.get("PYTHONPATH", "")])
    return e


def cli(*args: str, harness: Optional[Path] = None, extra_env: Optional[Dict[str, str]] = None,
        popen: bool = False, timeout: float = 120) -> Any:
    """Run (or start, with popen=True) tools/train.py, optionally through the fault-injection harness."""
    cmd = [sys.executable, *([str(harness)] if harness else []), str(TRAIN), *args, "--no-progress"]
    e = {**env(), **(extra_env or {})}
    if popen:
        return subprocess.Popen(cmd, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def harness(tmp_path) -> Path:
    p = tmp_path / "harness.py"
    p.write_text(HARNESS)
    return p


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    """Poll `predicate` until true; fail early (with the child's output) if the child exits first."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"child exited with {proc.returncode} before the condition held:\n{out}\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.communicate()
            pytest.fail("timed out waiting for the child")
        time.sleep(0.05)


def records(work_dir: Path) -> List[Dict[str, Any]]:
    """The JSON records of metrics.jsonl (a line cut short by SIGKILL mid-write is skipped)."""
    out = []
    for line in (work_dir / "metrics.jsonl").read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return out


def train_losses(recs: List[Dict[str, Any]]) -> Dict[int, Dict[str, Any]]:
    """Per iteration, the last train record (a resumed run re-logs iterations after its checkpoint)."""
    return {r["iter"]: {k: v for k, v in r.items() if k != "time"} for r in recs if r["kind"] == "train"}


def assert_same_state(a: Dict[str, torch.Tensor], b: Dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.fixture(scope="module")
def reference(synthcity, tmp_path_factory):
    """An uninterrupted in-process run of the tiny config (1 thread): final states, losses and its work dir."""
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("reference")
    cfg = load_config(write_cfg(tmp / "cfg.yaml", rel_cfg_dict(synthcity)))
    t = Trainer(cfg, work_dir=tmp / "run", progress=False)
    t.train()
    return {"model": {k: v.clone() for k, v in t.model.state_dict().items()},
            "method": {k: v.clone() for k, v in t.method.state_dict().items()},
            "losses": train_losses(records(tmp / "run")), "work_dir": tmp / "run"}


def final_state(work_dir: Path) -> Dict[str, Any]:
    ck = load_checkpoint(work_dir / "checkpoints" / "last.pth")
    assert ck["iteration"] == MAX_ITERS
    return ck


# ---------------------------------------------------------------------------------------- kill / signals
@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted_run(synthcity, reference, harness, tmp_path):
    cfg = write_cfg(tmp_path / "cfg.yaml", rel_cfg_dict(synthcity))
    wd = tmp_path / "run"
    proc = cli(str(cfg), "--work-dir", str(wd), harness=harness, extra_env={"REL_STEP_SLEEP": "0.3"}, popen=True)
    wait_for(lambda: any(k >= 2 for k, _ in list_checkpoints(wd / "checkpoints")), proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    killed_at = load_checkpoint(wd / "checkpoints" / "last.pth")["iteration"]
    assert 1 <= killed_at < MAX_ITERS  # really interrupted mid-run (last.pth may lag iter_k by one save)
    metrics_before = (wd / "metrics.jsonl").read_bytes()
    ckpts_before = {p.name: p.read_bytes() for _, p in list_checkpoints(wd / "checkpoints")}

    r = cli(str(cfg), "--work-dir", str(wd), "--resume")
    assert r.returncode == 0, r.stderr
    ck = final_state(wd)
    assert_same_state(ck["model"], reference["model"])
    assert_same_state(ck["method"], reference["method"])
    # nothing written before the kill is lost: the old log is a prefix of the new one ...
    assert (wd / "metrics.jsonl").read_bytes().startswith(metrics_before)
    recs = records(wd)
    resume = [r for r in recs if r["kind"] == "resume"]
    assert [r["iter"] for r in resume] == [killed_at]
    # ... and the resumed run logs exactly the losses of the uninterrupted one
    assert train_losses(recs) == reference["losses"]
    # checkpoints up to the resumed one that rotation keeps are untouched by the resumed run
    for name, data in ckpts_before.items():
        if int(name[5:12]) <= killed_at and (wd / "checkpoints" / name).exists():
            assert (wd / "checkpoints" / name).read_bytes() == data


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_writes_checkpoint_exits_128_plus_sig_and_resumes(sig, synthcity, reference, harness, tmp_path):
    cfg = write_cfg(tmp_path / "cfg.yaml", rel_cfg_dict(synthcity, ckpt_interval=1000))
    wd = tmp_path / "run"
    proc = cli(str(cfg), "--work-dir", str(wd), harness=harness, extra_env={"REL_STEP_SLEEP": "0.3"}, popen=True)
    wait_for(lambda: (wd / "metrics.jsonl").is_file() and '"kind": "train"' in (wd / "metrics.jsonl").read_text(),
             proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err
    assert f"received signal {int(sig)}" in out + err
    ck = load_checkpoint(wd / "checkpoints" / "last.pth")
    stopped_at = ck["iteration"]
    assert 1 <= stopped_at < MAX_ITERS
    # the signal checkpoint holds everything the run logged: its last train record is its iteration
    assert max(train_losses(records(wd))) == stopped_at
    if sig == signal.SIGINT:  # resuming is the same path for both signals; check it cheaply in-process
        t = Trainer(load_config(cfg), resume=True, work_dir=wd, progress=False)
        assert t.iteration == stopped_at and t.resumed_from == wd / "checkpoints" / "last.pth"
        return
    r = cli(str(cfg), "--work-dir", str(wd), "--resume")
    assert r.returncode == 0, r.stderr
    ck = final_state(wd)
    assert_same_state(ck["model"], reference["model"])
    assert train_losses(records(wd)) == reference["losses"]


# ---------------------------------------------------------------------------------------- checkpoints
def small_state(i: int) -> Dict[str, Any]:
    return {"model": {"w": torch.full((64,), float(i))}, "iteration": i}


def test_crash_during_save_keeps_previous_last_and_leaves_no_temp_file(tmp_path, monkeypatch):
    mgr = CheckpointManager(tmp_path, keep_last=3)
    mgr.save(small_state(1), 1)
    good = (tmp_path / "last.pth").read_bytes()
    real_save = torch.save

    def crashing_save(obj, f, *a, **k):
        f.write(b"PK\x03\x04 half a checkpoint")  # some bytes reach the temp file, then the crash
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(torch, "save", crashing_save)
    with pytest.raises(OSError, match="simulated"):
        mgr.save(small_state(2), 2)
    monkeypatch.setattr(torch, "save", real_save)
    assert (tmp_path / "last.pth").read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iter_0000001.pth", "last.pth"]
    assert load_checkpoint(tmp_path / "last.pth")["iteration"] == 1


def test_keeps_last_k_and_removes_stale_temp_files(tmp_path):
    mgr = CheckpointManager(tmp_path, keep_last=2)
    stale = tmp_path / ".last.pth.abc123.tmp"  # what a SIGKILL during atomic_save leaves behind
    stale.write_bytes(b"partial")
    for i in range(1, 6):
        mgr.save(small_state(i), i)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iter_0000004.pth", "iter_0000005.pth", "last.pth"]
    assert load_checkpoint(tmp_path / "last.pth")["iteration"] == 5


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_truncated_checkpoint_error_names_file_and_resume_falls_back(tmp_path):
    mgr = CheckpointManager(tmp_path, keep_last=3)
    for i in (1, 2, 3):
        mgr.save(small_state(i), i)
    truncate(tmp_path / "last.pth")
    truncate(tmp_path / "iter_0000003.pth")
    with pytest.raises(CheckpointError, match="last.pth"):
        load_checkpoint(tmp_path / "last.pth")
    with pytest.warns(RuntimeWarning) as warned:
        state, path = mgr.load_latest()
    assert path == tmp_path / "iter_0000002.pth" and state["iteration"] == 2
    messages = " ".join(str(w.message) for w in warned)
    assert "last.pth" in messages and "iter_0000003.pth" in messages
    truncate(tmp_path / "iter_0000002.pth")
    truncate(tmp_path / "iter_0000001.pth")
    with pytest.warns(RuntimeWarning), pytest.raises(CheckpointError, match="no readable checkpoint") as e:
        mgr.load_latest()
    assert "iter_0000001.pth" in str(e.value)
    with pytest.raises(CheckpointError, match="not found: .*nope.pth"):  # an explicit typo never falls back
        mgr.load_latest(tmp_path / "nope.pth")


@pytest.mark.slow
def test_cli_resume_falls_back_from_truncated_checkpoints(reference, tmp_path):
    wd = tmp_path / "run"
    shutil.copytree(reference["work_dir"], wd)
    truncate(wd / "checkpoints" / "last.pth")
    truncate(wd / "checkpoints" / f"iter_{MAX_ITERS:07d}.pth")
    (wd / "checkpoints" / f"iter_{MAX_ITERS - 1:07d}.pth").unlink()
    r = cli(str(wd / "config.yaml"), "--work-dir", str(wd), "--resume")
    assert r.returncode == 0, r.stderr
    assert "last.pth" in r.stderr and f"iter_{MAX_ITERS:07d}.pth" in r.stderr and "falling back" in r.stderr
    resumed = [x for x in records(wd) if x["kind"] == "resume"]
    assert resumed[-1]["checkpoint"].endswith(f"iter_{MAX_ITERS - 2:07d}.pth")
    assert_same_state(final_state(wd)["model"], reference["model"])


@pytest.mark.slow
def test_cli_nonfinite_loss_exits_nonzero_and_keeps_outputs(synthcity, harness, tmp_path):
    cfg = write_cfg(tmp_path / "cfg.yaml", rel_cfg_dict(synthcity, "source_only"))
    wd = tmp_path / "run"
    r = cli(str(cfg), "--work-dir", str(wd), harness=harness, extra_env={"REL_NAN_AT": "3"})
    assert r.returncode != 0
    assert "NonFiniteLossError" in r.stderr and "non-finite loss at iteration 3: seg_main=nan" in r.stderr
    assert sorted(train_losses(records(wd))) == [1, 2, 3]
    assert load_checkpoint(wd / "checkpoints" / "last.pth")["iteration"] == 3
    for k, p in list_checkpoints(wd / "checkpoints"):
        assert load_checkpoint(p)["iteration"] == k
    assert (wd / "config.yaml").is_file() and not (wd / "final_metrics.json").exists()


# ---------------------------------------------------------------------------------------- untrusted input
class _OpensFileWhenUnpickled:
    """Unpickling this calls `open(marker, 'w')`: a stand-in for arbitrary code in a hostile checkpoint."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_checkpoint_with_pickled_callable_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    atomic_save({"model": {}, "iteration": 1, "payload": _OpensFileWhenUnpickled(marker)}, path)
    with pytest.raises(CheckpointError, match="evil.pth"):
        load_checkpoint(path)
    with pytest.warns(RuntimeWarning, match="evil.pth"), pytest.raises(CheckpointError):
        CheckpointManager(tmp_path / "none").load_latest(path)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # control: the payload is live when unpickled unsafely
    assert marker.exists()


@pytest.mark.slow
def test_config_with_python_tag_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    cfg = tmp_path / "evil.yaml"
    cfg.write_text(f"name: !!python/object/apply:builtins.open ['{marker}', 'w']\n")
    with pytest.raises(ConfigError, match="evil.yaml"):
        load_config(cfg)
    r = subprocess.run([sys.executable, str(TRAIN), str(cfg), "--work-dir", str(tmp_path / "wd")],
                       capture_output=True, text=True, env=env(), timeout=120)
    assert r.returncode == 2 and "evil.yaml" in r.stderr
    assert not marker.exists() and not (tmp_path / "wd").exists()


def _folder_cfg(root: Path, **spec: Any):
    return config_from_dict({
        "data": {"source": {"type": "folder", "root": str(root), "class_names": ["a", "b"], **spec},
                 "num_classes": 2, "source_size": [8, 8], "num_workers": 0},
        "method": {"name": "source_only"},
    })


def test_folder_dataset_paths_cannot_escape_root_through_config(tmp_path):
    import numpy as np
    from PIL import Image

    root, outside = tmp_path / "root", tmp_path / "outside"
    for d in (root / "images", root / "labels", outside):
        d.mkdir(parents=True)
    img = Image.fromarray(np.zeros((8, 8, 3), np.uint8))
    lab = Image.fromarray(np.zeros((8, 8), np.uint8), mode="L")
    img.save(root / "images" / "a.png")
    lab.save(root / "labels" / "a.png")
    img.save(outside / "secret.png")
    lab.save(outside / "secret_label.png")
    assert len(build_dataset(_folder_cfg(root), "source")) == 1  # control: the clean tree loads

    (root / "images" / "b.png").symlink_to(outside / "secret.png")
    (root / "labels" / "b.png").symlink_to(outside / "secret_label.png")
    with pytest.raises(DatasetError, match="outside the dataset root"):
        build_dataset(_folder_cfg(root), "source")
    (root / "images" / "b.png").unlink()
    (root / "labels" / "b.png").unlink()

    lst = tmp_path / "list.txt"
    lst.write_text("a\n../../outside/secret\n")
    with pytest.raises(DatasetError, match=r"list.txt:2.*escapes the dataset root"):
        build_dataset(_folder_cfg(root, list_file=str(lst)), "source")
