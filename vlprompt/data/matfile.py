"""MATLAB annotation files (Flowers-102, Stanford Cars), read with SciPy."""
from typing import Any


def loadmat(path: str) -> dict[str, Any]:
    try:
        from scipy.io import loadmat as _loadmat
    except ImportError as e:  # pragma: no cover - scipy is a dependency, but be explicit if it is missing
        raise ImportError(f"Reading {path} needs SciPy: pip install scipy") from e
    return _loadmat(path)
