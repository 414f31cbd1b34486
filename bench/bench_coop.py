"""CoOp speed: this repository's trainer vs the published CoOp code (KaiyangZhou/CoOp on Dassl).

The same as ``bench_methods.py --method coop`` (see its docstring and bench/README.md), with the same options
(``--published PATH`` included).

    python bench/bench_coop.py                  # CPU, scaled-down model (about 3 minutes on 2 cores)
    python bench/bench_coop.py --device cuda    # full ViT-B/16 shape
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_methods  # noqa: E402


def main(argv: Optional[Sequence[str]] = None) -> int:
    return bench_methods.main(argv, method="coop", description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    sys.exit(main())
