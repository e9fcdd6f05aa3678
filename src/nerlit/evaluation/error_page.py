"""errors.html: gold and predicted entities of each sentence side by side, errors highlighted.

One self-contained file (inline CSS and a few lines of script, no external assets), so it opens
from a run folder, an attachment or an air-gapped machine. Sentences come in the order given
(``evaluate``: most errors first; ``audit``: most suspicious first); a type menu and a category
menu filter them, and the counts table at the top sets both with one click (as does a link
ending in ``#type=geo&cat=wrong_type``). Entity colours are
those of ``nerlit predict format=html`` (:func:`nerlit.data.colours.type_colour`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from nerlit.data.colours import type_colour
from nerlit.data.types import Sentence
from nerlit.evaluation.error_analysis import ERRORS, LABELS, ErrorAnalysis, SentenceErrors, Span

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 1.5em 2em;
       color: #222; max-width: 80em; }
h1 { font-size: 1.35em; margin-bottom: 0.2em; }
.meta { color: #666; font-size: 0.9em; }
table.counts { border-collapse: collapse; margin: 0.8em 0; font-size: 0.85em; }
.counts th, .counts td { padding: 0.2em 0.6em; border-bottom: 1px solid #e4e4e4;
                        text-align: right; }
.counts th:first-child, .counts td:first-child { text-align: left; }
.counts td.k { cursor: pointer; color: #0645ad; }
.counts td.k:hover { background: #eef3ff; }
.counts td.z { color: #bbb; }
.bar { position: sticky; top: 0; background: #fff; padding: 0.5em 0; border-bottom: 1px solid #ddd;
       z-index: 1; }
.bar select { margin-right: 1em; }
.s { padding: 0.45em 0; border-bottom: 1px solid #eee; }
.h { font-size: 0.8em; color: #777; margin-bottom: 0.15em; }
.h .n { color: #999; margin-right: 0.6em; }
.h .tag { display: inline-block; padding: 0 0.4em; border-radius: 0.3em; margin-left: 0.3em;
          background: #fde8e8; color: #a11; }
.line { line-height: 2.3; white-space: pre-wrap; }
.side { display: inline-block; width: 3.2em; color: #999; font-size: 0.75em;
        text-transform: uppercase; }
.ent { padding: 0.2em 0.4em; margin: 0 0.1em; border-radius: 0.35em; line-height: 1; }
.ent .label { font-size: 0.62em; font-weight: bold; text-transform: uppercase;
              vertical-align: middle; margin-left: 0.35em; }
.ent.err { outline: 2px solid #d22; }
.ent.wrong { outline: 2px dashed #e58a00; }
.ent .why { font-size: 0.62em; color: #b00; margin-left: 0.3em; font-weight: bold; }
.flag { text-decoration: underline wavy #d22; text-underline-offset: 0.25em; }
.note { font-size: 0.8em; color: #444; margin-left: 3.2em; }
"""

_SCRIPT = """
const items = Array.from(document.querySelectorAll('.s'));
const typeMenu = document.getElementById('type'), catMenu = document.getElementById('cat');
const shown = document.getElementById('shown');
function matches(s, t, c) {
  const errs = s.dataset.e ? s.dataset.e.split(' ') : [];
  const types = s.dataset.t ? s.dataset.t.split(' ') : [];
  if (c === 'all') return t === 'all' || types.includes(t);
  if (c === 'none') return errs.length === 0 && (t === 'all' || types.includes(t));
  return errs.some(e => { const [ec, et] = e.split(':');
    return (c === 'errors' || ec === c) && (t === 'all' || et === t); });
}
function apply() {
  let n = 0;
  for (const s of items) { const ok = matches(s, typeMenu.value, catMenu.value);
    s.style.display = ok ? '' : 'none'; n += ok; }
  shown.textContent = n;
}
function pick(t, c) { typeMenu.value = t; catMenu.value = c; apply(); }
typeMenu.addEventListener('change', apply); catMenu.addEventListener('change', apply);
const given = new URLSearchParams(location.hash.slice(1));
if (given.get('type')) typeMenu.value = given.get('type');
if (given.get('cat')) catMenu.value = given.get('cat');
apply();
"""


@dataclass
class PageItem:
    """One sentence of the page: its words, categorised entities, and what to say about it."""

    words: Sequence[str]
    record: SentenceErrors
    heading: str = ""
    note: str = ""
    #: word positions to underline (the audit's suspicious words)
    flagged: set[int] = field(default_factory=set)
    #: extra badges for the heading
    badges: list[str] = field(default_factory=list)


def _words(words: Sequence[str], start: int, end: int, flagged: set[int]) -> list[str]:
    return [
        f'<span class="flag">{escape(words[i])}</span>' if i in flagged else escape(words[i])
        for i in range(start, end)
    ]


def _mark(words: Sequence[str], span: Span, gold: bool, flagged: set[int]) -> str:
    text = " ".join(_words(words, span.start, span.end, flagged))
    label = f'<span class="label">{escape(span.type)}</span>'
    style = f'style="background: {type_colour(span.type)}"'
    if span.category == "correct":
        return f'<mark class="ent" {style}>{text}{label}</mark>'
    if gold and span.category == "wrong":
        why = 'title="a prediction got this entity wrong"'
        return f'<mark class="ent wrong" {style} {why}>{text}{label}</mark>'
    why = LABELS[span.category]
    if span.gold_type and span.gold_type != span.type:
        why += f" (gold {span.gold_type})"
    return (
        f'<mark class="ent err" {style} title="{escape(why)}">{text}{label}'
        f'<span class="why">{escape(why)}</span></mark>'
    )


def _line(words: Sequence[str], spans: Sequence[Span], gold: bool, flagged: set[int]) -> str:
    parts: list[str] = []
    position = 0
    for span in sorted(spans, key=lambda s: s.start):
        if span.start < position:
            continue
        parts += _words(words, position, span.start, flagged)
        parts.append(_mark(words, span, gold, flagged))
        position = span.end
    parts += _words(words, position, len(words), flagged)
    return " ".join(parts)


def _error_tokens(record: SentenceErrors) -> list[str]:
    tokens = []
    for span in record.errors():
        kind = span.type if span.category in ("missed", "spurious") else span.gold_type or span.type
        tokens.append(f"{span.category}:{kind}")
    return tokens


def render_item(item: PageItem, number: int) -> str:
    record = item.record
    tokens = _error_tokens(record)
    types = sorted({s.type for s in record.gold + record.pred})
    kinds = Counter(t.split(":")[0] for t in tokens)
    badges = [f'<span class="tag">{n} {escape(LABELS[c])}</span>' for c, n in kinds.items()]
    badges += [f'<span class="tag">{escape(b)}</span>' for b in item.badges]
    head = f'<span class="n">{number}</span>{escape(item.heading)}{"".join(badges)}'
    note = f'<div class="note">{escape(item.note)}</div>' if item.note else ""
    return (
        f'<div class="s" data-e="{escape(" ".join(tokens))}" data-t="{escape(" ".join(types))}">'
        f'<div class="h">{head}</div>'
        f'<div class="line"><span class="side">gold</span>'
        f"{_line(item.words, record.gold, True, item.flagged)}</div>"
        f'<div class="line"><span class="side">pred</span>'
        f"{_line(item.words, record.pred, False, item.flagged)}</div>{note}</div>"
    )


def _counts_table(items: Sequence[PageItem]) -> tuple[str, list[str]]:
    """Sentences per (type, category); each cell filters the page to those sentences."""
    cells: dict[str, Counter] = {}
    for item in items:
        for token in set(_error_tokens(item.record)):
            category, kind = token.split(":")
            cells.setdefault(kind, Counter())[category] += 1
        for kind in {s.type for s in item.record.gold + item.record.pred}:
            cells.setdefault(kind, Counter())
    types = sorted(cells)
    head = "".join(f"<th>{escape(LABELS[c])}</th>" for c in ERRORS)
    rows = []
    for kind in types:
        mark = f'<mark class="ent" style="background: {type_colour(kind)}">{escape(kind)}</mark>'
        row = [f"<td>{mark}</td>"]
        for category in ERRORS:
            n = cells[kind][category]
            js = f"pick('{escape(kind)}','{category}')"
            row.append(f'<td class="k" onclick="{js}">{n}</td>' if n else '<td class="z">0</td>')
        rows.append("<tr>" + "".join(row) + "</tr>")
    table = (
        '<table class="counts"><tr><th>sentences with</th>'
        + head
        + "</tr>"
        + "".join(rows)
        + "</table>"
    )
    return table, types


def render_error_page(
    items: Iterable[PageItem], title: str, summary: str = "", default_filter: str = "errors"
) -> str:
    """The whole page, items in the order given; ``default_filter`` is the category menu's
    initial value (``errors``: sentences with any error; ``all``)."""
    items = list(items)
    table, types = _counts_table(items)
    type_options = '<option value="all">all types</option>' + "".join(
        f'<option value="{escape(t)}">{escape(t)}</option>' for t in types
    )
    categories = [("all", "all sentences"), ("errors", "any error")]
    categories += [(c, LABELS[c]) for c in ERRORS] + [("none", "no error")]
    cat_options = "".join(
        f'<option value="{c}"{" selected" if c == default_filter else ""}>{escape(text)}</option>'
        for c, text in categories
    )
    n_errors = sum(1 for item in items if item.record.errors())
    blocks = "\n".join(render_item(item, i) for i, item in enumerate(items, start=1))
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_CSS}</style></head><body>\n"
        f"<h1>{escape(title)}</h1>\n"
        f'<p class="meta">{len(items)} sentences, {n_errors} with errors. {escape(summary)}</p>\n'
        f"{table}\n"
        f'<div class="bar">type <select id="type">{type_options}</select>'
        f'category <select id="cat">{cat_options}</select>'
        f'<span class="meta"><span id="shown">{len(items)}</span> shown</span></div>\n'
        f"{blocks}\n<script>{_SCRIPT}</script>\n</body></html>\n"
    )


def error_items(sentences: Sequence[Sentence], analysis: ErrorAnalysis) -> list[PageItem]:
    """One item per sentence, most errors first (ties in corpus order)."""
    items = [
        PageItem(sentence.words, record, heading=sentence.id or f"sentence {record.index + 1}")
        for sentence, record in zip(sentences, analysis.sentences)
    ]
    return sorted(items, key=lambda item: -item.record.n_errors)


def write_error_page(
    sentences: Sequence[Sentence], analysis: ErrorAnalysis, path: str | Path, title: str
) -> Path:
    """errors.html of a scored split: every sentence, most errors first."""
    totals = analysis.totals()
    summary = ", ".join(f"{totals[c]} {LABELS[c]}" for c in ("correct", *ERRORS))
    path = Path(path)
    path.write_text(
        render_error_page(error_items(sentences, analysis), title, f"Entities: {summary}."),
        encoding="utf-8",
    )
    return path
