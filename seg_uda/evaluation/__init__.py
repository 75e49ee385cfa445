"""Evaluation: confusion-matrix metrics (cityscapesscripts-exact mIoU), prediction-folder scoring, inference."""
from .confusion import ConfusionMatrix, SegMetrics, format_table
from .folder_eval import (
    CITYSCAPES_GT_SUFFIX,
    cityscapes_class_names,
    cityscapes_id_to_trainid,
    evaluate_prediction_folder,
    find_gt_files,
    match_predictions,
    read_label_png,
    write_label_png,
)
from .inference import InferenceOptions, ensemble_predict, predict_logits, predict_probs, predict_sample_probs

__all__ = [
    "CITYSCAPES_GT_SUFFIX",
    "ConfusionMatrix",
    "SegMetrics",
    "cityscapes_class_names",
    "cityscapes_id_to_trainid",
    "ensemble_predict",
    "evaluate_prediction_folder",
    "find_gt_files",
    "format_table",
    "match_predictions",
    "predict_logits",
    "predict_probs",
    "read_label_png",
    "write_label_png",
]

from .checkpoint_model import CheckpointMismatchError, load_model, load_models  # noqa: E402
from .runner import (  # noqa: E402
    SegmentationAccumulator, evaluate_models, metrics_dict, run_evaluation, save_labelid_prediction,
)

__all__ += [
    "CheckpointMismatchError", "InferenceOptions", "SegmentationAccumulator", "evaluate_models", "load_model",
    "load_models", "metrics_dict", "predict_sample_probs", "run_evaluation", "save_labelid_prediction",
]
