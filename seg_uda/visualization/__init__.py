"""Visualization: palette colouring, prediction/error/entropy/unknown panels, IoU charts and an HTML report."""
from .charts import confusion_matrix_png, iou_bar_chart
from .colorize import (
    CORRECT_COLOR,
    ERROR_COLOR,
    IGNORE_COLOR,
    UNKNOWN_COLOR,
    colorize_labels,
    error_map,
    heatmap,
    overlay_mask,
)
from .diagnostics_plot import plot_diagnostics, read_diagnostics
from .panels import (
    CAPTION_HEIGHT,
    caption_tile,
    compose_row,
    normalized_entropy,
    prediction_and_unknown,
    sample_tiles,
    save_rgb_png,
    unknown_mask_from_probs,
)
from .report import RunSummary, write_html_report

__all__ = [
    "CAPTION_HEIGHT", "caption_tile", "plot_diagnostics", "read_diagnostics",
    "CORRECT_COLOR", "ERROR_COLOR", "IGNORE_COLOR", "UNKNOWN_COLOR", "RunSummary", "colorize_labels",
    "compose_row", "confusion_matrix_png", "error_map", "heatmap", "iou_bar_chart", "normalized_entropy",
    "overlay_mask", "prediction_and_unknown", "sample_tiles", "save_rgb_png", "unknown_mask_from_probs",
    "write_html_report",
]
