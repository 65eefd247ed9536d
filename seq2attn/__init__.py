"""seq2attn: attention-based neural machine translation you can train, run and look inside.

The Python API (see docs/api.md)::

    import seq2attn

    model = seq2attn.load("runs/de-en")
    t = model.translate("Ein Hund rennt.", beam=5)
    print(t.text, t.score, t.links)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from seq2attn.errors import CheckpointError, ConfigError, DataError, Seq2AttnError
from seq2attn.version import __version__

if TYPE_CHECKING:
    from seq2attn.inference.api import Model, load
    from seq2attn.inference.translate import Translation

# imported on first use, so that `import seq2attn` (and every CLI command) does not pay for torch
_LAZY = {"Model": "inference.api", "load": "inference.api", "Translation": "inference.translate"}

__all__ = ["CheckpointError", "ConfigError", "DataError", "Model", "Seq2AttnError", "Translation", "__version__",
           "load"]


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module 'seq2attn' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value
