"""seq2attn serve: every endpoint and error class over a tiny GRU, a tiny Transformer and its
CTranslate2 export; translations through the server equal `seq2attn translate`'s; request
batching; SIGTERM during a burst."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

import httpx
from fastapi.testclient import TestClient
from serve_helpers import ROOT, start_server, tiny_transformer
from typer.testing import CliRunner

from seq2attn.cli.main import app as cli
from seq2attn.config import DecodeConfig
from seq2attn.errors import ConfigError
from seq2attn.inference.api import load
from seq2attn.serve.app import Settings, create_app
from seq2attn.serve.batching import Batcher

SOURCES = ["d h r l j", "n c l b k q e", "o s t c g r p i k o", "a b", ""]


@pytest.fixture(scope="module")
def transformer(tmp_path_factory, reverse_files) -> Path:
    return tiny_transformer(tmp_path_factory, reverse_files)


@pytest.fixture(scope="module")
def rnn(tiny_model):
    return load(tiny_model, device="cpu")


@pytest.fixture(scope="module")
def client(rnn):
    with TestClient(create_app(rnn, Settings())) as c:
        yield c


@pytest.fixture(scope="module")
def tf_client(transformer):
    with TestClient(create_app(load(transformer, device="cpu"), Settings())) as c:
        yield c


def _cli_jsonl(model: Path, tmp_path: Path, *args: str) -> list[dict]:
    src = tmp_path / "src.txt"
    src.write_text("".join(s + "\n" for s in SOURCES))
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(cli, ["translate", "-m", str(model), "-i", str(src), "-o", str(out), "--format",
                                      "jsonl", "--device", "cpu", "-q", *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in out.read_text().splitlines()]


# --- translations equal the CLI's -----------------------------------------------------------------
@pytest.mark.parametrize("options,args", [({}, []), ({"beam": 5, "nbest": 3}, ["--beam", "5", "--nbest", "3"])],
                         ids=["greedy", "beam5"])
def test_translate_equals_the_cli(client, rnn, tiny_model, tmp_path, options, args):
    rows = _cli_jsonl(tiny_model, tmp_path, *args)
    r = client.post("/v1/translate", json={"texts": SOURCES, "attention": True, **options})
    assert r.status_code == 200, r.text
    got = r.json()["translations"]
    assert len(got) == len(rows)
    for ours, theirs in zip(got, rows):
        assert {k: ours[k] for k in theirs} == theirs  # src, hyp, score, norm_score, alignment, tokens, nbest
    direct = rnn.translate(SOURCES, beam=options.get("beam"), nbest=options.get("nbest"))
    for ours, t in zip(got, direct):
        if not t.hyp_tokens:
            assert ours["pieces"]["weights"] == []
            continue
        assert ours["pieces"]["src"] == t.src_tokens and ours["pieces"]["tgt"] == t.hyp_tokens
        w = t.attention.tolist()
        assert all(abs(a - b) <= 1e-5 for ra, rb in zip(ours["pieces"]["weights"], w) for a, b in zip(ra, rb))
        words = rnn.word_alignment(t)
        assert ours["words"]["src"] == words.src and ours["words"]["tgt"] == words.tgt
    assert r.json()["options"]["beam"] == options.get("beam", rnn.cfg.decode.beam_size)


def test_sampled_requests_decode_alone_and_repeat(client, rnn):
    body = {"texts": SOURCES[:3], "sample": True, "nbest": 2, "seed": 7, "temperature": 1.5}
    first = client.post("/v1/translate", json=body)
    assert first.status_code == 200, first.text
    again = client.post("/v1/translate", json=body).json()["translations"]
    assert again == first.json()["translations"]  # same input and seed: same draws, whatever the load
    direct = rnn.translate(SOURCES[:3], sample=True, nbest=2, seed=7, temperature=1.5)
    assert [[x["hyp"] for x in t["nbest"]] for t in again] == [[x.hyp for x in t.nbest] for t in direct]


def test_one_text_and_no_attention_by_default(client, rnn):
    r = client.post("/v1/translate", json={"text": SOURCES[0]})
    assert r.status_code == 200
    (t,) = r.json()["translations"]
    assert t["hyp"] == rnn.translate(SOURCES[0]).hyp
    assert "pieces" not in t and "words" not in t and t["alignment"]  # the matrices only when asked for


def test_align_equals_the_cli(client, tiny_model):
    src, tgt = "d h r l j", "j l r h d"
    result = CliRunner().invoke(cli, ["align", "-m", str(tiny_model), src, "--target", tgt, "--format", "json",
                                      "--device", "cpu"])
    assert result.exit_code == 0, result.output
    theirs = json.loads(result.stdout.strip().splitlines()[-1])
    r = client.post("/v1/align", json={"source": src, "target": tgt})
    assert r.status_code == 200, r.text
    (a,) = r.json()["alignments"]
    assert a["hyp"] == tgt and a["words"]["src"] == theirs["src_tokens"] and a["words"]["tgt"] == theirs["tgt_tokens"]
    assert a["words"]["links"] == theirs["links"]
    assert all(abs(x - y) <= 1e-4 for rx, ry in zip(a["words"]["weights"], theirs["attention"]) for x, y in zip(rx, ry))
    assert a["pieces"]["src"][-1] == "</s>"
    r = client.post("/v1/align", json={"sources": [src, "a b"], "targets": [tgt, "b a"], "threshold": 0.3})
    assert r.status_code == 200 and len(r.json()["alignments"]) == 2


def test_info_health_page_and_docs(client, rnn):
    info = client.get("/v1/info").json()
    assert info["backend"] == "rnn" and info["engine"] == "torch"
    assert info["vocabulary"]["src"] == rnn.codec.vocab_size("src")
    assert info["weights"]["which"] in ("best", "last", "averaged") and info["weights"]["step"] > 0
    assert "dev_bleu" in info["weights"] and info["alignment"]["selectable"] is False
    assert info["decode"]["beam"] == rnn.cfg.decode.beam_size
    health = client.get("/v1/health").json()
    assert health["status"] == "ok" and health["batches"] >= 0
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200
    assert "http://" not in page.text and "https://" not in page.text  # no CDN: everything from this server
    assert client.get("/docs").status_code == 200


def test_openapi_describes_every_field(client):
    schema = client.get("/openapi.json").json()
    assert {"/v1/translate", "/v1/align", "/v1/info", "/v1/health"} <= set(schema["paths"])
    import dataclasses

    from seq2attn.serve.schema import option_name

    for name in ("TranslateRequest", "AlignRequest"):
        props = schema["components"]["schemas"][name]["properties"]
        assert all(p.get("description") for p in props.values()), [k for k, p in props.items()
                                                                   if not p.get("description")]
    translate = schema["components"]["schemas"]["TranslateRequest"]["properties"]
    expected = {option_name(f.name) for f in dataclasses.fields(DecodeConfig)} - {"batch_tokens"}
    assert expected <= set(translate), expected - set(translate)


# --- bad requests: 4xx, JSON, the field named -----------------------------------------------------
BAD = [
    ({"text": "a", "beam": 0}, 422, "beam"),
    ({"text": "a", "beam": 2, "nbest": 3}, 422, None),  # cross-field: nbest <= beam (names both)
    ({"text": "a", "bogus": 1}, 422, "bogus"),
    ({"text": "a", "temperature": -1}, 422, "temperature"),
    ({"text": "a", "top_p": 2}, 422, "top_p"),
    ({"text": "a", "precision": "fp64"}, 422, "precision"),
    ({"text": "a", "beam": "many"}, 422, "beam"),
    ({"text": "a", "beam": 10**12}, 422, "beam"),
    ({"text": "a", "beam": 33}, 422, "beam"),  # --max-beam
    ({"text": "a", "max_len_b": 5000}, 422, "max_len_b"),  # --max-output-tokens
    ({"text": "a", "layer": 1}, 422, "layer"),  # a GRU has no layers to choose
    ({"text": "a", "max_len_a": 0, "max_len_b": 0}, 422, "max_len_a"),
    ({"text": 5}, 422, "text"),
    ({"text": "a", "beam": True}, 422, "beam"),  # JSON's types: true is no beam size
    ({"text": "a", "sample": "yes"}, 422, "sample"),
    ({"text": "a", "max_len_a": 1e300}, 422, "max_len_a"),
    ({"texts": ["a", 3]}, 422, "texts.1"),
    ({}, 422, "text"),
    ({"text": "a", "texts": ["b"]}, 422, "texts"),
]


@pytest.mark.parametrize("body,status,field", BAD)
def test_bad_translate_requests(client, body, status, field):
    r = client.post("/v1/translate", json=body)
    assert r.status_code == status, r.text
    data = r.json()
    assert set(data) == {"error", "field"} and "\n" not in data["error"] and "Traceback" not in data["error"]
    if field is not None:
        assert data["field"] == field
        assert field.split(".")[0] in data["error"]


def test_nbest_over_beam_names_the_option(client):
    r = client.post("/v1/translate", json={"text": "a", "beam": 2, "nbest": 3})
    assert "nbest" in r.json()["error"]


@pytest.mark.parametrize("raw,content_type,status", [
    (b"{not json", "application/json", 400), (b"[1, 2]", "application/json", 422),
    (b'"text"', "application/json", 422), (b"", "application/json", 422),
    (b'{"text": NaN, "alpha": 1}', "application/json", 422), (b'{"text": "a", "alpha": Infinity}', "application/json", 422),
    (b'{"text": "\\ud800"}', "application/json", 422), (b'{"text": "a"}{"text": "a"}', "application/json", 400)])
def test_bodies_that_are_not_requests(client, raw, content_type, status):
    r = client.post("/v1/translate", content=raw, headers={"content-type": content_type})
    assert r.status_code == status, r.text
    assert r.json()["error"]


def test_bad_align_requests(client):
    for body, field in [({"source": "a b"}, "target"), ({"source": "a", "targets": ["b"]}, "targets"),
                        ({"sources": ["a", "b"], "targets": ["a"]}, "targets"),
                        ({"source": "a", "target": "b", "threshold": 0}, "threshold"),
                        ({"source": "a", "target": "b", "extra": 1}, "extra")]:
        r = client.post("/v1/align", json=body)
        assert r.status_code == 422 and r.json()["field"] == field, (body, r.text)


def test_empty_lists_are_answered_empty(client):
    r = client.post("/v1/translate", json={"texts": [], "beam": 2})
    assert r.status_code == 200 and r.json()["translations"] == [] and r.json()["options"]["beam"] == 2
    assert client.post("/v1/translate", json={"texts": [], "beam": 0}).status_code == 422  # still checked
    r = client.post("/v1/align", json={"sources": [], "targets": []})
    assert r.status_code == 200 and r.json()["alignments"] == []


def test_unknown_paths_and_methods_are_json(client):
    r = client.get("/v1/nothing")
    assert r.status_code == 404 and r.json()["error"]
    r = client.get("/v1/translate")
    assert r.status_code == 405 and r.json()["error"]


# --- limits --------------------------------------------------------------------------------------
def test_limits(rnn):
    settings = Settings(max_body_bytes=300, max_sentences=3, max_source_tokens=8)
    with TestClient(create_app(rnn, settings)) as c:
        r = c.post("/v1/translate", json={"text": "a" * 400})
        assert r.status_code == 413 and r.json()["field"] == "body"
        r = c.post("/v1/translate", content=b'{"text": "' + b"a" * 400 + b'"}',
                   headers={"content-type": "application/json", "transfer-encoding": "chunked"})
        assert r.status_code == 413
        r = c.post("/v1/translate", json={"texts": ["a"] * 4})
        assert r.status_code == 413 and r.json()["field"] == "texts"
        r = c.post("/v1/translate", json={"texts": ["a", "a b c d e f g h i"]})
        assert r.status_code == 413 and r.json()["field"] == "texts" and "texts[1]" in r.json()["error"]
        r = c.post("/v1/align", json={"source": "a b c d e f g h i", "target": "x"})
        assert r.status_code == 413 and r.json()["field"] == "source"
        assert c.post("/v1/translate", json={"texts": ["a b c", "d"]}).status_code == 200


def test_timeout(rnn):
    with TestClient(create_app(rnn, Settings(timeout_s=0.2))) as c:
        service = c.app.state.service
        slow = service.batcher._run

        def run(key, items):
            time.sleep(0.6)
            return slow(key, items)

        service.batcher._run = run
        r = c.post("/v1/translate", json={"text": "a b"})
        assert r.status_code == 504 and "--timeout" in r.json()["error"]
        service.batcher._run = slow
        time.sleep(0.6)  # the worker finishes the batch nobody waits for any more
        assert c.post("/v1/translate", json={"text": "a b"}).status_code == 200


def test_access_log_and_cors(rnn, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="seq2attn.serve.access"), \
            TestClient(create_app(rnn, Settings(cors=("https://example.org",)))) as c:
        r = c.post("/v1/translate", json={"texts": ["a b", "c"]}, headers={"origin": "https://example.org"})
        assert r.headers.get("access-control-allow-origin") == "https://example.org"
        c.post("/v1/translate", json={"text": "a", "beam": 0})
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "seq2attn.serve.access"]
    assert any('"POST /v1/translate" 200 sentences=2 ' in line and line.endswith("ms") for line in lines), lines
    assert any('"POST /v1/translate" 422 sentences=0 ' in line for line in lines), lines  # refused before decoding
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="seq2attn.serve.access"), \
            TestClient(create_app(rnn, Settings(access_log="off"))) as c:
        r = c.post("/v1/translate", json={"text": "a"}, headers={"origin": "https://example.org"})
        assert "access-control-allow-origin" not in r.headers  # CORS is off unless asked for
    assert not [rec for rec in caplog.records if rec.name == "seq2attn.serve.access"]
    with pytest.raises(ConfigError):
        create_app(rnn, Settings(access_log="xml"))


# --- the Transformer: layer and head; the CTranslate2 export ---------------------------------------
def test_layer_and_head(tf_client, transformer):
    info = tf_client.get("/v1/info").json()
    assert info["alignment"] == {"selectable": True, "layers": 2, "heads": 4, "layer": None, "head": None}
    text = "d h r l j"
    base = tf_client.post("/v1/translate", json={"text": text, "attention": True}).json()["translations"][0]
    head0 = tf_client.post("/v1/translate", json={"text": text, "attention": True, "layer": 0, "head": 0}).json()
    t = head0["translations"][0]
    assert head0["layer"] == 0 and head0["head"] == 0 and t["hyp"] == base["hyp"]
    assert t["pieces"]["weights"] != base["pieces"]["weights"]
    m = load(transformer, device="cpu")
    m.set_alignment(layer=0, head=0)
    direct = m.translate(text).attention.tolist()
    assert all(abs(a - b) <= 1e-5 for ra, rb in zip(t["pieces"]["weights"], direct) for a, b in zip(ra, rb))
    # the next request without layer/head gets the model's default again
    again = tf_client.post("/v1/translate", json={"text": text, "attention": True}).json()["translations"][0]
    assert again["pieces"]["weights"] == base["pieces"]["weights"]
    aligned = tf_client.post("/v1/align", json={"source": text, "target": "j l r h d", "layer": 1, "head": 3})
    assert aligned.status_code == 200 and aligned.json()["head"] == 3
    for body, field in [({"text": text, "layer": 2}, "layer"), ({"text": text, "head": 4}, "head"),
                        ({"text": text, "head": -1}, "head")]:
        r = tf_client.post("/v1/translate", json=body)
        assert r.status_code == 422 and r.json()["field"] == field, r.text


def test_ctranslate2_export(transformer, tmp_path):
    pytest.importorskip("ctranslate2")
    from seq2attn.inference.export import export_ctranslate2

    export_ctranslate2(transformer, tmp_path / "ct2")
    m = load(tmp_path / "ct2", device="cpu")
    with TestClient(create_app(m, Settings())) as c:
        assert c.get("/v1/info").json()["engine"] == "ctranslate2"
        for beam in (1, 5):
            got = c.post("/v1/translate", json={"texts": SOURCES, "beam": beam}).json()["translations"]
            direct = m.translate(SOURCES, beam=beam)
            assert [g["hyp"] for g in got] == [t.hyp for t in direct]
            assert [g["score"] for g in got] == [round(t.score, 6) for t in direct]
        r = c.post("/v1/translate", json={"text": "a b", "layer": 0})
        assert r.status_code == 422 and r.json()["field"] == "layer"
        assert c.post("/v1/align", json={"source": "a b", "target": "b a"}).status_code == 200


# --- batching ------------------------------------------------------------------------------------
def test_batcher_merges_equal_keys_within_the_window():
    calls = []

    def run(key, items):
        calls.append((key, list(items)))
        time.sleep(0.05)
        return [f"{key}:{x}" for x in items]

    async def main():
        b = Batcher(run, window=0.05, max_cost=100)
        await b.start()
        b.announce()  # company is on its way: the first request waits for it, up to the window
        first = asyncio.ensure_future(b.submit("k", ["a"], 1))
        await asyncio.sleep(0.01)
        b.withdraw()
        rest = [b.submit("k", [x, x + "2"], 2) for x in "bc"] + [b.submit("other", ["z"], 1),
                                                                b.submit("k", ["s"], 1, alone=True)]
        out = await asyncio.gather(first, *rest)
        await b.close()
        return out, b.stats

    out, stats = asyncio.run(main())
    assert out == [["k:a"], ["k:b", "k:b2"], ["k:c", "k:c2"], ["other:z"], ["k:s"]]
    assert calls[0] == ("k", ["a", "b", "b2", "c", "c2"])  # one call for the three requests of key k
    assert ("k", ["s"]) in calls  # the request that must stay alone: a call of its own, with its key
    assert len(calls) == 3 and stats.requests == 5 and stats.largest == 3


def test_batcher_respects_the_token_budget_and_never_waits_alone():
    calls = []

    def run(key, items):
        calls.append(list(items))
        return items

    async def main():
        b = Batcher(run, window=5.0, max_cost=4)
        await b.start()
        start = time.monotonic()
        assert await b.submit("k", ["x"], 1) == ["x"]  # nobody else around: it does not wait 5 s
        alone = time.monotonic() - start
        await b.close()
        b = Batcher(run, window=0.01, max_cost=4)
        await b.start()
        out = await asyncio.gather(*(b.submit("k", [i], 2) for i in range(5)))
        await b.close()
        return alone, out

    alone, out = asyncio.run(main())
    assert alone < 1.0 and out == [[i] for i in range(5)]
    assert all(len(c) <= 2 for c in calls[1:])  # 2 tokens each, a budget of 4: at most 2 requests a call


def test_batcher_isolates_a_failing_request():
    def run(key, items):
        if "bad" in items:
            raise ConfigError("bad input")
        return items

    async def main():
        b = Batcher(run, window=0.02, max_cost=100)
        await b.start()
        b.announce()
        jobs = [asyncio.ensure_future(b.submit("k", [x], 1)) for x in ("a", "bad", "c")]
        await asyncio.sleep(0)
        b.withdraw()
        out = await asyncio.gather(*jobs, return_exceptions=True)
        await b.close()
        return out

    a, bad, c = asyncio.run(main())
    assert a == ["a"] and c == ["c"] and isinstance(bad, ConfigError)


def test_concurrent_requests_are_batched_and_equal_single_ones(rnn):
    """Requests sent together through the ASGI app are decoded in fewer calls than requests, and
    each gets what it would get alone."""
    app = create_app(rnn, Settings(window_ms=50))
    texts = [s for s in SOURCES if s] * 4
    alone = [t.hyp for t in rnn.translate(texts)]

    async def main():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
                rs = await asyncio.gather(*(c.post("/v1/translate", json={"text": t}) for t in texts))
                health = (await c.get("/v1/health")).json()
        return rs, health

    rs, health = asyncio.run(main())
    assert [r.json()["translations"][0]["hyp"] for r in rs] == alone
    assert health["requests"] == len(texts) and health["batches"] < len(texts) and health["largest_batch_requests"] > 1


# --- the process: start, serve, SIGTERM during a burst ---------------------------------------------
def test_sigterm_during_a_burst_answers_every_accepted_request(tiny_model):
    bursts = (48, 192, 768)  # a machine fast enough to answer the whole burst first gets a larger one
    # --max-sentences: the larger bursts below must be decoded, not refused at the default 64
    proc, url = start_server(tiny_model, "--window-ms", "20", "--max-sentences", str(max(bursts)))
    n = 12
    sent: list[int] = []  # sentences per request, one entry per request sent

    def burst(sentences: int) -> tuple[list, list[threading.Thread], int]:
        """n requests at once; returns when each is in the server or answered, with the in-flight count."""
        texts = [" ".join("abcdefghijklmnop"[(i + k) % 16] for k in range(12)) for i in range(sentences)]
        results: list = [None] * n

        def send(i):
            try:
                results[i] = httpx.post(url + "/v1/translate", json={"texts": texts, "beam": 8}, timeout=120)
            except httpx.HTTPError as e:
                results[i] = e

        threads = [threading.Thread(target=send, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        sent.extend([sentences] * n)
        deadline = time.monotonic() + 60
        while True:  # until every request is accepted: in the server now, or answered already
            done = sum(r is not None for r in results)  # read first: a request answered meanwhile is missed,
            in_flight = httpx.get(url + "/v1/health", timeout=30).json()["in_flight"]  # never counted twice
            if done + in_flight >= n:
                return results, threads, in_flight
            assert time.monotonic() < deadline
            time.sleep(0.01)

    try:
        for sentences in bursts:
            results, threads, in_flight = burst(sentences)
            if in_flight > 0:
                break
            for t in threads:
                t.join(120)
            # answered before a poll saw it: decoded, not refused (a refusal would make the next burst moot)
            assert [getattr(r, "status_code", r) for r in results] == [200] * n
        assert in_flight > 0  # SIGTERM lands while requests are being decoded or wait for it
        proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(120)
        code = proc.wait(120)
        err = proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0, err
    statuses = [r.status_code if isinstance(r, httpx.Response) else repr(r) for r in results]
    assert statuses == [200] * n, statuses
    assert all(len(r.json()["translations"]) == sentences for r in results)
    lines = [x for x in err.splitlines() if '"POST /v1/translate"' in x]
    assert len(lines) == len(sent), err
    assert all(f" 200 sentences={k} " in x for x, k in zip(lines, sent)), err
    assert "Traceback" not in err
    with pytest.raises(httpx.TransportError):  # and it takes no more
        httpx.get(url + "/v1/health", timeout=2)


def test_serve_command_errors(tiny_model, tmp_path):
    r = CliRunner().invoke(cli, ["serve", "-m", str(tmp_path / "missing")])
    assert r.exit_code == 1 and "seq2attn: error:" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(cli, ["serve", "-m", str(tiny_model), "--port", "70000"])
    assert r.exit_code == 1 and "--port" in r.output
    with socket.socket() as s:  # a port in use: one line, exit 1
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        p = subprocess.run([sys.executable, "-m", "seq2attn", "serve", "-m", str(tiny_model), "--port", str(port),
                            "--device", "cpu"], capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)
    assert p.returncode == 1 and "could not listen" in p.stderr and "Traceback" not in p.stderr


def test_load_benchmark_smoke(tiny_model, tmp_path):
    """benchmarks.serve at tiny sizes: every level answered, the report judged, the server stopped."""
    src = tmp_path / "src.txt"
    src.write_text("".join(s + "\n" for s in SOURCES if s))
    out = tmp_path / "serve.json"
    p = subprocess.run([sys.executable, "-m", "benchmarks.serve", "--model", str(tiny_model), "--src", str(src),
                        "--concurrency", "1,4", "--beams", "1", "--single", "3", "--quick", "--out", str(out)],
                       capture_output=True, text=True, timeout=300, cwd=ROOT, check=False)
    assert p.returncode == 0, p.stderr[-3000:]
    report = json.loads(out.read_text())
    assert [(r["concurrency"], r["requests"], r["errors"]) for r in report["levels"]] == [(1, 4, 0), (4, 4, 0)]
    assert report["offline"]["1"]["sentences"] == 4 and report["server_rss"]["sigterm_exit_code"] == 0
    assert report["server_rss"]["peak_mib"] > 0 and set(report["targets"]) >= {"errors", "beam1_c1_latency_ratio"}
    assert "| 1 | 4 |" in p.stdout
