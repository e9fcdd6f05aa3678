"""``nerlit serve``'s resident memory after bursts: does the server give back what a burst took?

    python bench/serve_memory.py --model CKPT [--max-requests 3] [--small-requests 200]
    (make bench-serve-memory ARGS="--model CKPT")

The server is the real one (``python -m nerlit.serve``, fp32, on a free port, with the
environment of this process: ``PYTHONMALLOC=malloc`` here reaches it). RSS is read from
``/proc/PID/status`` (Linux only) once the server is idle: at start, after ``--small-requests``
requests of 16 short sentences (ordinary traffic), after each of ``--max-requests`` requests of
the defaults' maximum size (256 texts of 10,000 characters), and after the same ordinary traffic
again. Each figure is the lowest of the readings over ``--settle`` seconds, since the server
hands memory back in a thread once the response is sent.

Goal printed against: every reading within 20% of idle. The last line is

    after_max_vs_idle=X.XX after_traffic_vs_idle=Y.YY idle_mb=N

(``after_max``: the highest ratio over the maximum-size requests; ``after_traffic``: the
ratio after the ordinary traffic that follows them).
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

SENTENCE = "Angela Merkel visited Berlin with NATO on Monday ."
#: serve's defaults: max_texts=256, max_chars=10000
MAX_TEXTS, MAX_CHARS = 256, 10_000


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc: this benchmark needs Linux")


def _settled_rss(pid: int, seconds: float) -> float:
    readings = [_rss_mb(pid)]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.25)
        readings.append(_rss_mb(pid))
    return min(readings)


def _post(url: str, texts: list[str]) -> None:
    request = urllib.request.Request(
        url + "/predict", json.dumps({"texts": texts}).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=600) as response:
        results = json.loads(response.read())["results"]
    if len(results) != len(texts):
        raise RuntimeError(f"{len(results)} results for {len(texts)} texts")


def _max_text() -> str:
    text = (f"{SENTENCE} Obama said " * (MAX_CHARS // 40))[:MAX_CHARS]
    return text.rsplit(" ", 1)[0]


def measure(model: str, max_requests: int, small_requests: int, settle: float) -> dict:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as workdir:
        log = Path(workdir) / "server.log"
        command = [
            sys.executable,
            "-m",
            "nerlit.serve",
            f"ckpt_path={model}",
            f"port={port}",
            "precision=fp32",
        ]
        with log.open("w") as sink:
            server = subprocess.Popen(command, cwd=workdir, stdout=sink, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 180
            while True:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not start:\n{log.read_text()}")
                try:
                    urllib.request.urlopen(url + "/health", timeout=2).close()
                    break
                except OSError:
                    time.sleep(0.3)
            readings = {"idle": _settled_rss(server.pid, settle)}
            small = [SENTENCE] * 16
            for _ in range(small_requests):
                _post(url, small)
            readings["ordinary traffic"] = _settled_rss(server.pid, settle)
            biggest = [_max_text()] * MAX_TEXTS
            for i in range(max_requests):
                _post(url, biggest)
                readings[f"maximum-size request {i + 1}"] = _settled_rss(server.pid, settle)
            for _ in range(small_requests):
                _post(url, small)
            readings["ordinary traffic again"] = _settled_rss(server.pid, settle)
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    return readings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a checkpoint or an exported folder")
    parser.add_argument("--max-requests", type=int, default=3)
    parser.add_argument("--small-requests", type=int, default=200)
    parser.add_argument("--settle", type=float, default=2.0, help="seconds of readings")
    args = parser.parse_args(argv)
    if args.max_requests < 1 or args.small_requests < 0 or args.settle < 0:
        parser.error("--max-requests >= 1, --small-requests >= 0, --settle >= 0")
    readings = measure(args.model, args.max_requests, args.small_requests, args.settle)
    idle = readings["idle"]
    for name, mb in readings.items():
        print(f"{name:>26}: {mb:7.0f} MB  ({mb / idle:.2f} of idle)")
    after_max = max(mb for name, mb in readings.items() if name.startswith("maximum"))
    after_traffic = readings["ordinary traffic again"]
    met = "met" if max(after_max, after_traffic) <= 1.2 * idle else "not met"
    print(f"goal: every reading within 20% of idle: {met}")
    print(
        f"after_max_vs_idle={after_max / idle:.2f} "
        f"after_traffic_vs_idle={after_traffic / idle:.2f} idle_mb={idle:.0f}"
    )


if __name__ == "__main__":
    main()
