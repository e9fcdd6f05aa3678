"""ONNX export and the ONNX Runtime backend: the graph computes the network, Tagger gives the same
tags on it as on torch (windows, CRF, casing), int8 runs, every export has a model card, and a
missing extra is one line naming the pip command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
import yaml

from nerlit import Tagger
from nerlit.data.schemes import spans
from nerlit.errors import ExportError, ModelLoadError, OptionError
from nerlit.inference.card import CARD
from nerlit.inference.hf_export import export_huggingface
from nerlit.inference.onnx_export import check_graph, export_onnx
from nerlit.models.network import NerNetwork
from tests.conftest import REPO_ROOT, RecordingBackend, make_sentences, tiny_checkpoint
from tests.test_extras import BLOCKER
from tests.test_inference import TEXTS

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

VARIANTS = {"linear": {}, "crf": {"head": "crf"}, "casing": {"case_features": True}}
LONG = [w for s, _ in make_sentences(12, seed=3) for w in s]  # ~100 words: 16-token windows


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    return {name: tiny_checkpoint(tmp_path_factory, **kw) for name, kw in VARIANTS.items()}


@pytest.fixture(scope="module")
def exported(checkpoints, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("onnx")
    return {name: export_onnx(ckpt, out / name) for name, ckpt in checkpoints.items()}


@pytest.fixture(scope="module")
def int8(checkpoints, tmp_path_factory) -> Path:
    return export_onnx(
        checkpoints["casing"], tmp_path_factory.mktemp("int8") / "m", quantize="int8"
    )


def _valid_iob2(row: list[str]) -> bool:
    return all(
        not tag.startswith("I-") or prev[2:] == tag[2:] for prev, tag in zip(["O", *row], row)
    )


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_onnx_runtime_tags_as_torch_does(checkpoints, exported, variant: str):
    words = [t.split() for t in TEXTS if t.strip()]
    onnx = Tagger.load(exported[variant])
    torch_fp32 = Tagger.load(checkpoints[variant], precision="fp32", backend="torch")
    assert onnx.backend.name == "onnx" and onnx.network is None and onnx.precision == "fp32"
    for a, b in zip(onnx.word_logits(words), torch_fp32.word_logits(words)):
        assert torch.allclose(a, b, atol=1e-4)
    assert onnx.predict_tags(words) == torch_fp32.predict_tags(words)
    for mine, theirs in zip(onnx.predict(TEXTS), torch_fp32.predict(TEXTS)):
        assert [(e.start, e.end, e.label) for e in mine] == [
            (e.start, e.end, e.label) for e in theirs
        ]
        assert [e.score for e in mine] == pytest.approx([e.score for e in theirs], abs=1e-5)
    # a long text in small windows: the same windows and merge on both backends
    small = {"max_length": 16, "stride": 4}
    long_onnx = Tagger.load(exported[variant], **small).predict_tags([LONG])
    assert long_onnx == Tagger.load(checkpoints[variant], precision="fp32", **small).predict_tags(
        [LONG]
    )
    assert len(long_onnx[0]) == len(LONG)


def test_the_folder_holds_a_graph_with_dynamic_axes_and_its_settings(exported):
    import onnx

    for name, folder in exported.items():
        assert sorted(p.name for p in folder.iterdir() if not p.name.startswith("tokenizer")) == [
            "README.md",
            "config.json",
            "model.onnx",
            *(["nerlit.safetensors"] if name == "crf" else []),
        ]
        graph = onnx.load(str(folder / "model.onnx"))
        inputs = {i.name: i.type.tensor_type.shape.dim for i in graph.graph.input}
        expected = ["input_ids", "attention_mask"] + (["casing_ids"] if name == "casing" else [])
        assert list(inputs) == expected
        for dims in inputs.values():
            assert all(d.dim_param and not d.dim_value for d in dims), "batch, sequence: dynamic"
        text = (folder / "config.json").read_text()
        config = json.loads(text)
        assert config["nerlit"]["onnx"]["inputs"] == expected
        assert "/tmp" not in text and str(Path.home()) not in text and len(text) < 10_000


def test_int8_quantizes_the_encoder_and_gives_valid_spans(exported, int8: Path):
    import onnx

    tagger = Tagger.load(int8)
    assert tagger.precision == "int8"
    graph = onnx.load(str(int8 / "model.onnx")).graph
    ops = [n.op_type for n in graph.node]
    assert "MatMulInteger" in ops and "Gather" in ops
    kept = json.loads((int8 / "config.json").read_text())["nerlit"]["onnx"]["fp32_kept"]
    assert len(kept) == 1 and kept[0] in {n.name for n in graph.node if n.op_type == "MatMul"}
    assert (int8 / "model.onnx").stat().st_size < (exported["casing"] / "model.onnx").stat().st_size
    for text, entities in zip(TEXTS, tagger.predict(TEXTS)):
        for e in entities:
            assert text[e.start : e.end] == e.text and 0 <= e.score <= 1
    tags = tagger.predict_tags([t.split() for t in TEXTS if t.strip()] + [LONG])
    assert all(_valid_iob2(row) for row in tags) and len(tags[-1]) == len(LONG)


def _front_matter(folder: Path) -> tuple[dict, str]:
    text = (folder / CARD).read_text()
    assert text.startswith("---\n")
    head, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(head), body


def test_every_export_has_a_model_card(checkpoints, exported, int8, tmp_path: Path):
    front, body = _front_matter(exported["crf"])
    assert front["library_name"] == "nerlit" and front["pipeline_tag"] == "token-classification"
    assert "onnx" in front["tags"] and front["datasets"] == ["gmb"]
    labels = torch.load(checkpoints["crf"], weights_only=True)["hyper_parameters"]["labels"]
    assert all(f"`{label}`" in body for label in labels)
    assert "CRF head" in body and "No test scores" in body
    assert "casing features" in _front_matter(int8)[1] and "int8" in _front_matter(int8)[0]["tags"]

    # a checkpoint in its run folder, with the run's test scores: model-index and the table
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    ckpt = run / "checkpoints" / "best.ckpt"
    ckpt.write_bytes(checkpoints["linear"].read_bytes())
    row = {"precision": 0.8, "recall": 0.7, "f1": 0.75, "support": 10}
    scores = {"mode": "strict", "per_type": {"geo": row}, "micro": row, "macro": row}
    (run / "metrics.json").write_text(json.dumps(scores))
    (run / "summary.json").write_text(json.dumps({"best_checkpoint": str(ckpt)}))  # tested it
    front, body = _front_matter(export_huggingface(ckpt, tmp_path / "hf"))
    assert front["library_name"] == "transformers"  # no casing features: the pipeline applies
    metrics = front["model-index"][0]["results"][0]["metrics"]
    assert {m["type"]: m["value"] for m in metrics} == {"f1": 0.75, "precision": 0.8, "recall": 0.7}
    assert "| geo | 0.8000 | 0.7000 | 0.7500 | 10 |" in body and 'pipeline("token' in body
    assert str(tmp_path) not in (tmp_path / "hf" / CARD).read_text()


def test_backend_choice_is_checked(checkpoints, exported):
    with pytest.raises(ModelLoadError, match="backend=onnx"):
        Tagger.load(exported["linear"], backend="torch")
    with pytest.raises(ModelLoadError, match="format=onnx"):
        Tagger.load(checkpoints["linear"], backend="onnx")
    with pytest.raises(OptionError, match="bf16"):
        Tagger.load(exported["linear"], precision="bf16")
    with pytest.raises(OptionError, match="backend"):
        Tagger.load(exported["linear"], backend="tensorrt")


def test_a_graph_that_computes_something_else_fails_the_check(checkpoints, exported):
    network = NerNetwork.load(checkpoints["linear"])
    assert check_graph(network, exported["linear"] / "model.onnx") < 1e-4
    with torch.no_grad():
        network.model.classifier.bias += 0.5
    with pytest.raises(ExportError, match="differ by"):
        check_graph(network, exported["linear"] / "model.onnx")


def test_without_the_onnx_extra_export_and_tagger_name_the_pip_command(
    checkpoints, exported, tmp_path: Path
):
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(BLOCKER)  # hides onnx, onnxruntime, onnxscript
    env = {**os.environ, "PYTHONPATH": str(blocker)}
    script = (
        "import sys\n"
        "from nerlit import Tagger\n"
        "from nerlit.errors import MissingExtraError\n"
        "try:\n"
        f"    Tagger.load({str(exported['linear'])!r})\n"
        "except MissingExtraError as error:\n"
        "    print(error)\n"
        "sys.argv = ['nerlit export', 'ckpt_path=" + str(checkpoints["linear"]) + "',\n"
        "            'format=onnx', 'output_dir=" + str(tmp_path / "out") + "',\n"
        "            'hydra.run.dir=" + str(tmp_path / "run") + "']\n"
        "from nerlit.commands.export import main\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    hint = 'pip install "nerlit[onnx]"'
    assert hint in result.stdout, result.stderr[-2000:]
    assert result.returncode == 1 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("nerlit: format=onnx") and hint in last
    assert not (tmp_path / "out").exists()


def test_tags_of_every_backend_are_the_spans_of_their_entities(exported):
    tagger = Tagger.load(exported["casing"])
    words = [t.split() for t in TEXTS if t.strip()]
    for row, entities in zip(tagger.predict_tags(words), tagger.predict(words)):
        assert [(k, a, b) for k, a, b in spans(row)] == [
            (e.label, e.word_start, e.word_end) for e in entities
        ]


def test_concurrent_batches_tag_as_one_batch_at_a_time(exported):
    words = [t.split() for t in TEXTS if t.strip()] * 5 + [LONG]
    small = {"batch_size": 2, "max_length": 16, "stride": 4}
    alone = Tagger.load(exported["casing"], concurrent_batches=1, **small)
    together = Tagger.load(exported["casing"], concurrent_batches=2, **small)
    assert alone.backend.concurrent_batches == 1 and together.backend.concurrent_batches == 2
    threads = max(1, torch.get_num_threads() // 2)
    assert together.backend.session.get_session_options().intra_op_num_threads == threads
    together.backend = RecordingBackend(together.backend)
    for a, b in zip(alone.word_logits(words), together.word_logits(words)):
        assert torch.allclose(a, b, atol=1e-5)
    assert together.predict_tags(words) == alone.predict_tags(words)
    callers = {thread for thread, _ in together.backend.calls}
    assert len(callers) == 2 and threading.get_ident() not in callers  # the pool's two threads
    # a call with fewer windows than threads x batch_size is split so that each thread gets some
    together.batch_size = 32
    together.backend.calls.clear()
    together.word_logits([["Obama", "spoke"], ["Paris"], ["John", "Smith"]])  # 3 windows
    assert sorted(len(lengths) for _, lengths in together.backend.calls) == [1, 2]
    # one window: no pool, the caller's thread
    together.backend.calls.clear()
    together.word_logits([["Obama"]])
    assert [thread for thread, _ in together.backend.calls] == [threading.get_ident()]


def test_concurrent_batches_are_checked(checkpoints, exported):
    assert Tagger.load(exported["linear"]).backend.concurrent_batches == torch.get_num_threads()
    assert Tagger.load(checkpoints["linear"]).backend.concurrent_batches == 1
    with pytest.raises(OptionError, match="only backend=onnx"):
        Tagger.load(checkpoints["linear"], concurrent_batches=2)
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(OptionError, match="concurrent_batches"):
            Tagger.load(exported["linear"], concurrent_batches=bad)


@pytest.mark.parametrize("disabled", [True, False])
def test_the_cpu_session_leaves_out_the_skip_layer_norm_fusion(
    exported, tmp_path: Path, monkeypatch, disabled: bool
):
    """The optimized graph ONNX Runtime runs has no ``SkipLayerNormalization`` (its slow CPU
    kernel); without the setting it would (so the optimizer's name is one ORT knows)."""
    import onnx
    import onnxruntime as ort

    from nerlit.inference.backends import OnnxBackend

    if not disabled:
        monkeypatch.setattr(OnnxBackend, "CPU_DISABLED_FUSIONS", ())
    real = ort.InferenceSession
    dumped = tmp_path / "optimized.onnx"

    def dumping(path, options, **kwargs):
        options.optimized_model_filepath = str(dumped)
        return real(path, options, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", dumping)
    Tagger.load(exported["linear"], device="cpu")
    fused = [n for n in onnx.load(str(dumped)).graph.node if n.op_type == "SkipLayerNormalization"]
    assert (len(fused) == 0) is disabled
