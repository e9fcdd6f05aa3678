"""Hub-ready exports: the model card states this model's data, training and scores (read back
with huggingface_hub's own parser), ``push_to`` uploads the folder (to a local stub of the Hub's
HTTP API: nothing here reaches the network), and ``Tagger.load("org/name")`` resolves an id
through the Hugging Face cache, offline."""

from __future__ import annotations

import base64
import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import torch
import yaml
from huggingface_hub import ModelCard, constants
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from nerlit import Tagger
from nerlit.commands.export import export
from nerlit.config import CONFIG_DIR
from nerlit.errors import ExportError, ModelLoadError, OptionError
from nerlit.inference.card import CARD, dataset_name, model_card
from nerlit.inference.hf_export import export_huggingface
from nerlit.inference.loading import load_model
from tests.conftest import tiny_checkpoint

REPO = "acme/tiny-ner"
TEXTS = ["Angela Merkel visited Berlin with NATO on Monday .", "Obama left Iraq ."]
SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return tiny_checkpoint(tmp_path_factory)


@pytest.fixture(scope="module")
def exported(ckpt: Path, tmp_path_factory) -> Path:
    return export_huggingface(ckpt, tmp_path_factory.mktemp("hub-export") / "model")


def compose_export(overrides: list[str]):
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose("export.yaml", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = "."
    return cfg


def _card(folder: Path) -> ModelCard:
    """The card as the Hub's own library reads it: a malformed front matter fails here."""
    return ModelCard.load(folder / CARD)


def _results(card: ModelCard) -> dict[tuple[str, str], float]:
    return {(r.dataset_split, r.metric_type): r.metric_value for r in card.data.eval_results or []}


# -- the model card ------------------------------------------------------------------------------


def _run_with(
    source: Path, run: Path, name: str = "best.ckpt", tested: str = "best.ckpt", **progress
) -> Path:
    """``source`` as ``run/checkpoints/NAME`` beside the tiny run's config.yaml, with the test
    scores and best validation F1 of checkpoint ``tested`` and Lightning's counters set to
    ``progress``."""
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(source.parent.parent / "config.yaml", run / "config.yaml")
    checkpoint = torch.load(source, weights_only=True)
    if progress:
        fit = checkpoint["loops"]["fit_loop"]
        checkpoint["global_step"] = progress["steps"]
        fit["epoch_progress"]["total"]["processed"] = progress["epochs"]
        fit["epoch_loop.batch_progress"]["is_last_batch"] = False
        fit["epoch_loop.batch_progress"]["current"]["completed"] = progress["batches"]
    torch.save(checkpoint, run / "checkpoints" / name)
    row = {"precision": 0.8, "recall": 0.7, "f1": 0.75, "support": 10}
    scores = {"mode": "strict", "per_type": {"geo": row}, "micro": row, "macro": row}
    (run / "metrics.json").write_text(json.dumps(scores))
    summary = {"best_checkpoint": str(run / "checkpoints" / tested), "best_val_f1": 0.6789}
    (run / "summary.json").write_text(json.dumps(summary))
    return run / "checkpoints" / name


def test_card_states_the_steps_and_epochs_trained_and_this_models_scores(ckpt, tmp_path: Path):
    best = _run_with(ckpt, tmp_path / "run", steps=1234, epochs=3, batches=7)
    folder = export_huggingface(best, tmp_path / "hf")
    card = _card(folder)
    assert card.data.datasets == ["gmb"] and card.data.language == "en"
    assert card.data.license == "unknown" and card.data.base_model is None  # random init
    assert _results(card) == {
        ("test", "f1"): 0.75,
        ("test", "precision"): 0.8,
        ("test", "recall"): 0.7,
        ("validation", "f1"): 0.6789,
    }
    text = card.text
    assert "| trained (this checkpoint) | 1,234 optimizer steps (3 epochs and 7 batches of" in text
    config = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert config["trainer"]["max_epochs"] == 1  # what was configured, and not in the card:
    assert "| epochs |" not in text and "max_epochs" not in text
    assert "| geo | 0.8000 | 0.7000 | 0.7500 | 10 |" in text and "0.6789" in text
    assert str(tmp_path) not in (folder / CARD).read_text()
    assert 'Tagger.load("path/to/this/folder")' in text
    assert 'pipeline("token-classification", model="path/to/this/folder"' in text


def test_scores_of_another_checkpoint_stay_out_of_the_card(ckpt, tmp_path: Path):
    """last.ckpt of a run that tested its best checkpoint: no test scores, no best val F1; its
    own validation F1 comes from the checkpoint callback's state it keeps."""
    last = _run_with(ckpt.parent / "last.ckpt", tmp_path / "run", "last.ckpt", tested="best.ckpt")
    card = _card(export_huggingface(last, tmp_path / "hf"))
    assert "the run tested `best.ckpt`, not this checkpoint (`last.ckpt`)" in card.text
    assert "0.7500" not in card.text and "0.6789" not in card.text
    own = torch.load(last, weights_only=True)["callbacks"]
    score = next(s["current_score"] for s in own.values() if s.get("monitor") == "val/f1")
    assert _results(card) == {("validation", "f1"): round(float(score), 4)}
    assert "optimizer steps (1 epoch)" in card.text


def test_no_benchmark_figures_of_other_models_in_an_int8_card(ckpt):
    text = str(model_card(load_model(ckpt), format="onnx", quantize="int8"))
    for figure in ("MiniLM", "GMB test split", "1.3-1.4x", "-0.12", "300 GMB sentences"):
        assert figure not in text
    assert "its int8 graph can score differently" in text  # the scores shown are fp32's


def test_the_dataset_is_named_by_the_data_config_never_by_the_train_file(tmp_path: Path):
    def record(name: str, train: str) -> dict:
        return {"config": {"name": name, "train_file": train}}

    assert dataset_name(record("gmb", "/d/gmb/ner_dataset.csv.gz"), None) == "gmb"
    assert dataset_name(record("conll2003", "/d/conll2003/train.txt"), None) == "conll2003"
    assert dataset_name(record("train", "/d/mine/train.txt"), None) is None  # from the file
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / "config.yaml").write_text("data:\n  name: null\n")

    def choose(data: str) -> None:
        choices = {"hydra": {"runtime": {"choices": {"data": data}}}}
        (run / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(choices))

    choose("wnut17")  # a data config of the user's own (--config-dir)
    assert dataset_name(record("train", "/d/train.txt"), run) == "wnut17"
    for generic in ("conll", "jsonl", "hf"):  # formats, not corpora
        choose(generic)
        assert dataset_name(record("train", "/d/train.txt"), run) is None
    (run / "config.yaml").write_text("data:\n  name: my-corpus\n")
    assert dataset_name(record("my-corpus", "/d/train.txt"), run) == "my-corpus"


def test_a_card_without_a_dataset_name_says_so_and_names_no_dataset(ckpt, tmp_path: Path):
    checkpoint = torch.load(ckpt, weights_only=True)
    checkpoint["nerlit_data"]["config"]["name"] = "train"
    checkpoint["nerlit_data"]["config"]["train_file"] = "/somewhere/train.txt"
    torch.save(checkpoint, tmp_path / "model.ckpt")  # outside any run folder
    card = _card(export_huggingface(tmp_path / "model.ckpt", tmp_path / "hf"))
    assert card.data.datasets is None and card.data.language is None
    assert "a custom corpus (unnamed: train with `data.name=NAME`)" in card.text
    assert "# nerlit-ner-custom" in card.text and "`train`" not in card.text


def test_export_config_sets_license_and_language_and_refuses_malformed_ones(ckpt, tmp_path: Path):
    base = [f"ckpt_path={ckpt}"]
    out = export(
        compose_export([*base, f"output_dir={tmp_path / 'a'}", "license=mit", "language=de"])
    )
    card = _card(out)
    assert (card.data.license, card.data.language) == ("mit", "de")
    langs = compose_export([*base, f"output_dir={tmp_path / 'b'}", "language=[en,de]"])
    assert _card(export(langs)).data.language == ["en", "de"]
    for bad, key in (("license=MIT License", "license"), ("language=english", "language")):
        with pytest.raises(OptionError, match=f"^{key}="):
            export(compose_export([*base, f"output_dir={tmp_path / 'c'}", bad]))
    assert not (tmp_path / "c").exists()


# -- push_to: a local stub of the Hub's HTTP API --------------------------------------------------


class HubStub(ThreadingHTTPServer):
    """The endpoints create_repo and upload_folder call, answering as the Hub does: every file is
    a regular (inline) upload, so the commit carries the files' bytes."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _StubHandler)
        self.calls: list[tuple[str, str]] = []
        self.headers: list[dict] = []
        self.created: list[dict] = []
        self.validated: list[str] = []
        self.files: dict[str, bytes] = {}
        self.refuse: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _StubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HubStub

    def log_message(self, *args) -> None:  # quiet
        pass

    def _reply(self, status: int, payload: dict, headers: dict | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        stub = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = urlsplit(self.path).path
        stub.calls.append((method, path))
        stub.headers.append({key.lower(): value for key, value in self.headers.items()})
        if stub.refuse:
            return self._reply(stub.refuse, {"error": "Invalid credentials"})
        repo = f"/api/models/{REPO}"
        if path == "/api/repos/create":
            stub.created.append(json.loads(body))
            return self._reply(200, {"url": f"{stub.url}/{REPO}"})
        if path == "/api/validate-yaml":
            stub.validated.append(json.loads(body)["content"])
            return self._reply(200, {"errors": [], "warnings": []})
        if path == f"{repo}/preupload/main":
            files = [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                for f in json.loads(body)["files"]
            ]
            return self._reply(200, {"files": files})
        if path == f"{repo}/commit/main":
            for line in body.splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    stub.files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            commit = f"{stub.url}/{REPO}/commit/{SHA}"
            return self._reply(200, {"commitUrl": commit, "commitOid": SHA})
        return self._reply(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})


@pytest.fixture
def hub(monkeypatch, tmp_path: Path) -> Iterator[HubStub]:
    """The stub as the Hub: huggingface_hub read HF_ENDPOINT and HF_HUB_OFFLINE at import, so
    its constants are patched; the token comes from HF_TOKEN, as the library reads it."""
    stub = HubStub()
    thread = threading.Thread(target=stub.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(constants, "ENDPOINT", stub.url)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", "hf_stub_token")
    # the library's daily registry fetch caches under HF_HOME: not the tester's
    monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", str(tmp_path / "agent_harnesses.json"))
    yield stub
    stub.shutdown()
    stub.server_close()


def test_push_to_creates_the_repo_and_uploads_the_exported_folder(ckpt, hub, tmp_path: Path):
    cfg = compose_export([f"ckpt_path={ckpt}", f"output_dir={tmp_path / 'm'}", f"push_to={REPO}"])
    out = export(cfg)
    local = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert {"README.md", "config.json", "model.safetensors", "tokenizer.json"} <= set(local)
    assert hub.files == local  # every file, byte for byte, in one commit
    assert hub.created == [{"name": "tiny-ner", "organization": "acme"}]  # public: the default
    assert hub.validated == [local["README.md"].decode()]  # the Hub checks the card's metadata
    assert [c for c in hub.calls if c[1].endswith(("/preupload/main", "/commit/main"))] == [
        ("POST", f"/api/models/{REPO}/preupload/main"),
        ("POST", f"/api/models/{REPO}/commit/main"),
    ]
    tokens = {path: h.get("authorization") for (_, path), h in zip(hub.calls, hub.headers)}
    pushed = ("/api/repos/create", "/api/validate-yaml", f"/api/models/{REPO}/commit/main")
    assert [tokens[path] for path in pushed] == ["Bearer hf_stub_token"] * 3
    card = _card(out)
    assert card.data.model_name == "tiny-ner"  # the model-index names the repo
    assert f'Tagger.load("{REPO}")' in card.text and f'model="{REPO}"' in card.text


def test_push_private_creates_a_private_repo(ckpt, hub, tmp_path: Path):
    cfg = compose_export(
        [
            f"ckpt_path={ckpt}",
            f"output_dir={tmp_path / 'm'}",
            f"push_to={REPO}",
            "push_private=true",
        ]
    )
    export(cfg)
    assert hub.created[0]["visibility"] == "private"


def test_a_refused_push_is_one_line_naming_the_login(ckpt, hub, tmp_path: Path):
    hub.refuse = 401
    cfg = compose_export([f"ckpt_path={ckpt}", f"output_dir={tmp_path / 'm'}", f"push_to={REPO}"])
    with pytest.raises(ExportError) as error:
        export(cfg)
    message = str(error.value)
    assert message.startswith(f"push_to={REPO}: the Hub refused the upload (")
    assert "hf auth login" in message and "\n" not in message
    assert (tmp_path / "m" / CARD).is_file()  # the export itself stands


def test_push_is_refused_offline_before_anything_is_exported(ckpt, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    cfg = compose_export([f"ckpt_path={ckpt}", f"output_dir={tmp_path / 'm'}", f"push_to={REPO}"])
    with pytest.raises(ExportError) as error:
        export(cfg)
    assert str(error.value) == (
        f"HF_HUB_OFFLINE=1: cannot push to {REPO}; unset HF_HUB_OFFLINE (and "
        f"TRANSFORMERS_OFFLINE) to upload, or leave out push_to"
    )
    assert not (tmp_path / "m").exists()
    bad = compose_export([f"ckpt_path={ckpt}", f"output_dir={tmp_path / 'm'}", "push_to=no-org"])
    with pytest.raises(ExportError, match="expected a Hub model id, ORG/NAME"):
        export(bad)


# -- Tagger.load("org/name") through the HF cache -------------------------------------------------


def _cache_snapshot(cache: Path, repo: str, folder: Path) -> Path:
    """``folder`` as the HF cache holds a downloaded repo: models--org--name/snapshots/<sha>/
    with refs/main naming the sha."""
    storage = cache / f"models--{repo.replace('/', '--')}"
    snapshot = storage / "snapshots" / SHA
    shutil.copytree(folder, snapshot)
    (storage / "refs").mkdir()
    (storage / "refs" / "main").write_text(SHA)
    return snapshot


@pytest.fixture
def offline_cache(tmp_path: Path, monkeypatch) -> Path:
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.chdir(tmp_path)  # no local acme/ folder
    return cache


def test_tagger_loads_a_hub_id_from_the_hf_cache_offline(exported: Path, offline_cache: Path):
    snapshot = _cache_snapshot(offline_cache, REPO, exported)
    tagger = Tagger.load(REPO, precision="fp32")
    assert Path(tagger.source) == snapshot
    local = Tagger.load(exported, precision="fp32").predict_tags([t.split() for t in TEXTS])
    assert tagger.predict_tags([t.split() for t in TEXTS]) == local


def test_an_uncached_hub_id_offline_is_one_line(offline_cache: Path):
    with pytest.raises(ModelLoadError) as error:
        Tagger.load("acme/not-downloaded")
    message = str(error.value)
    assert message.startswith("acme/not-downloaded: no such local file or folder, and not in")
    assert "HF_HUB_OFFLINE=1" in message and str(offline_cache) in message
    assert "\n" not in message


def test_a_local_folder_named_like_a_hub_id_wins(exported: Path, offline_cache: Path):
    shutil.copytree(exported, Path(REPO))  # ./acme/tiny-ner; nothing in the cache
    assert Path(Tagger.load(REPO).source) == Path(REPO)
    assert Path(Tagger.load(f"./{REPO}").source) == Path(REPO)


def test_an_unknown_hub_id_online_names_the_repo(hub, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelLoadError) as error:
        Tagger.load("acme/no-such-model")
    assert str(error.value).startswith(
        f"acme/no-such-model: no such local file or folder, and no model repo acme/no-such-model "
        f"on {hub.url}"
    )
    assert ("GET", "/api/models/acme/no-such-model/revision/main") in hub.calls
