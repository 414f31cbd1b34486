from .defaults import get_cfg_default
from .setup import ConfigError, merge_from_file, merge_from_list, setup_cfg

__all__ = ["get_cfg_default", "setup_cfg", "merge_from_file", "merge_from_list", "ConfigError"]
