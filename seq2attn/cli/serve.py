"""The ``seq2attn serve`` command: parse the options, load the model, hand both to seq2attn.serve."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from seq2attn.cli.common import Device, ModelDir, Weights, handle_errors
from seq2attn.errors import ConfigError


@handle_errors
def serve(
    model: ModelDir,
    host: Annotated[str, typer.Option(metavar="ADDR", help="Address to listen on; anything but loopback lets "
                                      "other machines in. Example: --host 0.0.0.0")] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="N", help="TCP port. Example: --port 8080")] = 8000,
    window_ms: Annotated[float, typer.Option(metavar="MS", help="Longest wait of a request for others to batch "
                                             "with (0: never wait). Example: --window-ms 10")] = 5.0,
    batch_tokens: Annotated[int | None, typer.Option(metavar="N", help="Source tokens per batched search "
                                                     "(default: the model's decode.batch_tokens). "
                                                     "Example: --batch-tokens 8000")] = None,
    max_sentences: Annotated[int, typer.Option(metavar="N", help="Most sentences in one request. "
                                               "Example: --max-sentences 16")] = 64,
    max_body: Annotated[int, typer.Option(metavar="BYTES", help="Request body size limit. "
                                          "Example: --max-body 65536")] = 1 << 20,
    max_source_tokens: Annotated[int | None, typer.Option(metavar="N", help="Most source pieces per sentence "
                                                          "(default: a Transformer's position limit, else 1024). "
                                                          "Example: --max-source-tokens 256")] = None,
    max_output_tokens: Annotated[int, typer.Option(metavar="N", help="Most output pieces a request may ask for "
                                                   "(max_len_a * source length + max_len_b). "
                                                   "Example: --max-output-tokens 512")] = 1024,
    max_beam: Annotated[int, typer.Option(metavar="N", help="Largest beam a request may ask for. "
                                          "Example: --max-beam 10")] = 32,
    timeout: Annotated[float, typer.Option(metavar="S", help="Per-request limit on queueing and decoding, "
                                           "seconds (504 after it). Example: --timeout 10")] = 60.0,
    cors: Annotated[list[str] | None, typer.Option(metavar="ORIGIN", help="Allow browser pages from this origin "
                                                   "(repeatable; default: no CORS). "
                                                   "Example: --cors https://example.org")] = None,
    access_log: Annotated[Literal["text", "json", "off"], typer.Option(
        help="One line per request on stderr (method, path, status, sentences, ms), as text or JSON, or "
             "none. Example: --access-log off")] = "text",
    device: Device = "auto",
    threads: Annotated[int | None, typer.Option(metavar="N", help="CPU threads for decoding. "
                                                "Example: --threads 4")] = None,
    weights: Weights = None,
) -> None:
    """Serve a model over HTTP: JSON endpoints (/v1/translate, /v1/align, /v1/info, /v1/health), a
    page at / that shows the attention of any sentence, and API docs at /docs.

    Concurrent requests with the same options are decoded together. SIGTERM or Ctrl-C finishes the
    requests in flight and exits 0. Example: seq2attn serve -m runs/dates --port 8000
    """
    from seq2attn.serve import require

    require()
    from seq2attn.inference.api import load
    from seq2attn.serve.app import Settings
    from seq2attn.serve.server import serve as run_server

    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port}: must be in 0-65535")
    for name, value in (("--max-sentences", max_sentences), ("--max-body", max_body),
                        ("--max-output-tokens", max_output_tokens), ("--max-beam", max_beam)):
        if value < 1:
            raise ConfigError(f"{name} {value}: must be >= 1")
    if not window_ms >= 0 or not timeout > 0:
        raise ConfigError("--window-ms must be >= 0 and --timeout > 0")
    for name, value in (("--batch-tokens", batch_tokens), ("--max-source-tokens", max_source_tokens)):
        if value is not None and value < 1:
            raise ConfigError(f"{name} {value}: must be >= 1")
    settings = Settings(window_ms=window_ms, max_sentences=max_sentences, max_body_bytes=max_body,
                        timeout_s=timeout, max_source_tokens=max_source_tokens, max_beam=max_beam,
                        max_output_tokens=max_output_tokens, batch_tokens=batch_tokens, cors=tuple(cors or ()),
                        access_log=access_log)
    m = load(model, device=device, threads=threads, weights=weights)
    if not run_server(m, host=host, port=port, settings=settings):
        raise ConfigError(f"could not listen on {host}:{port} (in use, or not an address of this machine)")
