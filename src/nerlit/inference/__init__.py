"""Inference: load a trained model, tag raw text, export it, show the result."""

from nerlit.inference.tagger import Tagger

__all__ = ["Tagger"]
