"""Word casing classes: what an uncased encoder cannot see, given back as one id per subword.

An uncased tokenizer lowercases before it splits, so "Apple"/"apple", "US"/"us" and "May"/"may"
reach the encoder as the same ids, and capitalisation is the strongest single cue for names. With
``model.case_features=true`` each subword carries its word's casing class, and the model adds a
learned embedding of that class to the subword's input embedding (zero at the start, so training
begins from the pretrained model unchanged). This is the classic casing feature of pre-transformer
taggers (Collobert et al. 2011, Chiu & Nichols 2016); no library ships it for transformers.
"""

from __future__ import annotations

from functools import lru_cache

#: class 0 marks special and padding tokens; words get 1 .. NUM_CASINGS - 1
SPECIAL = 0
NO_LETTERS = 1  # punctuation and symbols
LOWER = 2  # obama, the
CAPITALIZED = 3  # Obama, I
UPPER = 4  # NATO, US
MIXED = 5  # McDonald, iPhone
NUMBER = 6  # 1990, 12:30 (digits, no letters)
ALPHANUMERIC = 7  # 3rd, B-52
NUM_CASINGS = 8


@lru_cache(maxsize=1 << 20)
def word_casing(word: str) -> int:
    """The casing class of one word (see the constants above)."""
    letters = [c for c in word if c.isalpha()]
    if not letters:
        return NUMBER if any(c.isdigit() for c in word) else NO_LETTERS
    if any(c.isdigit() for c in word):
        return ALPHANUMERIC
    cased = [c for c in letters if c.isupper() or c.islower()]
    if not cased:  # scripts without case (Chinese, Arabic ...) read as lower case
        return LOWER
    if all(c.islower() for c in cased):
        return LOWER
    if all(c.isupper() for c in cased):
        return UPPER if len(cased) > 1 else CAPITALIZED
    if cased[0].isupper() and all(c.islower() for c in cased[1:]):
        return CAPITALIZED
    return MIXED
