"""Run-time settings (seq2attn.nn.runtime): the allocator kept from one step to the next."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
@pytest.mark.parametrize(("env", "expected"), [({}, True), ({"SEQ2ATTN_MALLOC": "system"}, False)])
def test_keep_freed_memory_applies_unless_opted_out(env, expected):
    # process-wide: run it in a child so this test process keeps its allocator settings
    code = "from seq2attn.nn.runtime import keep_freed_memory; print(keep_freed_memory())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**{k: v for k, v in os.environ.items() if k != "SEQ2ATTN_MALLOC"}, **env})
    assert out.stdout.strip() == str(expected)
