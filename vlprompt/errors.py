"""The exceptions that mean "the user's input is wrong" (shown without a traceback by train.py)."""
from vlprompt.clip.load import BackboneNotFoundError
from vlprompt.config.setup import ConfigError
from vlprompt.data.dataset_base import DatasetLayoutError
from vlprompt.data.splits import SplitFileError
from vlprompt.engine.checkpoint import CheckpointError

USER_ERRORS = (BackboneNotFoundError, ConfigError, DatasetLayoutError, SplitFileError, CheckpointError,
               KeyError, FileNotFoundError, ValueError)
