"""Offline fixtures: a tiny random CLIP in OpenAI's checkpoint format and synthetic dataset roots."""
