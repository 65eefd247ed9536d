"""benchmarks/common.py: medians, child processes (their own peak RSS, SIGINT on a condition), the
allocator setting of each toolkit."""

from __future__ import annotations

import sys

import pytest

from benchmarks import common


def test_steady_rate_is_the_median_after_warmup():
    assert common.steady_rate([1.0, 100.0, 10.0, 30.0, 20.0], skip=1) == 25.0
    assert common.steady_rate([7.0], skip=3) == 7.0  # too few windows: the last one
    assert common.steady_rate([], skip=0) is None


def test_peak_rss_belongs_to_each_child_not_to_the_largest_so_far(tmp_path):
    big = common.run_child([sys.executable, "-c", "b = b'x' * (200 * 2**20)"], log=tmp_path / "big.log")
    small = common.run_child([sys.executable, "-c", "pass"], log=tmp_path / "small.log")
    assert big.returncode == 0 and small.returncode == 0
    assert big.peak_rss_bytes >= 200 * 2**20
    assert small.peak_rss_bytes < 100 * 2**20  # not the largest so far, not the harness's own size
    failing = common.run_child([sys.executable, "-c", "import sys; sys.exit(3)"], log=tmp_path / "f.log")
    assert failing.returncode == 3


def test_stop_after_sends_sigint_and_the_child_can_clean_up(tmp_path):
    code = "import time\ntry:\n    print('ready', flush=True)\n    time.sleep(30)\nexcept KeyboardInterrupt:\n    print('saved')\n"
    log = tmp_path / "c.log"
    ready = lambda: log.is_file() and "ready" in log.read_text()
    child = common.run_child([sys.executable, "-c", code], log=log, stop_after=ready)
    assert child.returncode == 0 and child.wall_s < 10
    assert "saved" in child.log.read_text()


# A training process of either toolkit: mallocs 64 MiB and frees it, and says whether glibc served the
# block with mmap and whether it kept the freed memory at the top of its heap (seq2attn: as `seq2attn train`
# sets its allocator up; JoeyNMT: a plain process, the setting comes from its environment alone)
_MALLOC_PROBE = """
import ctypes, sys
if sys.argv[1] == "seq2attn":
    from seq2attn.nn.runtime import keep_freed_memory
    keep_freed_memory()
names = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()
Info = type("Info", (ctypes.Structure,), {"_fields_": [(n, ctypes.c_size_t) for n in names]})
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype, libc.malloc.restype, libc.free.argtypes = Info, ctypes.c_void_p, [ctypes.c_void_p]
size, before = 64 << 20, libc.mallinfo2()
block = libc.malloc(size)
mapped = libc.mallinfo2().hblkhd - before.hblkhd >= size
libc.free(block)
print(mapped, libc.mallinfo2().keepcost >= size)  # the freed block is still the heap's top chunk
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_both_toolkits_get_the_same_allocator_setting(tmp_path):
    """--malloc kept / system: a large block comes from the heap and stays there after free in both
    toolkits' processes, or is mapped and returned in both (the behaviour, not the settings' text)."""
    import os
    import subprocess

    def probe(kind: str, side: str) -> tuple[bool, bool]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "SEQ2ATTN_MALLOC"}
        res = subprocess.run([sys.executable, "-c", _MALLOC_PROBE, side], capture_output=True, text=True,
                             env={**env, **common.malloc_env(kind, side=side)}, check=True)
        mapped, kept = res.stdout.split()
        return mapped == "True", kept == "True"

    assert probe("kept", "seq2attn") == probe("kept", "joeynmt") == (False, True)  # heap, kept after free
    assert probe("system", "seq2attn") == probe("system", "joeynmt") == (True, False)  # glibc's defaults
