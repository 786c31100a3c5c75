"""A project's build recipe: `.odooops.toml` at the root of its repository.

No file, or a file with an `[odoo]` table, makes an Odoo build (sources,
Python environment, database, install and test), with the file's phases
before or after the Odoo phases; a file without one runs its phases only."""

from __future__ import annotations

import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from odooops.errors import InvalidInput
from odooops.odoo.odoobin import check_extra
from odooops.odoo.policy import system_package_tool

RECIPE_FILE = ".odooops.toml"
_NAME_OK = set("abcdefghijklmnopqrstuvwxyz0123456789-_")
RESERVED = {"checkout", "install", "sources", "database", "odoo"}
WHEN = ("after-odoo", "before-odoo")
# A recipe comes from whoever can push: bounded, so that a build's log and
# its phase records stay of a readable size.
MAX_PHASES = 50
MAX_NAME = 64
MAX_COMMAND = 16384  # characters, of the shell string or of all arguments


@dataclass(frozen=True)
class Phase:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    timeout: float | None = None
    network: bool = False
    before_odoo: bool = False


@dataclass(frozen=True)
class OdooOptions:
    """The `[odoo]` table: which modules a build installs and tests, and how."""

    modules: str | list[str] | None = None  # own | all | names; None: the branch's setting, else own
    test_tags: str | None = None
    demo: bool = True
    tests: bool = True
    options: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Recipe:
    phases: list[Phase]
    requirements: list[str]
    odoo: OdooOptions | None = None


def load(checkout: Path) -> Recipe:
    path = checkout / RECIPE_FILE
    if not path.exists():
        return Recipe([], ["requirements.txt"], OdooOptions())
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{RECIPE_FILE} is not valid TOML: {exc}") from exc
    declared = data.get("phases") or []
    if not isinstance(declared, list):
        raise InvalidInput(f"{RECIPE_FILE}: phases is a list of tables ([[phases]])")
    if len(declared) > MAX_PHASES:
        raise InvalidInput(f"{RECIPE_FILE} declares {len(declared)} phases: at most {MAX_PHASES} are allowed")
    phases = [_phase(i, p) for i, p in enumerate(declared)]
    names = [p.name for p in phases]
    if len(set(names)) != len(names):
        raise InvalidInput(f"{RECIPE_FILE}: two phases have the same name")
    install = data.get("install") or {}
    requirements = install.get("requirements", ["requirements.txt"])
    if not isinstance(requirements, list) or not all(isinstance(r, str) for r in requirements):
        raise InvalidInput(f"{RECIPE_FILE}: install.requirements is a list of file names")
    odoo = _odoo(data["odoo"]) if "odoo" in data else None
    if odoo is None and any(p.before_odoo for p in phases):
        raise InvalidInput(f"{RECIPE_FILE}: a phase runs before-odoo, but there is no [odoo] table")
    return Recipe(phases, requirements, odoo)


def _odoo(raw: object) -> OdooOptions:
    where = f"{RECIPE_FILE}: [odoo]"
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where} is a table")
    unknown = set(raw) - {"modules", "test_tags", "demo", "tests", "options"}
    if unknown:
        raise InvalidInput(f"{where} has unknown keys: {', '.join(sorted(unknown))}")
    modules = raw.get("modules")
    if not (modules is None or modules in ("own", "all")
            or (isinstance(modules, list) and modules and all(isinstance(m, str) and m for m in modules))):
        raise InvalidInput(f"{where}: modules is \"own\", \"all\" or a list of module names")
    tags = raw.get("test_tags")
    if tags is not None and (not isinstance(tags, str) or len(tags) > 2000):
        raise InvalidInput(f"{where}: test_tags is a string, as odoo-bin's --test-tags takes it")
    for key in ("demo", "tests"):
        if not isinstance(raw.get(key, True), bool):
            raise InvalidInput(f"{where}: {key} is true or false")
    try:
        options = check_extra(raw.get("options", []))
    except ValueError as exc:
        raise InvalidInput(f"{where}: {exc}") from exc
    return OdooOptions(modules, tags, raw.get("demo", True), raw.get("tests", True), options)


def _phase(index: int, raw: object) -> Phase:
    where = f"{RECIPE_FILE}: phase {index + 1}"
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where} is not a table")
    name = raw.get("name")
    if (not isinstance(name, str) or not name or len(name) > MAX_NAME or not set(name) <= _NAME_OK
            or name in RESERVED):
        raise InvalidInput(f"{where} needs a name of at most {MAX_NAME} characters: lowercase letters, digits, "
                           f"- and _ (not {', '.join(sorted(RESERVED))})")
    command = raw.get("command")
    if isinstance(command, str):
        argv = ["/bin/sh", "-c", command]
    elif isinstance(command, list) and command and all(isinstance(a, str) for a in command):
        argv = command
    else:
        raise InvalidInput(f"{where} ({name}) needs a command: a string for the shell, or a list of arguments")
    if sum(map(len, argv[2:] if isinstance(command, str) else argv)) > MAX_COMMAND:
        raise InvalidInput(f"{where} ({name}): the command is too long (at most {MAX_COMMAND} characters)")
    tool = system_package_tool(argv)
    if tool is not None:
        # a policy, not the boundary: a build runs sandboxed, without root, so apt would fail anyway
        raise InvalidInput(f"{where} ({name}) runs {tool}: system packages cannot be installed in a build; use a "
                           "phase that installs Python requirements, or add the package to the runner's image")
    env = raw.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(v, (str, int, float, bool)) for v in env.values()):
        raise InvalidInput(f"{where} ({name}): env is a table of strings")
    timeout = raw.get("timeout")
    if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
        raise InvalidInput(f"{where} ({name}): timeout is a positive number of seconds")
    when = raw.get("when", "after-odoo")
    if when not in WHEN:
        raise InvalidInput(f"{where} ({name}): when is \"before-odoo\" or \"after-odoo\"")
    return Phase(name, argv, {k: str(v) for k, v in env.items()}, timeout, bool(raw.get("network", False)),
                 when == "before-odoo")


def describe(phase: Phase) -> str:
    return phase.argv[2] if phase.argv[:2] == ["/bin/sh", "-c"] else shlex.join(phase.argv)
