"""Odoo addons: the modules each source holds, found as Odoo.sh finds them (any
folder of a checkout, submodules included, that holds a `__manifest__.py`), and
the dependency graph over all addons paths that decides what a build installs.

A manifest comes from whatever commit was pushed, so it is read and never run:
parsed, then `ast.literal_eval`, as Odoo itself reads it."""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

from odooops.errors import InvalidInput

MANIFEST = "__manifest__.py"
BASE = "base"  # Odoo loads it before anything else in every database
OWN, ALL = "own", "all"
PROJECT = "project"
ODOO_ORIGINS = frozenset({"odoo", "enterprise"})
# Odoo imports a module as `odoo.addons.<folder>` and Odoo 19 skips folders not named so
MODULE_NAME = re.compile(r"^\w{1,256}$")
SERIES_VERSION = re.compile(r"^[0-9]+\.[0-9]+(?:\.[0-9]+)?$")


class AddonsError(InvalidInput):
    """The Odoo modules cannot be built as they are."""

    code = "invalid_addons"

    def __init__(self, problems: str | Sequence[str] | None = None) -> None:
        # every problem at once: a push that fixes one should not reveal the next
        self.problems = [problems] if isinstance(problems, str) else list(problems or ())
        super().__init__("\n".join(self.problems) or None)


@dataclass(frozen=True)
class Module:
    name: str  # the folder's name, which is what Odoo calls the module
    path: Path  # the module's folder; its parent is the addons path
    origin: str  # "project", "odoo", "enterprise" or an extra repository's name
    manifest: dict[str, Any] = field(compare=False, repr=False)

    @property
    def depends(self) -> list[str]:
        """As declared. Odoo 17 adds nothing here, yet loads base before any
        module; the graph functions below count base as needed by every module."""
        return list(self.manifest.get("depends", []))

    @property
    def installable(self) -> bool:
        return bool(self.manifest.get("installable", True))

    @property
    def version(self) -> str:
        return str(self.manifest.get("version", "1.0"))

    @property
    def auto_install(self) -> frozenset[str] | None:
        """None when the module is opt-in, else the modules whose installation
        installs it too: `True` means all of `depends`, a list names them
        (empty: installed in every new database)."""
        value = self.manifest.get("auto_install", False)
        if value is False:
            return None
        return frozenset(self.depends if value is True else value)


@dataclass
class Addons:
    modules: dict[str, Module] = field(default_factory=dict)
    paths: list[Path] = field(default_factory=list)  # the addons path, in the order Odoo searches it
    shadowed: list[Module] = field(default_factory=list)  # hidden by a module of the same name found earlier
    # a folder of Odoo's or an extra repository that cannot be a module: Odoo passes it over until
    # something needs it (then check() says it is found nowhere); only the project's own are errors
    ignored: list[str] = field(default_factory=list)


def read_manifest(path: Path, root: Path | None = None) -> dict[str, Any]:
    """The manifest at `path`, checked; errors name it relative to `root`."""
    where = _shown(path, root)
    try:
        tree = ast.parse(path.read_bytes(), filename=where)
    except OSError as e:
        raise AddonsError(f"{where}: cannot be read ({e.strerror or e})") from e
    except SyntaxError as e:
        raise AddonsError(f"{where}, line {e.lineno or 1}: not valid Python ({e.msg})") from e
    except ValueError as e:  # null bytes, on Python 3.11
        raise AddonsError(f"{where}: not valid Python ({e})") from e
    body = tree.body
    expr = body[0].value if len(body) == 1 and isinstance(body[0], ast.Expr) else None
    if not isinstance(expr, ast.Dict):
        line = body[1].lineno if len(body) > 1 else body[0].lineno if body else 1
        raise AddonsError(f"{where}, line {line}: a manifest is one dict literal and nothing else")
    manifest: dict[str, Any] = {}
    lines: dict[str, int] = {}
    for key, value in zip(expr.keys, expr.values, strict=True):
        if key is None:
            raise AddonsError(f"{where}, line {value.lineno}: ** is not a literal (a manifest is read, never run)")
        name = _literal(key, where)
        if not isinstance(name, str):
            raise AddonsError(f"{where}, line {key.lineno}: manifest keys are strings, not {name!r}")
        manifest[name], lines[name] = _literal(value, where), key.lineno
    problems = [f"{where}, line {lines[key]}: {message}" for key, message in _type_problems(manifest)]
    if problems:
        raise AddonsError(problems)
    return manifest


def _literal(node: ast.expr, where: str) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        literal = (ast.Constant, ast.List, ast.Tuple, ast.Set, ast.Dict, ast.UnaryOp, ast.BinOp,
                   ast.expr_context, ast.unaryop, ast.operator)
        culprit = next((n for n in ast.walk(node) if not isinstance(n, literal)), node)
        text = ast.unparse(culprit)
        text = text if len(text) <= 60 else text[:57] + "..."
        line = getattr(culprit, "lineno", node.lineno)
        raise AddonsError(f"{where}, line {line}: {text} is not a literal (a manifest is read, never run)") from None


def _type_problems(manifest: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(key, what is wrong) for the keys OdooOps and Odoo rely on."""
    for key in ("name", "version"):
        if key in manifest and not isinstance(manifest[key], str):
            yield key, f"{key!r} must be a string, not {_kind(manifest[key])}"
    if "installable" in manifest and not isinstance(manifest["installable"], bool):
        yield "installable", f"'installable' must be True or False, not {_kind(manifest['installable'])}"
    depends = manifest.get("depends", [])
    if not _names(depends):
        yield "depends", f"'depends' must be a list of module names, not {_kind(depends)}"
        return
    auto = manifest.get("auto_install", False)
    if not isinstance(auto, bool) and not _names(auto):
        yield "auto_install", f"'auto_install' must be True, False or a list of module names, not {_kind(auto)}"
    elif not isinstance(auto, bool) and (strays := sorted(set(auto) - set(depends))):
        # Odoo asserts this when it loads the manifest: the server would not start
        yield "auto_install", f"'auto_install' names {', '.join(strays)}, missing from 'depends'"


def _names(value: Any) -> bool:
    # Odoo only iterates `depends`: a tuple works as well as a list
    return isinstance(value, list | tuple) and all(isinstance(item, str) for item in value)


def _kind(value: Any) -> str:
    if isinstance(value, list | tuple):
        return f"a {type(value).__name__} holding {', '.join(sorted({type(v).__name__ for v in value}))}"
    return f"{type(value).__name__} {value!r}"[:80]


def _shown(path: Path, root: Path | None) -> str:
    if root is not None and path.is_relative_to(root):
        return path.relative_to(root).as_posix() or "."
    return str(path)


def discover(root: Path, origin: str) -> list[Module]:
    """The modules under `root`, in addons path order: all of them, or an
    AddonsError listing every manifest that cannot be used."""
    problems: list[str] = []
    modules = _discover(root, origin, problems)
    if problems:
        raise AddonsError(problems)
    return modules


def _discover(root: Path, origin: str, problems: list[str], ignored: list[str] | None = None) -> list[Module]:
    prefix = "" if origin == PROJECT else f"{origin}: "
    root_problems = problems
    if ignored is not None and origin != PROJECT:
        problems = ignored
    if not root.is_dir():
        root_problems.append(f"{prefix}{root} is not a folder")
        return []
    if (root / MANIFEST).is_file():
        root_problems.append(f"{prefix}the repository's root is itself a module (it holds {MANIFEST}): "
                        "Odoo finds modules in the folders of a repository, so move it into a folder of its own")
        return []
    found: list[Module] = []
    for folder in _module_folders(root, problems, prefix):
        if not MODULE_NAME.match(folder.name):
            problems.append(f"{prefix}{_shown(folder, root)}: a module's folder is named with letters, digits "
                            "and _ only, as Odoo imports it as odoo.addons.<folder>")
            continue
        try:
            manifest = read_manifest(folder / MANIFEST, root)
        except AddonsError as e:
            problems.extend(prefix + p for p in e.problems)
            continue
        found.append(Module(folder.name, folder, origin, manifest))
    parents = list(dict.fromkeys(m.path.parent for m in found))
    for parent in parents:
        if not any((m.path / "__init__.py").is_file() for m in found if m.path.parent == parent):
            root_problems.append(f"{prefix}{_shown(parent, root)}: odoo-bin refuses this addons path, "
                            "as none of its modules has an __init__.py")
    # the walk can meet a folder again after a sibling's modules: group each addons path's modules
    return sorted(found, key=lambda m: parents.index(m.path.parent))


def _module_folders(root: Path, problems: list[str], prefix: str) -> Iterator[Path]:
    """Folders below root holding a manifest, depth first in name order. Reads
    directory listings only, and none inside a module (Odoo modules do not nest,
    and Odoo's own tree is thousands of folders)."""
    top = root.stat()
    seen = {(top.st_dev, top.st_ino)}  # every folder entered, since symbolic links may loop
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as e:
            problems.append(f"{prefix}{_shown(folder, root)}: cannot be listed ({e.strerror or e})")
            continue
        if folder != root and any(e.name == MANIFEST and e.is_file() for e in entries):
            yield folder
            continue
        subfolders = []
        for entry in entries:
            # dot folders are git's, editors' and tools': never modules, never searched
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            # each folder is entered once, by the first way the walk meets it: symbolic links
            # are followed (a link to a module of a submodule is a module) but never round a loop
            target = entry.stat()
            if (target.st_dev, target.st_ino) in seen:
                continue
            seen.add((target.st_dev, target.st_ino))
            subfolders.append(Path(entry.path))
        stack.extend(reversed(subfolders))


def collect(roots: Sequence[tuple[Path, str]]) -> Addons:
    """The modules of every (root, origin), the first of a name winning as in
    Odoo's addons path; an AddonsError lists every problem of every root."""
    problems: list[str] = []
    addons = Addons()
    for root, origin in roots:
        for module in _discover(root, origin, problems, addons.ignored):
            if module.path.parent not in addons.paths:
                addons.paths.append(module.path.parent)
            first = addons.modules.setdefault(module.name, module)
            if first is not module and first.path != module.path:
                addons.shadowed.append(module)
    if problems:
        raise AddonsError(problems)
    return addons


def select(addons: Addons, choice: str | Sequence[str] = OWN) -> list[str]:
    """The modules a build installs and tests, sorted: "own" (the project's
    installable modules), "all" (those of the extra repositories too), or
    names, as a list or one comma-separated string, each of which must exist."""
    if choice == OWN:
        return sorted(n for n, m in addons.modules.items() if m.installable and m.origin == PROJECT)
    if choice == ALL:
        return sorted(n for n, m in addons.modules.items() if m.installable and m.origin not in ODOO_ORIGINS)
    names = [n.strip() for n in (choice.split(",") if isinstance(choice, str) else choice)]
    unknown = [n for n in dict.fromkeys(names) if n and n not in addons.modules]
    if unknown:
        looked = ", ".join(str(p) for p in addons.paths) or "no addons path (no source holds any module)"
        raise AddonsError([f"module {n} found in no addons path; looked in {looked}" for n in unknown])
    return sorted({n for n in names if n})


def check(addons: Addons, targets: Sequence[str], *, series: str | None = None) -> None:
    """Whether Odoo can install `targets`: every module they need, transitively,
    exists, is installable, is in no cycle (and, given the Odoo series, has a
    version Odoo accepts). An AddonsError lists every problem."""
    if not targets:
        raise AddonsError("the project has no installable module")
    problems = [f"module {n} found in no addons path" for n in targets if n not in addons.modules]
    graph = _graph(addons, [n for n in targets if n in addons.modules])
    if BASE not in addons.modules:
        problems.append(f"module {BASE} found in no addons path: Odoo installs it first in every database")
    for name, needs in graph.items():
        problems += [f"module {name} needs {dep}, found in no addons path"
                     for dep in needs if dep not in addons.modules and dep != BASE]
    for name in graph:
        if not addons.modules[name].installable:
            users = sorted(user for user, needs in graph.items() if name in needs)
            wanted = f", needed by {', '.join(users)}" if users else ""
            # Odoo only logs that it skips such a module, and every module needing it: the build would pass
            problems.append(f"module {name} is not installable (its manifest says so){wanted}")
        elif series is not None:
            try:
                adapt_version(addons.modules[name].version, series)
            except AddonsError as e:
                problems.append(f"module {name}: {e}")
    problems += [f"dependency cycle: {' → '.join(cycle)}" for cycle in _cycles(graph)]
    if problems:
        raise AddonsError(problems)


def dependencies(addons: Addons, targets: Sequence[str]) -> list[str]:
    """What Odoo installs before `targets`: everything they need, transitively
    (base included), but not themselves, sorted. The key of a database
    template. Missing modules are left out: `check` first."""
    return sorted(set(_graph(addons, [n for n in targets if n in addons.modules])) - set(targets))


def install_order(addons: Addons, names: Sequence[str]) -> list[str]:
    """`names` and everything they need, each after what it needs, in Odoo's
    own order: by depth in the graph, then by name. Missing modules are left out."""
    graph = _graph(addons, [n for n in names if n in addons.modules])
    sorter = TopologicalSorter({n: [d for d in needs if d in graph] for n, needs in graph.items()})
    try:
        sorter.prepare()
    except CycleError as e:
        raise AddonsError(f"dependency cycle: {' → '.join(_cycle(e))}") from None
    order: list[str] = []
    while sorter.is_active():
        level = sorted(sorter.get_ready())
        order += level
        sorter.done(*level)
    return order


def adapt_version(version: str, series: str) -> str:
    """The version Odoo records for a manifest's: "1.2" is "17.0.1.2" on 17.0.
    An AddonsError for one Odoo refuses (it then refuses the whole module)."""
    prefixed = version != series and version.startswith(series + ".")
    if not SERIES_VERSION.match(version[len(series) + 1:] if prefixed else version):
        raise AddonsError(f"version {version!r} is not x.y, x.y.z, {series}.x.y or {series}.x.y.z")
    return version if prefixed else f"{series}.{version}"


def _needs(module: Module) -> list[str]:
    # base, implicit: Odoo 17 loads it before anything, later Odoos write it into an empty `depends`
    if module.name == BASE:
        return module.depends
    return list(dict.fromkeys([*module.depends, BASE]))


def _graph(addons: Addons, targets: Sequence[str]) -> dict[str, list[str]]:
    """Module → what it needs, over the existing `targets` and all they need
    that exists. A module that is not installable needs nothing here: Odoo never
    gets as far as its own dependencies."""
    graph: dict[str, list[str]] = {}
    todo = list(targets)
    while todo:
        name = todo.pop()
        if name in graph:
            continue
        module = addons.modules[name]
        graph[name] = _needs(module) if module.installable else []
        todo += [dep for dep in graph[name] if dep in addons.modules and dep not in graph]
    return graph


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Every disjoint cycle, each from its first name in order, back to it."""
    remaining = {n: [d for d in needs if d in graph] for n, needs in graph.items()}
    cycles: list[list[str]] = []
    while True:
        try:
            TopologicalSorter(remaining).prepare()
            return sorted(cycles)
        except CycleError as e:
            cycle = _cycle(e)
            cycles.append(cycle)
            for name in cycle:
                remaining.pop(name, None)  # still named by others, now as a module needing nothing


def _cycle(error: CycleError) -> list[str]:
    # graphlib lists a cycle as each member's dependency first; reversed, each needs the next
    members = list(reversed(error.args[1]))[:-1]
    start = members.index(min(members))
    members = members[start:] + members[:start]
    return [*members, members[0]]
