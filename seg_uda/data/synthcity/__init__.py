"""SynthCity: embedded procedural synthetic ("game", GTA5 layout) -> real-looking ("real", Cityscapes layout)
street-scene benchmark with target-only private classes (animal, tuk-tuk) for open-set adaptation."""
from .generate import (DOMAINS, GENERATOR_VERSION, TRAIN_CITIES, VAL_CITIES, eval_classes, frame_rng,
                       generate_synthcity, parse_size, render_frame, target_stem)
from .preview import colorize, cityscapes_palette, preview_frames, write_preview
from .scene import PRIVATE_ANIMAL, PRIVATE_CLASSES, PRIVATE_NONE, PRIVATE_TUKTUK

__all__ = [
    "DOMAINS", "GENERATOR_VERSION", "TRAIN_CITIES", "VAL_CITIES", "eval_classes", "frame_rng",
    "generate_synthcity", "parse_size", "render_frame", "target_stem", "colorize", "cityscapes_palette",
    "preview_frames", "write_preview", "PRIVATE_ANIMAL", "PRIVATE_CLASSES", "PRIVATE_NONE", "PRIVATE_TUKTUK",
]
