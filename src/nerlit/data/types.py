"""Plain data types: code downstream reads like the problem, never re-parses strings."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Sentence:
    """Words plus one IOB2 tag per word; ``id`` ties it back to the source file."""

    words: tuple[str, ...]
    tags: tuple[str, ...]
    id: str = ""

    def __post_init__(self) -> None:
        if len(self.words) != len(self.tags):
            raise ValueError(
                f"sentence {self.id!r}: {len(self.words)} words but {len(self.tags)} tags"
            )

    def __len__(self) -> int:
        return len(self.words)


@dataclass
class Corpus:
    """Named splits of sentences, and where each split came from (for the run directory)."""

    train: list[Sentence]
    val: list[Sentence]
    test: list[Sentence]
    name: str = "corpus"
    sources: dict[str, str] = field(default_factory=dict)

    def splits(self) -> dict[str, list[Sentence]]:
        return {"train": self.train, "val": self.val, "test": self.test}

    def labels(self) -> list[str]:
        """The label vocabulary, taken from train alone: O first, then B-/I- pairs by type."""
        types = sorted({t[2:] for s in self.train for t in s.tags if t != "O"})
        return ["O"] + [f"{p}-{t}" for t in types for p in ("B", "I")]
