"""``nerlit serve``: the real server (``python -m nerlit.serve``) on a free localhost port, called
by a real HTTP client (urllib). Its records are ``Tagger.predict``'s and ``nerlit predict``'s; each
of 16 concurrent clients gets its own results in order while their requests share batches; a bad
request gets a 4xx with a message and disturbs no one. The batcher's failure isolation and the
option pass-through to ``Tagger.load`` are tested in-process, where they are cheap to force."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from nerlit.commands.serve import load_tagger
from nerlit.errors import OptionError
from nerlit.inference.files import predict_file
from nerlit.inference.server import (
    Batcher,
    _json_response,
    _records_response,
    freeze_startup_objects,
    predict_record,
    release_memory,
)
from nerlit.inference.tagger import Tagger
from tests.conftest import tiny_checkpoint
from tests.test_extras import blocker

MAX_TEXTS = 8
MAX_CHARS = 300
#: seconds a connection may take to send a request head (the server's header_timeout)
HEADER_TIMEOUT = 2
#: no proxy for 127.0.0.1, whatever the environment says
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Server:
    def __init__(self, port: int, process: subprocess.Popen, log: Path) -> None:
        self.url, self.process, self.log = f"http://127.0.0.1:{port}", process, log

    def call(
        self, path: str, body: bytes | dict | None = None, method: str | None = None
    ) -> tuple[int, dict]:
        """(status, JSON body) of one request; a dict body is sent as JSON."""
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with HTTP.open(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def predict(self, texts: list) -> list[dict]:
        status, body = self.call("/predict", {"texts": texts})
        assert status == 200, body
        return body["results"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return tiny_checkpoint(tmp_path_factory)


@pytest.fixture(scope="module")
def tagger(ckpt: Path) -> Tagger:
    # fp32: bf16 autocast would round differently in batches padded differently
    return Tagger.load(ckpt, precision="fp32")


@pytest.fixture(scope="module")
def server(ckpt: Path, tmp_path_factory) -> Iterator[Server]:
    """One server for the module; SIGTERM (then SIGKILL) at the end, whatever happened."""
    workdir = tmp_path_factory.mktemp("serve")
    log = workdir / "server.log"
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "nerlit.serve",
        f"ckpt_path={ckpt}",
        f"port={port}",
        f"max_texts={MAX_TEXTS}",
        f"max_chars={MAX_CHARS}",
        "precision=fp32",
        # the first request of a batch waits for the others: concurrent clients share batches
        "batch_timeout=0.1",
        f"header_timeout={HEADER_TIMEOUT}",
    ]
    with log.open("w") as sink:
        process = subprocess.Popen(command, cwd=workdir, stdout=sink, stderr=subprocess.STDOUT)
    running = Server(port, process, log)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, f"the server exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"no /health in 90 s:\n{log.read_text()}"
            try:
                if running.call("/health")[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        yield running
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _expected(tagger: Tagger, texts: list) -> list[dict]:
    return [predict_record(t, found) for t, found in zip(texts, tagger.predict(texts))]


def _same(served: list[dict], expected: list[dict]) -> bool:
    """Equal records, scores to 1e-5 (thread counts may reorder a float sum)."""
    if [r["text"] for r in served] != [r["text"] for r in expected]:
        return False
    for got, want in zip(served, expected):
        strip = [{k: v for k, v in e.items() if k != "score"} for e in got["entities"]]
        if strip != [{k: v for k, v in e.items() if k != "score"} for e in want["entities"]]:
            return False
        scores = [e["score"] for e in got["entities"]]
        if scores != pytest.approx([e["score"] for e in want["entities"]], abs=1e-5):
            return False
    return True


TEXTS = [
    "Angela Merkel visited Berlin with NATO on Monday.",
    "",
    "Iraq's U.S.-led forces met Obama in São Paulo 😀 on Friday , said Reuters .",
    "John Smith criticized Paris .",
]


def test_one_request_returns_the_records_of_tagger_predict_and_nerlit_predict(
    server, tagger, tmp_path
):
    texts = [*TEXTS, ["Maria", "left", "New", "York", "."], []]
    served = server.predict(texts)
    assert _same(served, _expected(tagger, texts))
    assert served[4]["text"] == "Maria left New York ."
    assert all(r["text"][e["start"] : e["end"]] == e["text"] for r in served for e in r["entities"])

    lines = tmp_path / "texts.txt"
    lines.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    predict_file(tagger, lines, tmp_path / "out.jsonl", progress=False)
    jsonl = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert _same(served[: len(TEXTS)], jsonl)
    assert server.predict([]) == []


def test_concurrent_clients_each_get_their_own_results_in_order(server, tagger):
    people, places = ["Obama", "Angela Merkel", "John Smith", "Maria"], ["Paris", "Iraq", "Berlin"]
    asks = {
        client: [
            [
                f"{people[(client + r) % 4]} visited {places[(client + k) % 3]} , client {client} "
                f"request {r} text {k} ."
                for k in range(1 + (client + r) % 3)
            ]
            for r in range(2)
        ]
        for client in range(16)
    }
    before = server.call("/health")[1]
    start = threading.Barrier(16)
    answers: dict[int, list] = {}

    def client(number: int) -> None:
        start.wait()
        answers[number] = [server.predict(texts) for texts in asks[number]]

    threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(answers) == list(range(16))
    everything = [text for requests in asks.values() for texts in requests for text in texts]
    expected = dict(zip(everything, _expected(tagger, everything)))
    for number, requests in asks.items():
        for texts, served in zip(requests, answers[number]):
            assert _same(served, [expected[t] for t in texts]), (number, texts)
    after = server.call("/health")[1]
    requests = after["requests"] - before["requests"]
    assert requests == 32 and after["texts"] - before["texts"] == sum(
        len(t) for r in asks.values() for t in r
    )
    assert after["batches"] - before["batches"] < requests  # requests shared batches


@pytest.mark.parametrize(
    ("path", "body", "method", "status", "says"),
    [
        ("/predict", b'{"texts": [', None, 400, "not valid JSON"),
        ("/predict", b"\xff\xfe\x00", None, 400, "not valid JSON"),
        ("/predict", {"texts": "x"}, None, 422, "must be a list"),
        ("/predict", {"texts": [1, None]}, None, 422, "texts[0] is a number"),
        ("/predict", {"texts": [["a", None]]}, None, 422, "texts[0] is a list holding"),
        ("/predict", b"[]", None, 422, "JSON object"),
        ("/predict", b'{"texts": ["a"], "texts": ["b"]}', None, 422, "'texts' appears twice"),
        ("/predict", {"text": ["a"]}, None, 422, "JSON object"),
        ("/predict", {"texts": ["a"], "decode": "argmax"}, None, 422, "unknown field"),
        ("/predict", {"texts": ["a"] * (MAX_TEXTS + 1)}, None, 413, "max_texts"),
        ("/predict", {"texts": ["ok", "a" * (MAX_CHARS + 1)]}, None, 413, "texts[1] has"),
        ("/predict", {"texts": [["a" * MAX_CHARS, "b"]]}, None, 413, "max_chars"),
        ("/predict", {"texts": ["\ud800"]}, None, 422, "surrogate"),
        ("/predict", b"[" * 15_000 + b"]" * 15_000, None, 400, "nest"),
        ("/predict", b'{"texts": ' + b"[" * 30_000, None, 400, "nest"),
        ("/predict", None, "GET", 405, "Method Not Allowed"),
        ("/predictions", {"texts": ["a"]}, None, 404, "Not Found"),
    ],
)
def test_a_bad_request_gets_a_4xx_with_a_message_and_the_server_keeps_serving(
    server, path, body, method, status, says
):
    got, answer = server.call(path, body, method)
    assert got == status and says in answer["detail"], answer
    assert server.call("/health")[0] == 200
    assert server.predict(["Obama visited Paris ."])[0]["text"] == "Obama visited Paris ."


def test_a_request_that_breaks_the_model_fails_alone_in_its_batch():
    def predict(texts: list) -> list:
        if "boom" in texts:
            raise RuntimeError("boom")
        return [[t] for t in texts]

    batcher = Batcher(predict, max_batch_size=64, batch_timeout=0.5)
    futures = [batcher.submit(texts) for texts in (["a", "b"], ["boom"], ["c"])]
    batcher.start()
    try:
        assert futures[0].result(10) == [["a"], ["b"]] and futures[2].result(10) == [["c"]]
        with pytest.raises(RuntimeError, match="boom"):
            futures[1].result(10)
    finally:
        batcher.stop()


def test_after_a_batch_of_n_requests_the_next_batch_waits_for_n_to_come_back():
    batches = []

    def predict(texts: list) -> list:
        batches.append(list(texts))
        return [[t] for t in texts]

    batcher = Batcher(predict, max_batch_size=64, refill_timeout=2.0)
    first = [batcher.submit([t]) for t in "abc"]  # queued before start: one batch of three
    batcher.start()
    try:
        assert [f.result(10) for f in first] == [[["a"]], [["b"]], [["c"]]]
        second = []
        for text in "def":  # the three clients come back one by one
            second.append(batcher.submit([text]))
            time.sleep(0.05)
        assert [f.result(10) for f in second] == [[["d"]], [["e"]], [["f"]]]
        # without refill_timeout "d" would have been tagged alone, before "e" arrived
        assert batches == [["a", "b", "c"], ["d", "e", "f"]]
        lone = batcher.submit(["g"])  # the last batch had 3: waits, but "g" is answered
        assert lone.result(10) == [["g"]]
        # a lone client (last batch: 1 request) is never held for refill_timeout (2 s)
        assert batcher.submit(["h"]).result(1) == [["h"]]
    finally:
        batcher.stop()


@pytest.mark.parametrize(
    "key, value",
    [
        ("refill_timeout", -0.01),
        ("refill_timeout", True),
        ("batch_timeout", "soon"),
        ("port", -1),
        ("port", 70000),
        ("header_timeout", 0),
        ("max_headers", 0),
        ("max_header_bytes", 10),
    ],
)
def test_a_bad_server_option_is_one_line_naming_the_key(key, value):
    from hydra import compose, initialize_config_dir

    from nerlit.config import CONFIG_DIR
    from nerlit.config_checks import validate
    from nerlit.errors import ConfigError

    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose("serve.yaml", overrides=["ckpt_path=m"])
    validate(cfg, "serve")  # the defaults pass
    cfg[key] = value
    with pytest.raises(ConfigError, match=f"^{key}="):
        validate(cfg, "serve")


def test_serve_reads_the_tagger_options_as_predict_does(monkeypatch):
    """One options object: serve, predict and evaluate compose conf/tagger/default.yaml and pass
    TaggerOptions to Tagger.load; a value out of range is one line naming the key."""
    from hydra import compose, initialize_config_dir

    from nerlit.config import CONFIG_DIR
    from nerlit.inference.tagger import TaggerOptions

    seen = []
    monkeypatch.setattr(
        Tagger, "load", classmethod(lambda cls, path, options: seen.append(options))
    )
    overrides = ["ckpt_path=m", "decode=argmax", "precision=fp32", "backend=onnx"]
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        for verb in ("serve", "predict"):
            load_tagger(compose(f"{verb}.yaml", overrides=overrides))
    assert seen[0] == seen[1] == TaggerOptions(decode="argmax", precision="fp32", backend="onnx")
    with pytest.raises(OptionError, match="^batch_size=0: expected an integer >= 1$"):
        load_tagger(OmegaConf.create({"ckpt_path": "m", "batch_size": 0}))


@pytest.mark.parametrize("missing", ["uvicorn", "starlette"])
def test_without_the_serve_extra_it_names_the_pip_line_and_imports_no_server_package(
    tmp_path, missing
):
    (tmp_path / "sitecustomize.py").write_text(blocker((missing,), (missing,)))
    paths = [str(tmp_path), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    script = (
        "import sys, nerlit.commands.serve as serve\n"
        "assert not {'uvicorn', 'starlette', 'torch'} & set(sys.modules), 'imported'\n"
        "sys.argv = ['nerlit serve', 'ckpt_path=model']\n"
        "serve.main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert 'nerlit serve needs the serve extra: pip install "nerlit[serve]"' in result.stderr
    assert "imported" not in result.stderr and "Traceback" not in result.stderr


def test_health_names_the_model_but_not_its_path(server, ckpt):
    status, body = server.call("/health")
    assert status == 200 and body["model"] == ckpt.name and body["labels"]
    assert str(ckpt.parent) not in json.dumps(body)


def _connect(server: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])), timeout=5)
    sock.settimeout(1.0)
    return sock


def _closed_within(sock: socket.socket, seconds: float, trickle: bytes = b"") -> float | None:
    """Seconds until the server closes ``sock`` (None: still open after ``seconds``), sending
    one byte of ``trickle`` every 0.5 s meanwhile, as a slowloris client does."""
    started = time.monotonic()
    for i in range(int(seconds / 0.5) + 1):
        try:
            if i < len(trickle):
                sock.sendall(trickle[i : i + 1])
            sock.settimeout(0.5)
            if sock.recv(4096) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except OSError:  # reset: closed too
            return time.monotonic() - started
    return None


def test_partial_and_trickled_request_heads_are_closed_after_header_timeout(server):
    """Slowloris: uvicorn timed out neither a connection that sends nothing nor one that sends a
    header byte every 0.5 s (each byte reset its keep-alive timer)."""
    idle = _connect(server)
    partial, trickled = _connect(server), _connect(server)
    try:
        partial.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")
        head = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 100
        bound = HEADER_TIMEOUT + 4
        for sock, trickle in ((idle, b""), (partial, b""), (trickled, head)):
            took = _closed_within(sock, bound, trickle)
            assert took is not None, f"still open after {bound} s"
        # a kept-alive connection gets the same deadline for its next request head
        with _connect(server) as alive:
            alive.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            alive.settimeout(5)
            assert alive.recv(4096).startswith(b"HTTP/1.1 200")
            alive.sendall(b"GET /health HTTP/1.1\r\n")
            assert _closed_within(alive, bound, b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaa") is not None
    finally:
        for sock in (idle, partial, trickled):
            sock.close()
    assert server.call("/health")[0] == 200


def _answer(sock: socket.socket) -> bytes:
    """What the server sent before closing (b"" if it reset the connection first)."""
    sock.settimeout(5)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except OSError:
        pass
    return data


@pytest.mark.parametrize(
    ("headers", "says"),
    [
        ([b"X-Big: " + b"a" * 2_000_000], b"max_header_bytes"),
        ([b"X-H%d: v" % i for i in range(2_000)], b"max_header"),
        ([b"X-H%d: v" % i for i in range(150)], b"max_headers"),
    ],
    ids=["2MB header", "2000 headers", "150 headers"],
)
def test_oversized_request_heads_are_refused(server, headers, says):
    head = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"".join(h + b"\r\n" for h in headers)
    with _connect(server) as sock:
        try:
            for start in range(0, len(head) + 4, 65536):
                sock.sendall((head + b"\r\n")[start : start + 65536])
        except OSError:  # refused and closed while we were still sending
            pass
        answer = _answer(sock)
    assert not answer.startswith(b"HTTP/1.1 200"), answer[:200]
    if answer:
        assert answer.startswith(b"HTTP/1.1 431") and says in answer, answer[:300]
    assert server.call("/health")[0] == 200


def test_a_batch_never_holds_more_than_max_batch_size_texts_unless_one_request_does():
    """62 waiting texts and a 256-text request made one batch of 318 with max_batch_size=64."""
    batches = []

    def predict(texts: list) -> list:
        batches.append(len(texts))
        return [[t] for t in texts]

    batcher = Batcher(predict, max_batch_size=64)
    sizes = [62, 256, 2, 30, 30, 10, 64, 1]
    futures = [batcher.submit([f"t{n}-{i}" for i in range(n)]) for n in sizes]
    batcher.start()
    try:
        for n, future in zip(sizes, futures):
            assert len(future.result(10)) == n
    finally:
        batcher.stop()
    # the 256-text request is one batch, tagged 64 texts at a time (Batcher._predict)
    assert batches == [62, 64, 64, 64, 64, 2 + 30 + 30, 10, 64, 1]
    assert batcher.stats.largest_batch == 256


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc/PID/status")
def test_after_a_maximum_size_request_the_server_gives_its_memory_back(ckpt, tmp_path):
    """Before: 439 MB idle, 833 MB after one 256 x 10,000-character request, kept for ever
    (the batcher held its last batch; glibc and pymalloc kept what was freed). Now +19-24%
    (424 -> 505-526 MB), the same after three. The bound is +35% of idle, not the +20% aimed
    at: the rest is pymalloc arenas a burst leaves pinned (PYTHONMALLOC=malloc: +10-15%)."""
    port = _free_port()
    command = [sys.executable, "-m", "nerlit.serve", f"ckpt_path={ckpt}", f"port={port}"]
    log = tmp_path / "server.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [*command, "precision=fp32"], cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT
        )
    server = Server(port, process, log)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, f"the server exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"no /health in 90 s:\n{log.read_text()}"
            try:
                if server.call("/health")[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        time.sleep(1)
        idle = _rss_mb(process.pid)
        text = ("Angela Merkel visited Berlin with NATO on Monday . Obama said " * 200)[:10_000]
        text = text.rsplit(" ", 1)[0]
        texts = [text] * 256  # the defaults' maximum: max_texts=256, max_chars=10000
        request = urllib.request.Request(
            server.url + "/predict", json.dumps({"texts": texts}).encode(), method="POST"
        )
        with HTTP.open(request, timeout=300) as response:
            assert response.status == 200 and len(json.loads(response.read())["results"]) == 256
        after = _rss_mb(process.pid)
        for _ in range(20):  # the trim runs in a thread once the response is sent
            time.sleep(0.25)
            after = _rss_mb(process.pid)
            if after <= 1.35 * idle:
                break
        assert after <= 1.35 * idle, f"idle {idle:.0f} MB, {after:.0f} MB after one request"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_releasing_memory_frees_the_reference_cycles_a_request_leaves():
    """A request's asyncio and Starlette objects form cycles that only the collector frees:
    with a trim alone they held +160 MB after a maximum-size request (PYTHONMALLOC=malloc)."""
    import weakref

    class Payload:
        pass

    payload = Payload()
    payload.self = payload  # a cycle: reference counting alone never frees it
    gone = weakref.ref(payload)
    del payload
    if not release_memory():
        pytest.skip("no glibc malloc_trim here: release_memory does nothing")
    assert gone() is None


def test_the_start_up_objects_are_frozen_out_of_the_collectors_sight():
    """Frozen, a full collection skips the model's ~390k objects (200 ms of GIL -> ~0)."""
    import gc

    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_a_response_encoded_record_by_record_is_the_whole_payload_encoded_at_once(tagger):
    texts = ["Angela Merkel visited Zürich .", "nothing here", ["Obama", "spoke"]]
    records = list(map(predict_record, texts, tagger.predict(texts)))
    assert any(r["entities"] for r in records)  # the premise: there are entities to encode
    whole = _json_response({"results": records})
    streamed = _records_response(iter(records))
    assert streamed.body == whole.body and json.loads(streamed.body)["results"] == records
    assert streamed.media_type == whole.media_type and streamed.status_code == 200
