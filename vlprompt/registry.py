"""Name -> class registries with duplicate detection and did-you-mean misses."""
from __future__ import annotations

import difflib
from typing import Any, Callable, Iterator, TypeVar

from vlprompt.errors import RegistryError

T = TypeVar("T")


class Registry:
    """A named mapping from strings to classes, filled by a decorator.

    >>> MY_REGISTRY = Registry("MODEL")
    >>> @MY_REGISTRY.register()
    ... class Foo: ...
    >>> MY_REGISTRY.get("Foo") is Foo
    True
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._obj_map: dict[str, Any] = {}

    def _do_register(self, name: str, obj: Any) -> None:
        if name in self._obj_map:
            raise RegistryError(
                f"An object named '{name}' is already registered in the {self.name} registry "
                f"(by {self._obj_map[name].__module__}); rename one of them."
            )
        self._obj_map[name] = obj

    def register(self, obj: T | None = None) -> Callable[[T], T] | T:
        """Register ``obj`` under its ``__name__``; usable as ``@register()`` or ``register(obj)``."""
        if obj is None:
            def deco(cls: T) -> T:
                self._do_register(cls.__name__, cls)
                return cls
            return deco
        self._do_register(obj.__name__, obj)
        return obj

    def get(self, name: str) -> Any:
        if name not in self._obj_map:
            raise unknown_name(self.name, name, list(self._obj_map))
        return self._obj_map[name]

    def __contains__(self, name: str) -> bool:
        return name in self._obj_map

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._obj_map))

    def names(self) -> list[str]:
        return sorted(self._obj_map)

    def __repr__(self) -> str:
        return f"Registry({self.name}: {', '.join(self.names())})"


def unknown_name(registry: str, name: str, names: list[str]) -> RegistryError:
    """The error for ``name`` missing from ``registry`` (of ``names``), with the nearest name and the list."""
    close = [k for k in names if k.lower() == str(name).lower()]  # "coop" -> "CoOp"
    if not close:
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return RegistryError(f"No object named '{name}' in the {registry} registry.{hint} Registered: "
                         f"{', '.join(sorted(names)) or '(none)'}.")


TRAINER_REGISTRY = Registry("TRAINER")
DATASET_REGISTRY = Registry("DATASET")
