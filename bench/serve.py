"""``nerlit serve`` under load: N concurrent clients on localhost against in-process ``Tagger``.

    python bench/serve.py --model DIR_OR_CKPT [--clients 1,8,32] [--seconds 20] [--backend B]
    (make bench-serve ARGS="--model DIR")

The server is the real one (``python -m nerlit.serve`` in its own process, on a free port); the
clients are coroutines of this process, each with its own keep-alive connection, sending GMB test
sentences (nerlit's seeded test split of ``$NERLIT_DATA_DIR/gmb/ner_dataset.csv.gz``, each
sentence's words joined by spaces) one request after another for ``--seconds`` per client count.
The client speaks HTTP/1.1 over raw asyncio streams, so that measuring costs the CPU the server
shares as little as possible, and it only stores what comes back: responses are checked after
each timed run.

The baseline is what a program would get without a server: ``Tagger.predict`` over all the
sentences in one call, in this process, loaded with the same options (``nerlit.serve.load_tagger``,
so ``--backend`` and ``--precision`` mean the same in both). Its results are also the reference
every response is checked against: a request's results must be its own texts' (the record's
``text`` and each entity's span within it) in order, none missing; an entity set that differs
from the in-process one on spans that do fit the text is counted apart as ``differ`` (bf16 can
round a near-tie the other way in a batch padded differently; fp32 should give 0).

Goals printed against: 0 errors under every load; at the most clients (32 by default) the served
sentences/s at least 80% of in-process. The last line is

    serve_vs_inprocess_32=X.XX errors=N p99_ms_32=Y differ=M
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from omegaconf import OmegaConf  # noqa: E402

from nerlit.commands.serve import load_tagger  # noqa: E402
from nerlit.data.corpus import load_corpus  # noqa: E402
from nerlit.inference.server import predict_record  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("NERLIT_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))
GMB = DATA_DIR / "gmb" / "ner_dataset.csv.gz"
GOAL_RATIO = 0.8


@dataclass
class Call:
    """One request: which sentences it sent, what came back, and how long it took."""

    indices: list[int]
    seconds: float
    status: int = 0
    body: bytes = b""
    error: str = ""


@dataclass
class Phase:
    clients: int
    seconds: float = 0.0
    calls: list[Call] = field(default_factory=list)
    errors: int = 0
    lost: int = 0
    misplaced: int = 0
    differ: int = 0
    batches: int = 0
    batched_texts: int = 0

    @property
    def ok(self) -> list[Call]:
        return [c for c in self.calls if c.status == 200]

    def sentences_per_s(self) -> float:
        return sum(len(c.indices) for c in self.ok) / self.seconds

    def latency_ms(self, q: float) -> float:
        times = sorted(c.seconds for c in self.calls)
        return 1000 * times[min(int(q * len(times)), len(times) - 1)] if times else float("nan")


class Connection:
    """A keep-alive HTTP/1.1 connection that POSTs JSON and reads Content-Length bodies."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        await self.writer.drain()
        status_line, *headers = (await self.reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
        lengths = [h.split(":", 1)[1] for h in headers if h.lower().startswith("content-length:")]
        if not lengths:
            raise ValueError(f"no Content-Length in the response: {status_line}")
        return int(status_line.split()[1]), await self.reader.readexactly(int(lengths[0]))

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def gmb_test_texts(path: Path, count: int) -> list[str]:
    """The first ``count`` sentences of nerlit's seeded GMB test split, words joined by spaces."""
    corpus, _ = load_corpus(path, format="gmb", encoding="cp1252", scheme="iob2")
    return [" ".join(s.words) for s in corpus.test[:count]]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def health(port: int) -> dict | None:
    """GET /health, or None while the server is not up."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
    except OSError:
        return None
    head, _, body = data.partition(b"\r\n\r\n")
    return json.loads(body) if head.split()[1:2] == [b"200"] else None


def start_server(args: argparse.Namespace, options: dict, port: int, workdir: Path):
    overrides = [f"{k}={v}" for k, v in options.items() if v is not None]
    command = [
        sys.executable,
        "-m",
        "nerlit.serve",
        *overrides,
        f"port={port}",
        f"max_batch_size={args.max_batch_size}",
        *(
            f"{key}={value}"
            for key, value in (
                ("batch_timeout", args.batch_timeout),
                ("refill_timeout", args.refill_timeout),
            )
            if value is not None
        ),
        "log_level=warning",
        f"hydra.run.dir={workdir / 'server'}",
    ]
    log = (workdir / "server.log").open("w")
    print("server:", " ".join(command[2:]), flush=True)
    return subprocess.Popen(command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)


def wait_until_up(process: subprocess.Popen, port: int, log: Path, limit: float = 600) -> None:
    deadline = time.monotonic() + limit
    while health(port) is None:
        if process.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"the server did not come up:\n{log.read_text()[-3000:]}")
        time.sleep(0.25)


def stop_server(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def run_phase(port: int, texts: list[str], clients: int, per_request: int, seconds: float):
    """``clients`` clients, each sending requests back to back for ``seconds``; client c's r-th
    request holds sentences ``(c + r * clients) * per_request + j``, so no two requests of a
    round share a sentence and a result given to the wrong client shows."""
    phase = Phase(clients)

    async def client(number: int, warm_up: int, until: float | None) -> None:
        connection = Connection(port)
        request = 0
        try:
            while (until is None and request < warm_up) or (
                until is not None and time.perf_counter() < until
            ):
                first = (number + request * clients) * per_request
                indices = [(first + j) % len(texts) for j in range(per_request)]
                body = json.dumps({"texts": [texts[i] for i in indices]}).encode()
                start = time.perf_counter()
                call = Call(indices, 0.0)
                try:
                    call.status, call.body = await connection.post("/predict", body)
                except (OSError, asyncio.IncompleteReadError, ValueError) as error:
                    call.error = f"{type(error).__name__}: {error}"
                    await connection.close()
                call.seconds = time.perf_counter() - start
                if until is not None:
                    phase.calls.append(call)
                request += 1
        finally:
            await connection.close()

    await asyncio.gather(*(client(n, 2, None) for n in range(clients)))  # connect, warm up
    start = time.perf_counter()
    await asyncio.gather(*(client(n, 0, start + seconds) for n in range(clients)))
    phase.seconds = time.perf_counter() - start
    return phase


def entity_key(entity: dict) -> tuple:
    return (entity["start"], entity["end"], entity["label"], entity["text"])


def check(phase: Phase, texts: list[str], reference: list[dict]) -> None:
    """Count errors, lost or misplaced results, and results that differ from in-process."""
    for call in phase.calls:
        if call.status != 200:
            phase.errors += 1
            continue
        results = json.loads(call.body)["results"]
        if len(results) != len(call.indices):
            phase.lost += 1
            continue
        for i, record in zip(call.indices, results):
            text = record["text"]
            spans_fit = all(text[e["start"] : e["end"]] == e["text"] for e in record["entities"])
            if text != texts[i] or not spans_fit:
                phase.misplaced += 1
            elif sorted(map(entity_key, record["entities"])) != sorted(
                map(entity_key, reference[i]["entities"])
            ):
                phase.differ += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--model", required=True, help="a nerlit .ckpt or exported folder (nerlit export)"
    )
    parser.add_argument("--clients", default="1,8,32", help="client counts, comma-separated")
    parser.add_argument("--seconds", type=float, default=20.0, help="timed seconds per count")
    parser.add_argument("--backend", default=None, help="Tagger backend (server and in-process)")
    parser.add_argument("--precision", default=None, help="auto | fp32 | bf16 (default: auto)")
    parser.add_argument("--decode", default=None, help="default: as the model was validated")
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads, both sides")
    parser.add_argument(
        "--server-threads",
        type=int,
        default=None,
        help="the server's torch threads where they should differ from --threads (its event "
        "loop and these clients share the machine's cores; in-process keeps --threads)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="Tagger windows per forward, both sides"
    )
    parser.add_argument("--texts-per-request", type=int, default=1)
    parser.add_argument("--sentences", type=int, default=2000, help="GMB test sentences cycled")
    parser.add_argument("--data", type=Path, default=GMB, help="the GMB csv(.gz)")
    parser.add_argument("--max-batch-size", type=int, default=64, help="serve max_batch_size")
    parser.add_argument("--batch-timeout", type=float, default=None, help="serve batch_timeout")
    parser.add_argument("--refill-timeout", type=float, default=None, help="serve refill_timeout")
    args = parser.parse_args()
    counts = [int(c) for c in args.clients.split(",")]

    texts = gmb_test_texts(args.data, args.sentences)
    options = {
        "ckpt_path": str(Path(args.model).resolve()),
        "decode": args.decode,
        "device": args.device,
        "precision": args.precision,
        "backend": args.backend,
        "threads": args.threads,
        "batch_size": args.batch_size,
    }
    tagger = load_tagger(OmegaConf.create(options))
    tagger.predict(texts[:64])  # warm-up: first calls allocate and pick kernels
    runs, start = 0, time.perf_counter()
    while runs == 0 or time.perf_counter() - start < 2.0:
        found = tagger.predict(texts)
        runs += 1
    inprocess = runs * len(texts) / (time.perf_counter() - start)
    reference = [predict_record(t, e) for t, e in zip(texts, found)]
    print(
        f"model {args.model}; {len(texts)} GMB test sentences; in-process Tagger.predict "
        f"(all at once, precision {tagger.precision}): {inprocess:.1f} sentences/s",
        flush=True,
    )
    del tagger

    workdir = Path(tempfile.mkdtemp(prefix="nerlit-bench-serve-"))
    port = free_port()
    server_options = {**options, "threads": args.server_threads or args.threads}
    process = start_server(args, server_options, port, workdir)
    phases: list[Phase] = []
    try:
        wait_until_up(process, port, workdir / "server.log")
        for clients in counts:
            before = health(port) or {}
            phase = asyncio.run(
                run_phase(port, texts, clients, args.texts_per_request, args.seconds)
            )
            after = health(port) or {}
            phase.batches = after.get("batches", 0) - before.get("batches", 0)
            phase.batched_texts = after.get("texts", 0) - before.get("texts", 0)
            check(phase, texts, reference)
            phases.append(phase)
            served = phase.sentences_per_s()
            print(
                f"{clients:3d} clients: {len(phase.calls) / phase.seconds:8.1f} requests/s "
                f"{served:8.1f} sentences/s ({served / inprocess:.2f} of in-process)  "
                f"p50 {phase.latency_ms(0.5):7.1f} ms  p99 {phase.latency_ms(0.99):7.1f} ms  "
                f"errors {phase.errors}  lost {phase.lost}  misplaced {phase.misplaced}  "
                f"differ {phase.differ}  texts/batch "
                f"{phase.batched_texts / max(phase.batches, 1):.1f}",
                flush=True,
            )
            for call in [c for c in phase.calls if c.status != 200][:3]:
                print(f"    error: {call.status} {call.error or call.body[:200]!r}")
    finally:
        stop_server(process)

    last = phases[-1]
    errors = sum(p.errors + p.lost + p.misplaced for p in phases)
    ratio = last.sentences_per_s() / inprocess
    print(
        f"goal: 0 errors, lost or misplaced results under every load: "
        f"{'met' if errors == 0 else f'MISSED ({errors})'}"
    )
    print(
        f"goal: served >= {GOAL_RATIO:.0%} of in-process at {last.clients} clients: {ratio:.2f} "
        f"{'met' if ratio >= GOAL_RATIO else 'MISSED'}"
    )
    print(
        f"serve_vs_inprocess_{last.clients}={ratio:.2f} errors={errors} "
        f"p99_ms_{last.clients}={last.latency_ms(0.99):.1f} differ={sum(p.differ for p in phases)}"
    )


if __name__ == "__main__":
    main()
