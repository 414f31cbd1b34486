"""The tables of our two papers: each row a method run as the paper ran it, with the paper's numbers beside it.

A row with a trainer runs through the sweep (``vlprompt.sweep.jobs``); a row without one is a method VLPrompt does
not implement, shown with the paper's numbers only. Papers: ``shared/papers`` (English spec ``METHODS.md``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

METHOD_NOT_IMPLEMENTED = "not implemented"


@dataclass(frozen=True)
class Row:
    """One method: ``trainer``/``config``/``opts`` as the paper ran it (``trainer`` "": not in VLPrompt) and the
    paper's numbers, one per column of the table (None: the paper gives none)."""
    label: str
    trainer: str = ""
    config: str = ""
    opts: tuple[str, ...] = ()
    paper: tuple[Optional[float], ...] = ()

    @property
    def slug(self) -> str:
        """The row's folder name: its trainer and config (unique within a table)."""
        return f"{self.trainer}_{self.config}"


@dataclass(frozen=True)
class PaperTable:
    """``protocol`` base2new: columns Base/New/H of ``datasets[0]``; fewshot: one accuracy column per dataset."""
    name: str
    title: str
    protocol: str
    datasets: tuple[str, ...]
    shots: int
    columns: tuple[str, ...]
    rows: tuple[Row, ...]
    note: str = ""


_DTD_B2N = ("Base", "New", "H")

METAPROTO = PaperTable(
    name="metaproto",
    title="MetaProto (Kim and Baik, JBE 2025), Fig. 3 and Table 1: DTD base-to-new, 16 shots, ViT-B/16",
    protocol="base2new", datasets=("dtd",), shots=16, columns=_DTD_B2N,
    rows=(
        Row('Zero-shot CLIP ("a photo of a [class]")', "ZeroshotCLIP", "vit_b16",
            ("TRAINER.ZEROSHOT.TEMPLATE", "a photo of a {}.")),
        Row('CoOp (4 ctx from "a photo of a", 200 epochs, batch 32)', "CoOp", "vit_b16_ctxv1"),
        Row("MetaProto 5-way (K=2)", "MetaProto", "vit_b16_ep100_n5_k2", paper=(77.31, 57.65, 66.02)),
        Row("MetaProto 10-way (K=2)", "MetaProto", "vit_b16_ep100_n10_k2", paper=(76.39, 57.27, 65.48)),
        Row("MetaProto 20-way (K=2)", "MetaProto", "vit_b16_ep100_n20_k2", paper=(76.62, 57.27, 65.33)),
    ),
    note="The paper shows its zero-shot CLIP and CoOp results only as bars (Fig. 3), without numbers.",
)

INSTANCE_PROMPT = PaperTable(
    name="instance_prompt",
    title="InstancePrompt (Lee and Shim): few-shot, 4 shots, RN50, all classes",
    protocol="fewshot", datasets=("oxford_flowers", "caltech101", "oxford_pets", "fgvc_aircraft"), shots=4,
    columns=("Flowers102", "Caltech101", "OxfordPets", "FGVCAircraft"),
    rows=(
        Row("Zero-shot CLIP", "ZeroshotCLIP", "rn50", paper=(66.14, 86.29, 85.77, 17.28)),
        Row("Linear-probe CLIP", "LinearProbeCLIP", "rn50", paper=(83.89, 84.89, 57.23, 24.62)),
        Row("CoOp (16 ctx, end, unified)", "CoOp", "rn50_ep100",
            ("TRAINER.COOP.N_CTX", "16", "TRAINER.COOP.CSC", "False", "TRAINER.COOP.CLASS_TOKEN_POSITION", "end"),
            paper=(86.20, 89.55, 86.70, 21.87)),
        Row("LFA", paper=(87.10, 91.04, 87.80, 22.31)),
        Row("InstancePrompt", "InstancePrompt", "rn50_ep100", paper=(88.20, 90.56, 88.21, 23.46)),
    ),
)

TABLES = {t.name: t for t in (METAPROTO, INSTANCE_PROMPT)}
