"""The one decoder (argmax, constrained Viterbi, CRF Viterbi) and the CRF's loss, checked against
brute force on small cases."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

from nerlit.models.decoding import (
    NEG_INF,
    allowed_transitions,
    decode_words,
    transition_scores,
    viterbi,
)
from nerlit.models.heads import CRF, compact
from tests.conftest import compose_train, tiny_overrides

LABELS = ["O", "B-per", "I-per", "B-geo", "I-geo"]
BIOES = ["O", "B-per", "I-per", "E-per", "S-per"]


def _valid(seq: list[str]) -> bool:
    allowed, start, end = allowed_transitions(LABELS if seq[0] in LABELS else BIOES)
    labels = LABELS if all(s in LABELS for s in seq) else BIOES
    ids = [labels.index(s) for s in seq]
    return bool(start[ids[0]] and end[ids[-1]] and all(allowed[a, b] for a, b in zip(ids, ids[1:])))


def test_iob2_rules():
    allowed, start, end = allowed_transitions(LABELS)
    o, b_per, i_per, b_geo, i_geo = range(5)
    assert not allowed[o, i_per] and allowed[b_per, i_per] and allowed[i_per, i_per]
    assert not allowed[b_geo, i_per] and allowed[i_per, b_geo] and allowed[o, b_geo]
    assert not start[i_geo] and start[b_geo] and bool(end.all())


def test_bioes_rules():
    allowed, start, end = allowed_transitions(BIOES)
    o, b, i, e, s = range(5)
    assert allowed[b, i] and allowed[b, e] and not allowed[b, o] and not allowed[b, s]
    assert not allowed[o, e] and allowed[e, o] and allowed[s, b]
    assert not end[b] and not end[i] and end[e] and end[s]
    assert not start[i] and not start[e]


def test_argmax_and_constrained_have_one_meaning_each():
    """argmax: each word's best label, a stray I-X starting an entity; constrained: the best
    valid sequence. Both return valid IOB2; here they disagree on where the entity starts."""
    probs = torch.tensor([[0.9, 0.0, 0.1, 0.0, 0.0], [0.1, 0.3, 0.6, 0.0, 0.0]])
    logits = probs.clamp_min(1e-9).log()
    assert probs.argmax(-1).tolist() == [0, 2]  # O, I-per: invalid as it stands
    (argmax,), _ = decode_words([logits], LABELS, "argmax")
    (best,), (scores,) = decode_words([logits], LABELS, "constrained")
    assert argmax == ["O", "B-per"] and best == ["O", "B-per"]
    assert scores == pytest.approx([0.9, 0.3], abs=1e-6)  # each chosen label's probability
    three = torch.tensor([[0.1, 0.0, 0.9, 0.0, 0.0], [0.1, 0.5, 0.4, 0.0, 0.0]]).clamp_min(1e-9)
    (argmax,), _ = decode_words([three.log()], LABELS, "argmax")
    (best,), _ = decode_words([three.log()], LABELS, "constrained")
    assert argmax == ["B-per", "B-per"] and best == ["O", "B-per"]


def test_bioes_models_decode_to_iob2():
    logits = torch.full((3, len(BIOES)), -9.0)
    for t, label in enumerate([1, 3, 4]):  # B-per E-per S-per
        logits[t, label] = 0.0
    for method in ("argmax", "constrained"):
        (tags,), _ = decode_words([logits], BIOES, method)
        assert tags == ["B-per", "I-per", "B-per"]


def test_batched_viterbi_matches_one_by_one():
    torch.manual_seed(0)
    rows = [torch.randn(n, len(LABELS)) for n in (5, 1, 0, 3)]
    scores = transition_scores(LABELS)
    together = viterbi(rows, *scores, chunk=2)
    assert together == [viterbi([r], *scores)[0] for r in rows]
    assert [len(r) for r in together] == [5, 1, 0, 3]


def test_compact_moves_labelled_positions_left():
    values = torch.tensor([[10, 11, 12, 13], [20, 21, 22, 23]])
    mask = torch.tensor([[False, True, False, True], [True, True, True, False]])
    out, out_mask = compact(values, mask)
    assert out.tolist() == [[11, 13, 0], [20, 21, 22]]
    assert out_mask.tolist() == [[True, True, False], [True, True, True]]


def test_crf_nll_matches_brute_force_partition():
    torch.manual_seed(1)
    crf = CRF(LABELS)
    with torch.no_grad():
        crf.transitions.normal_()
        crf.start.normal_()
        crf.end.normal_()
    emissions = torch.randn(1, 3, len(LABELS))
    tags = torch.tensor([[1, 2, 0]])
    mask = torch.ones(1, 3, dtype=torch.bool)
    transitions, start, end = crf.scores()

    def path_score(seq):
        s = start[seq[0]] + emissions[0, 0, seq[0]] + end[seq[-1]]
        return s + sum(
            transitions[a, b] + emissions[0, t + 1, b] for t, (a, b) in enumerate(zip(seq, seq[1:]))
        )

    all_paths = torch.stack([path_score(p) for p in itertools.product(range(5), repeat=3)])
    expected = torch.logsumexp(all_paths, 0) - path_score([1, 2, 0])
    assert crf.nll(emissions, tags, mask).item() == pytest.approx(expected.item(), rel=1e-4)
    (decoded,) = viterbi([emissions[0]], *transition_scores(LABELS, crf.learned()))
    assert _valid([LABELS[i] for i in decoded])
    assert decoded == list(max(itertools.product(range(5), repeat=3), key=path_score))


def test_forbidden_scores_are_finite():
    assert -1e9 < NEG_INF < -1000  # finite in bf16 sums, far below any learned score


def test_adamw_is_fused_where_supported_and_decays_only_matrices():
    from torch import nn

    from nerlit.models.optim import adamw, fused_supported, parameter_groups

    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
    optimizer = adamw(parameter_groups(model), lr=1e-3, weight_decay=0.1)
    decayed, plain = optimizer.param_groups
    assert [p.shape for p in decayed["params"]] == [(4, 4)] and decayed["weight_decay"] == 0.1
    assert len(plain["params"]) == 3 and plain["weight_decay"] == 0.0
    assert bool(decayed["fused"]) == fused_supported(torch.device("cpu"))
    assert not adamw(parameter_groups(model), fused=False).param_groups[0]["fused"]


def test_gradients_are_clipped_with_fused_adamw_under_bf16(gmb_file: Path, tmp_path: Path):
    from nerlit.commands.train import build

    cfg = compose_train(
        [
            *tiny_overrides(gmb_file),
            "logger=none",
            "trainer.precision=bf16-mixed",
            "trainer.gradient_clip_val=1e-6",
            "trainer.max_steps=1",
        ],
        tmp_path,
    )
    module, datamodule, trainer = build(cfg)
    trainer.fit(module, datamodule=datamodule)
    assert trainer.optimizers[0].param_groups[0]["fused"]
    # warmup makes step 1's lr 0: check the clip itself, on the gradients left after the step
    norm = torch.norm(
        torch.stack([p.grad.norm() for p in module.parameters() if p.grad is not None])
    )
    assert norm.item() <= 1e-6 * 1.01


def test_viterbi_memory_is_bounded_with_many_entity_types():
    """600 entity types peaked at 6.2 GB: a step held [256 sentences, from, to]."""
    import tracemalloc

    labels = ["O"] + [f"{p}-t{k}" for k in range(300) for p in ("B", "I")]
    generator = torch.Generator().manual_seed(0)
    rows = [torch.randn(4, len(labels), generator=generator) for _ in range(64)]
    scores = transition_scores(labels)
    tracemalloc.start()  # NumPy reports its buffers to tracemalloc
    try:
        together = viterbi(rows, *scores)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100 * 2**20, f"{peak / 2**20:.0f} MB for 64 sentences of 4 words"
    assert together == [viterbi([r], *scores)[0] for r in rows], "chunking changes no path"


def _full_viterbi(scores: torch.Tensor, transitions, first, last) -> list[int]:
    """The textbook Viterbi of one sentence: every [from, to] sum, first maximum wins."""

    emissions = scores.double().numpy()
    best, back = emissions[0] + first, []
    for t in range(1, len(emissions)):
        total = best[:, None] + transitions
        back.append(total.argmax(axis=0))
        best = total.max(axis=0) + emissions[t]
    path = [int((best + last).argmax())]
    for pointers in reversed(back):
        path.append(int(pointers[path[-1]]))
    return path[::-1]


@pytest.mark.parametrize("labels", [LABELS, BIOES], ids=["iob2", "bioes"])
@pytest.mark.parametrize("crf", [False, True], ids=["softmax", "crf"])
def test_viterbi_over_allowed_labels_is_the_full_viterbi_ties_included(labels, crf):
    generator = torch.Generator().manual_seed(3)
    n = len(labels)
    learned = None
    if crf:  # rounded: equal path scores, where the first maximum must be the full one's
        learned = {
            k: torch.randn(*s, generator=generator).round()
            for k, s in (("transitions", (n, n)), ("start", (n,)), ("end", (n,)))
        }
    rows = [(torch.randn(k % 9 + 1, n, generator=generator) * 2).round() for k in range(40)]
    scores = transition_scores(labels, learned)
    assert viterbi(rows, *scores, chunk=3) == [_full_viterbi(r, *scores) for r in rows]
