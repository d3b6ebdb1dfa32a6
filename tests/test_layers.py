"""The package's layering, read from the source with ``ast`` (nothing is imported).

Layers, highest first: ``cli`` > ``training`` > ``evaluation`` > ``recognition`` > the toolkit
(``ctc``, ``models``, ``losses``, ``metrics``, ``data``) > the loose modules directly in
``src/ctcocr`` (``__init__.py``, ``resources.py``). A module may import its own layer and the ones
below it, never one above. Every import counts: module level, inside functions, under
``if TYPE_CHECKING:`` and in ``try:`` blocks, plus string literals naming a ctcocr module (what
``importlib.import_module`` is handed; a module's own name and its packages' names are left out,
they are logger names). Hydra ``_target_`` strings in the YAML configs are not imports of the
package and are not checked here.

Further rules: no import cycles between modules (same reading of "import"); ``ctcocr.ctc`` is
self-contained (no lightning, hydra or omegaconf, nothing of ctcocr outside ``ctcocr.ctc``); at
most ``MAX_LOOSE_MODULES`` ``.py`` files directly in ``src/ctcocr``, ``__init__.py`` included;
nothing outside ``ctcocr/ctc/`` imports a private ``ctcocr.ctc._*`` module.

The checks are plain functions of a source root, so the last tests plant each kind of violation
in a small package under ``tmp_path`` and show that the checks report it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "ctcocr"
SOURCE = Path(__file__).resolve().parents[1] / "src" / PACKAGE

#: Layer of each subpackage; a module may import only modules of its layer or a lower one.
LAYERS: dict[str, int] = {
    "cli": 4,
    "training": 3,
    "evaluation": 2,
    "recognition": 1,
    "ctc": 0, "models": 0, "losses": 0, "metrics": 0, "data": 0,  # the toolkit
    "lite": 0,  # the torch-free inference path (it imports nothing of ctcocr outside itself)
}
#: Layer of the modules directly in src/ctcocr (``ctcocr/__init__.py``, ``ctcocr/resources.py``):
#: below everything, so they can import nothing of the package but each other.
LOOSE_LAYER = -1
#: ``.py`` files directly in src/ctcocr, ``__init__.py`` counted.
MAX_LOOSE_MODULES = 3
#: Top-level distributions ``ctcocr.ctc`` must not import: the training and config frameworks.
CTC_FORBIDDEN = ("lightning", "lightning_fabric", "pytorch_lightning", "hydra", "omegaconf")


@dataclass(frozen=True)
class Import:
    """One import in the source: importer module, imported module (absolute), file and line."""

    importer: str
    imported: str
    path: Path
    line: int

    def where(self) -> str:
        return f"{self.path.as_posix()}:{self.line}"


def module_name(path: Path, root: Path) -> str:
    """src/ctcocr/a/b.py -> ctcocr.a.b; src/ctcocr/a/__init__.py -> ctcocr.a (root: src/ctcocr)."""
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path) -> dict[str, Path]:
    """Every module of the package under ``root`` (the folder holding its ``__init__.py``)."""
    return {module_name(path, root): path for path in sorted(root.rglob("*.py"))}


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute name of ``from <level dots><target> import ...`` written in ``module``."""
    if level == 0:
        return target or ""
    base = module.split(".")
    if not is_package:
        base.pop()
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


def imports(root: Path) -> list[Import]:
    """Every import of a module of the package (or of any other distribution) by its modules.

    ``from a import b`` imports ``a.b`` when that is a module of the package, else ``a``. The
    package ``a`` a submodule belongs to is not counted as imported (as import-linter's grimp).
    """
    known = modules(root)
    found: list[Import] = []
    for importer, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        shown = path.relative_to(root.parent)
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(importer, is_package, node.level, node.module)
                for alias in node.names:
                    submodule = f"{target}.{alias.name}"
                    names.append(submodule if submodule in known else target)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                # importlib.import_module("ctcocr.x"), or the name kept for it in a table; the
                # module's own name and its packages' are left out (logging.getLogger("ctcocr.data"))
                own = node.value == importer or importer.startswith(f"{node.value}.")
                if node.value in known and not own:
                    names = [node.value]
            found += [Import(importer, name, shown, node.lineno) for name in dict.fromkeys(names)]
    return found


def internal_imports(root: Path) -> list[Import]:
    """The imports of the package's own modules by its modules (self-imports left out)."""
    known = modules(root)
    return [i for i in imports(root) if i.imported in known and i.imported != i.importer]


def subpackages(root: Path) -> dict[str, str | None]:
    """Module -> the folder directly under ``root`` it lives in; None for the loose modules."""
    return {name: path.relative_to(root).parts[0] if path.parent != root else None
            for name, path in modules(root).items()}


def layer(package: str | None) -> int | None:
    """The layer of a subpackage (None: not in LAYERS), LOOSE_LAYER for the loose modules."""
    return LOOSE_LAYER if package is None else LAYERS.get(package)


# --- the checks: each returns the violations as readable lines ---


def unlayered_packages(root: Path) -> list[str]:
    """Folders with modules that are not in LAYERS (they would escape the layer rules)."""
    packages = set(subpackages(root).values()) - {None}
    return [f"{root.name}/{package}/ has no layer in LAYERS"
            for package in sorted(packages - set(LAYERS))]


def layer_violations(root: Path) -> list[str]:
    """Imports of a higher layer by a lower one."""
    packages = subpackages(root)
    bad = []
    for i in internal_imports(root):
        low, high = packages[i.importer], packages[i.imported]
        if layer(low) is None or layer(high) is None:  # reported by unlayered_packages
            continue
        if layer(high) > layer(low):
            bad.append(f"{i.where()}: {i.importer} ({_layer_name(low)}) imports {i.imported} "
                       f"({_layer_name(high)}), a higher layer")
    return bad


def _layer_name(package: str | None) -> str:
    if package is None:
        return "loose module"
    return "toolkit" if LAYERS[package] == 0 else package


def ctc_violations(root: Path) -> list[str]:
    """Imports by ctcocr.ctc of the frameworks or of the rest of ctcocr."""
    ctc = f"{root.name}.ctc"
    bad = []
    for i in imports(root):
        if i.importer != ctc and not i.importer.startswith(f"{ctc}."):
            continue
        top = i.imported.split(".")[0]
        inside = i.imported == ctc or i.imported.startswith(f"{ctc}.")
        if top in CTC_FORBIDDEN or (top == root.name and not inside):
            bad.append(f"{i.where()}: {i.importer} imports {i.imported}")
    return bad


def private_ctc_violations(root: Path) -> list[str]:
    """Imports of a private ctcocr.ctc._* module from outside ctcocr/ctc/."""
    ctc = f"{root.name}.ctc"
    return [
        f"{i.where()}: {i.importer} imports the private {i.imported}"
        for i in internal_imports(root)
        if i.imported.startswith(f"{ctc}._")
        if not (i.importer == ctc or i.importer.startswith(f"{ctc}."))
    ]


def loose_modules(root: Path) -> list[str]:
    return sorted(path.name for path in root.glob("*.py"))


def import_cycles(root: Path) -> list[list[str]]:
    """The import cycles between modules: one shortest cycle through each strongly connected
    component of the import graph that has more than one module."""
    graph: dict[str, set[str]] = {name: set() for name in modules(root)}
    for i in internal_imports(root):
        graph[i.importer].add(i.imported)
    return [_shortest_cycle(graph, component) for component in _components(graph)]


def _components(graph: dict[str, set[str]]) -> Iterator[list[str]]:
    """Tarjan's strongly connected components with more than one node (iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    yield sorted(component)


def _shortest_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A shortest cycle inside ``component``, as [a, b, ..., a], by BFS from each member."""
    members = set(component)
    best: list[str] = []
    for start in component:
        parents: dict[str, str] = {}
        frontier = [start]
        while frontier and start not in parents:
            following = []
            for node in frontier:
                for child in sorted(graph[node] & members):
                    if child not in parents:
                        parents[child] = node
                        following.append(child)
            frontier = following
        path = [start]
        node = parents[start]
        while node != start:
            path.append(node)
            node = parents[node]
        cycle = [start, *reversed(path[1:]), start]
        if not best or len(cycle) < len(best):
            best = cycle
    return best


def cycle_violations(root: Path) -> list[str]:
    return [" -> ".join(cycle) for cycle in import_cycles(root)]


# --- the package as it is ---


def _assert_none(violations: list[str], what: str) -> None:
    assert not violations, f"{len(violations)} {what}:\n" + "\n".join(violations)


def test_the_source_is_found():
    names = modules(SOURCE)
    assert {"ctcocr", "ctcocr.ctc", "ctcocr.cli.train", "ctcocr.training.module"} <= set(names)
    assert any(i.importer == "ctcocr.cli.train" and i.imported == "ctcocr.training.module"
               for i in internal_imports(SOURCE))


def test_every_subpackage_has_a_layer():
    _assert_none(unlayered_packages(SOURCE), "subpackages without a layer")


def test_no_lower_layer_imports_a_higher_one():
    _assert_none(layer_violations(SOURCE), "imports of a higher layer")


def test_no_import_cycles():
    _assert_none(cycle_violations(SOURCE), "import cycles")


def test_ctc_imports_only_itself_and_no_frameworks():
    _assert_none(ctc_violations(SOURCE), "imports out of ctcocr.ctc")


def test_private_ctc_modules_stay_inside_ctc():
    _assert_none(private_ctc_violations(SOURCE), "imports of private ctcocr.ctc modules")


def test_few_loose_modules():
    loose = loose_modules(SOURCE)
    assert len(loose) <= MAX_LOOSE_MODULES, f"loose modules in src/{PACKAGE}: {loose}"


# --- the checks find what they are meant to find ---


def write(root: Path, files: dict[str, str]) -> Path:
    """A package ``ctcocr`` under ``root`` with these files (relative path -> source)."""
    package = root / PACKAGE
    for name, text in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return package


CLEAN = {
    "__init__.py": "",
    "resources.py": "",
    "cli/__init__.py": "",
    "cli/train.py": "from ctcocr.training.module import Module\nfrom ctcocr.resources import X\n",
    "training/__init__.py": "",
    "training/module.py": "import lightning\nfrom ctcocr.recognition import Recognizer\n",
    "evaluation/__init__.py": "",
    "recognition/__init__.py": "from .recognizer import Recognizer\n",
    "recognition/recognizer.py": "from ..ctc import decode\nfrom ctcocr.models import crnn\n",
    "ctc/__init__.py": "from ctcocr.ctc.decode import greedy\nfrom ._impl import kernel\n",
    "ctc/decode.py": "from . import _impl\n",
    "ctc/_impl.py": "import torch\n",
    "models/__init__.py": "",
    "models/crnn.py": "from ctcocr.data import charset\n",
    "losses/__init__.py": "",
    "metrics/__init__.py": "",
    "data/__init__.py": "",
    "data/charset.py": "from ctcocr.resources import FONTS\n",
}


def all_violations(root: Path) -> list[str]:
    return [*unlayered_packages(root), *layer_violations(root), *ctc_violations(root),
            *private_ctc_violations(root), *cycle_violations(root)]


def test_a_clean_package_passes(tmp_path):
    package = write(tmp_path, CLEAN)
    assert all_violations(package) == []
    assert loose_modules(package) == ["__init__.py", "resources.py"]
    # relative imports resolve, `from package import submodule` names the submodule
    found = {(i.importer, i.imported) for i in internal_imports(package)}
    assert {("ctcocr.recognition", "ctcocr.recognition.recognizer"),
            ("ctcocr.recognition.recognizer", "ctcocr.ctc.decode"),
            ("ctcocr.ctc.decode", "ctcocr.ctc._impl"),
            ("ctcocr.ctc", "ctcocr.ctc._impl")} <= found


TYPE_CHECKING_IMPORT = """from typing import TYPE_CHECKING
if TYPE_CHECKING:
    from ..recognition import recognizer
"""


@pytest.mark.parametrize(
    "planted,check,expected",
    [
        # a lower layer importing a higher one, in every form an import can take
        ({"recognition/bad.py": "from ctcocr.training.module import Module\n"}, layer_violations,
         "ctcocr.recognition.bad (recognition) imports ctcocr.training.module (training)"),
        ({"evaluation/bad.py": "def f():\n    import ctcocr.cli.train\n"}, layer_violations,
         "ctcocr.evaluation.bad (evaluation) imports ctcocr.cli.train (cli)"),
        ({"data/bad.py": TYPE_CHECKING_IMPORT}, layer_violations,
         "ctcocr.data.bad (toolkit) imports ctcocr.recognition.recognizer (recognition)"),
        ({"losses/bad.py": "import importlib\nimportlib.import_module('ctcocr.training.module')\n"},
         layer_violations, "ctcocr.losses.bad (toolkit) imports ctcocr.training.module"),
        ({"resources.py": "from ctcocr.data import charset\n"}, layer_violations,
         "ctcocr.resources (loose module) imports ctcocr.data.charset (toolkit)"),
        ({"training/bad.py": "try:\n    from ctcocr.cli import train\nexcept ImportError:\n    pass\n"},
         layer_violations, "ctcocr.training.bad (training) imports ctcocr.cli.train (cli)"),
        # ctc reaching out of itself
        ({"ctc/bad.py": "import lightning.pytorch as pl\n"}, ctc_violations,
         "ctcocr.ctc.bad imports lightning.pytorch"),
        ({"ctc/bad.py": "def f():\n    from omegaconf import OmegaConf\n"}, ctc_violations,
         "ctcocr.ctc.bad imports omegaconf"),
        ({"ctc/bad.py": "from ..data import charset\n"}, ctc_violations,
         "ctcocr.ctc.bad imports ctcocr.data.charset"),
        ({"ctc/bad.py": "from ctcocr.resources import X\n"}, ctc_violations,
         "ctcocr.ctc.bad imports ctcocr.resources"),
        # private ctc modules used from outside
        ({"losses/bad.py": "from ctcocr.ctc._impl import kernel\n"}, private_ctc_violations,
         "ctcocr.losses.bad imports the private ctcocr.ctc._impl"),
        ({"models/bad.py": "from ctcocr.ctc import _impl\n"}, private_ctc_violations,
         "ctcocr.models.bad imports the private ctcocr.ctc._impl"),
        # cycles: two modules, through a package's __init__, through a function-level import
        ({"models/crnn.py": "from ctcocr.models import backbones\n",
          "models/backbones.py": "from .crnn import X\n"}, cycle_violations,
         "ctcocr.models.backbones -> ctcocr.models.crnn -> ctcocr.models.backbones"),
        ({"ctc/_impl.py": "def f():\n    from ctcocr.ctc import greedy\n"}, cycle_violations,
         "ctcocr.ctc -> ctcocr.ctc._impl -> ctcocr.ctc"),
        ({"data/charset.py": "from ctcocr.data import folder\n",
          "data/folder.py": "from ctcocr.data.charset import Charset\n"}, cycle_violations,
         "ctcocr.data.charset -> ctcocr.data.folder -> ctcocr.data.charset"),
        # a new subpackage outside the layers
        ({"utils/__init__.py": ""}, unlayered_packages, "ctcocr/utils/ has no layer in LAYERS"),
    ],
)
def test_each_violation_is_found(tmp_path, planted, check, expected):
    package = write(tmp_path, {**CLEAN, **planted})
    violations = check(package)
    assert any(expected in line for line in violations), violations
    assert all_violations(package), "the combined check must report it too"


def test_too_many_loose_modules_are_found(tmp_path):
    package = write(tmp_path, {**CLEAN, "utils.py": "", "helpers.py": ""})
    assert len(loose_modules(package)) == 4 > MAX_LOOSE_MODULES
