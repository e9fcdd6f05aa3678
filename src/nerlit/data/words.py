"""Raw text -> words with character offsets, split the way the training corpora split them.

A model trained on GMB or CoNLL-2003 has only ever seen their words, and it labels a word by its
first subword; so raw text must be cut into the same kind of words, or the model is asked about
pieces it never learned to label. The rule (Penn-Treebank-like, as in GMB and CoNLL):

1. Whitespace separates words and is never part of one.
2. Letters, digits and combining marks form words; hyphens (and GMB's ``~``) join word parts
   (``al-Qaida``, ``U.S.-led``, ``06-Mar``, ``de~facto``); an apostrophe inside a name stays
   (``O'Connor``, ``Shi'ite``); so does ``&`` between capitals (``AT&T``).
3. Clitics are their own words: ``Iraq's`` -> ``Iraq`` ``'s`` (also ``'re 've 'll 'm 'd``), and
   ``don't`` -> ``do`` ``n't``. Curly apostrophes (’) count as apostrophes.
4. Periods stay inside abbreviations with internal periods (``U.S.``, ``a.m.``, ``H.I.V.``), in a
   short list of title and month abbreviations (``Mr.``, ``Dr.``, ``Corp.``, ``Sept.``, ...), in
   single-capital initials (``George W. Bush``), in numbers (``1,000``, ``3.5``, ``10:30``,
   ``1/2``), and in domain names, e-mail addresses and URLs. Anywhere else a period is punctuation.
5. Any other character that is not a letter or digit is punctuation and a word by itself, except
   that a run of the same character stays together (``...``, ``--``, ``!!``) and an emoji keeps its
   modifiers and zero-width-joined parts (one 👩‍🔬 is one word).

Known limits: a sentence ending in a single capital letter (``Plan B.``) keeps its period on the
letter; no list of abbreviations is complete. On GMB's own test split joined by spaces, the rule
gives back GMB's words for the great majority of sentences (see ``docs/results.md``).

Offsets are Python string indices (code points), so ``text[start:end] == word`` always holds.
"""

from __future__ import annotations

import re

_TITLES = (  # noqa: SIM905 - a list literal of 60 strings would be 60 lines
    "Mr Mrs Ms Dr St Jr Sr Gen Lt Col Capt Sgt Maj Brig Adm Cmdr Gov Sen Rep Cong Pres Prof "
    "Rev Hon Corp Inc Co Ltd Bros No Nos vs etc Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec "
    "Calif Conn Ill Mass Wis Ga Fla Penn Ariz Colo Mich Minn Tenn Va Wash"
).split()
_W = r"[\w\u0300-\u036f]"  # word characters, with combining accents (decomposed é)
_APOS = "['\u2019]"
_CLITIC_TAIL = r"(?:s|S|re|RE|ve|VE|ll|LL|m|M|d|D)(?!\w)"
_PART = "|".join(
    [
        r"https?://[^\s]+?(?=[.,;:!?)\]\"'\u2019]*(?:\s|$))",  # URL, minus trailing punctuation
        r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+",  # e-mail address
        r"(?:[\w-]+\.)+(?:com|org|net|gov|edu|int|mil|info|biz|io|cn|uk|de|fr|ru|jp)(?!\w)",
        r"[A-Za-z](?:\.[A-Za-z])+\.?(?!\w)",  # U.S. a.m. H.I.V. U.S
        r"(?:" + "|".join(_TITLES) + r")\.(?!\w)",
        r"[A-Z]\.(?!\w)",  # an initial: George W. Bush
        r"\d+(?:[.,:/]\d+)+(?!\w)",  # 1,000 3.5 10:30 3:34:33.2 1/2
        r"[A-Z]+&[A-Z]+(?!\w)",  # AT&T S&P
        _W + r"+?(?=[nN]" + _APOS + r"[tT](?!\w))",  # "do" of "don't"
        _W + r"+(?:" + _APOS + r"(?!" + _CLITIC_TAIL + r")" + _W + r"+)*",  # O'Connor, not Iraq's
    ]
)
_EMOJI_TAIL = r"(?:\u200d[^\w\s]|[\ufe0e\ufe0f\u20e3\U0001F3FB-\U0001F3FF])*"
_TOKEN = re.compile(
    "|".join(
        [
            r"[nN]" + _APOS + r"[tT](?!\w)",  # n't
            _APOS + _CLITIC_TAIL,  # 's 're 've 'll 'm 'd
            r"(?:" + _PART + r")(?:[-~](?:" + _PART + r"))*",  # al-Qaida, GMB's de~facto
            r"[\U0001F1E6-\U0001F1FF]{2}",  # a flag: two regional indicators
            r"([^\w\s])(?:\1)+",  # a run of one punctuation character: ... -- !!
            r"[^\w\s]" + _EMOJI_TAIL,  # any other single symbol, emoji with its modifiers
        ]
    )
)


#: (word, start, end) with ``text[start:end] == word``
WordSpan = tuple[str, int, int]


def split_words(text: str) -> list[WordSpan]:
    """Cut raw text into words with character offsets, by the rule in this module's docstring."""
    return [(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def join_words(words: list[str] | tuple[str, ...]) -> tuple[str, list[WordSpan]]:
    """Pre-split words -> the text they stand for (joined by single spaces) and their offsets.

    The same convention as the Hugging Face pipeline's ``is_split_into_words``, so offsets of
    entities over pre-split input mean the same thing in both.
    """
    out: list[WordSpan] = []
    position = 0
    for word in words:
        out.append((word, position, position + len(word)))
        position += len(word) + 1
    return " ".join(words), out
