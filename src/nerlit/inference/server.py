"""The HTTP server behind ``nerlit serve``: request parsing and limits, the batcher that tags
concurrent requests together, memory release after big requests, and the Starlette app.

``POST /predict`` with ``{"texts": [...]}`` (raw strings or lists of pre-split words) answers one
``nerlit predict`` JSONL record per text, in input order; ``GET /health`` answers once the model is
loaded and warm. One process holds the model; concurrent requests are batched by text. Why
uvicorn + Starlette and this batcher rather than LitServe, with measurements: docs/serving.md.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import functools
import gc
import json
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nerlit.data.readers import DuplicateKeyError, load_json

if TYPE_CHECKING:  # torch, transformers and the server packages load when a server starts
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

    from nerlit.data.types import Entity
    from nerlit.inference.tagger import TextInput

log = logging.getLogger(__name__)


class RequestError(Exception):
    """A request the server refuses, with the HTTP status and the message the client gets."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Limits:
    """What one request may ask: bounded, so no client can hold the model for long."""

    max_texts: int = 256
    max_chars: int = 10_000
    #: headers per request (Python's http.client reads at most 100 too)
    max_headers: int = 100
    #: seconds a request's body may take to arrive whole
    body_timeout: float = 60.0

    @property
    def max_body_bytes(self) -> int:
        """A body no valid request exceeds (12 bytes per character: a ``\\ud83d\\ude00`` pair
        per emoji), checked while reading, so an endless upload is cut off early."""
        return self.max_texts * (12 * self.max_chars + 64) + 4096


def parse_request(body: bytes, limits: Limits) -> list[TextInput]:
    """The texts of a ``POST /predict`` body, or a :class:`RequestError` saying what is wrong."""
    try:
        payload = load_json(body)
    except DuplicateKeyError as error:
        raise RequestError(422, f"{error}: give each field once") from None
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError both
        raise RequestError(400, f"the body is not valid JSON: {error}") from None
    except RecursionError:  # [[[[...]]]] 100,000 deep: no request of texts nests like that
        raise RequestError(
            400, 'the body nests too deeply to parse: it must be {"texts": [...]}'
        ) from None
    if not isinstance(payload, dict) or "texts" not in payload:
        raise RequestError(422, 'the body must be a JSON object {"texts": [...]}')
    unknown = sorted(set(payload) - {"texts"})
    if unknown:
        raise RequestError(422, f'unknown field(s) {unknown}: the body is {{"texts": [...]}}')
    texts = payload["texts"]
    if not isinstance(texts, list):
        raise RequestError(
            422,
            f'"texts" must be a list of strings or of word lists, not {_json_type(texts)}',
        )
    if len(texts) > limits.max_texts:
        raise RequestError(
            413,
            f"{len(texts)} texts in one request; at most {limits.max_texts} (server option "
            f"max_texts): split the request",
        )
    for i, text in enumerate(texts):
        if isinstance(text, str):
            length = len(text)
        elif isinstance(text, list) and all(isinstance(w, str) for w in text):
            length = sum(map(len, text)) + max(len(text) - 1, 0)
        else:
            raise RequestError(
                422,
                f"texts[{i}] is {_json_type(text)}: each text is a string or a list of word "
                f"strings",
            )
        if length > limits.max_chars:
            raise RequestError(
                413,
                f"texts[{i}] has {length} characters; at most {limits.max_chars} (server option "
                f"max_chars): split it",
            )
        if _has_lone_surrogate(text):
            raise RequestError(
                422, f"texts[{i}] holds a lone UTF-16 surrogate (\\ud800-\\udfff), not text"
            )
    return texts


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "a list holding a non-string"
    names = {dict: "an object", str: "a string", bool: "a boolean", int: "a number"}
    return "null" if value is None else names.get(type(value), "a number")


def _has_lone_surrogate(text: str | list[str]) -> bool:
    """JSON can carry them (``"\\ud800"``); the tokenizer cannot, nor can a UTF-8 response."""
    parts = [text] if isinstance(text, str) else text
    try:
        for part in parts:
            part.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def text_of(text: TextInput) -> str:
    """The string entity offsets refer to: a raw text itself, words joined by single spaces."""
    return text if isinstance(text, str) else " ".join(text)


def predict_record(text: TextInput, entities: Sequence[Entity]) -> dict:
    """One ``nerlit predict`` JSONL record."""
    from nerlit.inference.files import entity_json

    return {"text": text_of(text), "entities": [entity_json(e) for e in entities]}


@dataclass
class _Job:
    texts: list[TextInput]
    future: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)


@dataclass
class BatchStats:
    requests: int = 0
    texts: int = 0
    batches: int = 0
    largest_batch: int = 0


class Batcher:
    """One thread runs ``predict`` over the texts of all requests waiting, and splits the results.

    ``predict`` (``Tagger.predict``) is only ever called from this thread, so the tagger needs no
    lock. A batch that fails is retried request by request, so a request that breaks the model
    fails alone and the others batched with it still get their results. A request whose client
    went away before its batch started is dropped untagged.
    """

    def __init__(
        self,
        predict: Callable[[list[TextInput]], list[list[Entity]]],
        max_batch_size: int = 64,
        batch_timeout: float = 0.0,
        max_pending: int = 4096,
        refill_timeout: float = 0.0,
    ) -> None:
        self.predict = predict
        self.max_batch_size = max_batch_size
        self.batch_timeout = batch_timeout
        self.max_pending = max_pending
        self.refill_timeout = refill_timeout
        self._last_requests = 0  # requests answered by the last batch
        self.stats = BatchStats()
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        # a job that did not fit into the last batch: it starts the next one
        self._held: _Job | None = None
        self._pending = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="nerlit-batcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def submit(self, texts: list[TextInput]) -> concurrent.futures.Future:
        """Queue one request's texts; the future gets their entities, in order."""
        with self._lock:
            if self._pending and self._pending + len(texts) > self.max_pending:
                raise RequestError(
                    503,
                    f"{self._pending} texts are waiting to be tagged (server option "
                    f"max_pending={self.max_pending}): retry shortly",
                )
            self._pending += len(texts)
        job = _Job(list(texts))
        self._queue.put(job)
        return job.future

    def _run(self) -> None:
        while True:
            jobs = self._collect()
            if jobs is None:
                return
            with self._lock:
                self._pending -= sum(len(j.texts) for j in jobs)
            jobs = [j for j in jobs if j.future.set_running_or_notify_cancel()]
            if jobs:
                self._tag(jobs)
            # not kept while waiting for the next batch: the jobs hold their texts and, in their
            # futures, their entities (~190 MB after a 256-text request of 10,000 characters each)
            del jobs

    def _collect(self) -> list[_Job] | None:
        """The first job waiting, and the ones behind it up to ``max_batch_size`` texts.

        A job that would take the batch past ``max_batch_size`` is held for the next batch
        (checking only the size before adding it let 62 texts and a 256-text request make one
        batch of 318); a job larger than ``max_batch_size`` alone is tagged alone, whole.
        """
        first, self._held = self._held or self._queue.get(), None
        if first is None:
            return None
        jobs, size = [first], len(first.texts)
        now = time.monotonic()
        deadline = now + self.batch_timeout
        refill_deadline = now + max(self.batch_timeout, self.refill_timeout)
        while size < self.max_batch_size:
            # the clients of the last batch come back one by one as their answers reach them:
            # waiting (at most refill_timeout) until as many requests are in again keeps the
            # batches whole under steady load; a lone client (last batch: 1 request) never waits
            until = refill_deadline if len(jobs) < self._last_requests else deadline
            wait = until - time.monotonic()
            try:
                job = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:  # stop after this batch
                self._queue.put(None)
                break
            if size + len(job.texts) > self.max_batch_size:
                self._held = job
                break
            jobs.append(job)
            size += len(job.texts)
        self._last_requests = len(jobs)
        return jobs

    def _predict(self, texts: list[TextInput]) -> list[list[Entity]]:
        """``predict`` over ``max_batch_size`` texts at a time: a request with more (256 texts
        of 10,000 characters) no longer holds every text's words, windows and logits at once
        (peak RSS 873 -> 717 MB for the tiny model; see :func:`release_memory`)."""
        size = self.max_batch_size
        if len(texts) <= size:
            return self.predict(texts)
        return [
            e
            for start in range(0, len(texts), size)
            for e in self.predict(texts[start : start + size])
        ]

    def _tag(self, jobs: list[_Job]) -> None:
        texts = [t for job in jobs for t in job.texts]
        try:
            entities = self._predict(texts) if texts else []
        except Exception as error:
            if len(jobs) > 1:
                for job in jobs:
                    self._tag([job])
                return
            log.exception("tagging %d texts failed", len(texts))
            jobs[0].future.set_exception(error)
            return
        self.stats.batches += 1
        self.stats.requests += len(jobs)
        self.stats.texts += len(texts)
        self.stats.largest_batch = max(self.stats.largest_batch, len(texts))
        start = 0
        for job in jobs:
            job.future.set_result(entities[start : start + len(job.texts)])
            start += len(job.texts)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS, Windows)."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, TypeError, AttributeError):
        return None


def release_memory() -> bool:
    """Give the memory a finished burst freed back to the system: a garbage collection, then
    glibc's ``malloc_trim(0)``.

    Why: a server at 439 MB idle (tiny model) stayed at 827-856 MB after maximum-size
    requests (256 texts of 10,000 characters), for as long as it ran. Four things held it:
    the batcher thread kept its last batch (texts, and entities in the futures) while waiting for
    the next (dropped now); a request leaves reference cycles (asyncio and Starlette objects)
    that only the cyclic collector frees, and until then they hold the request's memory: with
    ``PYTHONMALLOC=malloc`` a trim alone left +160 MB after one such request, a collection then
    a trim +20 MB; glibc keeps freed small chunks in its heaps and per-thread arenas, which only
    ``malloc_trim`` hands back (16-30 ms); and CPython's small-object allocator (pymalloc) frees
    a 1 MiB arena only when it is wholly empty: modules first imported during a request
    (``rich``, via :func:`predict_record`) pinned ~100 of them, so :func:`serve` imports them
    before the first request. What remains is arenas pinned by the few small objects a burst
    leaves alive (see docs/serving.md). The collection is cheap because the start-up objects are
    frozen (:func:`freeze_startup_objects`). Returns whether a trim ran (False off glibc).
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    gc.collect()
    trim(0)
    return True


def freeze_startup_objects() -> None:
    """Collect the start-up garbage, then move every object alive (the model, its modules: ~390k
    objects) out of the cyclic collector's sight with :func:`gc.freeze`.

    Why: a full collection walked them all, 200 ms of the GIL (every request stalled) at each
    :func:`release_memory` and at each automatic oldest-generation collection; frozen, ~0 ms.
    They live as long as the server anyway, so none of them is garbage the collector could free.
    """
    gc.collect()
    gc.freeze()


class MemoryReleaser:
    """Calls :func:`release_memory` once the server is idle (no ``/predict`` in flight) after
    tagging at least ``after_chars`` characters since the last call (0: never).

    Only when idle, so the trim (tens of ms, in a worker thread) finds the burst's memory
    freed, responses included; only after many characters, so a stream of small requests
    pays for it once per ``after_chars``, not per request. Used on the event loop only.
    """

    def __init__(self, after_chars: int = 1_000_000) -> None:
        self.after_chars = after_chars
        self.in_flight = 0
        self.tagged = 0  # characters tagged since the last release
        self.releases = 0

    def wrap(self, app: Any) -> Callable[..., Any]:
        async def releasing(scope: dict, receive: Callable, send: Callable) -> None:
            if scope["type"] != "http" or scope.get("path") != "/predict":
                await app(scope, receive, send)
                return
            self.in_flight += 1
            try:
                await app(scope, receive, send)
            finally:
                self.in_flight -= 1
            if self.after_chars and not self.in_flight and self.tagged >= self.after_chars:
                self.tagged = 0
                self.releases += 1
                # the response is sent and the route's locals are gone: the burst is freed
                asyncio.get_running_loop().run_in_executor(None, release_memory)

        return releasing


def build_app(
    batcher: Batcher,
    limits: Limits,
    info: dict[str, Any] | None = None,
    releaser: MemoryReleaser | None = None,
) -> Starlette:
    """The ASGI app: ``POST /predict``, ``GET /health``; every refusal is ``{"detail": "..."}``.
    ``releaser``: hands memory back after bursts (default: after each 1,000,000 characters)."""
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.routing import Route

    releaser = releaser or MemoryReleaser()

    async def health(request: Request) -> Response:
        return _json_response({"status": "ok", **(info or {}), **vars(batcher.stats)})

    async def predict(request: Request) -> Response:
        try:
            body = await _read_body(request, limits.max_body_bytes, limits.body_timeout)
            texts = parse_request(body, limits)
            entities = await asyncio.wrap_future(batcher.submit(texts)) if texts else []
            releaser.tagged += sum(map(len, map(text_of, texts)))
        except RequestError as error:
            return _json_response({"detail": error.message}, error.status)
        except Exception as error:  # a model failure: this request's alone, logged by the batcher
            detail = f"tagging failed: {type(error).__name__}: {error}"
            return _json_response({"detail": detail}, 500)
        return _records_response(map(predict_record, texts, entities))

    async def refused(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)  # unknown path (404), wrong method (405)
        return _json_response({"detail": error.detail}, error.status_code, error.headers)

    app = Starlette(
        routes=[Route("/predict", predict, methods=["POST"]), Route("/health", health)],
        exception_handlers={HTTPException: refused},
        # the batcher lives as long as the server: started before the first request is accepted
        lifespan=_lifespan(batcher),
    )
    return _header_count_limit(releaser.wrap(app), limits.max_headers)


def _header_count_limit(app: Any, max_headers: int) -> Callable[..., Any]:
    """Refuse a request with more than ``max_headers`` headers (431) before any route runs.

    Neither uvicorn nor Starlette counts headers; 2,000 small ones were parsed and accepted.
    Their bytes are bounded by the protocol (:func:`guarded_protocol`); this bounds their number.
    """

    async def guarded(scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http" and len(scope["headers"]) > max_headers:
            detail = (
                f"{len(scope['headers'])} request headers; at most {max_headers} (server option "
                f"max_headers)"
            )
            await _json_response({"detail": detail}, 431)(scope, receive, send)
            return
        await app(scope, receive, send)

    return guarded


def guarded_protocol(base: type, head_timeout: float, max_head_bytes: int) -> type:
    """uvicorn's HTTP protocol class ``base`` with a deadline and a size bound on request heads.

    uvicorn (0.3x to 0.55) starts no timer while a connection waits for a request's headers,
    and resets its keep-alive timer on every byte, so a client sending a partial request, or one
    header byte every few seconds, held its socket forever (slowloris); its httptools parser
    takes headers of any size (2 MB was accepted). Here a connection waiting for a request head
    (new, or after a response) is closed when the whole head has not arrived within
    ``head_timeout`` seconds, and one whose head passes ``max_head_bytes`` gets 431 and is
    closed. The body has its own deadline (``Limits.body_timeout``, in the app). A subclass of
    the class uvicorn itself would choose keeps its parser (httptools, else h11).
    """

    class Guarded(base):  # type: ignore[misc, valid-type]
        _head_timer: asyncio.TimerHandle | None = None
        _head_bytes = 0

        def _awaiting_head(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def _arm_head_deadline(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            self._head_bytes = 0
            self._head_timer = self.loop.call_later(head_timeout, self._head_too_slow)

        def _head_too_slow(self) -> None:
            self._head_timer = None
            if self._awaiting_head() and not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            self._arm_head_deadline()

        def data_received(self, data: bytes) -> None:
            waiting = self._awaiting_head()
            before = self.cycle
            super().data_received(data)
            if not waiting or self.cycle is not before or self.transport.is_closing():
                return  # a body, a head now complete, or a refusal by the parser
            self._head_bytes += len(data)
            if self._head_bytes > max_head_bytes:
                detail = json.dumps(
                    {
                        "detail": f"request head over {max_head_bytes} bytes (server option "
                        f"max_header_bytes)"
                    }
                ).encode()
                self.transport.write(
                    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                    b"content-type: application/json\r\nconnection: close\r\n"
                    b"content-length: " + str(len(detail)).encode() + b"\r\n\r\n" + detail
                )
                self.transport.close()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm_head_deadline()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            super().connection_lost(exc)

    Guarded.__name__ = Guarded.__qualname__ = f"Guarded{base.__name__}"
    return Guarded


def _lifespan(batcher: Batcher) -> Callable[[Any], contextlib.AbstractAsyncContextManager]:
    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        batcher.start()
        freeze_startup_objects()
        yield
        batcher.stop()

    return lifespan


async def _read_body(request: Request, limit: int, timeout: float = 60.0) -> bytes:
    """The body, cut off past ``limit`` bytes (413) or ``timeout`` seconds (408): a body sent a
    byte at a time would otherwise hold its connection and its buffer for ever."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"a body of {declared} bytes; at most {limit}")
    chunks, size = [], 0

    async def read() -> None:
        nonlocal size
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise RequestError(413, f"a body over {limit} bytes")
            chunks.append(chunk)

    try:
        await asyncio.wait_for(read(), timeout)
    except asyncio.TimeoutError:  # TimeoutError itself from Python 3.11
        raise RequestError(
            408, f"the body did not arrive within {timeout:g} s (server option body_timeout)"
        ) from None
    return b"".join(chunks)


#: raw UTF-8 JSON, compact, as nerlit predict writes its JSONL
_encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _json_response(
    payload: dict, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return _json_text_response(_encode_json(payload), status, headers)


def _records_response(records: Iterable[dict]) -> Response:
    """``{"results": [...]}`` encoded one record at a time, as :func:`_json_response` would
    encode it whole: a record's dicts (one per entity) are freed as soon as it is text, so a
    maximum-size request never holds every entity's dict at once (see :func:`release_memory`)."""
    return _json_text_response('{"results":[' + ",".join(map(_encode_json, records)) + "]}")


def _json_text_response(
    body: str, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    from starlette.responses import Response

    return Response(body.encode("utf-8"), status, headers, media_type="application/json")
