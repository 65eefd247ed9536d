"""Every config option with its default and help, as YAML that ``--config`` reads back
(``seq2attn config --defaults``, ``seq2attn config -m DIR``).

The help of a :class:`~seq2attn.config.DecodeConfig` field is its ``option()`` metadata; the other
sections document their fields with comments in ``seq2attn/config.py`` (the full-line comments
above a field and the comment that ends its line), which are read from that file's source here, so
the text lives in one place."""

from __future__ import annotations

import ast
import dataclasses
import io
import tokenize
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from seq2attn import config as config_module
from seq2attn.config import Config, range_text, to_dict


@dataclass(frozen=True)
class FieldDoc:
    above: tuple[str, ...]  # the full-line comments right above the field, without "# "
    help: str  # the comment ending the field's line, or option()'s help; "" when there is none
    flags: tuple[str, ...] = ()  # a decoding option's command-line flags


def _comments(source: str) -> tuple[dict[int, str], dict[int, str]]:
    """Line number -> text of the comments that fill their line, and of those that end a line of code."""
    whole, trailing = {}, {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            line, col = tok.start
            text = tok.string.lstrip("#").strip()
            (whole if not tok.line[:col].strip() else trailing)[line] = text
    return whole, trailing


def field_docs(source: str | None = None) -> dict[str, dict[str, FieldDoc]]:
    """section -> field -> its documentation, for every section of :class:`~seq2attn.config.Config`."""
    if source is None:
        source = Path(config_module.__file__).read_text(encoding="utf-8")
    whole, trailing = _comments(source)
    classes = {node.name: node for node in ast.parse(source).body if isinstance(node, ast.ClassDef)}
    out: dict[str, dict[str, FieldDoc]] = {}
    for section in dataclasses.fields(Config):
        cls = typing.get_type_hints(Config)[section.name]
        docs = {}
        for node in getattr(classes.get(cls.__name__), "body", []):
            if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
                continue
            above, line = [], node.lineno - 1
            while line in whole:
                above.insert(0, whole[line])
                line -= 1
            docs[node.target.id] = FieldDoc(tuple(above), trailing.get(node.end_lineno or node.lineno, ""))
        for f in dataclasses.fields(cls):  # option() fields carry their help themselves
            if f.metadata.get("help"):
                flags = (f"--{(f.metadata.get('name') or f.name).replace('_', '-')}", f.metadata.get("short"))
                above = docs[f.name].above if f.name in docs else ()
                docs[f.name] = FieldDoc(above, f.metadata["help"], tuple(filter(None, flags)))
        out[section.name] = docs
    return out


def _choices(hint: Any) -> tuple[str, ...]:
    """The values a Literal field takes (true, false too when it may be a bool); () for other types."""
    args = typing.get_args(hint) if typing.get_origin(hint) is not typing.Literal else (hint,)
    literal = [a for arg in args if typing.get_origin(arg) is typing.Literal for a in typing.get_args(arg)]
    return (*map(str, literal), *(("true", "false") if literal and bool in args else ()))


def _value(value: Any) -> str:
    """One value as YAML on one line (lists in flow style)."""
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=float("inf"))
    return text.removesuffix("...\n").strip()


def commented_yaml(cfg: Config, *, header: str = "") -> str:
    """``cfg`` as YAML, each key with its help as a comment (``header``: comment lines on top).
    ``load_yaml`` of the text gives back every value of ``cfg``."""
    docs, values = field_docs(), to_dict(cfg)
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    for section, fields in values.items():
        hints = typing.get_type_hints(type(getattr(cfg, section)))
        meta = {f.name: f.metadata for f in dataclasses.fields(getattr(cfg, section))}
        lines += [""] * bool(lines) + [f"{section}:"]
        for key, value in fields.items():
            doc = docs[section].get(key, FieldDoc((), ""))
            lines += [f"  # {line}" for line in doc.above]
            choices, bounds = _choices(hints[key]), range_text(meta[key])
            notes = [doc.help, choices and f"one of: {', '.join(choices)}", bounds,
                     doc.flags and "CLI: " + "/".join(doc.flags)]
            comment = "; ".join(n for n in notes if n)
            lines.append(f"  {key}: {_value(value)}" + (f"  # {comment}" if comment else ""))
    return "\n".join(lines) + "\n"
