"""Dependencies point one way (issue 25 item 1; the rule is written in docs/architecture.md).

Every module of ``attn_cli`` and ``data_prep`` is parsed with :mod:`ast`; every import, at the top of a
module or inside a function, is an edge of the import graph. The tests assert a layer order with no upward
import, the one door from ``attn_cli`` to ``data_prep``, no cycle, and building blocks that neither load
Lightning nor touch the network or search the file system. A failure names the importing file, its line
and the import.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("attn_cli", "data_prep")

# the layers of attn_cli, upper first; a module may import its own layer or any below it, never above.
# "base" holds what every layer uses: errors, file I/O, configs, the registry, run directories.
LAYERS: dict[str, tuple[str, ...]] = {
    "cli": ("attn_cli.cli", "attn_cli.__main__"),
    "run": (
        "attn_cli.run",
        "attn_cli.trainer",
        "attn_cli.callbacks",
        "attn_cli.guards",
        "attn_cli.use",
        "attn_cli.bench",
        "attn_cli.flops",
        "attn_cli.runlist",
        "attn_cli.records",
        "attn_cli.names",
        "attn_cli.preparation",
        "attn_cli.pretrained",
        "attn_cli.generate",
        "attn_cli.tables",
    ),
    "tasks": ("attn_cli.tasks",),
    "data/models": ("attn_cli.data", "attn_cli.models", "attn_cli.viz"),
    "nn/attention/metrics": ("attn_cli.nn", "attn_cli.attention", "attn_cli.metrics"),
    "base": (
        "attn_cli",
        "attn_cli.errors",
        "attn_cli.io",
        "attn_cli.config",
        "attn_cli.registry",
        "attn_cli.runs",
        "attn_cli.dist",
        "attn_cli.threads",
    ),
}
RANK = {group: len(LAYERS) - i for i, groups in enumerate(LAYERS.values()) for group in groups}
BUILDING_BLOCKS = ("attn_cli.models", "attn_cli.nn", "attn_cli.attention", "attn_cli.metrics")
# the one import of data_prep in attn_cli: (module, function) - see attn_cli/preparation.py
DOOR = ("attn_cli.preparation", "preparation")


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the imported module (``from a import b`` is ``a.b`` when that is a module, else ``a``)
    path: Path
    line: int
    function: str | None  # the enclosing function, None at module level

    def __str__(self) -> str:
        where = f" (in {self.function}())" if self.function else ""
        return f"{self.path.relative_to(ROOT)}:{self.line}: {self.module} imports {self.target}{where}"


def module_files() -> dict[str, Path]:
    files = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            files[".".join(parts)] = path
    return files


class _Collector(ast.NodeVisitor):
    def __init__(self, module: str, path: Path, known: set[str]) -> None:
        self.module, self.path, self.known = module, path, known
        self.package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        self.functions: list[str] = []
        self.found: list[Import] = []

    def _add(self, target: str, node: ast.stmt) -> None:
        function = self.functions[-1] if self.functions else None
        self.found.append(Import(self.module, target, self.path, node.lineno, function))

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.functions.append(node.name)
        self.generic_visit(node)
        self.functions.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = _function

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:  # relative: climb from this module's package
            parts = self.package.split(".")[: len(self.package.split(".")) - (node.level - 1)]
            base = ".".join([*parts, base] if base else parts)
        targets = {f"{base}.{a.name}" if f"{base}.{a.name}" in self.known else base for a in node.names}
        for target in sorted(targets):  # ``from a import x, y`` is one edge unless x or y is a module
            self._add(target, node)


def imports_of(module: str, path: Path, source: str, known: set[str]) -> list[Import]:
    collector = _Collector(module, path, known)
    collector.visit(ast.parse(source, filename=str(path)))
    return collector.found


@pytest.fixture(scope="module")
def graph() -> list[Import]:
    files = module_files()
    known = set(files)
    return [imp for mod, path in files.items() for imp in imports_of(mod, path, path.read_text("utf-8"), known)]


def group_of(module: str) -> str | None:
    """The layer group that holds ``module`` (its longest listed prefix), None outside attn_cli's layers."""
    best = None
    for group in RANK:
        if (module == group or module.startswith(group + ".")) and (best is None or len(group) > len(best)):
            best = group
    return best


def within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def upward(imports: list[Import]) -> list[Import]:
    """Imports inside attn_cli from a lower layer to a higher one."""
    bad = []
    for imp in imports:
        src, dst = group_of(imp.module), group_of(imp.target)
        if src is not None and dst is not None and RANK[dst] > RANK[src]:
            bad.append(imp)
    return bad


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def _report(bad: list[Import], rule: str) -> str:
    return f"{rule} ({len(bad)}):\n" + "\n".join(f"  {imp}" for imp in bad)


def test_every_attn_cli_module_has_a_layer() -> None:
    missing = [m for m in module_files() if m.startswith("attn_cli") and group_of(m) is None]
    assert not missing, f"place these modules in a layer of tests/test_layers.py::LAYERS: {missing}"


def test_no_import_points_up_the_layers(graph: list[Import]) -> None:
    bad = upward(graph)
    assert not bad, _report(bad, f"upward imports (layers, upper first: {' > '.join(LAYERS)})")


def test_attn_cli_reaches_data_prep_only_through_its_one_door(graph: list[Import]) -> None:
    into_prep = [imp for imp in graph if imp.module.startswith("attn_cli") and within(imp.target, ("data_prep",))]
    bad = [imp for imp in into_prep if (imp.module, imp.function) != DOOR]
    assert not bad, _report(bad, "attn_cli imports data_prep outside attn_cli.preparation.preparation()")
    assert [imp.target for imp in into_prep] == ["data_prep.base"]  # the door exists and opens on one module


def test_nn_imports_nothing_of_tasks_run_data_or_cli(graph: list[Import]) -> None:
    above = ("attn_cli.tasks", "attn_cli.run", "attn_cli.data", "attn_cli.cli")
    bad = [imp for imp in graph if within(imp.module, ("attn_cli.nn",)) and within(imp.target, above)]
    assert not bad, _report(bad, "nn/ imports from the layers above it")


def test_data_imports_nothing_of_tasks(graph: list[Import]) -> None:
    bad = [imp for imp in graph if within(imp.module, ("attn_cli.data",)) and within(imp.target, ("attn_cli.tasks",))]
    assert not bad, _report(bad, "data/ imports from tasks/")


def test_building_blocks_do_not_import_lightning(graph: list[Import]) -> None:
    bad = [
        imp
        for imp in graph
        if within(imp.module, BUILDING_BLOCKS) and within(imp.target, ("lightning", "pytorch_lightning"))
    ]
    assert not bad, _report(bad, "models, nn, attention and metrics are plain torch; Lightning stays in tasks/")


def test_building_blocks_neither_download_nor_search_the_file_system(graph: list[Import]) -> None:
    """Weights come in already loaded (attn_cli/pretrained.py finds and fetches them)."""
    banned = ("urllib", "requests", "glob", "torch.hub", "attn_cli.runs", "attn_cli.io", "data_prep")
    bad = [imp for imp in graph if within(imp.module, BUILDING_BLOCKS) and within(imp.target, banned)]
    assert not bad, _report(bad, "building blocks import a downloader or a file-system search")
    calls = []
    for module, path in module_files().items():
        if within(module, BUILDING_BLOCKS):
            for node in ast.walk(ast.parse(path.read_text("utf-8"))):
                if isinstance(node, ast.Attribute) and node.attr in ("glob", "rglob", "iterdir", "hub", "urlopen"):
                    calls.append(f"{path.relative_to(ROOT)}:{node.lineno}: .{node.attr}")
    assert not calls, "building blocks search the file system or download:\n  " + "\n  ".join(calls)


def test_no_import_cycle_between_modules(graph: list[Import]) -> None:
    """Function-level imports count too: ``run`` and ``trainer`` once imported each other that way."""
    edges: dict[str, set[str]] = defaultdict(set)
    for imp in graph:
        if within(imp.target, PACKAGES) and imp.target != imp.module:
            edges[imp.module].add(imp.target)
    found = cycles(edges)
    detail = [str(imp) for imp in graph if any(imp.module in c and imp.target in c for c in found)]
    assert not found, f"import cycles {found}:\n  " + "\n  ".join(detail)


def test_no_import_cycle_between_packages(graph: list[Import]) -> None:
    """The layer groups of attn_cli (``data`` and ``models`` share a layer, yet must not import each other
    both ways), and ``attn_cli`` and ``data_prep`` as wholes, the one door aside."""
    groups: dict[str, set[str]] = defaultdict(set)
    packages: dict[str, set[str]] = defaultdict(set)
    for imp in graph:
        src, dst = group_of(imp.module), group_of(imp.target)
        if src is not None and dst is not None and src != dst:
            groups[src].add(dst)
        top_src, top_dst = imp.module.split(".")[0], imp.target.split(".")[0]
        if top_dst in PACKAGES and top_src != top_dst and (imp.module, imp.function) != DOOR:
            packages[top_src].add(top_dst)
    assert not cycles(groups), f"cycles between layer groups: {cycles(groups)}"
    assert not cycles(packages), f"attn_cli and data_prep import each other: {cycles(packages)}"


def test_the_checks_catch_an_upward_import_and_name_its_line() -> None:
    """The checker itself: a building block importing the run layer inside a function is found, with its line."""
    source = "from __future__ import annotations\n\n\ndef f():\n    from attn_cli.run import train\n"
    path = ROOT / "attn_cli" / "nn" / "example.py"
    found = imports_of("attn_cli.nn.example", path, source, {"attn_cli.run"})
    bad = upward(found)
    assert [str(imp) for imp in bad] == ["attn_cli/nn/example.py:5: attn_cli.nn.example imports attn_cli.run (in f())"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
