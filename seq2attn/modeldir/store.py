"""The binarized corpus store: a corpus tokenized once into memory-mapped token-id arrays.

Training memory then grows with the batch, never with the corpus: batching reads the lengths,
and a batch reads its rows from the arrays' files (the model studied: fairseq's
``MMapIndexedDataset``; ``Side`` below says why rows are not read through the mapping).
A store is a directory::

    store.json               format, sizes, sha256 of the inputs, tokenizer config and hash
    tokenizer.json           (or src_tokenizer.json + tgt_tokenizer.json)
    {split}.{side}.npy       all token ids of a split and side, one flat array (uint16 when the
                             vocabulary fits, else int32), opened with mmap_mode="r"
    {split}.{side}.idx.npy   int64 offsets: sentence i is ids[idx[i]:idx[i + 1]]
    dev.src.txt, dev.tgt.txt the dev text (references for BLEU during training)

``store.json`` is written last, so a directory without it is an unfinished build. Reusing a store
whose inputs differ from the files given, or whose tokenizer differs from a model's, is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import random
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seq2attn.config import Config, TokenizerConfig, config_from_dict
from seq2attn.errors import ConfigError, DataError, brief
from seq2attn.fsutil import input_sha256, read_limited
from seq2attn.text.textfiles import Parallel, iter_lines, iter_parallel
from seq2attn.text.tokenizer import TextCodec

STORE_DIR = "data"  # the store train builds inside a model directory
FORMAT = "seq2attn-store"
FORMAT_VERSION = 1
MANIFEST = "store.json"
SPLITS = ("train", "dev")
CHUNK = 20_000  # pairs encoded per encode_batch call (the tokenizer parallelises inside a call)


# --- where pairs come from ------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    """Parallel text to binarize: a way to stream its pairs (more than once) and its sha256s."""

    name: str
    pairs: Callable[[], Iterator[tuple[str, str]]]
    sha256: tuple[str, str]

    @classmethod
    def files(cls, src: str | Path, tgt: str | Path) -> Source:
        for path in (src, tgt):
            next(iter_lines(path))  # a missing, empty or unreadable file fails here, by name
        return cls(f"{src} {tgt}", lambda: iter_parallel(src, tgt), (input_sha256(src), input_sha256(tgt)))

    @classmethod
    def memory(cls, name: str, data: Parallel) -> Source:
        digest = lambda lines: hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()
        return cls(name, lambda: zip(data.src, data.tgt), (digest(data.src), digest(data.tgt)))


def codec_sha256(codec: TextCodec) -> str:
    """The tokenizer's identity: sha256 of its serialized form."""
    parts = [codec.src.to_str()] + ([] if codec.joint else [codec.tgt.to_str()])
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()


def sample_pairs(pairs: Iterator[tuple[str, str]], *, k: int, seed: int) -> tuple[list[str], list[str]]:
    """A uniform sample of at most ``k`` pairs in one streaming pass (reservoir sampling), so the
    tokenizer learns from a bounded, repeatable sample however large the corpus."""
    rng = random.Random(seed)
    reservoir: list[tuple[str, str]] = []
    for n, pair in enumerate(pairs):
        if n < k:
            reservoir.append(pair)
        else:
            j = rng.randrange(n + 1)
            if j < k:
                reservoir[j] = pair
    return [s for s, _ in reservoir], [t for _, t in reservoir]


# --- building --------------------------------------------------------------------------------
def build(out: str | Path, cfg: Config, *, train: Source, dev: Source,
          progress: Callable[[int], None] | None = None) -> Path:
    """Train the tokenizer on a sample of ``train`` and binarize both splits into ``out`` (a new
    directory, filled under a temporary name and renamed into place). ``progress(n)`` is called
    with the number of pairs encoded since the last call."""
    out = Path(out)
    if (out / MANIFEST).exists():
        raise DataError(f"{out}: already holds a corpus store; remove it or choose another directory")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{out}: exists and is not an empty directory")
    src_sample, tgt_sample = sample_pairs(train.pairs(), k=cfg.tokenizer.train_lines, seed=cfg.train.seed)
    codec = TextCodec.train(cfg.tokenizer, src_sample, tgt_sample)
    del src_sample, tgt_sample
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        codec.save(tmp)
        fits16 = max(codec.vocab_size("src"), codec.vocab_size("tgt")) <= np.iinfo(np.uint16).max + 1
        dtype = np.dtype(np.uint16 if fits16 else np.int32)
        splits = {name: _binarize(tmp, name, source, codec, dtype, progress)
                  for name, source in (("train", train), ("dev", dev))}
        for side in ("src", "tgt"):  # the dev text: BLEU references during training
            lines = (pair[0 if side == "src" else 1] for pair in dev.pairs())
            with open(tmp / f"dev.{side}.txt", "w", encoding="utf-8", newline="") as f:
                f.writelines(line + "\n" for line in lines)
        manifest = {"format": FORMAT, "version": FORMAT_VERSION, "dtype": dtype.name, "splits": splits,
                    "inputs": {"train": {"name": train.name, "sha256": list(train.sha256)},
                               "dev": {"name": dev.name, "sha256": list(dev.sha256)}},
                    "tokenizer": {"config": vars(cfg.tokenizer), "sha256": codec_sha256(codec),
                                  "sample_seed": cfg.train.seed}}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        os.chmod(tmp, 0o777 & ~_umask())
        if out.exists():
            out.rmdir()  # empty, checked above
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _binarize(directory: Path, split: str, source: Source, codec: TextCodec, dtype: np.dtype,
              progress: Callable[[int], None] | None) -> dict[str, int]:
    """Encode ``source`` chunk by chunk into ``{split}.{side}.npy`` + ``.idx.npy``."""
    lengths: dict[str, list[np.ndarray]] = {"src": [], "tgt": []}
    pairs = source.pairs()
    with contextlib.ExitStack() as files:
        raw = {side: files.enter_context(open(directory / f"{split}.{side}.raw", "wb")) for side in ("src", "tgt")}
        while chunk := list(itertools.islice(pairs, CHUNK)):
            for k, side in enumerate(("src", "tgt")):
                ids = codec.encode([pair[k] for pair in chunk], side=side)
                lengths[side].append(np.fromiter(map(len, ids), dtype=np.int64, count=len(ids)))
                np.fromiter(itertools.chain.from_iterable(ids), dtype=dtype).tofile(raw[side])
            if progress is not None:
                progress(len(chunk))
    sizes = {}
    for side in ("src", "tgt"):
        lens = np.concatenate(lengths[side]) if lengths[side] else np.zeros(0, dtype=np.int64)
        offsets = np.zeros(len(lens) + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        np.save(directory / f"{split}.{side}.idx.npy", offsets)
        _raw_to_npy(directory / f"{split}.{side}.raw", directory / f"{split}.{side}.npy", dtype, int(offsets[-1]))
        sizes[f"{side}_tokens"] = int(offsets[-1])
    if not len(lens):
        raise DataError(f"{source.name}: no sentence pairs")
    return {"pairs": len(lens), **sizes}


def _raw_to_npy(raw: Path, npy: Path, dtype: np.dtype, count: int) -> None:
    """Put an .npy header in front of raw ids, streaming (the ids may not fit in memory)."""
    with open(npy, "wb") as out, open(raw, "rb") as src:
        np.lib.format.write_array_header_1_0(
            out, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (count,)})
        shutil.copyfileobj(src, out, 1 << 22)
    raw.unlink()


# --- reading ---------------------------------------------------------------------------------
class Side:
    """One side of a split: ``side[i]`` is sentence i's ids.

    The arrays are memory-mapped, but rows are read with ``pread`` from the same files: every
    page touched through a mapping stays mapped and counts in the resident size, and the kernel
    maps up to 64 KiB around each random row (fault-around), so a few hundred steps on a large
    store would grow the process by hundreds of MiB. Read rows come from the page cache instead."""

    def __init__(self, ids: np.ndarray, offsets: np.ndarray, offsets_path: Path, ids_path: Path):
        self.ids, self.offsets, self.offsets_path = ids, offsets, offsets_path
        # open for the store's lifetime, like the mappings
        self._ids_file = open(ids_path, "rb")  # noqa: SIM115
        self._offsets_file = open(offsets_path, "rb")  # noqa: SIM115

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        o = self.offsets
        start, end = np.frombuffer(os.pread(self._offsets_file.fileno(), 2 * o.itemsize, o.offset + i * o.itemsize),
                                   dtype=o.dtype)
        size = self.ids.itemsize
        raw = os.pread(self._ids_file.fileno(), int(end - start) * size, self.ids.offset + int(start) * size)
        return np.frombuffer(raw, dtype=self.ids.dtype)

    def lengths(self) -> np.ndarray:
        """(N,) int32 sentence lengths. The offsets are read from the file a million at a time,
        not through the memory map, whose pages would stay resident (and count in the RSS)."""
        out = np.empty(len(self), dtype=np.int32)
        previous, done = None, 0
        for chunk in _chunks(self.offsets_path, self.offsets, 1 << 20):
            steps = np.diff(chunk if previous is None else np.concatenate([previous, chunk]))
            out[done: done + len(steps)] = steps
            previous, done = chunk[-1:], done + len(steps)
        return out


@dataclass
class Store:
    path: Path
    manifest: dict[str, Any]
    codec: TextCodec

    def split(self, name: str) -> tuple[Side, Side]:
        return self._side(name, "src"), self._side(name, "tgt")

    def _side(self, split: str, side: str) -> Side:
        """One side of a split, its arrays checked once (read in chunks, not through the mapping):
        dtype, shape, offsets from 0, never decreasing, ending at the ids' length, the pair and token
        counts of ``store.json``, and every id inside the tokenizer's vocabulary."""
        ids_path, offsets_path = self.path / f"{split}.{side}.npy", self.path / f"{split}.{side}.idx.npy"
        ids, offsets = _load_array(ids_path), _load_array(offsets_path)
        counts = self.manifest["splits"][split]
        bad = lambda why: DataError(f"{self.path}: {split}.{side} {why}; rebuild the store")
        if ids.dtype != np.dtype(self.manifest["dtype"]) or ids.ndim != 1:
            raise bad(f"ids are {ids.dtype} of {ids.ndim} dimension(s), not the {self.manifest['dtype']} vector "
                      f"{MANIFEST} records")
        if offsets.dtype != np.int64 or offsets.ndim != 1 or len(offsets) != counts["pairs"] + 1:
            raise bad(f"offsets are not {counts['pairs'] + 1} int64 values as {MANIFEST} records")
        previous, low, high = None, None, None
        for chunk in _chunks(offsets_path, offsets):
            steps = np.diff(chunk if previous is None else np.concatenate([previous, chunk]))
            if (previous is None and chunk[0] != 0) or (len(steps) and steps.min() < 0):
                raise bad("offsets do not start at 0 and never decrease")
            previous = chunk[-1:]
        if int(previous[0]) != len(ids) or len(ids) != counts[f"{side}_tokens"]:
            raise bad(f"offsets end at {int(previous[0])} but there are {len(ids)} ids ({MANIFEST}: "
                      f"{counts[f'{side}_tokens']})")
        for chunk in _chunks(ids_path, ids):
            low = int(chunk.min()) if low is None else min(low, int(chunk.min()))
            high = int(chunk.max()) if high is None else max(high, int(chunk.max()))
        vocab = self.codec.vocab_size(side)
        if high is not None and (low < 0 or high >= vocab):
            raise bad(f"holds token ids {low}..{high}, outside its tokenizer's vocabulary of {vocab}")
        return Side(ids, offsets, offsets_path, ids_path)

    def dev_text(self) -> Parallel:
        read = lambda side: list(iter_lines(self.path / f"dev.{side}.txt"))
        return Parallel(read("src"), read("tgt"))

    @property
    def tokenizer_sha256(self) -> str:
        return self.manifest["tokenizer"]["sha256"]

    def check_inputs(self, split: str, source: Source) -> None:
        """Refuse a store built from other data than ``source``."""
        if list(source.sha256) != self.manifest["inputs"][split]["sha256"]:
            built = self.manifest["inputs"][split]["name"]
            raise DataError(f"{self.path}: its {split} data ({built}) differs from {source.name} (sha256); "
                            "run seq2attn preprocess again or leave out --data")

    def check_tokenizer(self, tok: TokenizerConfig) -> None:
        if vars(tok) != self.manifest["tokenizer"]["config"]:
            raise DataError(f"{self.path}: built with another tokenizer config "
                            f"({_diff(self.manifest['tokenizer']['config'], vars(tok))}); "
                            "run seq2attn preprocess with this config or leave out --data")


def _diff(built: dict[str, Any], wanted: dict[str, Any]) -> str:
    keys = [k for k in wanted if built.get(k) != wanted[k]]
    return ", ".join(f"tokenizer.{k}={built.get(k)!r} there, {wanted[k]!r} here" for k in keys)


def _load_array(path: Path) -> np.ndarray:
    """A memory-mapped .npy of ours: a plain array (never a pickle) of a regular file."""
    try:
        _regular(path)
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:  # missing, truncated, garbage, pickled, 0 bytes
        raise DataError(f"{path}: not a readable array of a corpus store ({brief(e) or 'empty'}); "
                        "rebuild the store") from None


def _regular(path: Path) -> None:
    mode = os.lstat(path).st_mode
    if not stat.S_ISREG(mode):
        raise OSError(f"not a regular file{' (a symbolic link)' if stat.S_ISLNK(mode) else ''}")


def _chunks(path: Path, array: np.ndarray, size: int = 1 << 22) -> Iterator[np.ndarray]:
    """The values of a memory-mapped 1-D array, ``size`` at a time, read from its file (pages
    touched through the mapping would stay resident)."""
    with open(path, "rb") as f:
        f.seek(array.offset)
        for start in range(0, len(array), size):
            want = min(size, len(array) - start) * array.itemsize
            raw = f.read(want)
            if len(raw) != want:
                raise DataError(f"{path}: shorter than its header says; rebuild the store")
            yield np.frombuffer(raw, dtype=array.dtype)


def check_store_entries(path: Path, *, error: type[Exception] = DataError) -> None:
    """A store holds its own regular files only: refuse a symbolic link, a directory or a special
    file inside it, before anything is read."""
    try:
        entries = list(os.scandir(path))
    except OSError as e:
        raise error(f"{path}: cannot list the corpus store ({brief(e)})") from None
    for entry in entries:
        mode = entry.stat(follow_symlinks=False).st_mode
        if not stat.S_ISREG(mode):
            what = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
            raise error(f"{entry.path}: {what}; a corpus store must hold its own regular files only")


_SPLIT_KEYS = ("pairs", "src_tokens", "tgt_tokens")


def _check_manifest(where: Path, manifest: Any) -> None:
    """``store.json`` against its schema: every key, type and count a store reads."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DataError(f"{where}: not a seq2attn corpus store")
    if manifest.get("version") != FORMAT_VERSION:
        raise DataError(f"{where}: store version {str(manifest.get('version'))[:20]!r}; "
                        f"this seq2attn reads {FORMAT_VERSION}")
    count = lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 62
    splits, inputs, tok = manifest.get("splits"), manifest.get("inputs"), manifest.get("tokenizer")
    problems = [
        (manifest.get("dtype") in ("uint16", "int32"), '"dtype" is uint16 or int32'),
        (isinstance(splits, dict) and set(splits) == set(SPLITS) and all(
            isinstance(v, dict) and all(count(v.get(k)) for k in _SPLIT_KEYS) for v in splits.values()),
         '"splits" holds train and dev, each with integer pairs, src_tokens and tgt_tokens'),
        (isinstance(inputs, dict) and all(
            isinstance(inputs.get(k), dict) and isinstance(inputs[k].get("name"), str)
            and isinstance(inputs[k].get("sha256"), list) and len(inputs[k]["sha256"]) == 2 for k in SPLITS),
         '"inputs" names the train and dev data with two sha256s each'),
        (isinstance(tok, dict) and isinstance(tok.get("config"), dict) and isinstance(tok.get("sha256"), str),
         '"tokenizer" holds its config and sha256'),
    ]
    for ok, rule in problems:
        if not ok:
            raise DataError(f"{where}: corrupt store manifest (expected: {rule}); rebuild the store")
    if splits["train"]["pairs"] == 0:
        raise DataError(f"{where}: its train split is empty")
    try:
        tok["config"] = vars(config_from_dict({"tokenizer": tok["config"]}, str(where)).tokenizer)
    except ConfigError as e:
        raise DataError(f"{e}; rebuild the store") from None


def open_store(path: str | Path) -> Store:
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: no such corpus store (build one with seq2attn preprocess)")
    check_store_entries(path)
    try:
        manifest = json.loads(read_limited(path / MANIFEST, 1 << 20, follow=False).decode("utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: not a corpus store (no {MANIFEST}; an unfinished build?)") from None
    except OSError as e:
        raise DataError(f"{path / MANIFEST}: cannot read ({brief(e)})") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise DataError(f"{path / MANIFEST}: corrupt (not JSON)") from None
    _check_manifest(path / MANIFEST, manifest)
    codec = TextCodec.load(path)
    if codec_sha256(codec) != manifest["tokenizer"]["sha256"]:
        raise DataError(f"{path}: its tokenizer differs from the one the store was built with; rebuild it")
    return Store(path, manifest, codec)
