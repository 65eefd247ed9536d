"""The FastAPI application of ``seq2attn serve``: versioned JSON endpoints over one loaded model,
the page at ``/``, request batching, limits and the access log.

Endpoints: ``POST /v1/translate``, ``POST /v1/align``, ``GET /v1/info``, ``GET /v1/health``;
``GET /`` (the page) and its two static files; OpenAPI docs at ``/docs``. No endpoint reads or
writes a file named by a request: the page's files are read from package data at start-up.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from seq2attn.errors import ConfigError, Seq2AttnError
from seq2attn.inference.alignment import hard_links, pharaoh
from seq2attn.inference.api import Model
from seq2attn.inference.translate import jsonl_row
from seq2attn.serve import schema
from seq2attn.serve.batching import Batcher, ShuttingDown
from seq2attn.version import __version__

log = logging.getLogger("seq2attn.serve")
access = logging.getLogger("seq2attn.serve.access")

DECODE_PATHS = ("/v1/translate", "/v1/align")
ERRORS = {status: {"model": schema.ErrorResponse} for status in (400, 413, 422, 503, 504)}
ACCESS_FORMATS = ("text", "json", "off")


@dataclass(frozen=True)
class Settings:
    """The server's limits and switches (``seq2attn serve --help`` names each)."""

    window_ms: float = 5.0  # longest wait of a request for company in its batch
    max_sentences: int = 64  # per request
    max_body_bytes: int = 1 << 20  # request body size limit
    timeout_s: float = 60.0  # per request: queueing and decoding (504 after it)
    max_source_tokens: int | None = None  # pieces per source sentence; None: the model's position limit, else 1024
    max_beam: int = 32
    max_output_tokens: int = 1024  # the output limit a * source length + b may not pass this
    batch_tokens: int | None = None  # source tokens per batched search; None: the model's decode.batch_tokens
    cors: tuple[str, ...] = ()  # allowed origins; none: no CORS headers
    access_log: str = "text"  # text, json or off

    def source_limit(self, model: Model) -> int:
        if self.max_source_tokens is not None:
            return self.max_source_tokens
        limit = model.position_limit
        return limit - 1 if limit is not None else 1024  # the search appends EOS


class BadRequest(Exception):
    def __init__(self, message: str, field: str | None = None, status: int = 422) -> None:
        super().__init__(message)
        self.field = field
        self.status = status


def error(status: int, message: str, field: str | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "field": field}, status_code=status)


# --- ASGI middleware --------------------------------------------------------------------------
class Guard:
    """Body size limit, the access log line and the batcher's count of requests on their way."""

    def __init__(self, app, *, settings: Settings, service: Service) -> None:
        self.app = app
        self.settings = settings
        self.service = service
        self.batcher = service.batcher

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        state = scope.setdefault("state", {})
        status = [0]

        async def send_status(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        decoding = scope["method"] == "POST" and scope["path"] in DECODE_PATHS
        if decoding:
            self.batcher.announce()
            state["announced"] = True
            self.service.in_flight += 1
        try:
            body = await self._read_body(scope, receive)
            if body is None:
                await error(413, f"request body over {self.settings.max_body_bytes} bytes (--max-body)",
                            "body")(scope, receive, send_status)
            else:
                await self.app(scope, _replay(body), send_status)
        finally:
            if decoding:
                self.service.in_flight -= 1
            if state.pop("announced", False):
                self.batcher.withdraw()
            self._log(scope, status[0] or 500, state.get("sentences", 0), (time.perf_counter() - start) * 1000)

    async def _read_body(self, scope, receive) -> bytes | None:
        """The whole body, or None when it passes the limit (read no further than that)."""
        limit = self.settings.max_body_bytes
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    if int(value) > limit:
                        return None
                except ValueError:
                    pass
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _log(self, scope, status: int, sentences: int, ms: float) -> None:
        fmt = self.settings.access_log
        if fmt == "off":
            return
        client = scope.get("client") or ("-", 0)
        if fmt == "json":
            access.info(json.dumps({"client": client[0], "method": scope["method"], "path": scope["path"],
                                    "status": status, "sentences": sentences, "ms": round(ms, 2)}))
        else:
            access.info('%s "%s %s" %d sentences=%d %.1fms', client[0], scope["method"], scope["path"], status,
                        sentences, ms)


def _replay(body: bytes):
    sent = False

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # nothing more: wait until cancelled, as a disconnect would
        return {"type": "http.disconnect"}

    return receive


# --- the model side ---------------------------------------------------------------------------
class Service:
    """The model behind the endpoints: every call into it runs on the batcher's worker thread."""

    def __init__(self, model: Model, settings: Settings) -> None:
        self.model = model
        self.settings = settings
        cfg = model.cfg
        self.transformer = cfg.model.backend == "transformer"
        self.selectable = self.transformer and model.engine.name == "torch"
        self.default_alignment = (cfg.model.align_layer, cfg.model.align_head)
        self.batch_tokens = settings.batch_tokens or cfg.decode.batch_tokens
        self.batcher = Batcher(self._run, window=settings.window_ms / 1000.0, max_cost=self.batch_tokens)
        self._alignment = self.default_alignment
        self.source_limit = settings.source_limit(model)
        self.in_flight = 0  # translate and align requests inside the server
        self._decode_configs: dict[tuple, Any] = {}  # request options -> checked DecodeConfig

    def _run(self, key, items):  # on the worker thread
        kind, decode, layer, head = key
        if self.selectable:
            wanted = (self.default_alignment[0] if layer is None else layer,
                      self.default_alignment[1] if head is None else head)
            if wanted != self._alignment:
                self.model.set_alignment(layer=wanted[0], head=wanted[1])
                self._alignment = wanted
        if kind == "translate":
            return self.model.translate(items, decode=decode)
        sources, targets = zip(*items)
        return self.model.align(list(sources), list(targets), batch_tokens=self.batch_tokens)

    # --- checks -------------------------------------------------------------------------------
    def check_selection(self, layer: int | None, head: int | None) -> None:
        if layer is None and head is None:
            return
        name = "layer" if layer is not None else "head"
        if not self.transformer:
            raise BadRequest(f"{name}: this model (model.backend=rnn) has one attention; leave layer and head "
                             "out", name)
        if not self.selectable:
            raise BadRequest(f"{name}: a CTranslate2 export returns the attention of the layer chosen at export",
                             name)
        m = self.model.cfg.model
        if layer is not None and layer >= m.dec_layers:
            raise BadRequest(f"layer={layer}; the model has {m.dec_layers} decoder layers (0-{m.dec_layers - 1})",
                             "layer")
        if head is not None and head >= m.heads:
            raise BadRequest(f"head={head}; the model has {m.heads} heads (0-{m.heads - 1})", "head")

    def source_costs(self, texts: list[str], where: str) -> list[int]:
        """Pieces per source (+1 for EOS); a source over the limit is refused, naming it."""
        check_unicode(texts, where)
        ids = self.model.codec.encode(texts, side="src")
        for i, x in enumerate(ids):
            if len(x) > self.source_limit:
                raise BadRequest(f"{where}[{i}]: {len(x)} source pieces, over the limit of {self.source_limit} "
                                 "(--max-source-tokens)", where, status=413)
        return [len(x) + 1 for x in ids]

    def decode_config(self, options: dict[str, Any]):
        key = tuple(sorted((k, v) for k, v in options.items() if v is not None))
        decode = self._decode_configs.get(key)
        if decode is None:  # resolving a config costs a millisecond: requests mostly repeat options
            try:
                decode = self.model.decode_config(**options)
            except Seq2AttnError as e:
                raise BadRequest(str(e), schema.field_of_message(str(e))) from None
            if len(self._decode_configs) >= 256:
                self._decode_configs.clear()
            self._decode_configs[key] = decode
        if decode.beam_size > self.settings.max_beam:
            raise BadRequest(f"beam={decode.beam_size}; this server allows at most {self.settings.max_beam} "
                             "(--max-beam)", "beam")
        return decode


def check_unicode(texts: list[str], where: str) -> None:
    """JSON can carry a lone surrogate (``"\\ud800"``), which no tokenizer takes: refuse it by name."""
    for i, text in enumerate(texts):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest(f"{where}[{i}]: not valid Unicode (a lone surrogate)", where) from None


def _texts(body, one: str, many: str) -> tuple[list[str], str]:
    a, b = getattr(body, one), getattr(body, many)
    if (a is None) == (b is None):
        raise BadRequest(f"give `{one}` (one string) or `{many}` (a list of strings), exactly one of them",
                         one if a is None else many)
    return ([a], one) if a is not None else (list(b), many)


def _matrix(src: list[str], tgt: list[str], weights, links: str) -> dict[str, Any]:
    return {"src": src, "tgt": tgt, "weights": [[round(w, 5) for w in row] for row in weights.tolist()],
            "links": links}


def _matrices(model: Model, t, threshold: float | None = None) -> dict[str, Any]:
    words = model.word_alignment(t)
    pieces = _matrix(list(t.src_tokens), list(t.hyp_tokens), t.attention.float().cpu(),
                     pharaoh(hard_links(t.attention.float().cpu(), threshold=threshold)))
    return {"pieces": pieces,
            "words": _matrix(words.src, words.tgt, words.weights, pharaoh(hard_links(words.weights,
                                                                                       threshold=threshold)))}


def _static(name: str) -> bytes:
    return resources.files("seq2attn.serve").joinpath("static", name).read_bytes()


# --- the application --------------------------------------------------------------------------
def create_app(model: Model, settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    if settings.access_log not in ACCESS_FORMATS:
        raise ConfigError(f"access_log={settings.access_log!r}; choose one of: {', '.join(ACCESS_FORMATS)}")
    service = Service(model, settings)
    batcher = service.batcher
    TranslateRequest = schema.translate_request(model.cfg)
    pages = {name: _static(name) for name in ("index.html", "app.js", "style.css")}
    option_names = [n for n in TranslateRequest.model_fields if n not in ("text", "texts", "attention", "layer",
                                                                            "head")]

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await batcher.start()
        try:
            yield
        finally:
            await batcher.close()  # in-flight and queued requests are finished first

    app = FastAPI(title="seq2attn", version=__version__, lifespan=lifespan,
                  description="Translate and align with one seq2attn model. Errors are JSON objects with "
                  "`error` (one line) and `field` (the request field at fault, when there is one).")
    app.state.service = service

    async def decoded(request: Request, key, items, costs, *, alone: bool = False):
        if request.scope.setdefault("state", {}).pop("announced", False):
            batcher.withdraw()
        try:
            return await asyncio.wait_for(batcher.submit(key, items, sum(costs), alone=alone), settings.timeout_s)
        except asyncio.TimeoutError:
            raise BadRequest(f"not done within {settings.timeout_s:g} s (--timeout)", None, status=504) from None

    async def translate(body, request: Request):
        """Translate one text or a list, with the same options as `seq2attn translate`."""
        texts, where = _texts(body, "text", "texts")
        request.state.sentences = len(texts)
        if len(texts) > settings.max_sentences:
            raise BadRequest(f"{where}: {len(texts)} sentences; at most {settings.max_sentences} per request "
                             "(--max-sentences)", where, status=413)
        service.check_selection(body.layer, body.head)
        decode = service.decode_config({n: getattr(body, n) for n in option_names})
        costs = service.source_costs(texts, where)
        longest = max(costs, default=1) - 1
        if decode.max_len_a * longest + decode.max_len_b > settings.max_output_tokens:
            raise BadRequest(f"max_len_a * source length + max_len_b = {decode.max_len_a * longest + decode.max_len_b:g}"
                             f" output pieces; this server allows at most {settings.max_output_tokens} "
                             "(--max-output-tokens)", "max_len_a" if body.max_len_a is not None else "max_len_b")
        out = await decoded(request, ("translate", decode, body.layer, body.head), texts, costs,
                            alone=decode.sample) if texts else []
        rows = []
        for t in out:
            row = jsonl_row(t, nbest=decode.nbest > 1)
            row["too_long"] = t.too_long
            if body.attention:
                row.update(_matrices(model, t))
            rows.append(row)
        options = {schema.option_name(k): v for k, v in asdict(decode).items() if k not in schema.SERVER_ONLY}
        # a JSONResponse: FastAPI would validate the dict against the response model again (the
        # model documents the response in /docs; this code builds it)
        return JSONResponse({"translations": rows, "options": options, "layer": body.layer, "head": body.head})

    # the body's model is built at run time from the model's config: FastAPI reads it from here
    translate.__annotations__["body"] = TranslateRequest
    app.post("/v1/translate", response_model=schema.TranslateResponse, responses=ERRORS)(translate)

    @app.post("/v1/align", response_model=schema.AlignResponse, responses=ERRORS)
    async def align(body: schema.AlignRequest, request: Request):
        """Forced alignment: the attention the model gives a given translation, as Pharaoh links and
        matrices over words and pieces (as `seq2attn align --target`)."""
        sources, where = _texts(body, "source", "sources")
        targets, where_t = _texts(body, "target", "targets")
        if (where, where_t) not in (("source", "target"), ("sources", "targets")):
            raise BadRequest("give `source` with `target`, or `sources` with `targets`", where_t)
        if len(sources) != len(targets):
            raise BadRequest(f"{len(sources)} sources but {len(targets)} targets; they must be line-aligned",
                             "targets")
        request.state.sentences = len(sources)
        if len(sources) > settings.max_sentences:
            raise BadRequest(f"{where}: {len(sources)} sentences; at most {settings.max_sentences} per request "
                             "(--max-sentences)", where, status=413)
        service.check_selection(body.layer, body.head)
        costs = service.source_costs(sources, where)
        check_unicode(targets, where_t)
        for i, text in enumerate(targets):
            if len(text) > 20 * settings.max_output_tokens:
                raise BadRequest(f"{where_t}[{i}]: too long", where_t, status=413)
        out = await decoded(request, ("align", None, body.layer, body.head), list(zip(sources, targets)),
                            costs) if sources else []
        rows = [{"src": t.src, "hyp": t.hyp, "score": round(t.score, 6), "too_long": t.too_long,
                 **_matrices(model, t, body.threshold)} for t in out]
        return JSONResponse({"alignments": rows, "layer": body.layer, "head": body.head})

    @app.get("/v1/info")
    async def info():
        """Backend, sizes, vocabulary, languages, dev scores, which weights, decoding defaults and the
        server's limits."""
        return describe(model, service)

    @app.get("/v1/health")
    async def health():
        """`ok` while the server takes requests; requests in flight and queued, and the batcher's counters."""
        return {"status": "ok", "in_flight": service.in_flight, "queued": batcher.queued, "decoding": batcher.busy, **batcher.stats.as_dict()}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return HTMLResponse(pages["index.html"])

    @app.get("/static/app.js", include_in_schema=False)
    async def script():
        return Response(pages["app.js"], media_type="text/javascript")

    @app.get("/static/style.css", include_in_schema=False)
    async def style():
        return Response(pages["style.css"], media_type="text/css")

    # --- errors: JSON, one line, the field named; never a traceback ---------------------------
    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, e: BadRequest):
        return error(e.status, str(e), e.field)

    @app.exception_handler(ShuttingDown)
    async def shutting_down(request: Request, e: ShuttingDown):
        return error(503, str(e))

    @app.exception_handler(Seq2AttnError)
    async def library_error(request: Request, e: Seq2AttnError):
        return error(422, str(e), schema.field_of_message(str(e)))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError):
        return validation_error(e.errors())

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException):
        return error(e.status_code, str(e.detail))

    @app.exception_handler(Exception)
    async def bug(request: Request, e: Exception):
        log.error("%s %s: internal error: %s: %s", request.method, request.url.path, type(e).__name__, e)
        return error(500, f"internal error ({type(e).__name__})")

    app.add_middleware(Guard, settings=settings, service=service)
    if settings.cors:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors), allow_methods=["GET", "POST"],
                           allow_headers=["content-type"])
    return app


def validation_error(errors: list[dict[str, Any]]) -> JSONResponse:
    """The first of pydantic's errors as one line naming the field (400 for a body that is not JSON)."""
    first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
    loc = [str(x) for x in first.get("loc", ()) if x != "body"]
    where = ".".join(loc) or None
    kind = first.get("type", "")
    if kind == "json_invalid":
        ctx = first.get("ctx") or {}
        return error(400, f"the body is not valid JSON ({ctx.get('error', first.get('msg'))})")
    if kind == "extra_forbidden":
        return error(422, f"unknown field {where!r}", where)
    if kind == "missing" and where is None:
        return error(422, "the body must be a JSON object")
    if kind in ("model_attributes_type", "dict_type") and len(loc) == 0:
        return error(422, "the body must be a JSON object")
    msg = first.get("msg", "invalid value")
    return error(422, f"{where}: {msg}" if where else msg, where)


def describe(model: Model, service: Service) -> dict[str, Any]:
    cfg = model.cfg
    m = cfg.model
    sizes: dict[str, Any] = {"emb_size": m.emb_size, "enc_layers": m.enc_layers, "dec_layers": m.dec_layers}
    if m.backend == "transformer":
        sizes.update(heads=m.heads, ff_size=m.ff_size)
    else:
        sizes.update(hidden_size=m.hidden_size, dec_hidden_size=m.dec_hidden_size)
    out: dict[str, Any] = {
        "name": model.path.name,
        "version": __version__,
        "engine": model.engine.name,
        "device": getattr(model.engine, "device", None),
        "backend": m.backend,
        "decoder": m.decoder if m.backend == "rnn" else None,
        "attention": m.attention if m.backend == "rnn" else "multihead",
        "sizes": sizes,
        "vocabulary": {"src": model.codec.vocab_size("src"), "tgt": model.codec.vocab_size("tgt"),
                       "tokenizer": cfg.tokenizer.kind, "joint": cfg.tokenizer.joint},
        "languages": {"src": cfg.data.src_lang, "tgt": cfg.data.tgt_lang, "corpus": cfg.data.corpus},
        "alignment": {"selectable": service.selectable, "layers": m.dec_layers if service.transformer else 0,
                      "heads": m.heads if service.transformer else 0, "layer": m.align_layer, "head": m.align_head},
        "decode": {schema.option_name(k): v for k, v in asdict(cfg.decode).items()},
        "limits": {"max_sentences": service.settings.max_sentences, "max_body_bytes": service.settings.max_body_bytes,
                   "max_source_tokens": service.source_limit, "max_beam": service.settings.max_beam,
                   "max_output_tokens": service.settings.max_output_tokens, "timeout_s": service.settings.timeout_s,
                   "batch_tokens": service.batch_tokens, "window_ms": service.settings.window_ms},
        "weights": _weights(model),
    }
    return out


def _weights(model: Model) -> dict[str, Any]:
    """Which weights are loaded, and their step and dev scores from the manifest (or export marker)."""
    keys = ("file", "step", "minutes", "dev_bleu", "dev_chrf", "dev_loss")
    try:
        if model.engine.name == "torch":
            from seq2attn.modeldir.checkpoint import read_manifest

            which = model.engine.loaded.which
            entry = read_manifest(model.path)["weights"].get(which, {})
            params = sum(p.numel() for p in model.engine.loaded.model.parameters())
            return {"which": which, "parameters": params, **{k: entry.get(k) for k in keys}}
        from seq2attn.inference.ct2 import read_marker

        marker = read_marker(model.path)
        entry = marker.get("weights") or {}
        return {"which": "export", "quantization": marker.get("quantization"), **{k: entry.get(k) for k in keys}}
    except (Seq2AttnError, OSError, AttributeError, KeyError) as e:
        return {"error": f"{type(e).__name__}: {e}"}


def configure_logging(stream=None) -> None:
    """Access lines and the server's own messages, one per line, to stderr."""
    for name in ("seq2attn.serve", "seq2attn.serve.access"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.propagate = False
        if not logger.handlers:
            handler = logging.StreamHandler(stream or sys.stderr)
            handler.setFormatter(logging.Formatter("%(message)s"))
            logger.addHandler(handler)


__all__ = ["Settings", "configure_logging", "create_app"]
