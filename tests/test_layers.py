"""The package's layers (docs/architecture.md): data flows downward. Every import is parsed, the
ones inside functions included, and checked against the layer table; any import cycle fails."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "seq2attn"

# lowest first; a module may import its own layer and the layers before it, except that the server
# (serve) and training (run) are side by side: neither imports the other
LAYERS = ["ground", "text", "nn", "modeldir", "inference", "run", "serve", "cli"]
SIDE_BY_SIDE = {("serve", "run"), ("run", "serve")}
GROUND = {"config", "errors", "fsutil", "special", "version"}
FACADE = {"seq2attn", "seq2attn.__main__"}  # the package's front door: imports the API (lazily) and the CLI


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    if module in FACADE:
        return "facade"
    head = module.split(".")[1]
    if head in GROUND:
        return "ground"
    if head in LAYERS:
        return head
    raise AssertionError(f"{module}: not in any layer; add it to tests/test_layers.py and docs/architecture.md")


def imports_of(path: Path) -> set[str]:
    """The seq2attn modules ``path`` imports, at any depth of its code."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "seq2attn")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "seq2attn":
                continue
            submodules = [f"{target}.{a.name}" for a in node.names  # `from seq2attn.run import distributed`
                          if (PACKAGE.parent / (target + "." + a.name).replace(".", "/")).with_suffix(".py").exists()]
            found.update(submodules)
            if len(submodules) < len(node.names):
                found.add(target)
    found.discard(me)
    return {m for m in found if m not in FACADE or m == "seq2attn.__main__"} | (
        {"seq2attn"} if "seq2attn" in found and me == "seq2attn.__main__" else set())


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
GRAPH = {m: {i for i in imports_of(p) if i in MODULES} for m, p in MODULES.items()}


def test_every_module_has_a_layer():
    for m in MODULES:
        layer_of(m)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_flow_downward(module):
    mine = layer_of(module)
    for target in sorted(GRAPH[module]):
        theirs = layer_of(target)
        if mine == "facade":
            assert theirs in ("ground", "inference", "cli"), f"{module} imports {target}"
            continue
        assert theirs != "facade", f"{module} imports the package front door {target}; import the module itself"
        assert LAYERS.index(theirs) <= LAYERS.index(mine), (
            f"{module} ({mine}) imports {target} ({theirs}): a lower layer may not import a higher one")
        assert (mine, theirs) not in SIDE_BY_SIDE, f"{module} ({mine}) imports {target} ({theirs})"


def test_no_import_cycle():
    seen: dict[str, int] = {}  # 1: on the path, 2: done
    stack: list[str] = []

    def visit(m: str) -> None:
        seen[m] = 1
        stack.append(m)
        for n in sorted(GRAPH[m]):
            if seen.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(n):] + [n]))
            if n not in seen:
                visit(n)
        stack.pop()
        seen[m] = 2

    for m in sorted(GRAPH):
        if m not in seen:
            visit(m)


def test_the_checker_sees_function_level_imports_and_cycles(tmp_path):
    """The checker itself: a function-level import is an edge, and a cycle through one is found."""
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from seq2attn.run.train import train\n    import seq2attn.cli.main\n")
    global PACKAGE
    saved = PACKAGE
    try:
        PACKAGE = tmp_path / "seq2attn"
        PACKAGE.mkdir()
        moved = PACKAGE / "nn" / "x.py"
        moved.parent.mkdir()
        moved.write_text(src.read_text())
        assert imports_of(moved) == {"seq2attn.run.train", "seq2attn.cli.main"}
    finally:
        PACKAGE = saved
