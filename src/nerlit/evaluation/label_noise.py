"""Which gold labels are most likely wrong: cleanlab's token-classification tools over
out-of-sample predicted probabilities (``nerlit audit`` makes them by k-fold training).

Confident learning (Northcutt et al. 2021, "Confident Learning: Estimating Uncertainty in
Dataset Labels"; for tokens, Wang & Mueller 2022, "Detecting Label Errors in Token
Classification Data") flags a word whose given label the model, which never saw it, finds
unlikely relative to how confident it is per class; a sentence's score is its least likely
word's (cleanlab's ``min``), so the sentences to read first are the lowest-scoring ones.

Classes are entity *types* plus O, not IOB2 tags: each word's B-X and I-X probabilities are
summed, as cleanlab's own NER tutorial does. A B/I disagreement on the right type is a boundary
detail the decoder settles, seldom an annotation error, and splitting every type in two halves
the examples cleanlab estimates its per-class thresholds from. Words whose type is wrong, or
that should (not) be in an entity, are what these classes catch.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nerlit import extras
from nerlit.data.schemes import split_tag
from nerlit.data.types import Sentence
from nerlit.evaluation.error_analysis import analyse_errors
from nerlit.evaluation.error_page import PageItem, render_error_page

FEATURE = "nerlit audit"


def entity_classes(tags: Sequence[Sequence[str]]) -> list[str]:
    """O, then the entity types of ``tags`` (IOB2 tags of every sentence), sorted."""
    return ["O", *sorted({split_tag(t)[1] for s in tags for t in s} - {""})]


def merge_probabilities(
    probs: np.ndarray, labels: Sequence[str], classes: Sequence[str]
) -> np.ndarray:
    """``[words, labels]`` tag probabilities (one model's label order) -> ``[words, classes]``
    type probabilities: B-X + I-X (+ E-X, S-X); a class the model does not know gets 0."""
    index = {c: i for i, c in enumerate(classes)}
    merged = np.zeros((probs.shape[0], len(classes)), dtype=np.float64)
    for column, label in enumerate(labels):
        kind = split_tag(label)[1] or "O"
        if kind in index:
            merged[:, index[kind]] += probs[:, column]
    total = merged.sum(axis=1, keepdims=True)
    return merged / np.where(total > 0, total, 1.0)


@dataclass
class SentenceIssue:
    """One sentence's audit: its score (lower: more suspicious) and flagged words."""

    index: int
    score: float
    #: (word position, given class, predicted class, probability of the given class)
    words: list[tuple[int, str, str, float]] = field(default_factory=list)


def rank_label_issues(
    given: Sequence[Sequence[str]],
    probs: Sequence[np.ndarray],
    classes: Sequence[str],
) -> list[SentenceIssue]:
    """Sentences from most to least suspicious (``given``: IOB2 tags; ``probs``: per sentence,
    ``[words, classes]`` out-of-sample probabilities)."""
    extras.require(FEATURE)
    from cleanlab.token_classification.filter import find_label_issues
    from cleanlab.token_classification.rank import get_label_quality_scores

    index = {c: i for i, c in enumerate(classes)}
    labels = [np.array([index[split_tag(t)[1] or "O"] for t in tags]) for tags in given]
    probs = [np.asarray(p, dtype=np.float64) for p in probs]
    scores, _ = get_label_quality_scores(labels, probs)
    flagged = find_label_issues(labels, probs)
    issues = [SentenceIssue(i, float(score)) for i, score in enumerate(scores)]
    for i, j in flagged:
        given_class = int(labels[i][j])
        predicted = int(np.argmax(probs[i][j]))
        issues[i].words.append(
            (int(j), classes[given_class], classes[predicted], float(probs[i][j][given_class]))
        )
    for issue in issues:
        issue.words.sort()
    return sorted(issues, key=lambda issue: (issue.score, -len(issue.words), issue.index))


def describe(issue: SentenceIssue, words: Sequence[str]) -> str:
    """``Paris (word 4): given O, predicted geo, p(given)=0.02; ...``"""
    return "; ".join(
        f"{words[j]} (word {j + 1}): given {given}, predicted {predicted}, p(given)={p:.3f}"
        for j, given, predicted, p in issue.words
    )


def write_audit_csv(
    issues: Sequence[SentenceIssue],
    sentences: Sequence[Sentence],
    predicted: Sequence[Sequence[str]],
    path: str | Path,
    splits: Sequence[str] | None = None,
) -> Path:
    """One row per sentence, most suspicious first."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "rank",
                "sentence_id",
                "split",
                "score",
                "issues",
                "words",
                "gold_tags",
                "predicted_tags",
                "suspicious_words",
            ]
        )
        for rank, issue in enumerate(issues, start=1):
            sentence = sentences[issue.index]
            writer.writerow(
                [
                    rank,
                    sentence.id,
                    splits[issue.index] if splits else "",
                    f"{issue.score:.6f}",
                    len(issue.words),
                    " ".join(sentence.words),
                    " ".join(sentence.tags),
                    " ".join(predicted[issue.index]),
                    describe(issue, sentence.words),
                ]
            )
    return path


def write_audit_page(
    issues: Sequence[SentenceIssue],
    sentences: Sequence[Sentence],
    predicted: Sequence[Sequence[str]],
    path: str | Path,
    title: str,
    top: int | None = None,
) -> Path:
    """errors.html's view of the ``top`` most suspicious sentences: given (gold) against
    out-of-sample predicted entities, suspicious words underlined, worst first."""
    shown = list(issues[:top] if top else issues)
    gold = [list(sentences[i.index].tags) for i in shown]
    pred = [list(predicted[i.index]) for i in shown]
    analysis = analyse_errors(gold, pred)
    items = []
    for issue, record in zip(shown, analysis.sentences):
        sentence = sentences[issue.index]
        items.append(
            PageItem(
                sentence.words,
                record,
                heading=f"{sentence.id}  score {issue.score:.4f}",
                note=describe(issue, sentence.words),
                flagged={j for j, *_ in issue.words},
                badges=[f"{len(issue.words)} suspicious"] if issue.words else [],
            )
        )
    summary = (
        f"Sentences ranked by label quality (cleanlab; lowest first), the {len(items)} most "
        f"suspicious of {len(issues)}. 'gold' is the corpus label, 'pred' a model that never "
        f"saw the sentence; suspicious words are underlined."
    )
    path = Path(path)
    path.write_text(render_error_page(items, title, summary, default_filter="all"), "utf-8")
    return path
