"""Datum: one labelled image."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Datum:
    """One image of a dataset.

    Attributes:
        impath: absolute path of the image file.
        label: class index (0-based, after base/new relabelling).
        classname: class name as the reader gives it (underscores kept).
        domain: domain index, for multi-domain readers.
    """

    impath: str
    label: int
    classname: str = ""
    domain: int = 0
