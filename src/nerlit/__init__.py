"""nerlit: fine-tune BERT-family encoders for NER."""

import time

#: when nerlit was first imported: the start of a command, for its start-up time (the seconds
#: until the first optimizer step: imports, reading and tokenizing, building the model)
STARTED = time.perf_counter()

__version__ = "0.1.0"
__all__ = ["Run", "Tagger", "__version__", "evaluate", "fit"]


def __getattr__(name: str):
    # lazy: `import nerlit` (the CLIs, the config) should not pay for torch and transformers
    if name == "Tagger":
        from nerlit.inference.tagger import Tagger

        return Tagger
    if name in ("fit", "evaluate", "Run"):
        from nerlit import api

        return getattr(api, name)
    raise AttributeError(f"module 'nerlit' has no attribute {name!r}")
