"""Inference: load a trained model, tag raw text, export it, show the result."""

from nerlit.inference.spans import Entity
from nerlit.inference.tagger import Tagger

__all__ = ["Entity", "Tagger"]
