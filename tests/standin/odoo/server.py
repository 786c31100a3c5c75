"""`odoo-bin [server]`: what Odoo 17.0's odoo/cli/server.py and
odoo/service/server.py do for the subset OdooOps uses: check the user,
report the configuration, create a missing database, load the server-wide
modules (--load), load each -d database (installing and updating modules,
running tests), then stop (--stop-after-init) or serve HTTP until
SIGTERM/SIGINT: threaded, or with --workers as prefork mode looks from
outside (one process here: the HTTP port, the workers' log lines, and the
gevent port that prefork mode's gevent process listens on)."""

from __future__ import annotations

import getpass
import logging
import os
import shutil
import signal
import sys
import time

import psycopg2
from psycopg2 import errorcodes, sql

from . import db, http, loading, logs, options, release, testing
from .modules import Modules

_logger = logging.getLogger('odoo')
_server_logger = logging.getLogger('odoo.service.server')
_result_logger = logging.getLogger('odoo.tests.result')
_stats_logger = logging.getLogger('odoo.tests.stats')
_sql_logger = logging.getLogger('odoo.sql_db')
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def major() -> int:
    return int(str(release.version_info[0]).split('~')[-1])


def check_root_user() -> None:
    if os.name == 'posix' and getpass.getuser() == 'root':
        sys.stderr.write("Running as user 'root' is a security risk.\n")


def configure(command: str, args: list[str], extra=None) -> tuple[dict, object]:
    """Parse the command line and set the log up, as Odoo's parse_config."""
    parser = options.parser(options.program(command), release.version, major())
    if extra:
        extra(parser)
    config = options.parse(parser, args)
    values = parser.values
    if not config.get('data_dir'):
        config['data_dir'] = options.default_data_dir()
    config['data_dir'] = os.path.abspath(os.path.expanduser(config['data_dir']))
    if major() >= options.DEMO_OPT_IN_SINCE:
        demo = bool(config.get('with_demo'))
    else:
        demo = not config.get('without_demo')
    config['demo_new'] = demo
    config['demo'] = dict(config['init']) if demo else {}
    config['addons_paths'] = addons_paths(config)
    if config.get('server_wide_modules') in (None, '', 'None', 'False'):
        config['server_wide_modules'] = 'base,web'
    if major() < options.SERIES_19 and config.get('longpolling_port'):
        config['gevent_port'] = config['longpolling_port']  # a deprecated alias from 16.0 on
    logs.init(config)
    for warning in options.deferred_warnings:
        logging.getLogger('odoo.tools.config').warning(*warning)
    if major() >= options.SERIES_19 and config['http_enable'] and not config.get('http_interface'):
        logging.getLogger('odoo.tools.config').warning(
            "missing %s, using 0.0.0.0 by default, will change to 127.0.0.1 in 20.0", '--http-interface/http_interface')
    return config, values


def addons_paths(config: dict) -> list[str]:
    """odoo.addons.__path__: the tree's odoo/addons, the data dir's addons
    folder of this series, then --addons-path (or the tree's addons/)."""
    base = os.path.join(ROOT, 'odoo', 'addons')
    paths = [base]
    data_addons = os.path.join(config['data_dir'], 'addons')
    series_dir = os.path.join(data_addons, release.series)
    try:
        os.makedirs(data_addons, 0o700, exist_ok=True)
        if not os.path.exists(series_dir):
            os.makedirs(series_dir, 0o500)
    except OSError:
        pass
    if os.access(series_dir, os.R_OK):
        paths.append(series_dir)
    given = config.get('addons_path')
    if not given:
        given = ','.join(p for p in (base, os.path.join(ROOT, 'addons')) if os.path.exists(p))
    for path in given.split(','):
        path = os.path.abspath(path.strip())
        if path not in paths:
            paths.append(path)
    return paths


def report_configuration(config: dict) -> None:
    _logger.info("Odoo version %s", release.version)
    _logger.info('addons paths: %s', config['addons_paths'])
    host = config.get('db_host') or os.environ.get('PGHOST', 'default')
    port = config.get('db_port') or os.environ.get('PGPORT', 'default')
    user = config.get('db_user') or os.environ.get('PGUSER', 'default')
    _logger.info('database: %s@%s:%s', user, host, port)
    if not shutil.which('wkhtmltopdf'):
        logging.getLogger('odoo.addons.base.models.ir_actions_report').info(
            'You need Wkhtmltopdf to print a pdf version of the reports.')


class DatabaseExists(Exception):
    pass


def create_empty_database(config: dict, name: str) -> None:
    conn = db.connect(config, 'postgres')
    try:
        with conn.cursor() as cr:
            db.execute(cr, "SELECT datname FROM pg_database WHERE datname = %s", (name,), log_exceptions=False)
            if cr.fetchall():
                raise DatabaseExists(f"database {name!r} already exists!")
            conn.rollback()
            conn.autocommit = True
            template = config['db_template']
            collate = sql.SQL("LC_COLLATE 'C'" if template == 'template0' else "")
            db.execute(cr, sql.SQL("CREATE DATABASE {} ENCODING 'unicode' {} TEMPLATE {}").format(
                sql.Identifier(name), collate, sql.Identifier(template)))
    finally:
        conn.close()
    after = (("CREATE EXTENSION IF NOT EXISTS pg_trgm", "Unable to create PostgreSQL extensions : %s"),
             ("GRANT CREATE ON SCHEMA PUBLIC TO PUBLIC",  # as Odoo does on PostgreSQL 15+
              "Unable to make public schema public-accessible: %s"))
    for statement, warning in after:
        try:
            conn = db.connect(config, name)
            with conn, conn.cursor() as cr:
                cr.execute(statement)
            conn.close()
        except psycopg2.Error as e:
            logging.getLogger('odoo.service.db').warning(warning, e)


def load_server_wide_modules(config: dict) -> set[str]:
    """The modules of --load (and base, web) found on the addons path; the
    others fail as Odoo's import of them does. None of their Python runs."""
    loaded = set()
    for name in {'base', 'web'} | {m.strip() for m in config['server_wide_modules'].split(',') if m.strip()}:
        if any(os.path.isfile(os.path.join(path, name, '__manifest__.py')) for path in config['addons_paths']):
            loaded.add(name)
            continue
        logging.getLogger('odoo.modules.module').critical("Couldn't load module %s", name)
        try:
            raise ModuleNotFoundError(f"No module named 'odoo.addons.{name}'")
        except ModuleNotFoundError:
            hint = ("\nThe `web` module is provided by the addons found in the `openerp-web` project.\n"
                    "Maybe you forgot to add those addons in your addons_path configuration.") if name == 'web' else ''
            _server_logger.exception('Failed to load server-wide module `%s`.%s', name, hint)
    return loaded


class Service:
    def __init__(self, config: dict):
        self.config = config
        self.registries: dict[str, loading.Registry] = {}
        self.quit_signals = 0
        self.httpd = None
        self.gevent = None
        self.app: http.App | None = None
        self.prefork = config['workers'] > 0
        self.workers = 0  # spawned, in prefork mode

    def signal(self, sig, frame):
        self.quit_signals += 1
        if self.quit_signals > 1:
            sys.stderr.write("Forced shutdown.\n")
            os._exit(0)

    def ping(self):
        db.connect(self.config, 'postgres').close()

    def start(self, stop: bool) -> None:
        signal.signal(signal.SIGINT, self.signal)
        signal.signal(signal.SIGTERM, self.signal)
        config = self.config
        loaded = load_server_wide_modules(config)
        if self.prefork and config['test_enable']:
            _server_logger.warning("Unit testing in workers mode could fail; use --workers 0.")
        self.app = http.App(config, major(), self.ping, loaded)
        if config['http_enable'] and (config['test_enable'] or not stop or self.prefork):
            self.httpd = http.spawn(config['http_interface'], config['http_port'], self.app)

    def spawn_workers(self) -> None:
        """What prefork mode logs once the databases are loaded, and its gevent process's port."""
        _sql_logger.info('%s: Closed %d connections %s',
                         f"ConnectionPool(used=0/count=0/max={self.config['db_maxconn']})", len(db.connected), '')
        if self.config['http_enable']:
            self.workers = self.config['workers'] + self.config['max_cron_threads']
            for kind in ['WorkerHTTP'] * self.config['workers'] + ['WorkerCron'] * self.config['max_cron_threads']:
                _server_logger.info("Worker %s (%s) alive", kind, os.getpid())
            self.gevent = http.spawn_gevent(self.config['http_interface'], self.config['gevent_port'], self.app)

    def preload(self, dbnames: list[str]) -> int:
        rc = 0
        config = self.config
        for dbname in dbnames:
            try:
                update_module = bool(config['init'] or config['update'])
                modules = Modules(config['addons_paths'], release.series)
                registry = loading.new(config, dbname, modules, release.series, config['demo_new'], update_module)
                self.registries[dbname] = registry
                if config['test_enable']:
                    self.post_tests(registry, update_module)
                if not registry.report.ok():
                    rc += 1
            except Exception:
                _server_logger.critical('Failed to initialize database `%s`.', dbname, exc_info=True)
                return -1
        return rc

    def post_tests(self, registry: loading.Registry, update_module: bool) -> None:
        t0 = time.time()
        names = registry.updated_modules if update_module else sorted(registry.init_modules)
        _server_logger.info("Starting post tests")
        before = registry.report.run
        tags, position = testing.Selector(self.config['test_tags']), testing.Selector('post_install')
        tests = [t for name in names for t in testing.module_tests(name, registry.modules.path(name))
                 if position.check(t) and tags.check(t)]
        result = testing.run(tests, 0)
        registry.report.update(result)
        _server_logger.info("%d post-tests in %.2fs, %s queries", registry.report.run - before, time.time() - t0,
                            2 * result.run)
        for module, (entries, seconds, count) in sorted(registry.report.stats.items()):
            _stats_logger.info("%s: %d tests %.2fs %d queries", module, entries, seconds, count)

    def stop_prefork(self) -> None:
        _server_logger.info("Stopping gracefully")
        for server in (self.httpd, self.gevent):
            if server:
                server.shutdown()
        requests = self.app.requests if self.app else 0
        for worker in range(self.workers):
            _server_logger.info("Worker (%s) exiting. request_count: %s, registry count: %s.", os.getpid(),
                                requests if worker == 0 else 0, len(self.registries))

    def stop(self) -> None:
        if self.prefork:
            return self.stop_prefork()
        _server_logger.info("Initiating shutdown")
        _server_logger.info("Hit CTRL-C again or send a second signal to force the shutdown.")
        if self.httpd:
            self.httpd.shutdown()
        closed = len(db.connected) + (len(self.registries) if self.config['test_enable'] else 0)
        for registry in self.registries.values():
            registry.conn.close()
        _sql_logger.info('%s: Closed %d connections %s',
                         f"ConnectionPool(used=0/count=0/max={self.config['db_maxconn']})", closed, '')

    def run(self, dbnames: list[str], stop: bool) -> int:
        self.start(stop)
        rc = self.preload(dbnames)
        if stop:
            if self.config['test_enable']:
                for name, registry in self.registries.items():
                    report = registry.report
                    log = (_result_logger.error if not report.ok() else
                           _result_logger.warning if not report.run else _result_logger.info)
                    log("%s when loading database %r", report, name)
            self.stop()
            return rc
        if self.prefork:
            self.spawn_workers()
        while self.quit_signals == 0:
            time.sleep(0.1)
        self.stop()
        return 0


def main(args: list[str]) -> None:
    check_root_user()
    config, _ = configure('server', args)
    if (config.get('db_user') or os.environ.get('PGUSER')) == 'postgres':
        sys.stderr.write("Using the database user 'postgres' is a security risk, aborting.")
        sys.exit(1)
    report_configuration(config)
    if not config.get('stop_after_init') and any(
            os.path.exists(os.path.join(path, 'STANDIN_SERVER_FAILS'))
            for path in str(config.get('addons_path') or '').split(',')):
        # the stand-in's own: a server that dies as it starts (real Odoo's start failures vary)
        _logger.critical("Failed to start: an addons folder holds STANDIN_SERVER_FAILS")
        sys.exit(1)
    dbnames = [name for name in (config.get('db_name') or '').split(',') if name]
    for name in dbnames:
        try:
            create_empty_database(config, name)
            config['init']['base'] = True
        except psycopg2.ProgrammingError as err:
            if err.pgcode != errorcodes.INSUFFICIENT_PRIVILEGE:
                raise
            _logger.info("Could not determine if database %s exists, skipping auto-creation: %s", name, err)
        except DatabaseExists:
            pass
    if config.get('pidfile'):
        with open(config['pidfile'], 'w') as f:
            f.write(str(os.getpid()))
    rc = Service(config).run(dbnames, bool(config.get('stop_after_init')))
    sys.exit(rc)
