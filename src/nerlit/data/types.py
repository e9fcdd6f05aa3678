"""Plain data types: code downstream reads like the problem, never re-parses strings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from nerlit.data.schemes import split_tag


@dataclass(frozen=True)
class Sentence:
    """Words plus one tag per word; ``id`` ties it back to the source (file:line, or GMB's id).

    ``document`` names the document the sentence belongs to (None: unknown). Adjacent sentences
    of one document are each other's context (``data.context``), so a split must keep their order.
    """

    words: tuple[str, ...]
    tags: tuple[str, ...]
    id: str = ""
    document: str | None = None

    def __post_init__(self) -> None:
        if len(self.words) != len(self.tags):
            raise ValueError(
                f"sentence {self.id!r}: {len(self.words)} words but {len(self.tags)} tags"
            )

    def __len__(self) -> int:
        return len(self.words)


@dataclass(frozen=True, slots=True)
class Entity:
    """A typed span: ``text == original[start:end]``; words ``word_start:word_end`` of the input.

    ``score`` is the mean, over the span's words, of the probability of each word's chosen tag
    (the pipeline's entity score, for the same tags). Slotted: a 256-text request of 10,000
    characters holds ~200k of them at once, and a per-instance ``__dict__`` doubled their size.
    """

    text: str
    label: str
    start: int
    end: int
    score: float
    word_start: int
    word_end: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Corpus:
    """Named splits of IOB2-tagged sentences, and the files each split came from."""

    train: list[Sentence]
    val: list[Sentence]
    test: list[Sentence]
    name: str = "corpus"
    sources: dict[str, str] = field(default_factory=dict)

    def splits(self) -> dict[str, list[Sentence]]:
        return {"train": self.train, "val": self.val, "test": self.test}

    def entity_types(self) -> list[str]:
        return sorted({split_tag(t)[1] for s in self.train for t in s.tags if t != "O"})

    def labels(self, scheme: str = "iob2") -> list[str]:
        """The label vocabulary, from train alone: O first, then each type's prefixes."""
        prefixes = ("B", "I", "E", "S") if scheme == "bioes" else ("B", "I")
        return ["O"] + [f"{p}-{t}" for t in self.entity_types() for p in prefixes]
