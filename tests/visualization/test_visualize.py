"""seg_uda.visualization (colouring, panels, entropy, unknown overlay, charts, HTML) and tools/visualize.py."""
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from seg_uda.data.labels import palette
from seg_uda.visualization import (
    CAPTION_HEIGHT, CORRECT_COLOR, ERROR_COLOR, IGNORE_COLOR, UNKNOWN_COLOR, RunSummary, colorize_labels, compose_row,
    error_map, iou_bar_chart, normalized_entropy, overlay_mask, prediction_and_unknown, sample_tiles,
    unknown_mask_from_probs, plot_diagnostics, read_diagnostics, write_html_report,
)

from conftest import ENV, REPO, load_tool  # the module-scoped `trained` run is a conftest fixture

PAL19 = {tuple(c) for c in palette(19)}


def colours(rgb):
    return {tuple(int(v) for v in c) for c in np.unique(np.asarray(rgb).reshape(-1, 3), axis=0)}


def random_probs(k=5, h=6, w=7, seed=0):
    return torch.softmax(torch.randn(k, h, w, generator=torch.Generator().manual_seed(seed)) * 3, dim=0)


def test_colorize_and_error_map_use_only_defined_colours():
    ids = np.array([[0, 1, 255], [18, 5, 255]], dtype=np.int64)
    rgb = colorize_labels(ids, palette(19))
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[0, 0]) == palette(19)[0] and tuple(rgb[1, 0]) == palette(19)[18]
    assert tuple(rgb[0, 2]) == IGNORE_COLOR and colours(rgb) <= PAL19 | {IGNORE_COLOR}
    pred = np.array([[0, 2, 3], [18, 5, 4]], dtype=np.int64)
    err = error_map(pred, ids)
    assert [tuple(err[0, j]) for j in range(3)] == [CORRECT_COLOR, ERROR_COLOR, IGNORE_COLOR]
    assert [tuple(err[1, j]) for j in range(3)] == [CORRECT_COLOR, CORRECT_COLOR, IGNORE_COLOR]


def test_normalized_entropy_range_and_extremes():
    p = random_probs()
    ent = normalized_entropy(p)
    assert ent.shape == (6, 7) and ent.min() >= 0.0 and ent.max() <= 1.0
    uniform = torch.full((4, 2, 2), 0.25)
    assert np.allclose(normalized_entropy(uniform), 1.0)
    onehot = torch.zeros(4, 2, 2)
    onehot[2] = 1.0
    assert np.allclose(normalized_entropy(onehot), 0.0)
    # by hand: p = (0.5, 0.5, 0, 0) -> log 2 / log 4 = 0.5
    half = torch.zeros(4, 1, 1)
    half[:2] = 0.5
    assert normalized_entropy(half)[0, 0] == pytest.approx(0.5)


def test_unknown_masks_from_scores_and_open_set_channel():
    p = random_probs(k=5)
    msp = unknown_mask_from_probs(p, "msp", 0.6)
    assert np.array_equal(msp, p.max(0).values.numpy() < 0.6)
    ent = unknown_mask_from_probs(p, "entropy", 0.4)
    assert np.array_equal(ent, normalized_entropy(p) > 0.4)
    with pytest.raises(ValueError, match="msp"):
        unknown_mask_from_probs(p, "energy", 0.5)
    # a (K+1)-way head: the last channel means unknown
    pred, unknown = prediction_and_unknown(p, num_known=4)
    assert np.array_equal(unknown, p.argmax(0).numpy() == 4)
    assert np.array_equal(pred, p[:4].argmax(0).numpy())
    pred2, both = prediction_and_unknown(p, num_known=4, unknown_score="msp", unknown_threshold=0.6)
    assert np.array_equal(both, unknown | msp)


def test_overlay_changes_exactly_the_masked_pixels():
    rgb = colorize_labels(np.random.default_rng(0).integers(0, 19, (8, 9)), palette(19))
    mask = np.zeros((8, 9), dtype=bool)
    mask[2:5, 3:7] = True
    out = overlay_mask(rgb, mask, UNKNOWN_COLOR, alpha=0.6)
    changed = (out != rgb).any(axis=2)
    assert np.array_equal(changed, mask)
    full = overlay_mask(rgb, mask, UNKNOWN_COLOR, alpha=1.0)
    assert colours(full[mask]) == {UNKNOWN_COLOR}


def test_sample_tiles_and_row_width():
    p = random_probs(k=19, h=6, w=7)
    img = np.random.default_rng(1).integers(0, 256, (12, 14, 3), dtype=np.uint8)  # resized to 6x7
    gt = np.random.default_rng(2).integers(0, 19, (6, 7))
    gt[0, 0] = 255
    tiles = sample_tiles(img, p, palette(19), gt=gt)
    assert list(tiles) == ["input", "prediction", "ground_truth", "error", "entropy"]
    row = compose_row(tiles)
    assert row.shape == (6, sum(t.shape[1] for t in tiles.values()), 3) == (6, 35, 3)
    assert colours(tiles["prediction"]) <= PAL19
    assert colours(tiles["error"]) <= {CORRECT_COLOR, ERROR_COLOR, IGNORE_COLOR}
    no_gt = sample_tiles(img, p, palette(19))
    assert list(no_gt) == ["input", "prediction", "entropy"]


def test_bar_chart_and_html_reference_existing_files(tmp_path):
    runs = [("source-only", {"miou": 0.3, "iou": {"road": 0.5, "car": 0.1}}),
            ("AdvEnt", {"miou": 0.4, "iou": {"road": 0.6, "car": None}})]
    chart = iou_bar_chart(runs, tmp_path / "chart.png")
    assert Image.open(chart).format == "PNG"
    panel = tmp_path / "panels" / "a.png"
    panel.parent.mkdir()
    Image.fromarray(np.zeros((4, 8, 3), np.uint8)).save(panel)
    html_path = write_html_report(tmp_path / "report" / "index.html", [RunSummary(*r) for r in runs], chart,
                                  [("a", panel)])
    text = html_path.read_text()
    srcs = re.findall(r'src="([^"]+)"', text)
    assert len(srcs) == 2 and all((html_path.parent / s).is_file() for s in srcs)
    assert "source-only" in text and "40.00" in text
    with pytest.raises(FileNotFoundError):
        write_html_report(tmp_path / "x.html", panels=[("missing", tmp_path / "missing.png")])


@pytest.mark.slow
def test_visualize_cli_on_dataset_split_with_compare_and_html(trained, tmp_path):
    root, cfg_path, work = trained
    out = tmp_path / "vis"
    metrics = work / "final_metrics.json"
    r = subprocess.run([sys.executable, str(REPO / "tools" / "visualize.py"), str(cfg_path),
                        str(work / "checkpoints" / "last.pth"), "--out", str(out), "--num", "2",
                        "--compare", str(metrics), str(metrics), "--labels", "source-only", "AdvEnt", "--html",
                        "--device", "cpu"], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    panels = sorted((out / "panels").glob("*.png"))
    assert len(panels) == 2
    gt_file = next((root / "real" / "gtFine" / "val").glob("*/*_gtFine_labelIds.png"))
    w, h = Image.open(gt_file).size
    for p in panels:
        arr = np.asarray(Image.open(p).convert("RGB"))
        assert arr.shape == (CAPTION_HEIGHT + h, 5 * w, 3)  # input | prediction | ground truth | error | entropy
        assert (arr[:CAPTION_HEIGHT] == 255).any()  # each tile's caption is written in the image
        arr = arr[CAPTION_HEIGHT:]
        assert colours(arr[:, w:2 * w]) <= PAL19
        assert colours(arr[:, 2 * w:3 * w]) <= PAL19 | {IGNORE_COLOR}
        assert colours(arr[:, 3 * w:4 * w]) <= {CORRECT_COLOR, ERROR_COLOR, IGNORE_COLOR}
    assert (out / "iou_chart.png").is_file()
    html = (out / "index.html").read_text()
    srcs = re.findall(r'src="([^"]+)"', html)
    assert len(srcs) == 3 and all((out / s).is_file() for s in srcs)
    assert f"{100 * json.loads(metrics.read_text())['miou']:.2f}" in html


def test_visualize_single_image_with_unknown_threshold_and_compare_only(trained, tmp_path):
    root, _, work = trained
    tool = load_tool("visualize")
    torch.set_num_threads(1)
    image = next((root / "real" / "leftImg8bit" / "val").glob("*/*.png"))
    w, h = Image.open(image).size
    out = tmp_path / "single"
    # msp threshold 1.01 flags every pixel: the whole prediction tile is blended with magenta
    assert tool.main([str(work / "checkpoints" / "last.pth"), "--out", str(out), "--image", str(image),
                      "--unknown-score", "msp", "--unknown-threshold", "1.01", "--device", "cpu"]) == 0
    arr = np.asarray(Image.open(next((out / "panels").glob("*.png"))).convert("RGB"))[CAPTION_HEIGHT:]
    assert arr.shape == (h, 3 * w, 3)  # input | prediction | entropy
    assert not (colours(arr[:, w:2 * w]) & PAL19)
    plain = np.asarray(Image.open(next((out / "predictions").glob("*_color.png"))).convert("RGB"))
    assert colours(plain) <= PAL19
    only = tmp_path / "cmp"
    assert tool.main(["--compare", str(work / "final_metrics.json"), "--out", str(only), "--html"]) == 0
    assert (only / "iou_chart.png").is_file() and (only / "index.html").is_file()
    assert not (only / "panels").exists()


def _fake_diag_run(path, n=3):
    """A run folder whose metrics.jsonl has AdvEnt-like diagnostics records (and a partial last line)."""
    path.mkdir(parents=True)
    recs = [{"kind": "train", "iter": 1, "time": 0.1, "seg_main": 1.0}]
    for it in range(1, n + 1):
        recs.append({"kind": "diag", "iter": 10 * it, "time": float(it), "disc_acc_main_src": 0.5 + 0.1 * it,
                     "disc_acc_main_tgt": 0.6, "entropy_src": 0.3, "entropy_tgt": 0.5 - 0.1 * it,
                     "gradratio_adv_backbone": 0.01 * it, "gradratio_adv_head": 0.0,
                     "hist_tgt_pred": [0.5, 0.5] + [0.0] * 17, "hist_src_label": [0.2, 0.3, 0.5] + [0.0] * 16})
    (path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in recs) + '\n{"kind": "di')
    return path


def test_diagnostics_plot_reads_runs_and_rejects_runs_without_diagnostics(tmp_path):
    run = _fake_diag_run(tmp_path / "advent")
    recs = read_diagnostics(run)
    assert [r["iter"] for r in recs] == [10, 20, 30]
    png = plot_diagnostics([("AdvEnt", run), ("again", run)], tmp_path / "d.png", [f"c{k}" for k in range(19)])
    assert Image.open(png).format == "PNG" and Image.open(png).size[0] > 1000
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "metrics.jsonl").write_text(json.dumps({"kind": "train", "iter": 1}) + "\n")
    with pytest.raises(ValueError, match="diagnostics_interval"):
        read_diagnostics(tmp_path / "plain")
    with pytest.raises(FileNotFoundError, match="metrics.jsonl"):
        read_diagnostics(tmp_path / "nothing")


def test_diagnostics_figure_of_runs_without_a_discriminator_keeps_each_term_apart(tmp_path):
    """Source-only beside self-training (two adaptation terms, no discriminator): the discriminator panel says
    there is none instead of staying empty, and the two terms' gradient-ratio lines get different markers."""
    from seg_uda.visualization.diagnostics_plot import diagnostics_figure

    runs = {}
    for name, terms in (("source_only", ()), ("self_training", ("mix", "mic"))):
        recs = [{"kind": "diag", "iter": 10 * it, "entropy_src": 0.2, "entropy_tgt": 0.3,
                 **{f"gradratio_{t}_{at}": 0.1 * it for t in terms for at in ("backbone", "head")}}
                for it in (1, 2)]
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in recs))
        runs[name] = tmp_path / name
    fig = diagnostics_figure(list(runs.items()))
    ax_d, _, ax_g, _ = fig.axes
    assert [t.get_text() for t in ax_d.texts] == ["no discriminator in these runs"]
    lines = {line.get_label(): line for line in ax_g.get_lines()}
    assert sorted(lines) == [f"self_training: {t}_{at}" for t in ("mic", "mix") for at in ("backbone", "head")]
    mic, mix = lines["self_training: mic_backbone"], lines["self_training: mix_backbone"]
    assert mic.get_marker() != mix.get_marker() and mic.get_marker() == lines["self_training: mic_head"].get_marker()
    assert mic.get_linestyle() == "-" and lines["self_training: mic_head"].get_linestyle() == ":"
    with_disc = diagnostics_figure([("AdvEnt", _fake_diag_run(tmp_path / "advent"))])
    assert not with_disc.axes[0].texts  # a run with discriminators has its accuracy curves, no note


def test_visualize_side_by_side_with_diagnostics_in_the_html(trained, tmp_path):
    root, cfg_path, work = trained
    tool = load_tool("visualize")
    torch.set_num_threads(1)
    ckpt = str(work / "checkpoints" / "last.pth")
    out = tmp_path / "sbs"
    fake = _fake_diag_run(tmp_path / "advent_run")
    assert tool.main([str(cfg_path), ckpt, ckpt, "--side-by-side", "--model-labels", "A", "B", "--num", "1",
                      "--diagnostics", str(work), str(fake), "--out", str(out), "--html", "--device", "cpu"]) == 0
    gt_file = next((root / "real" / "gtFine" / "val").glob("*/*_gtFine_labelIds.png"))
    w, h = Image.open(gt_file).size
    arr = np.asarray(Image.open(next((out / "panels").glob("*.png"))).convert("RGB"))
    # input | A prediction | B prediction | ground truth | A error | B error | A entropy | B entropy
    assert arr.shape == (CAPTION_HEIGHT + h, 8 * w, 3)
    body = arr[CAPTION_HEIGHT:]
    assert (body[:, w:2 * w] == body[:, 2 * w:3 * w]).all()  # the same checkpoint twice: identical predictions
    assert colours(body[:, 4 * w:5 * w]) <= {CORRECT_COLOR, ERROR_COLOR, IGNORE_COLOR}
    html = (out / "index.html").read_text()
    assert "diagnostics.png" in html and (out / "diagnostics.png").is_file()
    assert tool.main([str(cfg_path), ckpt, "--side-by-side", "--model-labels", "A", "B", "--out", str(out),
                      "--device", "cpu"]) == 2  # one label too many
