"""How OdooOps calls `odoo-bin`: one place that knows the flags each Odoo
version takes, for builds now and for running environments later."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# What a project may add to odoo-bin's command line from .odooops.toml: limits
# and logging, nothing that changes where Odoo connects or what it may reach.
EXTRA_OPTIONS = ("--load-language", "--log-handler", "--limit-time-real", "--limit-time-cpu",
                 "--limit-memory-soft", "--limit-memory-hard", "--limit-request", "--log-sql",
                 "--osv-memory-count-limit", "--screenshots", "--screencasts")


def script(odoo: Path) -> Path:
    """odoo-bin of a source tree, or setup/odoo of a packaged one (an sdist's layout)."""
    for candidate in (odoo / "odoo-bin", odoo / "setup" / "odoo"):
        if candidate.is_file():
            return candidate
    return odoo / "odoo-bin"


def major(version: str) -> int:
    return int(version.split(".")[0])


@dataclass(frozen=True)
class Invocation:
    """One odoo-bin run on one database."""

    version: str               # 16.0 … 19.0
    odoo: Path                 # the Odoo source tree
    database: str
    addons_path: list[Path]
    data_dir: Path             # Odoo's --data-dir: the branch's filestore and sessions
    install: list[str] = field(default_factory=list)
    update: list[str] = field(default_factory=list)
    demo: bool = True
    tests: bool = False
    test_tags: str | None = None
    stop_after_init: bool = True
    http_port: int | None = None
    http_interface: str = "127.0.0.1"
    extra: list[str] = field(default_factory=list)
    # a running environment's
    cron_threads: int = 0
    workers: int = 0
    gevent_port: int | None = None  # /websocket when workers > 0 (--longpolling-port before 16.0)
    proxy_mode: bool = False
    load: tuple[str, ...] = ()      # server-wide modules; Odoo's default is base,web
    command: str | None = None      # a subcommand (neutralize): the database and paths only

    def argv(self, python: Path) -> list[str]:
        """The command line. The database's host, user and password are not on
        it: libpq reads them from the environment (PGHOST, PGUSER…), so the
        password stays out of the process list and the log."""
        argv = [str(python), str(script(self.odoo)), *((self.command,) if self.command else ()),
                "--database", self.database,
                "--addons-path", ",".join(str(p) for p in self.addons_path), "--data-dir", str(self.data_dir)]
        if self.command:
            return argv
        argv += [f"--db-filter=^{self.database}$", "--no-database-list", f"--max-cron-threads={self.cron_threads}"]
        if self.install:
            argv += ["--init", ",".join(self.install)]
        if self.update:
            argv += ["--update", ",".join(self.update)]
        argv += self._demo()
        if self.tests:
            argv += ["--test-enable", "--log-level=test"]
            if self.test_tags:
                argv += ["--test-tags", self.test_tags]
        if self.stop_after_init:
            argv.append("--stop-after-init")
        if self.http_port is not None:
            # loopback, said outright: 19.0 warns when the interface is left to its default
            argv += [f"--http-interface={self.http_interface}", "--http-port", str(self.http_port)]
        if self.workers:
            argv.append(f"--workers={self.workers}")
        if self.gevent_port is not None:
            argv += ["--gevent-port" if major(self.version) >= 16 else "--longpolling-port", str(self.gevent_port)]
        if self.proxy_mode:
            argv.append("--proxy-mode")
        if self.load:
            argv.append("--load=" + ",".join(self.load))
        return argv + self.extra

    def _demo(self) -> list[str]:
        """Demo data is on by default up to 18.0 and opt-in from 19.0; it
        matters only when modules are installed."""
        if not self.install:
            return []
        if major(self.version) >= 19:
            return ["--with-demo"] if self.demo else []
        return [] if self.demo else ["--without-demo=all"]


def scoped_tags(modules: list[str]) -> str:
    """Tests of these modules only: a fresh install with tests on otherwise
    runs the tests of every module it installs (Odoo's own among them)."""
    return ",".join(f"/{m}" for m in modules)


def check_extra(options: object) -> list[str]:
    """The extra odoo-bin options of .odooops.toml, each `--name=value` or
    `--name` from the allowlist; else ValueError saying which."""
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        raise ValueError("odoo.options is a list of strings such as \"--limit-time-real=600\"")
    for option in options:
        if option.split("=", 1)[0] not in EXTRA_OPTIONS:
            raise ValueError(f"odoo.options: {option.split('=', 1)[0]} is not allowed; allowed: "
                             + ", ".join(EXTRA_OPTIONS))
    return list(options)
