"""The translation server under load, beside offline translation of the same sentences.

    python -m benchmarks.serve --model runs/de-en --data-dir ../shared/corpora      # issue 26's run
    python -m benchmarks.serve --model runs/dates --src data/dates/test.src --limit 40 --concurrency 1,8 \\
        --beams 1 --quick                                                           # a smoke run

One sentence per request, from an asyncio load generator pinned to its own core (a minimal HTTP/1.1
keep-alive client: httpx, ``--client httpx``, saturated first on the 2-core machine), against
``seq2attn serve`` pinned to the others, all on 127.0.0.1; every sentence is sent once per
concurrency level (1, 8, 32, 128) and beam size (1, 5): 8,000 requests for the 1,000
test_2016_flickr sentences. Reported per level: sentences/s, latency p50/p95/p99, errors, and
the server's resident memory (peak, and after the first 500 requests against the end). Offline,
in a process pinned like the server, before and after the server's levels (their mean is the
reference; both are kept): ``Model.translate`` of all sentences in one call (batched throughput,
what ``seq2attn translate`` does) and of single sentences one call each (the latency a server at
concurrency 1 competes with). The targets of issue 26 are judged in the JSON
(default benchmarks/results/<UTC date>-serve.json) and a Markdown table goes to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
MIB = 2**20
TARGETS = {"c32_fraction_of_offline": 0.70, "c1_latency_ratio": 1.3, "errors": 0, "rss_growth_mib": 50.0}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.serve", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, required=True, help="model directory (or a CTranslate2 export)")
    p.add_argument("--src", type=Path, help="sentences, one per line (default: Multi30k test_2016_flickr in the "
                   "model's source language, from --data-dir)")
    p.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "corpora",
                   help="directory holding multi30k/test_2016_flickr.LANG.gz")
    p.add_argument("--limit", type=int, help="only the first N sentences (a smoke run)")
    p.add_argument("--concurrency", default="1,8,32,128", help="comma-separated in-flight request counts")
    p.add_argument("--beams", default="1,5", help="comma-separated beam sizes")
    p.add_argument("--window-ms", type=float, default=5.0, help="the server's batching window")
    p.add_argument("--threads", type=int, help="torch threads of the server and the offline runs "
                   "(default: one per server CPU)")
    p.add_argument("--client-cpu", type=int, default=0, help="the core of the load generator")
    p.add_argument("--server-cpus", help="cores of the server and the offline runs (default: all but the "
                   "client's)")
    p.add_argument("--single", type=int, default=100, help="sentences timed one call each offline")
    p.add_argument("--client", choices=["raw", "httpx"], default="raw", help="the load generator's HTTP client: "
                   "a minimal asyncio HTTP/1.1 one, or httpx (slower: it can become the bottleneck)")
    p.add_argument("--quick", action="store_true", help="a smoke run: no warm-up pass, one pass")
    p.add_argument("--passes", type=int, default=2, help="passes over every level; RSS at the end of each is "
                   "reported (a leak grows from pass to pass; the first pass sets the high-water mark)")
    p.add_argument("--out", type=Path, help="JSON report (default: benchmarks/results/<UTC date>-serve.json)")
    p.add_argument("--offline-child", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def sentences(args) -> list[str]:
    if args.src is not None:
        lines = args.src.read_text(encoding="utf-8").splitlines()
    else:
        import gzip

        import yaml

        cfg = yaml.safe_load((args.model / "config.yaml").read_text(encoding="utf-8"))  # also in an export
        lang = cfg["data"]["src_lang"] or "de"
        with gzip.open(args.data_dir / "multi30k" / f"test_2016_flickr.{lang}.gz", "rt", encoding="utf-8") as f:
            lines = [line.rstrip("\n") for line in f]
    return lines[: args.limit] if args.limit else lines


def cpus(args) -> tuple[set[int], set[int]]:
    every = sorted(os.sched_getaffinity(0))
    server = {int(x) for x in args.server_cpus.split(",")} if args.server_cpus else set(every) - {args.client_cpu}
    return {args.client_cpu}, server or set(every)


def pinned(cmd: list[str], cores: set[int]) -> list[str]:
    """``cmd`` run on ``cores`` only (taskset), so the server and the load generator never share one."""
    if shutil.which("taskset") is None:
        raise RuntimeError("taskset (util-linux) is needed to pin the server to its cores")
    return ["taskset", "-c", ",".join(map(str, sorted(cores))), *cmd]


# --- offline: in a child pinned like the server ---------------------------------------------------
def offline_child(args) -> None:
    """Print JSON: batched and single-sentence ``Model.translate`` times per beam."""
    from seq2attn.inference.api import load

    lines = sentences(args)
    m = load(args.model, device="cpu", threads=args.threads)
    out = {}
    for beam in [int(b) for b in args.beams.split(",")]:
        m.translate(lines[:20], beam=beam)  # warm-up
        start = time.perf_counter()
        m.translate(lines, beam=beam)
        batched = time.perf_counter() - start
        start = time.perf_counter()  # what a server can reach at concurrency 32: batches of at most 32
        for i in range(0, len(lines), 32):
            m.translate(lines[i:i + 32], beam=beam)
        chunked = time.perf_counter() - start
        single = []
        for text in lines[: args.single]:
            t0 = time.perf_counter()
            m.translate(text, beam=beam)
            single.append(time.perf_counter() - t0)
        out[str(beam)] = {"sentences": len(lines), "batched_seconds": round(batched, 3),
                          "batched_sentences_per_s": round(len(lines) / batched, 2),
                          "chunks_of_32_sentences_per_s": round(len(lines) / chunked, 2),
                          "single_calls": len(single), "single_ms_p50": round(1000 * statistics.median(single), 2),
                          "single_ms_mean": round(1000 * statistics.fmean(single), 2)}
    print(json.dumps(out))


def run_offline(args, server_cpus: set[int]) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.serve", "--offline-child", "--model", str(args.model),
           "--beams", args.beams, "--single", str(args.single), "--data-dir", str(args.data_dir)]
    for flag, value in (("--src", args.src), ("--limit", args.limit), ("--threads", args.threads)):
        if value is not None:
            cmd += [flag, str(value)]
    p = subprocess.run(pinned(cmd, server_cpus), capture_output=True, text=True, cwd=ROOT, check=False)
    if p.returncode != 0:
        raise RuntimeError(f"offline run failed:\n{p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


# --- the server -----------------------------------------------------------------------------------
def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_bytes(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


class Memory:
    """The server's resident size, sampled every 50 ms, and its peak (VmHWM) at the end."""

    def __init__(self, pid: int) -> None:
        self.pid, self.samples, self.stop = pid, [], threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(0.05):
            try:
                self.samples.append(rss_bytes(self.pid))
            except OSError:
                return

    def now(self) -> int:
        return rss_bytes(self.pid)


def start_server(args, server_cpus: set[int]) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    cmd = [sys.executable, "-m", "seq2attn", "serve", "-m", str(args.model), "--port", str(port), "--device", "cpu",
           "--access-log", "off", "--window-ms", str(args.window_ms), "--max-beam", "64"]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    proc = subprocess.Popen(pinned(cmd, server_cpus), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(url + "/v1/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server did not start within 120 s")


# --- the load generator ---------------------------------------------------------------------------
class Connection:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams: a load generator must not be the
    bottleneck, and httpx's pool measured so (see benchmarks/README.md); ``--client httpx`` uses it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        self.writer.write(head + body)
        await self.writer.drain()
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)}
        data = await self.reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, data

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


async def load_level(url: str, lines: list[str], *, concurrency: int, beam: int, on_done, client: str = "raw") -> dict:
    """Every sentence once, ``concurrency`` requests in flight; latencies in seconds."""
    import httpx

    queue = list(enumerate(lines))
    queue.reverse()
    latencies: list[float] = []
    errors: list[str] = []
    host, port = url.removeprefix("http://").split(":")

    async def send(conn, text: str) -> tuple[int, str]:
        body = json.dumps({"text": text, "beam": beam})
        if client == "httpx":
            r = await conn.post("/v1/translate", content=body, headers={"content-type": "application/json"})
            return r.status_code, r.text
        status, data = await conn.post("/v1/translate", body.encode())
        return status, data.decode("utf-8", "replace")

    async def worker(conn) -> None:
        while queue:
            _, text = queue.pop()
            t0 = time.perf_counter()
            try:
                status, text_out = await send(conn, text)
                ok = status == 200
                if not ok:
                    errors.append(f"HTTP {status}: {text_out[:200]}")
            except (OSError, asyncio.IncompleteReadError, httpx.HTTPError, ValueError, IndexError) as e:
                ok = False
                errors.append(f"{type(e).__name__}: {e}")
                if client != "httpx":
                    await conn.close()
            if ok:
                latencies.append(time.perf_counter() - t0)
            on_done()

    async with httpx.AsyncClient(base_url=url, timeout=300, limits=httpx.Limits(
            max_connections=concurrency, max_keepalive_connections=concurrency)) as pool:
        before = (await pool.get("/v1/health")).json()
        conns = [pool if client == "httpx" else Connection(host, int(port)) for _ in range(concurrency)]
        start = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in conns))
        wall = time.perf_counter() - start
        for c in conns:
            if c is not pool:
                await c.close()
        after = (await pool.get("/v1/health")).json()
    lat = sorted(latencies)
    pct = lambda q: round(1000 * lat[min(len(lat) - 1, int(q * len(lat)))], 2) if lat else None
    batches = after["batches"] - before["batches"]
    return {"concurrency": concurrency, "beam": beam, "requests": len(lines), "seconds": round(wall, 3),
            "sentences_per_s": round(len(latencies) / wall, 2), "p50_ms": pct(0.50), "p95_ms": pct(0.95),
            "p99_ms": pct(0.99), "errors": len(errors), "error_examples": errors[:3], "batches": batches,
            "mean_batch_requests": round((after["requests"] - before["requests"]) / batches, 2) if batches else None}


def measure(args, lines: list[str], server_cpus: set[int]) -> tuple[list[dict], dict]:
    proc, url = start_server(args, server_cpus)
    memory = Memory(proc.pid)
    sent = {"n": 0, "rss_500": None}

    def on_done() -> None:
        sent["n"] += 1
        if sent["n"] == 500:
            sent["rss_500"] = memory.now()

    rows: list[dict] = []
    again: list[dict] = []  # the same levels once more: what a leak would show, the high-water mark already set
    pass_end: list[int] = []
    try:
        for n_pass in range(1 if args.quick else args.passes):
            for beam in [int(b) for b in args.beams.split(",")]:
                if not args.quick and n_pass == 0:  # warm-up: the allocator and the int paths, not measured
                    asyncio.run(load_level(url, lines[:50], concurrency=8, beam=beam, on_done=lambda: None,
                                           client=args.client))
                for c in [int(x) for x in args.concurrency.split(",")]:
                    row = asyncio.run(load_level(url, lines, concurrency=c, beam=beam, on_done=on_done,
                                                 client=args.client))
                    row["rss_mib_after"] = round(memory.now() / MIB, 1)
                    (rows if n_pass == 0 else again).append(row)
                    print(f"pass {n_pass + 1} beam {beam} concurrency {c}: {row['sentences_per_s']} sentences/s, "
                          f"p50 {row['p50_ms']} ms, errors {row['errors']}, RSS {row['rss_mib_after']} MiB",
                          file=sys.stderr)
            pass_end.append(memory.now())
        end_rss = memory.now()
        peak = rss_bytes(proc.pid, "VmHWM")
    finally:
        memory.stop.set()
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = None
    rss = {"peak_mib": round(peak / MIB, 1), "after_500_requests_mib": round((sent["rss_500"] or 0) / MIB, 1),
           "end_mib": round(end_rss / MIB, 1), "requests": sent["n"], "sigterm_exit_code": code,
           "growth_mib": round((end_rss - sent["rss_500"]) / MIB, 1) if sent["rss_500"] else None,
           "pass_end_mib": [round(x / MIB, 1) for x in pass_end],
           "growth_over_repeated_passes_mib": round((pass_end[-1] - pass_end[0]) / MIB, 1) if len(pass_end) > 1
           else None, "repeated_levels": again}
    return rows, rss


def judge(rows: list[dict], offline: dict, rss: dict) -> dict:
    out = {}
    for beam, off in offline.items():
        by_c = {r["concurrency"]: r for r in rows if str(r["beam"]) == beam}
        if 32 in by_c:
            frac = by_c[32]["sentences_per_s"] / off["batched_sentences_per_s"]
            out[f"beam{beam}_c32_fraction_of_offline"] = {"value": round(frac, 3), "target": ">= 0.70",
                                                          "met": frac >= TARGETS["c32_fraction_of_offline"]}
        if 1 in by_c:
            ratio = by_c[1]["p50_ms"] / off["single_ms_p50"]
            out[f"beam{beam}_c1_latency_ratio"] = {"value": round(ratio, 3), "target": "<= 1.3",
                                                   "met": ratio <= TARGETS["c1_latency_ratio"]}
    errors = sum(r["errors"] for r in rows + rss.get("repeated_levels", []))
    out["errors"] = {"value": errors, "target": "0", "met": errors == 0}
    if rss["growth_mib"] is not None:
        out["rss_growth_mib"] = {"value": rss["growth_mib"], "target": "< 50", "met": rss["growth_mib"] < 50}
    again = rss.get("growth_over_repeated_passes_mib")
    if again is not None:  # the same growth limit, once the first pass has set the high-water mark
        out["rss_growth_over_repeated_passes_mib"] = {"value": again, "target": "< 50", "met": again < 50}
    return out


def table(rows: list[dict], offline: dict) -> str:
    lines = [("| beam | concurrency | sentences/s | vs offline batched | p50 ms | p95 ms | p99 ms | errors | "
              "mean requests per batch |"), "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        off = offline[str(r["beam"])]
        lines.append(f"| {r['beam']} | {r['concurrency']} | {r['sentences_per_s']:,.1f} | "
                     f"{r['sentences_per_s'] / off['batched_sentences_per_s']:.2f}x | {r['p50_ms']} | {r['p95_ms']} | "
                     f"{r['p99_ms']} | {r['errors']} | {r['mean_batch_requests']} |")
    for beam, off in offline.items():
        lines.append(f"| {beam} | offline, one call | {off['batched_sentences_per_s']:,.1f} | 1.00x | "
                     f"single-sentence call p50 {off['single_ms_p50']} ms | | | | |")
        lines.append(f"| {beam} | offline, calls of 32 | {off['chunks_of_32_sentences_per_s']:,.1f} | "
                     f"{off['chunks_of_32_sentences_per_s'] / off['batched_sentences_per_s']:.2f}x | | | | | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.offline_child:
        offline_child(args)
        return
    client_cpus, server_cpus = cpus(args)
    lines = sentences(args)
    threads = args.threads or len(server_cpus)
    args.threads = threads
    os.sched_setaffinity(0, client_cpus)
    load_before = os.getloadavg()  # figures from a busy machine are not worth publishing: record it
    # offline before and after the server's levels: a shared machine drifts, and the mean of the two
    # (both kept in the report) is what the server is compared with
    before = run_offline(args, server_cpus)
    rows, rss = measure(args, lines, server_cpus)
    after = run_offline(args, server_cpus)
    offline = {beam: {**{k: round((v + after[beam][k]) / 2, 2) if isinstance(v, float) else v
                         for k, v in b.items()},
                      "runs": [b, after[beam]]} for beam, b in before.items()}
    from benchmarks.common import machine_info

    report = {"kind": "serve", "model": str(args.model), "sentences": len(lines),
              "source": str(args.src) if args.src else "multi30k test_2016_flickr",
              "machine": machine_info(threads), "client_cpus": sorted(client_cpus), "server_cpus": sorted(server_cpus),
              "window_ms": args.window_ms, "client": args.client, "offline": offline, "levels": rows, "server_rss": rss,
              "targets": judge(rows, offline, rss), "quick": args.quick,
              "load_average_1min": {"start": round(load_before[0], 2), "end": round(os.getloadavg()[0], 2)}}
    out = args.out or RESULTS / f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-serve.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(table(rows, offline))
    print(f"\nserver RSS: peak {rss['peak_mib']} MiB; {rss['after_500_requests_mib']} MiB after 500 requests, "
          f"{rss['end_mib']} MiB at the end; at the end of each pass {rss['pass_end_mib']} MiB; "
          f"SIGTERM exit code {rss['sigterm_exit_code']}")
    print("targets: " + "; ".join(f"{k} {v['value']} ({'met' if v['met'] else 'missed'}, {v['target']})"
                                  for k, v in report["targets"].items()))
    print(f"written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
