"""Name -> builder registries with errors that list the valid names (as timm and SMP do)."""
from __future__ import annotations

import difflib
import inspect
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional


class Preset:
    """A registered name for `target` with other defaults; `fixed` kwargs cannot be changed, `hidden` ones are refused.

    Calls build `target(**{**defaults, **kwargs, **fixed})`; attributes (class declarations, `from_config`) come from
    `declares`, else from `target`, and the signature (minus fixed and hidden parameters) from `target`, so config
    validation and the engine treat a preset like a class.
    """

    def __init__(self, name: str, target: Callable[..., Any], defaults: Mapping[str, Any],
                 fixed: Mapping[str, Any], hidden: Iterable[str], doc: Optional[str] = None,
                 declares: Optional[Mapping[str, Any]] = None) -> None:
        params = inspect.signature(target).parameters
        unknown = sorted((set(defaults) | set(fixed) | set(hidden)) - set(params))
        if unknown:
            raise TypeError(f"preset '{name}': {getattr(target, '__name__', target)} has no parameter '{unknown[0]}'")
        self.name, self.target = name, target
        self.defaults, self.fixed, self.hidden = dict(defaults), dict(fixed), tuple(hidden)
        self.declares = dict(declares or {})
        self.__doc__ = doc or target.__doc__
        self.__wrapped__ = target  # inspect.unwrap(preset) -> the class (its type hints)

    @property
    def __signature__(self) -> inspect.Signature:
        sig = inspect.signature(self.target)
        drop = set(self.fixed) | set(self.hidden)
        return sig.replace(parameters=[p.replace(default=self.defaults[p.name]) if p.name in self.defaults else p
                                       for p in sig.parameters.values() if p.name not in drop])

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        refused = sorted(set(kwargs) & (set(self.fixed) | set(self.hidden)))
        if refused:
            raise TypeError(f"{self.name}() got an unexpected keyword argument '{refused[0]}'")
        return self.target(*args, **{**self.defaults, **kwargs, **self.fixed})

    def __getattr__(self, attr: str) -> Any:  # only called for names the preset itself lacks
        target = self.__dict__.get("target")
        if target is None or attr.startswith("__"):
            raise AttributeError(attr)
        declares = self.__dict__.get("declares", {})
        return declares[attr] if attr in declares else getattr(target, attr)

    def __repr__(self) -> str:
        settings = {**self.defaults, **self.fixed}
        return f"Preset({self.name!r}, {getattr(self.target, '__name__', self.target)}, {settings})"


class Registry:
    """A mapping of name -> callable (class or factory) for one kind of component.

    >>> MODELS = Registry("model")
    >>> @MODELS.register("deeplabv2")
    ... class DeepLabV2: ...
    >>> MODELS.get("deeplabv2")
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: Dict[str, Callable[..., Any]] = {}

    def register(self, name: Optional[str] = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def deco(obj: Callable[..., Any]) -> Callable[..., Any]:
            key = name or getattr(obj, "__name__", None)
            if not key:
                raise ValueError(f"cannot infer a {self.kind} name for {obj!r}")
            if key in self._items:
                raise KeyError(f"{self.kind} '{key}' is already registered")
            self._items[key] = obj
            return obj

        return deco

    def register_preset(self, name: str, target: Callable[..., Any], *, fixed: Optional[Mapping[str, Any]] = None,
                        hidden: Iterable[str] = (), doc: Optional[str] = None,
                        declares: Optional[Mapping[str, Any]] = None, **defaults: Any) -> Preset:
        """Register `name` as `target` with other `defaults` (see `Preset`); returns the preset."""
        preset = Preset(name, target, defaults, fixed or {}, hidden, doc, declares)
        self.register(name)(preset)
        return preset

    def get(self, name: str) -> Callable[..., Any]:
        try:
            return self._items[name]
        except KeyError:
            close = difflib.get_close_matches(str(name), self._items, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise KeyError(
                f"unknown {self.kind} '{name}'.{hint} Valid {self.kind}s: {', '.join(self.names())}"
            ) from None

    def build(self, name: str, **kwargs: Any) -> Any:
        return self.get(name)(**kwargs)

    def names(self) -> List[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"
