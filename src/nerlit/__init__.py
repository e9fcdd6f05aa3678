"""nerlit: fine-tune BERT-family encoders for NER."""

__version__ = "0.1.0"
