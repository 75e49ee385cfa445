"""The demo (seg_uda/cli/demo.py, `make demo`) end to end on a tiny SynthCity: both runs, one number per model,
the gain, the report; and its one-line errors for a method it cannot train."""
import json
import os
import subprocess
import sys

import pytest
from conftest import REPO

CONFIGS = str(REPO / "configs" / "synthcity")  # the demo runs outside the checkout, so it is named


@pytest.mark.slow  # runs the demo in a subprocess
@pytest.mark.parametrize("method, label", [(None, "MinEnt+CP"), ("self_training", "self-training")])
def test_demo_trains_both_models_and_writes_the_report(synthcity, tmp_path, method, label):
    out = tmp_path / "demo"
    adapted = method or "minent_cp"  # the default is MinEnt with the class-ratio prior
    tiny = ["data.source_size=[64,48]", "data.target_size=[64,32]", "data.val_size=[64,32]", "data.batch_size=2",
            "data.num_workers=0", "schedule.max_iters=2", "schedule.diagnostics_interval=1",
            "schedule.image_log_interval=0", "schedule.ckpt_interval=2"]
    # the installed command's module, run outside the checkout: paths are the working directory's, configs named
    r = subprocess.run([sys.executable, "-m", "seg_uda.cli.demo", "--data", str(synthcity), "--out", "demo",
                        "--configs", CONFIGS, *(["--method", method] if method else []), *tiny], cwd=tmp_path,
                       env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    summary = json.loads((out / "demo_summary.json").read_text())
    final = {m: 100 * json.loads((out / m / "final_metrics.json").read_text())["miou"]
             for m in ("source_only", adapted)}
    # the numbers printed are the trainer's own final evaluation (one model, one number)
    assert summary["miou"] == {"source-only": final["source_only"], label: final[adapted]}
    assert summary["gain"] == final[adapted] - final["source_only"] and summary["method"] == adapted
    assert f" {label}: mIoU {final[adapted]:.2f}" in r.stdout and f"{summary['gain']:+.2f} mIoU" in r.stdout
    assert set(summary["stage_minutes"]) == {"SynthCity generation", "training (both models)", "report"}
    html = (out / "report" / "index.html").read_text()
    assert ("diagnostics.png" in html and "iou_chart.png" in html
            and len(list((out / "report" / "panels").glob("*.png"))))


@pytest.mark.parametrize("method, message", [
    ("source_only", "demo: --method source_only is the baseline"),
    ("no_such_method", "no_such_method_lite0.yaml' not found")])
def test_demo_rejects_a_method_it_cannot_train(tmp_path, capsys, method, message):
    from seg_uda.cli.demo import main

    assert main(["--method", method, "--configs", CONFIGS, "--out", str(tmp_path / "demo")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "self_training" in err[0]  # names what it can train
    assert not (tmp_path / "demo").exists()  # nothing written before the check


@pytest.mark.slow  # runs the demo in a subprocess, twice
def test_benchmark_demo_times_each_stage(synthcity, tmp_path):
    from seg_uda.benchmarks.cli import main

    tiny = ["data.source_size=[64,48]", "data.target_size=[64,32]", "data.val_size=[64,32]", "data.batch_size=2",
            "data.num_workers=0", "schedule.max_iters=1", "schedule.diagnostics_interval=1",
            "schedule.image_log_interval=0"]
    main(["demo", "--repeats", "2", "--data", str(synthcity), "--work", str(tmp_path / "runs"),
          "--out", str(tmp_path / "bench"), "--threads", "1", "--configs", CONFIGS, *tiny])
    rows = json.loads((tmp_path / "bench" / "demo.json").read_text())["rows"]
    assert [r["run"] for r in rows] == ["1", "2", "median (range)"]
    for r in rows[:2]:
        stages = r["SynthCity generation"] + r["training (both models)"] + r["report"]
        assert 0 < stages <= r["total"]
    lo, hi = rows[2]["total range"]
    assert lo <= rows[2]["total"] <= hi
