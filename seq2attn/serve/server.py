"""Running the application under uvicorn: one process, one event loop, one decoding thread.

SIGTERM and Ctrl-C (SIGINT) stop the server gracefully: it stops accepting connections, finishes
the requests in flight (and the batches they wait for), runs the application's shutdown and exits
0. uvicorn re-raises the signal after its shutdown, which would end the process with 143 or 130;
:class:`Server` does not, because a server that stopped as asked has succeeded.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading

import uvicorn

from seq2attn.serve.app import Settings, configure_logging, create_app

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, *, banner: str | None = None) -> None:
        super().__init__(config)
        self.banner = banner

    @contextlib.contextmanager
    def capture_signals(self):
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self.banner:
            print(self.banner, file=sys.stderr, flush=True)


def serve(model, *, host: str, port: int, settings: Settings) -> bool:
    """Serve ``model`` until SIGTERM or Ctrl-C. False when the server could not start (the port is
    taken: uvicorn has logged why)."""
    configure_logging()
    app = create_app(model, settings)
    config = uvicorn.Config(app, host=host, port=port, access_log=False, log_level="warning", lifespan="on",
                            timeout_graceful_shutdown=int(settings.timeout_s) + 10, server_header=False)
    shown = f"[{host}]" if ":" in host else host
    server = Server(config, banner=f"seq2attn serve: {model.path} ({model.cfg.model.backend}, "
                    f"{model.engine.name}) on http://{shown}:{port}/  (API docs: /docs; stop: Ctrl-C or SIGTERM)")
    try:
        server.run()
    except SystemExit as e:  # uvicorn exits 1 when it cannot bind
        return not e.code
    return server.started
