"""Raw text -> words with character offsets, by one documented rule.

The rule follows how GMB and CoNLL-2003 are tokenized (Penn Treebank style), so a model sees at
prediction time the kind of words it was trained on. In order of preference, a word is:

1. an abbreviation of single letters with periods: ``U.S.``, ``U.N.``;
2. a number with inner separators: ``1,000``, ``3.5``, ``10:30``;
3. a run of letters/digits/underscores, with inner hyphens: ``Baghdad``, ``mid-October``;
4. a clitic: an apostrophe and the letters after it: ``'s`` in ``Iraq's``, ``'re``;
5. otherwise any single non-space character: punctuation, symbols, each emoji code point.

Whitespace separates words and is never part of one.
"""

from __future__ import annotations

import re

WORD_PATTERN = re.compile(
    r"(?:[^\W\d_]\.){2,}"  # abbreviations
    r"|\d+(?:[.,:]\d+)+"  # numbers with separators
    r"|\w+(?:-\w+)*"  # words, hyphenated words
    r"|['\u2019][^\W\d_]+"  # clitics
    r"|\S"  # any other single character
)


def split_words(text: str) -> list[tuple[str, int, int]]:
    """Words as (word, start, end) with ``text[start:end] == word``."""
    return [(m.group(), m.start(), m.end()) for m in WORD_PATTERN.finditer(text)]
