"""A self-contained static HTML report: metrics table per run, IoU chart and sample panels (relative links)."""
from __future__ import annotations

import html
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Mapping, Optional, Sequence, Tuple, Union

PathLike = Union[str, Path]


@dataclass
class RunSummary:
    """One row of the metrics table: a label and its metrics dict (miou, pixel_acc?, iou {class: value})."""

    label: str
    metrics: Mapping[str, Any]
    source: Optional[str] = None  # where the metrics came from (shown as a tooltip)


def _pct(v: Any) -> str:
    try:
        return f"{100.0 * float(v):.2f}" if v is not None else "–"
    except (TypeError, ValueError):
        return "–"


def _rel(path: PathLike, base: Path) -> str:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"report asset {p} does not exist")
    return Path(os.path.relpath(p.resolve(), base.resolve())).as_posix()


def _metrics_table(runs: Sequence[RunSummary]) -> str:
    classes: List[str] = []
    for r in runs:
        classes += [c for c in r.metrics.get("iou", {}) if c not in classes]
    extra = [k for k in ("miou_13", "pixel_acc") if any(k in r.metrics for r in runs)]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in ["run", "mIoU", *extra, *classes])
    rows = []
    for r in runs:
        cells = [f'<td title="{html.escape(r.source or "")}">{html.escape(r.label)}</td>',
                 f"<td><b>{_pct(r.metrics.get('miou'))}</b></td>"]
        cells += [f"<td>{_pct(r.metrics.get(k))}</td>" for k in extra]
        cells += [f"<td>{_pct(r.metrics.get('iou', {}).get(c))}</td>" for c in classes]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def write_html_report(
    out_path: PathLike,
    runs: Sequence[RunSummary] = (),
    chart: Optional[PathLike] = None,
    panels: Sequence[Tuple[str, PathLike]] = (),
    panel_legend: str = "",
    title: str = "seg_uda report",
    images: Sequence[Tuple[str, PathLike]] = (),
) -> Path:
    """Write ``out_path`` (HTML) linking existing image files by relative path; all metrics in % .

    ``panels`` = [(caption, png)] sample rows; ``images`` = other [(caption, png)] figures (e.g. a confusion matrix).
    Raises FileNotFoundError if a referenced file does not exist.
    """
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    base = out.parent
    parts = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:1.5em} table{border-collapse:collapse;font-size:12px}"
        " td,th{border:1px solid #ccc;padding:2px 5px;text-align:right} td:first-child{text-align:left}"
        " figure{margin:0 0 1em 0} img{max-width:100%;image-rendering:pixelated}"
        " figcaption{font-size:12px;color:#444}</style>",
        f"</head><body><h1>{html.escape(title)}</h1>",
    ]
    if runs:
        parts += ["<h2>Metrics (%)</h2>", _metrics_table(runs)]
    if chart is not None:
        parts += ["<h2>Per-class IoU</h2>", f'<img src="{html.escape(_rel(chart, base))}" alt="per-class IoU chart">']
    for caption, img in images:
        parts += [f"<h2>{html.escape(caption)}</h2>",
                  f'<img src="{html.escape(_rel(img, base))}" alt="{html.escape(caption)}">']
    if panels:
        parts.append("<h2>Samples</h2>")
        if panel_legend:
            parts.append(f"<p>{html.escape(panel_legend)}</p>")
        for caption, img in panels:
            parts.append(f'<figure><img src="{html.escape(_rel(img, base))}" alt="{html.escape(caption)}">'
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    parts.append("</body></html>")
    out.write_text("\n".join(parts), encoding="utf-8")
    return out
