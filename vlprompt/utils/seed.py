"""Seeding."""
import random

import numpy as np
import torch


def set_random_seed(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators (as Dassl's ``set_random_seed``)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
