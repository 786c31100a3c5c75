"""Policy gates: Odoo.sh's platform limits as project policies.

Each gate answers with a `Finding` (an error fails the build, a warning is
shown in its log) whose message says what was found and, where a project
setting relaxes the gate, names it. The gates only read: what a build does
with a finding is the pipeline's business.

* `database_findings`: a database's tables and sequences against the
  project's `max_tables` (Odoo.sh's 10,000 by default), and its active
  outgoing mail servers on port 25 unless `allow_smtp_port_25`.
* `addons_drift`: the addons path the repository declares in its own
  `odoo.conf`, `.odoorc` or `odoo.cfg` against the folders discovery found.
* `system_package_tool`: whether a recipe phase's command runs apt, apt-get,
  aptitude or dpkg (the recipe refuses such a phase when it loads)."""

from __future__ import annotations

import configparser
import os
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psycopg
from psycopg.rows import DictRow

from odooops.db.queries import queries_beside

Q = queries_beside(__file__)
Connection = psycopg.AsyncConnection[DictRow]
MAX_TABLES = 10_000  # Odoo.sh's ceiling on tables + sequences per database
SMTP_PORT_25 = 25
CONFIG_FILES = ("odoo.conf", ".odoorc", "odoo.cfg")  # at a repository's root, read in this order
MAX_CONFIG_BYTES = 1_000_000


@dataclass(frozen=True)
class Finding:
    gate: str  # "max_tables", "smtp_port_25", "addons_drift"
    level: Literal["error", "warning"]
    message: str


# the database: tables + sequences, outgoing mail on port 25


async def database_findings(conn: Connection, settings: dict) -> list[Finding]:
    """What the gates find in the database `conn` is connected to (a psycopg
    AsyncConnection, autocommit, dict rows), under the project's `settings`."""
    found = [await _table_count(conn, int(settings.get("max_tables", MAX_TABLES)))]
    if not settings.get("allow_smtp_port_25", False):
        found.append(await _smtp_port_25(conn))
    return [f for f in found if f is not None]


async def _table_count(conn: Connection, ceiling: int) -> Finding | None:
    row = await (await conn.execute(Q["table_count"])).fetchone()
    count = int(row["n"]) if row else 0
    if count <= ceiling:
        return None
    who = "Odoo.sh" if ceiling == MAX_TABLES else "the project's max_tables setting"
    return Finding("max_tables", "error",
                   f"database {conn.info.dbname} has {count} tables and sequences, more than the {ceiling} {who} "
                   "allows; the project setting max_tables raises the ceiling")


async def _smtp_port_25(conn: Connection) -> Finding | None:
    present = await (await conn.execute(Q["has_mail_servers"])).fetchone()
    if present is None or not present["present"]:
        return None
    servers = await (await conn.execute(Q["mail_servers_on_port"], (SMTP_PORT_25,))).fetchall()
    if not servers:
        return None
    names = ", ".join(f"{s['name']!r} ({s['host']}:{s['port']})" for s in servers)
    which = "servers" if len(servers) > 1 else "server"
    use = "use" if len(servers) > 1 else "uses"
    return Finding("smtp_port_25", "error",
                   f"database {conn.info.dbname}: the outgoing mail {which} {names} {use} port 25, which is refused "
                   "(mail sent from port 25 is mostly blocked as spam, and Odoo.sh blocks it too); use port 465 or "
                   "587, or the project setting allow_smtp_port_25 allows it")


# the addons path: what the repository declares against what discovery found


def declared_addons_path(src: Path) -> list[str] | None:
    """The `addons_path` of the first `odoo.conf`, `.odoorc` or `odoo.cfg` at
    the repository's root that declares one (its `[options]` section), each
    relative entry resolved against `src`; None when none does, or none can
    be read. An entry naming another machine's home or variables (`~`, `$`)
    is kept as written: it is not a folder of this repository."""
    for name in CONFIG_FILES:
        raw = _read_addons_path(src / name)
        if raw is not None:
            return [_entry(src, e.strip()) for e in raw.split(",") if e.strip()]
    return None


def _read_addons_path(path: Path) -> str | None:
    # a repository's file: it may be anything (a folder, binary, huge, broken)
    parser = configparser.RawConfigParser(strict=False)
    try:
        if not path.is_file() or path.stat().st_size > MAX_CONFIG_BYTES:
            return None
        parser.read_string(path.read_text(encoding="utf-8"), source=path.name)
        return parser.get("options", "addons_path", fallback=None)
    except (OSError, UnicodeDecodeError, configparser.Error):
        return None


def _entry(src: Path, entry: str) -> str:
    if entry.startswith("~") or "$" in entry or os.path.isabs(entry):
        return entry
    return os.path.normpath(src / entry)


def addons_drift(declared: list[str] | None, discovered: list[Path], src: Path) -> Finding | None:
    """A warning when the repository's declared addons path (see
    `declared_addons_path`) and the folders discovery found differ inside
    the repository. Folders outside it (Odoo's, other repositories') are left
    out on both sides: they live elsewhere on a runner. A declared path with
    no folder inside the repository describes another machine's layout (a
    container's mounts, say) and is not compared."""
    if declared is None:
        return None
    root = _real(src)
    wanted = {p for p in (_real(Path(e)) for e in declared if not e.startswith("~") and "$" not in e)
              if p.is_relative_to(root)}
    found = {p for p in map(_real, discovered) if p.is_relative_to(root)}
    if not wanted or wanted == found:
        return None
    parts = []
    if wanted - found:
        parts.append("declared but not found: " + _listed(wanted - found, root))
    if found - wanted:
        parts.append("found but not declared: " + _listed(found - wanted, root))
    return Finding("addons_drift", "warning",
                   "the addons_path the repository declares (in its " + "/".join(CONFIG_FILES) + ") differs from "
                   "the folders OdooOps found modules in; " + "; ".join(parts) + ". The build uses the folders found.")


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))  # never raises, symlink loops included


def _listed(paths: set[Path], root: Path) -> str:
    return ", ".join(sorted(str(p.relative_to(root)) for p in paths))


# recipe phases: no system packages


PACKAGE_TOOLS = frozenset({"apt", "apt-get", "aptitude", "dpkg"})
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash"})
# commands that run the command after their options, with the options that take a separate argument
WRAPPERS: dict[str, frozenset[str]] = {
    "sudo": frozenset({"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T", "-R", "--user", "--group",
                       "--chdir", "--close-from", "--host", "--prompt", "--role", "--type", "--other-user",
                       "--command-timeout", "--chroot"}),
    "doas": frozenset({"-u", "-C"}),
    "env": frozenset({"-u", "-C", "--unset", "--chdir"}),
    "nice": frozenset({"-n", "--adjustment"}),
    "ionice": frozenset({"-c", "-n", "-p", "--class", "--classdata"}),
    "nohup": frozenset(), "command": frozenset(), "builtin": frozenset(), "exec": frozenset({"-a"}),
    "time": frozenset({"-f", "-o", "--format", "--output"}),
    "timeout": frozenset({"-s", "-k", "--signal", "--kill-after"}),
    "xargs": frozenset({"-I", "-n", "-L", "-P", "-d", "-E", "-s", "-a", "--max-args", "--max-lines",
                        "--max-procs", "--delimiter", "--eof", "--max-chars", "--arg-file", "--replace"}),
}
POSITIONAL = {"timeout": 1}  # its duration comes before the command
# shell words after which a command still starts
RESERVED = frozenset({"!", "{", "}", "if", "then", "else", "elif", "do", "while", "until", "fi", "done"})
SEPARATORS = set(";&|()`\n")
REDIRECTIONS = set("<>")
OPERATORS = SEPARATORS | REDIRECTIONS
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
MAX_DEPTH = 8  # sh -c "sh -c '…'" nestings looked into


def system_package_tool(argv: list[str]) -> str | None:
    """The system package tool (apt, apt-get, aptitude, dpkg) a phase's
    command runs, if any: at command position in `argv`, behind sudo, env and
    the like, and in the script of a `sh -c` (after `&&`, `;`, `|`, …). A
    script the shell cannot parse installs nothing: no tool then."""
    return _command(argv, 0)


def _command(words: list[str], depth: int) -> str | None:
    """The tool one simple command (its words, operators left out) runs."""
    i = 0
    while i < len(words):
        word = words[i]
        if word in RESERVED or ASSIGNMENT.match(word):
            i += 1
            continue
        name = os.path.basename(word)
        if name in PACKAGE_TOOLS:
            return name
        if name in SHELLS:
            script = _shell_script(words[i + 1:])
            return None if script is None else _script(script, depth + 1)
        if name not in WRAPPERS or (name == "command" and {"-v", "-V"} & set(words[i + 1:i + 3])):
            return None  # `command -v apt` asks whether apt is there
        i = _after_options(words, i + 1, WRAPPERS[name]) + POSITIONAL.get(name, 0)
    return None


def _after_options(words: list[str], i: int, with_argument: frozenset[str]) -> int:
    """The index of the first word after a wrapper's options (and, for env,
    its assignments, which the loop above skips anyway)."""
    while i < len(words) and words[i].startswith("-") and words[i] != "-":
        if words[i] == "--":
            return i + 1
        i += 2 if words[i] in with_argument else 1
    return i


def _shell_script(args: list[str]) -> str | None:
    """The script of `sh [options] -c script …`; None without -c (a file)."""
    command = False
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            i += 1
            break
        if arg in ("-o", "+o", "-O", "+O"):
            i += 2
            continue
        if len(arg) > 1 and arg[0] in "-+" and not arg.startswith("--"):
            command = command or (arg[0] == "-" and "c" in arg[1:])
            i += 1
            continue
        if arg.startswith("--"):
            i += 1
            continue
        break
    return args[i] if command and i < len(args) else None


def _script(script: str, depth: int) -> str | None:
    if depth > MAX_DEPTH:
        return None
    try:
        commands = list(_simple_commands(script))
    except ValueError:  # an unclosed quote: sh refuses the script
        return None
    for words in commands:
        tool = _command(words, depth)
        if tool is not None:
            return tool
    return None


def _simple_commands(script: str) -> Iterator[list[str]]:
    """The words of each simple command of a shell script: split at
    operators and newlines, redirections and their targets left out."""
    lexer = shlex.shlex(_without_comments(script), posix=True, punctuation_chars="".join(sorted(OPERATORS)))
    lexer.whitespace = " \t\r"  # a newline ends a command
    lexer.whitespace_split = True
    lexer.commenters = ""  # done above: shlex would take `#egg=` of a URL for one, and eat the newline
    words: list[str] = []
    redirect = False
    for token in lexer:
        if set(token) <= OPERATORS and set(token) & SEPARATORS:
            yield words
            words, redirect = [], False
        elif set(token) <= REDIRECTIONS:
            redirect = True
        elif redirect:
            redirect = False
        else:
            words.append(token)
    yield words


def _without_comments(script: str) -> str:
    """The script without its comments (a `#` starting a word, outside
    quotes, to the end of its line) and line continuations."""
    out: list[str] = []
    quote = ""
    i = 0
    while i < len(script):
        ch = script[i]
        if ch == "\\" and quote != "'":
            if script[i + 1:i + 2] != "\n":
                out.append(script[i:i + 2])
            i += 2
            continue
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or script[i - 1] in " \t\n;&|()<>`"):
            end = script.find("\n", i)
            i = len(script) if end < 0 else end
            continue
        out.append(ch)
        i += 1
    return "".join(out)
