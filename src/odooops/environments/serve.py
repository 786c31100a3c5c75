"""A serve run: a succeeded build's Odoo kept running as its branch's
environment, for as long as it is the environment's and wanted.

Its phases are the build's checkout, sources and install (all found in this
host's caches: the build made them), then `serve`: odoo-bin on the build's
database, in the sandbox with no network but its database's socket. Inside,
Odoo listens on loopback; the bridge (environments/bridge.py) carries
connections from the runner's address to it. The server is supervised:
health-checked, restarted with backoff when it dies, `crashed` after
CRASHES deaths in a row. It becomes the environment's only once healthy,
so the one it replaces serves until then (zero downtime between builds)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from odooops import mail
from odooops.errors import InvalidInput
from odooops.managers.environments import Environments
from odooops.odoo import neutralize, odoobin
from odooops.odoo.build import OdooBuild, OdooHost, free_port
from odooops.odoo.envdb import branch_data_dir, database_name, derived_password, role_name
from odooops.runner import recipe as recipes
from odooops.runner.executor import Command, Executor, Limits, Process
from odooops.runner.pipeline import BuildPipeline, Job, Outcome
from odooops.settings import Secret

from . import bridge

HTTP_PORT, GEVENT_PORT = 8069, 8072  # inside the sandbox's own network: always free
SMTP_PORT = 2525                     # the mail catcher, as a sandboxed Odoo reaches it
CHECK_SECONDS = 5          # how often the environment is checked (health, idle, replaced)
DEEP_CHECK_EVERY = 6       # every sixth check also asks for a page that needs the database
START_SECONDS = 180        # a server not healthy by then is a death
CRASHES = 3                # deaths in a row, then crashed
STEADY_SECONDS = 60        # up this long, and its deaths are forgotten
STOP_SECONDS = 10          # SIGTERM, then SIGKILL
ADDONS = Path(__file__).with_name("odoo_addons")  # odooops_connect, loaded server-wide
MEMORY_MB = 4096


def connect_secret(secret_key: Secret, environment_id: object) -> str:
    """The key "Connect as" headers are signed with: derived, never stored,
    the same for the router and the environment's server."""
    return derived_password(secret_key, f"connect:{environment_id}")


@dataclass
class Server:
    process: Process
    exited: asyncio.Future
    address: str
    websocket: str | None
    sockets: Path
    exposed: list[bridge.Exposed] = field(default_factory=list)
    reached: bridge.Reached | None = None  # the mail catcher, from inside


class ServePipeline(BuildPipeline):
    def __init__(self, job: Job, executor: Executor, data_dir: Path, odoo_host: OdooHost, cache: Path | None,
                 environments: Environments, *, address: str, idle_seconds: int, poke: asyncio.Event,
                 repo_roots: tuple[Path, ...] = (), mail_catcher: tuple[str, int] | None = None):
        super().__init__(job, executor, data_dir, Limits(cpu_seconds=None), repo_roots=repo_roots,
                         odoo_host=odoo_host, cache=cache)
        self.environments = environments
        self.address = address
        self.mail_catcher = mail_catcher
        self.idle_seconds = idle_seconds
        self.poke = poke
        self.sandboxed = bool(getattr(executor, "sandboxed", False))
        self.host: OdooHost = odoo_host
        # no kept-alive connection: the bridge's activity is then the users' alone (see _touch_if_used)
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=3.0), follow_redirects=False,
                                      limits=httpx.Limits(max_keepalive_connections=0))
        self.outcome = Outcome("succeeded", "ok", exit_code=0)  # how the serve phase ended
        self._seen = 0.0  # the bridge's last activity already counted

    async def run(self) -> Outcome:
        try:
            return await self._run()
        finally:
            await self.http.aclose()

    async def _run(self) -> Outcome:
        run = self.job.run
        self.make_dirs()
        self.say(f"environment of {run['branch_name']}: build {run['params']['build_id']} "
                 f"({run['commit_sha'][:12]})")
        if not await self._phase("checkout", self._checkout):
            return self._stopped("checkout", ["sources", "install", "serve"])
        try:
            options = recipes.load(self.src).odoo or recipes.OdooOptions()
        except InvalidInput as exc:
            self.say(str(exc), "error")
            return Outcome("failed", "ko", str(exc))
        # the very revisions the build used, from this host's checkouts
        pinned = {**run, "params": {**run["params"], "sources": run.get("build_sources")}}
        build = OdooBuild(self, self.host, pinned, options)
        names = ["sources", "install", "serve"]
        steps = [build.sources, build.install, lambda: self._serve(build, options)]
        for i, (name, step) in enumerate(zip(names, steps, strict=True)):
            if not await self._phase(name, step):
                return self._stopped(name, names[i + 1:])
        return self.outcome

    # serve: start, watch, restart; self.outcome says how it ended

    async def _serve(self, build: OdooBuild, options: recipes.OdooOptions) -> int:
        run = self.job.run
        server, _ = await self.host.ready()
        build.server = server
        role = role_name(run["org_slug"], run["project_slug"], run["branch_name"], run["branch_id"])
        database = run["params"].get("database") or database_name(run["org_slug"], run["project_slug"],
                                                                  run["branch_name"], run["params"]["build_id"])
        if database not in await server.list_databases(role):
            raise InvalidInput(f"the database of build {run['params']['build_id']} ({database}) is gone: "
                               "build the branch again")
        build.role, build.database = role, database
        deaths = 0
        while True:
            started = await self._start(build, options)
            up_at = await self._until_healthy(started)
            action = await self._watch(started, database) if up_at is not None else "died"
            await self._stop(started)
            if self.job.abort_reason:
                return -1
            if action != "died":
                self.say({"replaced": "stopped: a newer build's server is healthy and serves now",
                          "stopped": "stopped, as asked",
                          "maintenance": "stopped for maintenance: a build updates the database, or a "
                                         "snapshot of it is taken",
                          "sleep": f"asleep: no request for {self.idle_seconds // 60} min; the next one wakes it"}
                         [action])
                return 0
            deaths = 1 if up_at is not None and time.monotonic() - up_at > STEADY_SECONDS else deaths + 1
            code = started.exited.result() if started.exited.done() else None
            if deaths >= CRASHES:
                reason = f"Odoo died {deaths} times in a row (last exit code {code}); see the lines above"
                self.say(f"crashed: {reason}", "error")
                await self._report(status="crashed", health="fail", detail=reason, restarts=deaths)
                self.outcome = Outcome("failed", "ko", f"crashed: {reason}")
                return 0
            delay = 2 ** (deaths - 1)
            self.say(f"Odoo exited (code {code}); restarting in {delay} s ({deaths} of {CRASHES - 1} restarts)",
                     "warning")
            await self._report(status="starting", health="fail", detail=f"exited with code {code}", restarts=deaths)
            await asyncio.sleep(delay)

    async def _catcher(self, build: OdooBuild) -> tuple[str, int] | None:
        """Outside production, the environment's mail goes to the mail
        catcher with its own credentials: written into its catcher mail
        server (made if missing) before each start. Where the catcher is as
        Odoo sees it: in the sandbox, the bridge's loopback port."""
        run = self.job.run
        if run.get("stage") == "production" or self.mail_catcher is None:
            return None
        host, port = ("127.0.0.1", SMTP_PORT) if self.sandboxed else self.mail_catcher
        user, password = mail.credentials(self.host.secret_key, run["params"]["environment_id"])
        conn = await neutralize.connect(build.role_conninfo())
        async with conn:
            await neutralize.ensure_catcher(conn, host, port, user, password)
        return self.mail_catcher

    async def _start(self, build: OdooBuild, options: recipes.OdooOptions) -> Server:
        run, settings = self.job.run, self.job.run.get("project_settings") or {}
        catcher = await self._catcher(build)
        workers = int(settings.get("environment_workers", 0))
        server = build._server()
        data_dir = branch_data_dir(server.data_dir, build.role)
        data_dir.mkdir(parents=True, exist_ok=True)
        # in the sandbox, its own network's ports; else free ones of the runner's address
        port, gevent = ((HTTP_PORT, GEVENT_PORT) if self.sandboxed
                        else (free_port(self.address), free_port(self.address)))
        production = run.get("stage") == "production"
        allow_connect = not production or bool(settings.get("connect_as_production"))
        invocation = odoobin.Invocation(
            self.job.run["odoo_version"], build.odoo_tree, build.database,
            [*build._addons().paths, *((ADDONS,) if allow_connect else ())], data_dir,
            stop_after_init=False, http_port=port, http_interface="127.0.0.1" if self.sandboxed else self.address,
            cron_threads=0 if run.get("stage") == "development" else 1, workers=workers,
            gevent_port=gevent if workers else None, proxy_mode=True,
            load=("base", "web", "odooops_connect") if allow_connect else (), extra=options.options)
        env = {**server.odoo_env(build.role, build._password()), "PYTHONUNBUFFERED": "1",
               "PYTHONPATH": str(build.odoo_tree)}
        if allow_connect:
            env["ODOOOPS_CONNECT_SECRET"] = connect_secret(self.host.secret_key, run["params"]["environment_id"])
        if self.venv is None:
            raise InvalidInput("the install phase made no Python environment")
        python = self.venv / "bin" / "python"
        argv = invocation.argv(python)
        # a short path: a unix socket's is at most 107 bytes, and the work dir's may be long
        sockets = Path(tempfile.mkdtemp(prefix="odooops-serve-"))
        ports = {"http": port, **({"ws": gevent} if workers else {})}
        if self.sandboxed:
            # a connection never waits long for a listener: the health checks wait for Odoo's start,
            # and one to a server going away is better cut, which the router retries elsewhere
            argv = bridge.inner_argv(str(python), {sockets / f"{name}.sock": p for name, p in ports.items()}, argv,
                                     wait=1.0, reaches={SMTP_PORT: sockets / "smtp.sock"} if catcher else None)
        self.say("$ " + " ".join(invocation.argv(python)[1:]))
        memory = int(settings.get("environment_memory_mb", MEMORY_MB)) * 1024 * 1024
        # the code read-only: only the filestore, sessions and the bridge's sockets are writable
        command = Command(argv, data_dir, {**self.job.env, **env, "HOME": str(self.job.workdir / "home"),
                                           "TMPDIR": str(self.job.workdir / "tmp")},
                          writable=(data_dir, sockets, self.job.workdir / "home", self.job.workdir / "tmp",
                                    *((server.sandbox_dir,) if server.sandbox_dir else ())),
                          # OdooOps' own bridge and module too: an installation under /tmp is hidden there
                          readable=(self.venv, self.src, *(c.path for c in build.checkouts), Path(bridge.SCRIPT),
                                    *((ADDONS,) if allow_connect else ())),
                          hidden=(self.data_dir,), limits=Limits(cpu_seconds=None, memory_bytes=memory))
        process = await self.executor.start(command, self.job.sink.lines)
        self.job.current = process
        started = Server(process, asyncio.ensure_future(process.wait()), f"{self.address}:{port}",
                         f"{self.address}:{gevent}" if workers else None, sockets)
        if self.sandboxed:
            try:
                exposed = {name: await bridge.expose(sockets / f"{name}.sock", self.address) for name in ports}
                if catcher:
                    started.reached = await bridge.reach(sockets / "smtp.sock", *catcher)
            except OSError:
                await self._stop(started)
                raise
            started.exposed = list(exposed.values())
            started.address = f"{self.address}:{exposed['http'].port}"
            started.websocket = f"{self.address}:{exposed['ws'].port}" if "ws" in exposed else None
        return started

    async def _until_healthy(self, server: Server) -> float | None:
        """When the server first answers healthy; None if it died or took too long."""
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline and not server.exited.done() and not self.job.abort_reason:
            if (await self._health(server, deep=True))[0] == "pass":
                self.say(f"Odoo is up at {server.address}" + (f" (websocket {server.websocket})"
                                                             if server.websocket else ""))
                return time.monotonic()
            await asyncio.wait({server.exited}, timeout=0.25)
        if not server.exited.done() and not self.job.abort_reason:
            self.say(f"Odoo did not answer healthy within {START_SECONDS} s", "error")
        return None

    async def _watch(self, server: Server, database: str) -> str:
        """Serve until replaced, stopped, idle, or dead."""
        run = self.job.run
        await self.environments.up(run["id"], run["attempt"], server.address, server.websocket, database)
        checks = 0
        while True:
            self.poke.clear()
            waiter = asyncio.ensure_future(self.poke.wait())
            await asyncio.wait({server.exited, waiter}, timeout=CHECK_SECONDS, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if server.exited.done() or self.job.abort_reason:
                return "died"
            action = await self.environments.check(run["id"], run["attempt"], self.idle_seconds)
            if action != "serve":
                return action
            checks += 1
            await self._touch_if_used(server)
            health, detail = await self._health(server, deep=checks % DEEP_CHECK_EVERY == 0)
            self._seen = max((e.last_activity for e in server.exposed), default=0.0)  # our own check's
            await self._report(health=health, detail=detail, memory=_memory(server.process))

    async def _touch_if_used(self, server: Server) -> None:
        """Requests that reached the server another way than through the
        router (a proxy in front, straight to its upstream) keep it awake too."""
        latest = max((e.last_activity for e in server.exposed), default=0.0)
        if latest > self._seen:
            self._seen = latest
            await self.environments.touch(self.job.run["params"]["environment_id"])

    async def _health(self, server: Server, deep: bool) -> tuple[str, str | None]:
        """Odoo's /web/health; `deep`, also a page that needs its database
        (17.0 answers /web/health whatever the database does; 18.0+ checks it
        when asked)."""
        major = odoobin.major(self.job.run["odoo_version"])
        base = f"http://{server.address}"
        try:
            answer = await self.http.get(base + "/web/health" + ("?db_server_status=1" if major >= 18 else ""))
            if answer.status_code != 200 or answer.json().get("status") != "pass":
                return "fail", f"/web/health answered {answer.status_code}"
            if deep and major < 18:
                page = await self.http.get(base + "/web/login")
                if page.status_code != 200:
                    return "fail", f"/web/login answered {page.status_code}: the database may be unreachable"
        except (httpx.HTTPError, ValueError) as exc:
            return "fail", f"no answer: {type(exc).__name__}"
        return "pass", None

    async def _stop(self, server: Server) -> None:
        # its ports first: the router then goes to the new server at once, and
        # no request waits on one that is going (a refused or cut connection it retries)
        for exposed in server.exposed:
            await exposed.close()
        if server.reached is not None:
            await server.reached.close()
        if not server.exited.done():
            server.process.kill()
            await asyncio.wait({server.exited}, timeout=STOP_SECONDS)
        await asyncio.to_thread(shutil.rmtree, server.sockets, True)
        self.job.current = None

    async def _report(self, **values: object) -> None:
        run = self.job.run
        await self.environments.report(run["id"], run["attempt"], **values)  # type: ignore[arg-type]


def _memory(process: Process) -> int | None:
    """The resident memory of the server's whole process tree."""
    pid = getattr(process, "pid", None)
    if pid is None:
        return None
    try:
        root = psutil.Process(pid)
        return sum(p.memory_info().rss for p in (root, *root.children(recursive=True)))
    except psutil.Error:
        return None
