"""seg_uda: unsupervised domain adaptation for semantic segmentation (ADVENT, DANN, open-set)."""

__version__ = "0.1.0"
