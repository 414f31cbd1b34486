"""VLPrompt: prompt learning for CLIP on one registry-based engine."""
__version__ = "0.1.0"
