"""flip/ imports nothing upwards, and flip/, eval/ and benchmarks/ have no import loops (ARCHITECTURE.md's floors).

Every module's imports are read with `ast`, function-level imports included (they run, only
later), `importlib.import_module("literal")`, and the modules of a lazy name table: a module-level
dict literal that an `import_module(...)` call indexes (`_PUBLIC[name]`, `f"{__name__}.{_EXPORTS[name]}"`,
`f"flip.cli.{COMMANDS[name][0]}"`), each value (or a tuple value's first item) joined to the
f-string's literal prefix. Floors, from the ground up: core -> hub and
data -> faces -> tasks -> train -> cli; a module may import its own floor and the floors below.
The library never imports eval/, finetune/ or benchmarks/, and the benchmarks never import eval/.
A new module of flip/ must be given a floor in FLOORS.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TREES = ("flip", "eval", "finetune", "benchmarks")

#: Floors from the ground up: (name, module prefixes). "flip" alone is the package's lazy public face:
#: it exposes the tasks and what they stand on, never the training wing or the command line.
FLOORS = [
    ("core", ("flip.config", "flip.model", "flip.processor", "flip.tokenization", "flip.losses",
              "flip.download", "flip.runtime", "flip.state_file", "flip._files")),
    ("hub/data", ("flip.hub", "flip.convert", "flip.data")),
    ("faces", ("flip.faces", "flip.naming.detect")),
    ("tasks", ("flip.tasks", "flip.zeroshot", "flip.liveness", "flip.probe", "flip.attack_metrics",
               "flip.prompts", "flip.naming", "flip.vqa", "flip.textside", "flip.onnx_backend", "flip.export",
               "flip.hf_pipeline")),
    ("public face", ("flip",)),
    ("train", ("flip.train",)),
    ("cli", ("flip.cli", "flip.__main__")),
]


def module_files(trees=TREES, root: Path = ROOT) -> dict[str, Path]:
    """{dotted module name: file} of every .py file under the given top-level folders."""
    modules = {}
    for tree in trees:
        for path in sorted((root / tree).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def _tree_of(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def imported_names(module: str, path: Path) -> set[str]:
    """The dotted names a module imports, at any depth: `from a import b` gives `a.b` (a submodule,
    or a name whose module is `a`), relative imports resolved, plus its lazy table's modules."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = _tree_of(path)
    names = set(lazy_table(module, tree).values())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = node.module
            if node.level:
                parts = package.split(".")
                source = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            names.update(f"{source}.{alias.name}" for alias in node.names)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str) and not node.args[0].value.startswith(".")):
            names.add(node.args[0].value)
    return names


def lazy_table(module: str, tree: ast.Module) -> dict[str, str]:
    """{name: the module it is imported from} of a lazy name table: a module-level dict literal that
    an `import_module(<expression>)` call indexes. The module is the f-string argument's literal
    start (`__name__` read as the module's name; "" for a plain subscript) plus the dict's value, or
    a tuple value's first item."""
    dicts = {}
    for node in tree.body:
        target, value = (node.targets[0] if len(node.targets) == 1 else None, node.value) if isinstance(
            node, ast.Assign) else (node.target, node.value) if isinstance(node, ast.AnnAssign) else (None, None)
        if isinstance(target, ast.Name) and isinstance(value, ast.Dict):
            entries = [(k, v.elts[0] if isinstance(v, ast.Tuple) and v.elts else v)
                       for k, v in zip(value.keys, value.values)]
            dicts[target.id] = {k.value: v.value for k, v in entries if isinstance(k, ast.Constant)
                                and isinstance(v, ast.Constant) and isinstance(v.value, str)}
    table = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "import_module" and node.args) or isinstance(node.args[0], ast.Constant):
            continue
        arg, prefix = node.args[0], ""
        if isinstance(arg, ast.JoinedStr):
            for part in arg.values:
                if isinstance(part, ast.Constant):
                    prefix += part.value
                elif isinstance(part.value, ast.Name) and part.value.id == "__name__":
                    prefix += module
                else:
                    break
        used = {n.id for n in ast.walk(arg) if isinstance(n, ast.Name)}
        for name in sorted(used & set(dicts)):
            table.update({key: prefix + value for key, value in dicts[name].items()})
    return table


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """{module: the modules of `modules` it imports}: each imported name resolved to the longest
    module it names (`flip.hub.download` -> `flip.hub`). A name from a package's lazy table resolves
    to the module the table names (`flip.load` -> `flip.hub`); any other attribute of such a package
    (`flip.__version__`) belongs to its body, which imports nothing: no edge."""
    tables = {module: lazy_table(module, _tree_of(path)) for module, path in modules.items()}
    graph = {}
    for module, path in modules.items():
        targets = set()
        for name in imported_names(module, path):
            package, _, attr = name.rpartition(".")
            if name not in modules and tables.get(package):
                if attr not in tables[package]:
                    continue
                name = tables[package][attr]
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def floor_of(module: str) -> int | None:
    best, floor = -1, None
    for index, (_, prefixes) in enumerate(FLOORS):
        for prefix in prefixes:
            matches = module == prefix or (prefix != "flip" and module.startswith(prefix + "."))
            if matches and len(prefix) > best:
                best, floor = len(prefix), index
    return floor


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import loop as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every import of a flip module that runs to a higher floor, outside flip/ or to benchmarks->eval."""
    problems = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            top, target_top = module.split(".")[0], target.split(".")[0]
            if top == "flip" and target_top != "flip":
                problems.append(f"{module} -> {target}: the library never imports {target_top}/")
            elif top == "benchmarks" and target_top == "eval":
                problems.append(f"{module} -> {target}: the benchmarks never import eval/")
            elif top == target_top == "flip":
                here, there = floor_of(module), floor_of(target)
                if here is not None and there is not None and there > here:
                    problems.append(f"{module} ({FLOORS[here][0]}) -> {target} ({FLOORS[there][0]}): upwards")
    return problems


#: The training wing's recipes: a config dataclass plus `run(config)` each, reached through a `flip` command.
RECIPES = ("flip.train.pretrain", "flip.train.liveness", "flip.train.naming", "flip.train.vqa_base",
           "flip.train.vqa_lora")


def test_evaluation_never_imports_a_recipe():
    """eval/ runs a recipe through its command and reads the resolved config the run saved."""
    graph = import_graph(module_files())
    problems = [f"{m} -> {t}" for m, targets in sorted(graph.items()) if m.startswith("eval")
                for t in sorted(targets) if t in RECIPES]
    assert not problems, "\n".join(problems)


def test_every_flip_module_has_a_floor():
    unplaced = [m for m in module_files(("flip",)) if floor_of(m) is None]
    assert not unplaced, f"give these modules a floor in tests/test_imports.py FLOORS: {unplaced}"


def test_no_import_loop():
    cycle = find_cycle(import_graph(module_files()))
    assert cycle is None, "import loop: " + " -> ".join(cycle)


def test_nothing_imports_upwards():
    problems = upward_imports(import_graph(module_files()))
    assert not problems, "\n".join(problems)


# -- the checker itself catches what it should ------------------------------------------------------
def _tree(tmp_path: Path, files: dict[str, str]) -> dict[str, Path]:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return module_files(("flip", "eval", "benchmarks"), tmp_path)


@pytest.mark.parametrize("files, cycle", [
    ({"flip/__init__.py": "", "flip/a.py": "def f():\n    from flip.b import g\n", "flip/b.py": "from . import a\n"},
     ["flip.a", "flip.b", "flip.a"]),
    ({"flip/__init__.py": "", "flip/p/__init__.py": "from .q import x\n",
      "flip/p/q.py": "def f():\n    from . import helper\n", "flip/p/helper.py": "import flip.p.q\n"},
     ["flip.p.q", "flip.p.helper", "flip.p.q"]),
    ({"flip/__init__.py": "", "flip/a.py": "import importlib\nimportlib.import_module('flip.b')\n",
      "flip/b.py": "from flip.a import x\n"}, ["flip.a", "flip.b", "flip.a"]),
    ({"flip/__init__.py": "", "flip/p/__init__.py": "from . import q\n", "flip/p/q.py": "x = 1\n"}, None),
])
def test_find_cycle(tmp_path, files, cycle):
    assert find_cycle(import_graph(_tree(tmp_path, files))) == cycle


def test_lazy_name_tables_are_imports(tmp_path):
    modules = _tree(tmp_path, {
        "flip/__init__.py": "import importlib\n_PUBLIC = {'load': 'flip.hub', 'x': 'flip.cli'}\n"
                            "def __getattr__(name):\n    return importlib.import_module(_PUBLIC[name])\n",
        "flip/hub.py": "", "flip/cli/__init__.py": "import importlib\nCOMMANDS = {'t': ('train', 'help')}\n"
                                                "def main(n):\n    importlib.import_module(f'flip.cli.{COMMANDS[n][0]}')\n",
        "flip/cli/train.py": "", "flip/faces/__init__.py": "import importlib\n_EXPORTS = {'Box': 'detect'}\n"
        "def __getattr__(n):\n    return importlib.import_module(f'{__name__}.{_EXPORTS[n]}')\n",
        "flip/faces/detect.py": "import flip.faces\n", "flip/config.py": "from flip import __version__, load\n",
    })
    graph = import_graph(modules)
    assert graph["flip"] == {"flip.hub", "flip.cli"} and graph["flip.cli"] == {"flip.cli.train"}
    assert find_cycle(graph) == ["flip.faces", "flip.faces.detect", "flip.faces"]
    assert graph["flip.config"] == {"flip.hub"}  # a lazy name is its module's; __version__ the face's body
    assert upward_imports(graph) == ["flip (public face) -> flip.cli (cli): upwards",
                                     "flip.config (core) -> flip.hub (hub/data): upwards"]


def test_upward_imports_are_named(tmp_path):
    modules = _tree(tmp_path, {
        "flip/__init__.py": "", "flip/processor.py": "def f():\n    from .hub import download\n",
        "flip/hub.py": "from .processor import f\n", "flip/train/__init__.py": "from flip.cli.train import main\n",
        "flip/cli/__init__.py": "", "flip/cli/train.py": "from flip.train import x\n",
        "flip/zeroshot.py": "import eval.run\n", "eval/__init__.py": "", "eval/run.py": "import benchmarks.b\n",
        "benchmarks/__init__.py": "", "benchmarks/b.py": "from eval import run\n",
    })
    assert upward_imports(import_graph(modules)) == [
        "benchmarks.b -> eval.run: the benchmarks never import eval/",
        "flip.processor (core) -> flip.hub (hub/data): upwards",
        "flip.train (train) -> flip.cli.train (cli): upwards",
        "flip.zeroshot -> eval.run: the library never imports eval/",
    ]
