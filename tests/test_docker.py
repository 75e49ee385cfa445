"""Static checks of the Docker images and launch scripts (no Docker engine in CI: the images are never built here).

Parses docker/Dockerfile*, checks every COPY/ADD source exists in the build context (the repo root) and is
not excluded by .dockerignore, that the entrypoint and the tools it launches exist, and runs the entrypoint's
argument dispatch and the SLURM script's syntax check with a stub `torchrun`.
"""
from __future__ import annotations

import fnmatch
import glob
import os
import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

import pytest
from conftest import REPO

DOCKERFILES = [REPO / "docker" / "Dockerfile", REPO / "docker" / "Dockerfile.cpu"]
ENTRYPOINT = REPO / "docker" / "entrypoint.sh"
SLURM = REPO / "scripts" / "slurm_train.sh"


def instructions(path: Path) -> List[Tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with comments dropped and backslash continuations joined."""
    out, buf = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # comment inside a continued instruction
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    assert not buf, f"{path}: dangling line continuation"
    return out


def copy_sources(args: str) -> Tuple[List[str], str]:
    """Sources and destination of a COPY/ADD (shell or JSON form), flags like --chown removed."""
    if args.startswith("["):
        import json

        parts = json.loads(args)
    else:
        parts = shlex.split(args)
    parts = [p for p in parts if not p.startswith("--")]
    assert len(parts) >= 2, f"COPY/ADD needs a source and a destination: {args!r}"
    return parts[:-1], parts[-1]


def dockerignore_patterns() -> List[str]:
    path = REPO / ".dockerignore"
    if not path.is_file():
        return []
    lines = [ln.strip() for ln in path.read_text().splitlines()]
    return [ln.rstrip("/") for ln in lines if ln and not ln.startswith("#")]


def ignored(rel: str, patterns: List[str]) -> bool:
    rel = rel.rstrip("/")
    parts = rel.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatchcase(p, pat) for p in prefixes for pat in patterns if not pat.startswith("!"))


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_copy_sources_exist_in_build_context(dockerfile):
    ins = instructions(dockerfile)
    copies = [(k, a) for k, a in ins if k in ("COPY", "ADD") and "--from" not in a]
    assert copies, f"{dockerfile}: no COPY instructions"
    patterns = dockerignore_patterns()
    copied = set()
    for kind, args in copies:
        sources, _ = copy_sources(args)
        matched_any = False
        for src in sources:
            assert not src.startswith(("http://", "https://")), f"{dockerfile}: {kind} from a URL: {src}"
            hits = glob.glob(src, root_dir=REPO) if glob.has_magic(src) else ([src] if (REPO / src).exists() else [])
            hits = [h for h in hits if not ignored(h, patterns)]
            if not glob.has_magic(src):
                assert hits, f"{dockerfile}: {kind} source '{src}' missing from the repo or excluded by .dockerignore"
            matched_any = matched_any or bool(hits)
            copied.update(h.rstrip("/") for h in hits)
        assert matched_any, f"{dockerfile}: no source of `{kind} {args}` exists"
    # everything the package install and the entrypoint need is in the image
    for needed in ("pyproject.toml", "seg_uda", "tools", "configs", "docker/entrypoint.sh"):
        assert needed in copied, f"{dockerfile}: '{needed}' is not copied into the image"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_entrypoint_user_and_base(dockerfile):
    ins = instructions(dockerfile)
    text = dockerfile.read_text()
    entry = [a for k, a in ins if k == "ENTRYPOINT"]
    assert len(entry) == 1, f"{dockerfile}: expected one ENTRYPOINT"
    import json

    argv = json.loads(entry[0])  # exec form, so signals reach the process
    # every absolute path the ENTRYPOINT runs is either copied from the repo or installed by apt-get
    copy_dests = {copy_sources(a)[1]: copy_sources(a)[0] for k, a in ins if k == "COPY"}
    for arg in argv:
        if arg.startswith("/"):
            if arg in copy_dests:
                assert all((REPO / s).is_file() for s in copy_dests[arg])
            else:
                assert re.search(rf"apt-get install[^\n]*\b{Path(arg).name}\b", text.replace("\\\n", " ")), \
                    f"{dockerfile}: ENTRYPOINT runs {arg}, which is neither COPYed nor apt-installed"
    assert "/usr/local/bin/seg-uda-entrypoint" in argv
    users = [a for k, a in ins if k == "USER"]
    assert users and users[-1] not in ("root", "0"), f"{dockerfile}: the image must not run as root"
    base = [a for k, a in ins if k == "ARG" and a.startswith(("BASE_IMAGE=", "PYTHON_IMAGE="))]
    assert base, f"{dockerfile}: base image should be an ARG so it can be changed at build time"
    if dockerfile.name == "Dockerfile":
        assert "cuda" in base[0] and "runtime" in base[0]
    else:
        assert "slim" in base[0] and "download.pytorch.org/whl/cpu" in text


@pytest.mark.slow
def test_scripts_are_executable_and_parse():
    for script in (ENTRYPOINT, SLURM):
        assert script.stat().st_mode & stat.S_IXUSR, f"{script} is not executable"
        subprocess.run(["bash", "-n", str(script)], check=True, timeout=10)
    text = SLURM.read_text()
    for needed in ("srun", "torchrun", "--nnodes", "$SLURM_NNODES", "--rdzv_backend c10d",
                   "--rdzv_endpoint", "tools/train.py"):
        assert needed in text, f"{SLURM}: missing '{needed}'"
    assert (REPO / "tools" / "train.py").is_file()


@pytest.fixture()
def stub_path(tmp_path):
    """A PATH where `torchrun` prints its arguments and `python` is this interpreter (with torch)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    torchrun = bin_dir / "torchrun"
    torchrun.write_text("#!/usr/bin/env bash\necho \"torchrun $*\"\n")
    torchrun.chmod(0o755)
    python = bin_dir / "python"
    python.write_text(f"#!/usr/bin/env bash\nexec {shlex.quote(sys.executable)} \"$@\"\n")
    python.chmod(0o755)
    return f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"


def run_entrypoint(args, path, **env):
    full = {**os.environ, "PATH": path, "SEG_UDA_HOME": str(REPO), "CUDA_VISIBLE_DEVICES": "", **env}
    proc = subprocess.run(["bash", str(ENTRYPOINT), *args], env=full, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.mark.slow
def test_entrypoint_dispatch(stub_path):
    cfg = "configs/gta5_to_cityscapes/advent_deeplabv2_r101.yaml"
    assert (REPO / cfg).is_file()
    out = run_entrypoint([cfg, "optim.lr=1e-4", "--resume"], stub_path, NPROC_PER_NODE="2")
    assert out == f"torchrun --nproc_per_node=2 --standalone tools/train.py {cfg} optim.lr=1e-4 --resume"
    multi = "--nnodes=2 --node_rank=1 --rdzv_backend=c10d --rdzv_endpoint=host0:29500"
    out = run_entrypoint(["tools/evaluate.py", "ckpt.pth"], stub_path, NPROC_PER_NODE="4", TORCHRUN_ARGS=multi)
    assert out == f"torchrun --nproc_per_node=4 {multi} tools/evaluate.py ckpt.pth"
    assert (REPO / "tools" / "evaluate.py").is_file()
    # no GPU visible and NPROC_PER_NODE unset -> one process
    out = run_entrypoint([cfg], stub_path, NPROC_PER_NODE="")
    assert out == f"torchrun --nproc_per_node=1 --standalone tools/train.py {cfg}"
    assert run_entrypoint(["echo", "hello"], stub_path) == "hello"  # other commands run as is
