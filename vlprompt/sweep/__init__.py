"""Run a whole protocol (base-to-new, few-shot, cross-dataset, domain generalisation) from one command.

``jobs`` turns a protocol into jobs of ``train.py`` steps in the scripts' folders, ``runner`` runs one job,
``local`` (a pool of GPU groups or CPU workers) and ``slurm`` (a submitit array job) run them all, ``report``
writes the table; ``python -m vlprompt.sweep --help`` (``cli``) ties them together. docs/SCALING.md.
"""
from vlprompt.sweep.jobs import Job, Step, Sweep, SweepSpec, build_sweep

__all__ = ["Job", "Step", "Sweep", "SweepSpec", "build_sweep"]
