"""Loading a database's modules the way Odoo 17.0 does (odoo/modules/loading.py,
the registry and ir.module.module's install/upgrade): a new database is
initialized with every module of the addons path listed, base is loaded first,
the modules list is updated, -i/-u mark modules (their dependencies and the
auto-install modules that follow), then marked modules are loaded in graph
order, each committed once loaded, each module's at-install tests right after
it. Messages, loggers and levels are real Odoo's."""

from __future__ import annotations

import json
import logging
import os
import time

from . import db, logs, testing
from .exceptions import UserError
from .modules import Graph, Modules, adapt_version

_logger = logging.getLogger('odoo.modules.loading')
_registry_logger = logging.getLogger('odoo.modules.registry')
_module_logger = logging.getLogger('odoo.addons.base.models.ir_module')
INSTALL_STATES = ('installed', 'to install', 'to upgrade')


class Registry:
    def __init__(self, config: dict, dbname: str, modules: Modules, series: str, demo_new: bool):
        self.config, self.dbname, self.modules, self.series = config, dbname, modules, series
        self.demo_new = demo_new          # whether a new database gets demo data
        self.report = testing.Result()
        self.updated_modules: list[str] = []
        self.init_modules: set[str] = set()
        self.upgraded = False
        self.conn = None

    def filestore(self) -> str:
        return os.path.join(self.config['data_dir'], 'filestore', self.dbname)

    def find_file(self, relative: str) -> str:
        for path in self.modules.paths:
            if os.path.isfile(os.path.join(path, relative)):
                return os.path.join(path, relative)
        raise FileNotFoundError("File not found: " + relative)


def new(config: dict, dbname: str, modules: Modules, series: str, demo_new: bool, update_module: bool) -> Registry:
    t0 = time.time()
    registry = Registry(config, dbname, modules, series, demo_new)
    registry.conn = db.connect(config, dbname)
    try:
        try:
            load_modules(registry, update_module)
        except Exception:
            registry.conn.rollback()
            reset_modules_state(registry)
            raise
    except Exception:
        _registry_logger.exception('Failed to load registry')
        registry.conn.close()
        raise
    _registry_logger.info("Registry loaded in %.3fs", time.time() - t0)
    return registry


def reset_modules_state(registry: Registry) -> None:
    with registry.conn.cursor() as cr:
        if not db.table_exists(cr, 'ir_module_module'):
            _logger.info('skipping reset_modules_state, ir_module_module table does not exists')
            return
        cr.execute("UPDATE ir_module_module SET state='installed' WHERE state IN ('to remove', 'to upgrade')")
        cr.execute("UPDATE ir_module_module SET state='uninstalled' WHERE state='to install'")
    registry.conn.commit()
    _logger.warning("Transient module states were reset")


def load_modules(registry: Registry, update_module: bool) -> None:
    config = registry.config
    cr = registry.conn.cursor()
    cr.execute("SET SESSION lock_timeout = '15s'")
    if not db.table_exists(cr, 'ir_module_module'):
        if not update_module:
            _logger.error("Database %s not initialized, you can force it with `-i base`", registry.dbname)
            return
        _logger.info("init db")
        initialize(registry, cr)
        update_module = True
        config['init']['all'] = 1
        if registry.demo_new:
            config['demo']['all'] = 1
    logs.set_db(registry.dbname)
    if 'base' in config['update'] or 'all' in config['update']:
        cr.execute("UPDATE ir_module_module SET state = 'to upgrade' WHERE name = 'base' AND state = 'installed'")

    graph = Graph()
    graph.add(registry.modules, ['base'])
    if not graph:
        _logger.critical('module base cannot be loaded! (hint: verify addons-path)')
        raise ImportError('Module `base` cannot be loaded! (hint: verify addons-path)')
    loaded, processed = load_module_graph(registry, cr, graph, update_module)

    if update_module:
        _logger.info('updating modules list')
        update_list(registry, cr, [])
        check_module_names(cr, [*config['init'], *config['update']])
        names = [k for k, v in config['init'].items() if v]
        cr.execute("SELECT name FROM ir_module_module WHERE state = 'uninstalled' AND name = ANY(%s) ORDER BY name",
                   (names,))
        to_install = [name for (name,) in cr.fetchall()]
        if to_install:
            button_install(registry, cr, to_install)
        names = [k for k, v in config['update'].items() if v]
        cr.execute("SELECT name FROM ir_module_module WHERE state IN ('installed', 'to upgrade') AND name = ANY(%s) "
                   "ORDER BY name", (names,))
        to_upgrade = [name for (name,) in cr.fetchall()]
        if to_upgrade:
            button_upgrade(registry, cr, to_upgrade)
        cr.execute("UPDATE ir_module_module SET state = 'installed' WHERE name = 'base'")

    previously = -1
    while previously < len(processed):
        previously = len(processed)
        processed += load_marked(registry, cr, graph, ['installed', 'to upgrade', 'to remove'], loaded, update_module)
        if update_module:
            processed += load_marked(registry, cr, graph, ['to install'], loaded, update_module)

    cr.execute("SELECT name FROM ir_module_module WHERE state = 'installed' ORDER BY name")
    missing = [name for (name,) in cr.fetchall() if name not in graph]
    if missing:
        _logger.error("Some modules are not loaded, some dependencies or manifest may be missing: %s", missing)
    cr.execute("SELECT name FROM ir_module_module WHERE state IN ('to install', 'to upgrade') ORDER BY name")
    inconsistent = [name for (name,) in cr.fetchall()]
    if inconsistent:
        _logger.error("Some modules have inconsistent states, some dependencies may be missing: %s", inconsistent)
    if registry.upgraded:
        _registry_logger.info("verifying fields for every extended model")
    registry.conn.commit()
    if registry.report.ok():
        _logger.info('Modules loaded.')
    else:
        _logger.error('At least one test failed when loading the modules.')
    registry.updated_modules += processed


def initialize(registry: Registry, cr) -> None:
    """A new database: base's tables, every module of the addons path listed
    (base and the auto-install modules it brings marked to install)."""
    db.create_schema(cr, 'base')
    for name in registry.modules.names():
        _insert_module(cr, name, registry.modules.manifest(name))
    cr.execute("UPDATE ir_module_module SET state = 'to install' WHERE name = 'base'")
    while True:
        states, depends = _states(cr), _dependencies(cr)
        marked = set()
        for name, deps in depends.items():
            auto = registry.modules.manifest(name)['auto_install']
            if states[name] == 'uninstalled' and auto is not False and all(
                    states.get(d) == 'to install' or d in marked for d in auto):
                marked.add(name)
                marked.update(d for d in deps if states.get(d) == 'uninstalled')
        if not marked:
            break
        cr.execute("UPDATE ir_module_module SET state = 'to install' WHERE name = ANY(%s)", (sorted(marked),))


def _insert_module(cr, name: str, manifest: dict) -> None:
    cr.execute("INSERT INTO ir_module_module (name, state, shortdesc, summary, description, author, website, "
               "license, application, auto_install, sequence, demo, create_date, write_date) "
               "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, false, %s, %s) RETURNING id",
               (name, 'uninstalled' if manifest['installable'] else 'uninstallable',
                json.dumps({'en_US': manifest['name'] or name}), json.dumps({'en_US': manifest['summary']}),
                json.dumps({'en_US': manifest['description']}), manifest['author'], manifest['website'],
                manifest['license'], manifest['application'], manifest['auto_install'] is not False,
                manifest['sequence'], db.now(), db.now()))
    module_id = cr.fetchone()[0]
    cr.execute("INSERT INTO ir_model_data (module, name, model, res_id, noupdate) VALUES "
               "('base', %s, 'ir.module.module', %s, true)", (f'module_{name}', module_id))
    _write_dependencies(cr, module_id, manifest)


def _write_dependencies(cr, module_id: int, manifest: dict) -> None:
    cr.execute("DELETE FROM ir_module_module_dependency WHERE module_id = %s", (module_id,))
    auto = manifest['auto_install'] or ()
    for dep in manifest['depends']:
        cr.execute("INSERT INTO ir_module_module_dependency (module_id, name, auto_install_required) "
                   "VALUES (%s, %s, %s)", (module_id, dep, dep in auto))


def _states(cr) -> dict:
    cr.execute("SELECT name, state FROM ir_module_module")
    return dict(cr.fetchall())


def _dependencies(cr) -> dict:
    cr.execute("SELECT m.name, array_remove(array_agg(d.name ORDER BY d.name), NULL) FROM ir_module_module m "
               "LEFT JOIN ir_module_module_dependency d ON d.module_id = m.id GROUP BY m.name")
    return dict(cr.fetchall())


def _shortdescs(cr, names: list[str]) -> list[str]:
    cr.execute("SELECT name, shortdesc->>'en_US' FROM ir_module_module WHERE name = ANY(%s) ORDER BY name",
               (list(names),))
    found = dict(cr.fetchall())
    return [found[name] for name in names if name in found]


def _allow(method: str, cr, names: list[str]) -> None:
    _module_logger.info('ALLOW access to module.%s on %s to user %s #%s via %s', method, _shortdescs(cr, names),
                        '__system__', 1, 'n/a')


def update_list(registry: Registry, cr, names: list[str]) -> None:
    _allow('update_list', cr, names)
    states = _states(cr)
    for name in registry.modules.names():
        manifest = registry.modules.manifest(name)
        if name not in states:
            _insert_module(cr, name, manifest)
            continue
        cr.execute("UPDATE ir_module_module SET shortdesc = %s, summary = %s, author = %s, license = %s, "
                   "application = %s, auto_install = %s, write_date = %s WHERE name = %s RETURNING id",
                   (json.dumps({'en_US': manifest['name'] or name}), json.dumps({'en_US': manifest['summary']}),
                    manifest['author'], manifest['license'], manifest['application'],
                    manifest['auto_install'] is not False, db.now(), name))
        module_id = cr.fetchone()[0]
        if manifest['installable'] and states[name] == 'uninstallable':
            cr.execute("UPDATE ir_module_module SET state = 'uninstalled' WHERE id = %s", (module_id,))
        _write_dependencies(cr, module_id, manifest)


def check_module_names(cr, names) -> None:
    names = set(names)
    if 'base' in names:
        names.discard('all')
    if names:
        known = set(_states(cr))
        if names - known:
            _logger.warning('invalid module names, ignored: %s', ", ".join(sorted(names - known)))


def button_install(registry: Registry, cr, names: list[str]) -> None:
    _allow('button_install', cr, names)
    todo = list(names)
    while todo:
        _mark_install(cr, todo, 100)
        states = _states(cr)
        cr.execute("SELECT m.name, array_agg(d.name) FILTER (WHERE d.auto_install_required) FROM ir_module_module m "
                   "LEFT JOIN ir_module_module_dependency d ON d.module_id = m.id "
                   "WHERE m.state = 'uninstalled' AND m.auto_install GROUP BY m.name ORDER BY m.name")
        todo = []
        for name, required in cr.fetchall():
            required_states = {states.get(d, 'unknown') for d in (required or [])}
            if required_states <= set(INSTALL_STATES) and 'to install' in required_states:
                todo.append(name)


def _mark_install(cr, names: list[str], level: int) -> bool:
    """Odoo's _state_update: mark modules and their dependencies to install,
    each with demo data when a dependency has it; whether any has demo."""
    if level < 1:
        raise UserError('Recursion error in modules dependencies!')
    demo = False
    for name in names:
        cr.execute("SELECT id, state, demo FROM ir_module_module WHERE name = %s", (name,))
        module_id, state, module_demo = cr.fetchone()
        if state != 'uninstalled':
            demo = demo or module_demo
            continue
        cr.execute("SELECT d.name, m.state, m.demo FROM ir_module_module_dependency d "
                   "LEFT JOIN ir_module_module m ON m.name = d.name WHERE d.module_id = %s ORDER BY d.name",
                   (module_id,))
        ready, update = [], []
        for dep, dep_state, dep_demo in cr.fetchall():
            if dep_state is None:
                raise UserError(f"You try to install module {name!r} that depends on module {dep!r}.\n"
                                "But the latter module is not available in your system.")
            (ready if dep_state == 'to install' else update).append((dep, dep_demo))
        update_demo = _mark_install(cr, [d for d, _ in update], level - 1)
        module_demo = module_demo or update_demo or any(d for _, d in ready)
        demo = demo or module_demo
        cr.execute("UPDATE ir_module_module SET state = 'to install', demo = %s WHERE id = %s",
                   (module_demo, module_id))
    return demo


def button_upgrade(registry: Registry, cr, names: list[str]) -> None:
    _allow('button_upgrade', cr, names)
    update_list(registry, cr, names)
    states, depends = _states(cr), _dependencies(cr)
    todo = list(names)
    if 'base' in names:
        todo += sorted(n for n, s in states.items() if s == 'installed' and n not in names)
    for name in todo:
        if states[name] not in ('installed', 'to upgrade'):
            raise UserError(f"Can not upgrade module {name!r}. It is not installed.")
        for other, deps in sorted(depends.items()):
            if name in deps and states[other] == 'installed' and other not in todo:
                todo.append(other)
    cr.execute("UPDATE ir_module_module SET state = 'to upgrade' WHERE name = ANY(%s)", (todo,))
    to_install = []
    for name in todo:
        for dep in depends.get(name, []):
            if dep not in states:
                raise UserError(f'You try to upgrade the module {name} that depends on the module: {dep}.\n'
                                'But this module is not available in your system.')
            if states[dep] == 'uninstalled' and dep not in to_install:
                to_install.append(dep)
    button_install(registry, cr, to_install)


def load_marked(registry: Registry, cr, graph: Graph, states: list[str], loaded: list, update_module: bool) -> list:
    processed = []
    while True:
        cr.execute("SELECT name FROM ir_module_module WHERE state = ANY(%s) ORDER BY name", (states,))
        names = [name for (name,) in cr.fetchall() if name not in graph]
        if not names:
            break
        graph.add(registry.modules, names)
        new_loaded, new_processed = load_module_graph(registry, cr, graph, update_module, skip=loaded)
        processed += new_processed
        loaded += new_loaded
        if not new_processed:
            break
    return processed


def _flags(registry: Registry, graph: Graph) -> dict:
    """Odoo's init/update/demo node attributes: a module named by -i/-u (or
    'all') has them, and so has every module of the graph that depends on it;
    as Odoo's nodes do, each writes its name back into the option (so that
    `-u all` upgrades base, and all with it)."""
    config, depends, flags = registry.config, {}, {}
    for name in graph:
        depends[name] = registry.modules.manifest(name)['depends']
        flags[name] = {kind for kind in ('init', 'update', 'demo')
                       if name in config[kind] or 'all' in config[kind]
                       or any(kind in flags.get(d, ()) for d in depends[name])}
        for kind in flags[name]:
            config[kind][name] = 1
    return flags


def load_module_graph(registry: Registry, cr, graph: Graph, update_module: bool, skip=()) -> tuple[list, list]:
    config = registry.config
    _logger.info('loading %d modules...', len(graph))
    t0, graph_queries, graph_test_queries = time.time(), 0, 0
    loaded, processed = [], []
    flags = _flags(registry, graph)
    updating = bool(config['init'] or config['update'])
    cr.execute("SELECT name, state, demo, latest_version FROM ir_module_module")
    rows = {name: (state, demo) for name, state, demo, _ in cr.fetchall()}
    for index, name in enumerate(graph, 1):
        if name in skip:
            continue
        module_t0 = time.time()
        state, dbdemo = rows.get(name, ('uninstalled', False))
        needs_update = bool(flags[name] & {'init', 'update'}) or state in ('to install', 'to upgrade')
        level = logging.INFO if needs_update else logging.DEBUG
        _logger.log(level, 'Loading module %s (%d/%d)', name, index, len(graph))
        manifest = registry.modules.manifest(name)
        loaded.append(name)
        module_q0 = db.queries['count']
        if needs_update:
            _install(registry, cr, name, manifest, state, 'demo' in flags[name] or (dbdemo and state != 'installed'),
                     graph, rows)
        registry.init_modules.add(name)
        module_queries = db.queries['count'] - module_q0
        graph_queries += module_queries
        test_time = test_queries = 0
        result = None
        if config['test_enable'] and (needs_update or not updating):
            tests = [t for t in testing.module_tests(name, manifest['path'])
                     if testing.Selector('at_install').check(t) and testing.Selector(config['test_tags']).check(t)]
            if tests:
                tests_t0 = time.time()
                result = testing.run(tests, _filestore_files(registry))
                registry.report.update(result)
                test_time, test_queries = time.time() - tests_t0, 1 + 2 * result.run
                graph_test_queries += test_queries
        if needs_update:
            processed.append(name)
            if state == 'to upgrade':
                registry.upgraded = True
            cr.execute("UPDATE ir_module_module SET state = 'installed', latest_version = %s, write_date = %s "
                       "WHERE name = %s", (adapt_version(manifest['version'], registry.series), db.now(), name))
            registry.conn.commit()
            rows[name] = ('installed', rows.get(name, (None, False))[1])
        extras = [f'+{test_queries} test'] if test_queries else []
        if module_queries:
            extras.append(f'+{module_queries} other')
        _logger.log(level, "Module %s loaded in %.2fs%s, %s queries%s", name, time.time() - module_t0,
                    f' (incl. {test_time:.2f}s test)' if test_time else '', module_queries,
                    f' ({", ".join(extras)})' if extras else '')
        if result and not result.ok():
            _logger.error("Module %s: %d failures, %d errors of %d tests", name, result.failures, result.errors,
                          result.run)
    _logger.log(logs.RUNBOT, "%s modules loaded in %.2fs, %s queries (+%s extra)", len(graph), time.time() - t0,
                graph_queries, graph_queries + graph_test_queries)
    return loaded, processed


def _install(registry: Registry, cr, name: str, manifest: dict, state: str, should_have_demo: bool,
             graph: Graph, rows: dict) -> None:
    """One module installed or updated: its tables, data and demo data."""
    if registry.modules.has_models(name):
        _registry_logger.info('module %s: creating or updating database tables', name)
    new_install = state == 'to install'
    if new_install and name == 'base':
        db.init_base_records(cr, registry.config)
    elif new_install:
        db.create_schema(cr, name)
    mode = 'init' if new_install else 'update'
    loader = db.DataLoader(cr, name, registry.find_file, registry.filestore(), mode)
    for filename in manifest.get('init_xml', []) + manifest.get('update_xml', []) + manifest['data']:
        _logger.info("loading %s/%s", name, filename)
        loader.load(filename, noupdate=False)
    parents_demo = all(rows.get(dep, (None, False))[1] for dep in manifest['depends'] if dep in graph)
    demo_loaded = bool(should_have_demo and parents_demo)
    if demo_loaded:
        demo_files = manifest['demo'] + manifest.get('demo_xml', [])
        if demo_files:
            _logger.info("Module %s: loading demo", name)
            for filename in demo_files:
                _logger.info("loading %s/%s", name, filename)
                loader.load(filename, noupdate=True)
    cr.execute("UPDATE ir_module_module SET demo = %s WHERE name = %s", (demo_loaded, name))
    rows[name] = (state, demo_loaded)
    registry.conn.commit()


def _filestore_files(registry: Registry) -> int:
    return sum(len(files) for _, _, files in os.walk(registry.filestore()))
