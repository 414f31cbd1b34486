"""VLPrompt: prompt learning for CLIP on one registry-based engine."""
from setuptools import find_packages, setup

setup(
    name="vlprompt",
    version="0.1.0",
    description="Prompt learning for CLIP (CoOp, CoCoOp, MaPLe, ...) on open_clip",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["vlprompt", "vlprompt.*"]),
    install_requires=[
        "torch>=2.1",
        "torchvision>=0.16",
        "open_clip_torch>=2.23",
        "huggingface_hub",  # offline lookups of open_clip's weights (vlprompt.clip.load)
        "yacs>=0.1.8",
        "ftfy",
        "regex",
        "tqdm",
        "tensorboard",  # training scalars (TRAIN.TENSORBOARD)
        "tabulate",  # printed tables
        "matplotlib",  # sweep plots
        "submitit",  # SLURM executor of vlprompt.sweep
        "numpy",
        "Pillow",
        "scikit-learn",  # LinearProbeCLIP: the published logistic regression
        "scipy",  # .mat annotations of Flowers-102 and Stanford Cars (rebuilding their split files)
    ],
    extras_require={"dev": ["pytest>=7"]},
)
