"""The house rules, read from the code itself: layers, no cycles, SQL only in ``store``.

Every import of ``recommender/`` and ``api/`` is read with :mod:`ast` (those inside
functions too, so a late import cannot hide an arrow that runs up a layer or
closes a circle). The layers are listed once here, bottom first, and again in words
in ``docs/architecture.md``; a test below fails when the two disagree.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Bottom first. A module may import its own layer (no circles) and the layers below it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "ground",
        (
            "recommender.config",
            "recommender.errors",
            "recommender.values",
            "recommender.durable",
            "recommender.csvsafe",
            "recommender",
        ),
    ),
    ("store", ("recommender.store",)),
    ("online", ("recommender.online",)),
    ("data", ("recommender.data",)),
    ("models", ("recommender.models",)),
    ("privacy", ("recommender.privacy",)),
    ("ingest", ("recommender.ingest",)),
    ("value", ("recommender.value",)),
    ("training", ("recommender.training",)),
    ("serving", ("recommender.serving",)),
    ("campaigns", ("recommender.campaigns",)),
    ("cli", ("recommender.cli",)),
    ("api", ("api",)),
]
# Faces sit side by side: neither imports the other.
FACES = {"cli", "api"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    files = [*ROOT.joinpath("recommender").rglob("*.py"), *ROOT.joinpath("api").rglob("*.py")]
    return {_module_name(p): p for p in files if "__pycache__" not in p.parts}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module ``name`` refers to (a module, or the module that defines the attribute)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                head = ".".join(base + ([node.module] if node.module else []))
            else:
                head = node.module or ""
            targets = [f"{head}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            resolved = _resolve(target, modules)
            if resolved is not None and resolved != module:
                found.add(resolved)
    return found


def layer_of(module: str) -> tuple[int, str]:
    best: tuple[int, int, str] | None = None
    for rank, (name, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if prefix == "recommender":
                if (
                    module.count(".") <= 1
                    and module.startswith("recommender")
                    and not any(module == p or module.startswith(p + ".") for _, ps in LAYERS[1:] for p in ps)
                ):
                    candidate = (0, rank, name)
                else:
                    continue
            elif module == prefix or module.startswith(prefix + "."):
                candidate = (len(prefix), rank, name)
            else:
                continue
            if best is None or candidate[0] > best[0]:
                best = candidate
    if best is None:
        raise AssertionError(f"{module} is in no layer: add its package to LAYERS and docs/architecture.md")
    return best[1], best[2]


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _sources()
    return {m: _imports(m, p, modules) for m, p in modules.items()}


def test_every_import_points_down_or_sideways_within_a_layer(graph):
    upward = []
    for source, targets in graph.items():
        rank, name = layer_of(source)
        for target in targets:
            target_rank, target_name = layer_of(target)
            if target_rank > rank or (name in FACES and target_name in FACES and name != target_name):
                upward.append(f"{source} ({name}) imports {target} ({target_name})")
    assert upward == []


def test_there_is_no_import_cycle(graph):
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == []


def test_the_library_never_imports_the_web_app(graph):
    assert [s for s, t in graph.items() if s.startswith("recommender") and any(x.startswith("api") for x in t)] == []


def test_no_lazy_loader_hides_an_import():
    lazy = [
        str(p.relative_to(ROOT))
        for p in ROOT.joinpath("recommender").rglob("*.py")
        if re.search(r"^def __getattr__\(", p.read_text(encoding="utf-8"), re.M)
    ]
    assert lazy == []


SQL = re.compile(
    r"""\s*(SELECT\s|INSERT\s+(OR\s+\w+\s+)?INTO\s|UPDATE\s+\w+\s+SET\s|DELETE\s+FROM\s|
                      WITH\s+(RECURSIVE\s+)?\w+(\([^)]*\))?\s+AS\s|REPLACE\s+INTO\s|PRAGMA\s|
                      (CREATE|DROP)\s+(TABLE|INDEX|TRIGGER|VIEW)\s|ALTER\s+TABLE\s|VACUUM\s*$)""",
    re.X,
)


def _sql_strings(tree: ast.AST):
    """Every string literal that starts like a SQL statement (the literal parts of f-strings are visited too)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.match(node.value):
            yield node.lineno, node.value.strip().splitlines()[0]


def test_sql_is_written_only_in_store():
    outside = []
    for path in [*ROOT.joinpath("recommender").rglob("*.py"), *ROOT.joinpath("api").rglob("*.py")]:
        if _module_name(path).startswith("recommender.store"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        outside += [f"{path.relative_to(ROOT)}:{line}: {text}" for line, text in _sql_strings(tree)]
        # a query run through a connection is SQL too, whatever builds its text
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("execute", "executemany", "executescript", "query")
            ):
                outside.append(f"{path.relative_to(ROOT)}:{node.lineno}: .{node.func.attr}(...)")
    assert outside == []


def test_the_sql_check_sees_sql():
    """The check above is only as good as its pattern: it must see the shapes SQL is written in."""
    source = "\n".join(
        [
            'a = "SELECT 1"',
            'b = f"""',
            '  DELETE FROM t WHERE id = {x}"""',
            'c = "Select a file"',
            'd = "DELETE /v1/customers/{id}"',
            'e = "VACUUM after an erasure"',
            'f = "UPDATE products\\n SET price = ?"',
        ]
    )
    assert sorted(line for line, _ in _sql_strings(ast.parse(source))) == [1, 2, 7]


def test_each_consent_purpose_is_named_once():
    pattern = re.compile(r"^(PERSONALIZATION|MARKETING|PURPOSES)\s*(:[^=]*)?=", re.M)
    where = [
        (m.group(1), str(p.relative_to(ROOT)))
        for p in [*ROOT.joinpath("recommender").rglob("*.py"), *ROOT.joinpath("api").rglob("*.py")]
        for m in pattern.finditer(p.read_text(encoding="utf-8"))
    ]
    names = [name for name, _ in where]
    assert sorted(set(names)) == sorted(names), where


def test_the_code_map_names_every_package():
    text = ROOT.joinpath("docs", "architecture.md").read_text(encoding="utf-8")
    packages = sorted(
        {_module_name(p.parent) for p in ROOT.joinpath("recommender").rglob("__init__.py")}
        | {_module_name(p.parent) for p in ROOT.joinpath("api").rglob("__init__.py")}
    )
    missing = [p for p in packages if f"`{p.replace('.', '/')}/`" not in text]
    assert missing == []
    # and every layer of the test's list is described there, in the same order
    positions = [text.find(f"**{name}**") for name, _ in LAYERS]
    assert -1 not in positions, [name for (name, _), pos in zip(LAYERS, positions) if pos == -1]
