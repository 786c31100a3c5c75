"""A project's build recipe: the phases in `.odooops.toml` at the root of
its repository. The Odoo recipe of a later issue plugs into the same shape."""

from __future__ import annotations

import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from odooops.errors import InvalidInput

RECIPE_FILE = ".odooops.toml"
_NAME_OK = set("abcdefghijklmnopqrstuvwxyz0123456789-_")
RESERVED = {"checkout", "install"}
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


@dataclass(frozen=True)
class Recipe:
    phases: list[Phase]
    requirements: list[str]


def load(checkout: Path) -> Recipe:
    path = checkout / RECIPE_FILE
    if not path.exists():
        raise InvalidInput(f"the repository has no {RECIPE_FILE}: it says which phases a build runs")
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
    return Recipe(phases, requirements)


def _phase(index: int, raw: object) -> Phase:
    where = f"{RECIPE_FILE}: phase {index + 1}"
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where} is not a table")
    name = raw.get("name")
    if (not isinstance(name, str) or not name or len(name) > MAX_NAME or not set(name) <= _NAME_OK
            or name in RESERVED):
        raise InvalidInput(f"{where} needs a name of at most {MAX_NAME} characters: lowercase letters, digits, "
                           "- and _ (not checkout or install)")
    command = raw.get("command")
    if isinstance(command, str):
        argv = ["/bin/sh", "-c", command]
    elif isinstance(command, list) and command and all(isinstance(a, str) for a in command):
        argv = command
    else:
        raise InvalidInput(f"{where} ({name}) needs a command: a string for the shell, or a list of arguments")
    if sum(map(len, argv[2:] if isinstance(command, str) else argv)) > MAX_COMMAND:
        raise InvalidInput(f"{where} ({name}): the command is too long (at most {MAX_COMMAND} characters)")
    env = raw.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(v, (str, int, float, bool)) for v in env.values()):
        raise InvalidInput(f"{where} ({name}): env is a table of strings")
    timeout = raw.get("timeout")
    if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
        raise InvalidInput(f"{where} ({name}): timeout is a positive number of seconds")
    return Phase(name, argv, {k: str(v) for k, v in env.items()}, timeout, bool(raw.get("network", False)))


def describe(phase: Phase) -> str:
    return phase.argv[2] if phase.argv[:2] == ["/bin/sh", "-c"] else shlex.join(phase.argv)
