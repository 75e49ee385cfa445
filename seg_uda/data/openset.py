"""Open-set label protocols: a LUT on top of any dataset's train ids that compacts the known classes to 0..K-1,
ignores private classes in the source (255) and merges them into one *unknown* id K in the target labels."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .labels import IGNORE_INDEX, class_names as builtin_class_names, palette as builtin_palette

ClassRef = Union[int, str]

BUS_PRIVATE_CLASSES: Tuple[str, ...] = ("pole", "traffic sign", "person", "rider", "truck", "train")
"""BUS (CVPR 2024) GTA5->Cityscapes split: these 6 of the 19 classes are private, 13 are known."""

UNKNOWN_NAME = "unknown"
UNKNOWN_COLOR = (255, 0, 255)  # magenta, as the visualizer's unknown overlay
ROLES = ("source", "target", "val")


class OpenSetProtocol:
    """Which classes of a ``num_classes`` label space are private; builds the source and target LUTs.

    ``private_classes`` are train ids or class names of that space. Pixels the dataset itself marks private
    (its ``"private"`` map, e.g. SynthCity animal / tuk-tuk, IDD autorickshaw / animal) are merged into the
    unknown class of target labels too.
    """

    def __init__(self, num_classes: int, private_classes: Sequence[ClassRef] = (),
                 names: Optional[Sequence[str]] = None) -> None:
        if not 1 <= int(num_classes) < IGNORE_INDEX:
            raise ValueError(f"OpenSetProtocol: num_classes must be in 1..254, got {num_classes}")
        self.num_classes = int(num_classes)
        if names is None:
            try:
                names = builtin_class_names(num_classes)
            except ValueError:  # no built-in list (e.g. a custom label space): generic names
                names = [f"class_{i}" for i in range(int(num_classes))]
        self.names: Tuple[str, ...] = tuple(names)
        if len(self.names) != self.num_classes:
            raise ValueError(f"OpenSetProtocol: got {len(self.names)} class names for num_classes={num_classes}")
        private: List[int] = []
        for ref in private_classes:
            idx = self._resolve(ref)
            if idx in private:
                raise ValueError(f"OpenSetProtocol: private class {ref!r} is listed twice")
            private.append(idx)
        self.private_ids: Tuple[int, ...] = tuple(sorted(private))
        self.known_ids: Tuple[int, ...] = tuple(i for i in range(self.num_classes) if i not in private)
        if not self.known_ids:
            raise ValueError("OpenSetProtocol: every class is private; at least one known class is needed")
        self.num_known = len(self.known_ids)
        self.unknown_id = self.num_known  # K
        self.source_lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
        for new, old in enumerate(self.known_ids):
            self.source_lut[old] = new
        self.target_lut = self.source_lut.copy()
        self.target_lut[list(self.private_ids)] = self.unknown_id

    def _resolve(self, ref: ClassRef) -> int:
        if isinstance(ref, bool):
            raise ValueError(f"OpenSetProtocol: invalid private class {ref!r}")
        if isinstance(ref, int):
            if not 0 <= ref < self.num_classes:
                raise ValueError(f"OpenSetProtocol: private class id {ref} is outside 0..{self.num_classes - 1}")
            return ref
        if isinstance(ref, str):
            lowered = [n.lower() for n in self.names]
            if ref.lower() not in lowered:
                raise ValueError(f"OpenSetProtocol: unknown private class name {ref!r}. Valid: {', '.join(self.names)}")
            return lowered.index(ref.lower())
        raise ValueError(f"OpenSetProtocol: private class must be a train id or a name, got {ref!r}")

    # ---------------------------------------------------------------- names / colours
    @property
    def known_names(self) -> Tuple[str, ...]:
        return tuple(self.names[i] for i in self.known_ids)

    @property
    def eval_names(self) -> Tuple[str, ...]:
        """K known names then 'unknown' (the K+1 evaluation classes)."""
        return self.known_names + (UNKNOWN_NAME,)

    def eval_palette(self, base: Optional[Sequence[Sequence[int]]] = None) -> Tuple[Tuple[int, int, int], ...]:
        """Colours of the K+1 evaluation classes: each known class keeps its colour, unknown is magenta."""
        if base is None:
            try:
                base = builtin_palette(self.num_classes)
            except ValueError:
                base = [((37 * i) % 256, (91 * i) % 256, (173 * i) % 256) for i in range(self.num_classes)]
        pal = base
        return tuple(tuple(int(c) for c in pal[i]) for i in self.known_ids) + (UNKNOWN_COLOR,)  # type: ignore[return-value]

    # ---------------------------------------------------------------- remapping
    @staticmethod
    def _apply(lut: np.ndarray, label: Any) -> Any:
        if isinstance(label, torch.Tensor):
            if label.numel() and (int(label.min()) < 0 or int(label.max()) > 255):
                raise ValueError("open-set remap: label ids must be in 0..255, "
                                 f"got {int(label.min())}..{int(label.max())}")
            return torch.from_numpy(lut.astype(np.int64)).to(label.device)[label.long()]
        arr = np.asarray(label)
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise ValueError(f"open-set remap: label ids must be in 0..255, got {arr.min()}..{arr.max()}")
        return lut[arr.astype(np.int64)].astype(np.int64)

    def remap_source(self, label: Any) -> Any:
        """Source supervision: known -> 0..K-1; private and ignore -> 255 (private pixels are never supervised)."""
        return self._apply(self.source_lut, label)

    def remap_target(self, label: Any, private: Any = None) -> Any:
        """Target evaluation labels: known -> 0..K-1, private classes -> K; ``private`` > 0 pixels -> K too."""
        out = self._apply(self.target_lut, label)
        if private is not None:
            if isinstance(out, torch.Tensor):
                p = torch.as_tensor(private, device=out.device)
                out = torch.where(p > 0, torch.full_like(out, self.unknown_id), out)
            else:
                out = np.where(np.asarray(private) > 0, self.unknown_id, out)
        return out

    def __repr__(self) -> str:
        priv = [self.names[i] for i in self.private_ids]
        return f"OpenSetProtocol(num_classes={self.num_classes}, known={self.num_known}, private={priv})"


class OpenSetDataset(torch.utils.data.Dataset):
    """Wraps a dataset and remaps its ``"label"`` with a protocol: role ``source`` ignores private pixels,
    ``target``/``val`` merge them (and the item's own ``"private"`` map) into the unknown id K."""

    def __init__(self, dataset: Any, protocol: OpenSetProtocol, role: str) -> None:
        if role not in ROLES:
            raise ValueError(f"OpenSetDataset: role must be one of {ROLES}, got {role!r}")
        self.dataset = dataset
        self.protocol = protocol
        self.role = role
        base_pal = getattr(dataset, "palette", None)
        base_names = getattr(dataset, "class_names", None)
        if base_names is not None and len(base_names) == protocol.num_classes:  # the dataset's own names
            known: Tuple[str, ...] = tuple(base_names[i] for i in protocol.known_ids)
        else:
            known = protocol.known_names
        if base_pal is not None and len(base_pal) != protocol.num_classes:
            base_pal = None
        if role == "source":
            self.class_names = known
            self.palette = protocol.eval_palette(base_pal)[:-1]
        else:
            self.class_names = known + (UNKNOWN_NAME,)
            self.palette = protocol.eval_palette(base_pal)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Dict[str, Any]:
        item = dict(self.dataset[index])
        if "label" in item:
            if self.role == "source":
                item["label"] = self.protocol.remap_source(item["label"])
                if "private" in item:  # defensive: a source never supervises private pixels
                    item["label"] = torch.where(torch.as_tensor(item["private"]) > 0,
                                                torch.full_like(item["label"], IGNORE_INDEX), item["label"])
            else:
                item["label"] = self.protocol.remap_target(item["label"], item.get("private"))
        return item

    def __getattr__(self, name: str) -> Any:  # load_arrays, names, root, ... of the wrapped dataset
        if name in ("dataset", "protocol", "role"):
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __repr__(self) -> str:
        return f"OpenSetDataset({self.dataset!r}, role={self.role}, {self.protocol!r})"


def protocol_from_config(cfg: Any) -> Optional[OpenSetProtocol]:
    """The protocol of ``cfg.data.openset`` (None when open-set is disabled)."""
    oc = getattr(cfg.data, "openset", None)
    if oc is None or not oc.enabled:
        return None
    return OpenSetProtocol(cfg.data.num_classes, oc.private_classes)
