"""``seq2attn serve``: a translation server (FastAPI + uvicorn) with request batching, and a page
that shows the attention of any sentence. Needs the ``serve`` extra: ``pip install 'seq2attn[serve]'``.

    from seq2attn.serve import Settings, create_app
    app = create_app(seq2attn.load("runs/dates"), Settings(window_ms=5))
"""

from __future__ import annotations

from seq2attn.errors import ConfigError

EXTRA_HINT = "seq2attn serve needs the serve extra: pip install 'seq2attn[serve]' (fastapi, uvicorn)"


def require() -> None:
    """A one-line ConfigError when FastAPI or uvicorn is missing."""
    import importlib.util

    missing = [name for name in ("fastapi", "uvicorn") if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"{EXTRA_HINT}; missing: {', '.join(missing)}")


def __getattr__(name: str):
    if name in ("Settings", "create_app"):
        require()
        from seq2attn.serve import app

        return getattr(app, name)
    raise AttributeError(f"module 'seq2attn.serve' has no attribute {name!r}")


__all__ = ["Settings", "create_app", "require"]
