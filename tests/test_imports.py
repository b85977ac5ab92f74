"""The project's import structure: no import cycle anywhere (function-level imports included), networks as
a leaf, one assembly path, foreign formats only behind their registry.

``python -m tests.test_imports`` prints the cycles it finds, each as the chain of files that import each other.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("audioldm", "lightning_modules", "data", "evaluation", "bench")
SCRIPTS = ("train.py", "generate.py", "evaluate.py", "convert.py", "app.py")


def project_modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the project (packages, their ``__init__``, scripts)."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    for script in SCRIPTS:
        modules[script[:-3]] = ROOT / script
    return modules


def imports_of(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """The project modules ``path`` imports anywhere in it (module level, functions, ``if`` blocks): for
    ``from a.b import c`` the module ``a.b.c`` when it exists, else ``a.b``."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # import a.b.c of a package a.b: the nearest module
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(path, name, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def describe(component: list[str], graph: dict[str, set[str]]) -> str:
    inside = set(component)
    edges = [f"{a} -> {b}" for a in component for b in sorted(graph[a] & inside)]
    return f"{len(component)} modules: " + "; ".join(edges)


def test_the_detector_sees_function_level_imports_and_cycles(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("import os\nfrom pkg import b\n\ndef f():\n    from pkg.c import thing\n    import pkg.d.e\n")
    modules = {"pkg": None, "pkg.b": None, "pkg.c": None, "pkg.d": None, "m": source}
    assert imports_of(source, "m", modules) == {"pkg.b", "pkg.c", "pkg.d"}
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_anywhere():
    graph = import_graph()
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(describe(c, graph) for c in found)


def test_networks_are_a_leaf():
    """audioldm/models/ imports only the audio front-end, the diffusion maths, the field constraints and itself:
    no checkpoint formats, config loading, data, Lightning or pipeline."""
    allowed = ("audioldm.models", "audioldm.audio", "audioldm.diffusion", "audioldm.constraints")
    graph = import_graph()
    leaks = {
        m: sorted(t for t in targets if not t.startswith(allowed))
        for m, targets in graph.items()
        if m.startswith("audioldm.models")
    }
    assert not {m: t for m, t in leaks.items() if t}, leaks


def test_the_torch_layer_never_imports_lightning():
    """audioldm/ is plain torch: Lightning is imported by lightning_modules/ and the scripts only."""
    users = []
    for module, path in project_modules().items():
        if module.startswith("audioldm"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else []
                )
                if any(n.split(".")[0] in ("pytorch_lightning", "lightning") for n in names):
                    users.append(module)
    assert not users, users


def calls_to(name: str) -> list[str]:
    """Project modules (tests excluded) that call ``name(...)`` anywhere."""
    found = []
    for module, path in project_modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == name:
                found.append(module)
                break
    return found


def test_one_assembly_path():
    """A LatentDiffusion is constructed in one place, a student's UNet likewise; everyone else calls them."""
    assert calls_to("LatentDiffusion") == ["audioldm.assembly.latent_diffusion"]
    assert calls_to("student_unet") == ["audioldm.assembly.student", "bench.generation_latency"]
    assert set(calls_to("assemble")) >= {"audioldm.assembly.latent_diffusion", "audioldm.assembly.student"}


def test_formats_are_read_through_their_registry():
    """Only the registry (and the format modules themselves) import a format module's reader; callers go
    through audioldm.formats.registry, or write with ours/diffusers."""
    formats = {f"audioldm.formats.{n}" for n in ("original", "laion", "hifigan", "transformers")}
    graph = import_graph()
    users = {m for m, targets in graph.items() if targets & formats and not m.startswith("audioldm.formats")}
    assert not users, users


if __name__ == "__main__":
    graph = import_graph()
    found = cycles(graph)
    print(f"{len(graph)} modules, {sum(map(len, graph.values()))} imports, {len(found)} cycle(s)")
    for component in found:
        print(describe(component, graph))
