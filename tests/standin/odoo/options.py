"""odoo-bin's command line: the option names and value names of Odoo 17.0's
`odoo-bin --help`, as data (tests/test_standin.py checks them against a
captured --help), parsed with optparse as real Odoo parses them, so an unknown
option, a missing value or a bad integer fails with optparse's message and
exit code 2."""

from __future__ import annotations

import optparse
import os
import sys

# (group title, [((flags...), VALUE_NAME or None for a flag)]) in --help order
OPTION_GROUPS = [
    ('Common options', [
        (('-c', '--config'), 'CONFIG'),
        (('-s', '--save'), None),
        (('-i', '--init'), 'INIT'),
        (('-u', '--update'), 'UPDATE'),
        (('--without-demo',), 'WITHOUT_DEMO'),
        (('-P', '--import-partial'), 'IMPORT_PARTIAL'),
        (('--pidfile',), 'PIDFILE'),
        (('--addons-path',), 'ADDONS_PATH'),
        (('--upgrade-path',), 'UPGRADE_PATH'),
        (('--load',), 'SERVER_WIDE_MODULES'),
        (('-D', '--data-dir'), 'DATA_DIR'),
    ]),
    ('HTTP Service Configuration', [
        (('--http-interface',), 'HTTP_INTERFACE'),
        (('-p', '--http-port'), 'PORT'),
        (('--longpolling-port',), 'PORT'),
        (('--gevent-port',), 'PORT'),
        (('--no-http',), None),
        (('--proxy-mode',), None),
        (('--x-sendfile',), None),
    ]),
    ('Web interface Configuration', [
        (('--db-filter',), 'REGEXP'),
    ]),
    ('Testing Configuration', [
        (('--test-file',), 'TEST_FILE'),
        (('--test-enable',), None),
        (('--test-tags',), 'TEST_TAGS'),
        (('--screencasts',), 'DIR'),
        (('--screenshots',), 'DIR'),
    ]),
    ('Logging Configuration', [
        (('--logfile',), 'LOGFILE'),
        (('--syslog',), None),
        (('--log-handler',), 'PREFIX:LEVEL'),
        (('--log-web',), None),
        (('--log-sql',), None),
        (('--log-db',), 'LOG_DB'),
        (('--log-db-level',), 'LOG_DB_LEVEL'),
        (('--log-level',), 'LOG_LEVEL'),
    ]),
    ('SMTP Configuration', [
        (('--email-from',), 'EMAIL_FROM'),
        (('--from-filter',), 'FROM_FILTER'),
        (('--smtp',), 'SMTP_SERVER'),
        (('--smtp-port',), 'SMTP_PORT'),
        (('--smtp-ssl',), None),
        (('--smtp-user',), 'SMTP_USER'),
        (('--smtp-password',), 'SMTP_PASSWORD'),
        (('--smtp-ssl-certificate-filename',), 'SMTP_SSL_CERTIFICATE_FILENAME'),
        (('--smtp-ssl-private-key-filename',), 'SMTP_SSL_PRIVATE_KEY_FILENAME'),
    ]),
    ('Database related options', [
        (('-d', '--database'), 'DB_NAME'),
        (('-r', '--db_user'), 'DB_USER'),
        (('-w', '--db_password'), 'DB_PASSWORD'),
        (('--pg_path',), 'PG_PATH'),
        (('--db_host',), 'DB_HOST'),
        (('--db_port',), 'DB_PORT'),
        (('--db_sslmode',), 'DB_SSLMODE'),
        (('--db_maxconn',), 'DB_MAXCONN'),
        (('--db_maxconn_gevent',), 'DB_MAXCONN_GEVENT'),
        (('--db-template',), 'DB_TEMPLATE'),
    ]),
    ('Internationalisation options', [
        (('--load-language',), 'LOAD_LANGUAGE'),
        (('-l', '--language'), 'LANGUAGE'),
        (('--i18n-export',), 'TRANSLATE_OUT'),
        (('--i18n-import',), 'TRANSLATE_IN'),
        (('--i18n-overwrite',), None),
        (('--modules',), 'TRANSLATE_MODULES'),
    ]),
    ('Security-related options', [
        (('--no-database-list',), None),
    ]),
    ('Advanced options', [
        (('--dev',), 'DEV_MODE'),
        (('--shell-interface',), 'SHELL_INTERFACE'),
        (('--stop-after-init',), None),
        (('--osv-memory-count-limit',), 'OSV_MEMORY_COUNT_LIMIT'),
        (('--transient-age-limit',), 'TRANSIENT_AGE_LIMIT'),
        (('--max-cron-threads',), 'MAX_CRON_THREADS'),
        (('--unaccent',), None),
        (('--geoip-city-db', '--geoip-db'), 'GEOIP_CITY_DB'),
        (('--geoip-country-db',), 'GEOIP_COUNTRY_DB'),
    ]),
    ('Multiprocessing options', [
        (('--workers',), 'WORKERS'),
        (('--limit-memory-soft',), 'LIMIT_MEMORY_SOFT'),
        (('--limit-memory-hard',), 'LIMIT_MEMORY_HARD'),
        (('--limit-time-cpu',), 'LIMIT_TIME_CPU'),
        (('--limit-time-real',), 'LIMIT_TIME_REAL'),
        (('--limit-time-real-cron',), 'LIMIT_TIME_REAL_CRON'),
        (('--limit-request',), 'LIMIT_REQUEST'),
    ]),
]

# 19.0 rewrote the options (seen in a 19.0 --help and config.py, not run
# here): demo data opt-in with --with-demo, --without-demo[=BOOL], options
# added and removed, --test-enable implying --stop-after-init, a directory of
# --addons-path that is not one skipped with a warning instead of refused.
DEMO_OPT_IN_SINCE = SERIES_19 = 19
CHANGES_19 = {  # group: (removed flags, [(after these flags, the option added)])
    'Common options': ({('--without-demo',)}, [
        (('-u', '--update'), (('--reinit',), 'MODULE,...')),
        (('--reinit',), (('--with-demo',), None)),
        (('--with-demo',), (('--without-demo',), 'BOOL')),
        (('--without-demo',), (('--skip-auto-install',), None)),
        (('--upgrade-path',), (('--pre-upgrade-scripts',), 'PATH,...'))]),
    'HTTP Service Configuration': ({('--longpolling-port',)}, []),
    'Database related options': (set(), [
        (('--db_host',), (('--db_replica_host',), 'STRING')),
        (('--db_port',), (('--db_replica_port',), 'INT')),
        (('--db_sslmode',), (('--db_app_name',), 'STRING'))]),
    'Internationalisation options': ({('-l', '--language'), ('--i18n-export',), ('--i18n-import',), ('--modules',)},
                                     []),
    'Advanced options': ({('--shell-interface',)}, [
        (('--max-cron-threads',), (('--limit-time-worker-cron',), 'INT'))]),
    'Multiprocessing options': (set(), [
        (('--limit-memory-soft',), (('--limit-memory-soft-gevent',), 'INT')),
        (('--limit-memory-hard',), (('--limit-memory-hard-gevent',), 'INT'))]),
}

# where an option's value name does not say where it goes
DESTS = {'--http-port': 'http_port', '--longpolling-port': 'longpolling_port', '--gevent-port': 'gevent_port',
         '--db-filter': 'dbfilter', '--screencasts': 'screencasts', '--screenshots': 'screenshots',
         '--log-handler': 'log_handler', '--no-http': 'http_enable', '--no-database-list': 'list_db',
         '--i18n-overwrite': 'overwrite_existing_translations', '--test-enable': 'test_enable'}
INTEGERS = {'http_port', 'longpolling_port', 'gevent_port', 'smtp_port', 'db_port', 'db_maxconn',
            'db_maxconn_gevent', 'max_cron_threads', 'workers', 'limit_memory_soft', 'limit_memory_hard',
            'limit_time_cpu', 'limit_time_real', 'limit_time_real_cron', 'limit_request', 'osv_memory_count_limit'}
CHOICES = {
    'log_level': ['info', 'debug_rpc', 'warn', 'test', 'critical', 'runbot', 'debug_sql', 'error', 'debug',
                  'debug_rpc_answer', 'notset'],
    'db_sslmode': ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'],
}
DEFAULTS = {'http_port': 8069, 'gevent_port': 8072, 'http_interface': '', 'http_enable': True, 'list_db': True,
            'db_maxconn': 64, 'db_template': 'template0', 'log_level': 'info', 'log_handler': [],
            'max_cron_threads': 2, 'workers': 0, 'dbfilter': '', 'proxy_mode': False}


def option_groups(major: int) -> list:
    """The groups of this version: 17.0's (for 16.0 and 18.0 too), 19.0's from 19.0 on."""
    if major < SERIES_19:
        return OPTION_GROUPS
    groups = []
    for title, options in OPTION_GROUPS:
        removed, added = CHANGES_19.get(title, (set(), []))
        options = [(flags, value) for flags, value in options if flags not in removed]
        for after, option in added:
            at = next(i for i, (flags, _) in enumerate(options) if flags == after)
            options.insert(at + 1, option)
        groups.append((title, options))
    return groups


def option_names(major: int = 17) -> list[str]:
    return ['--version', '-h', '--help'] + [name for _, options in option_groups(major)
                                            for flags, _ in options for name in flags]


def _is_addons_path(path: str) -> bool:
    for name in os.listdir(path):
        module = os.path.join(path, name)
        if os.path.isfile(os.path.join(module, '__init__.py')) and any(
                os.path.isfile(os.path.join(module, manifest)) for manifest in ('__manifest__.py', '__openerp__.py')):
            return True
    return False


# what 19.0 logs once the log is set up
deferred_warnings: list[tuple] = []


def _check_addons_path(option, opt, value, parser):
    paths = []
    for path in value.split(','):
        path = path.strip()
        absolute = os.path.abspath(os.path.expanduser(path))
        if parser.major >= SERIES_19 and not (os.path.isdir(absolute) and _is_addons_path(absolute)):
            problem = "no such directory" if not os.path.isdir(absolute) else "invalid addons directory"
            deferred_warnings.append((f"option %s, {problem} %r, skipped", opt, absolute))
            continue
        if not os.path.isdir(absolute):
            raise optparse.OptionValueError(f"option {opt}: no such directory: {absolute!r}")
        if not _is_addons_path(absolute):
            raise optparse.OptionValueError(f"option {opt}: the path {path!r} is not a valid addons directory")
        paths.append(absolute)
    parser.values.addons_path = ",".join(paths)


def _test_enable(option, opt, value, parser):
    if not parser.values.test_tags:
        parser.values.test_tags = "+standard"


def _add(group, flags: tuple, value_name: str | None, major: int) -> None:
    long_flag = flags[-1] if len(flags) == 1 else next(f for f in flags if f.startswith('--'))
    dest = DESTS.get(long_flag) or (value_name.lower() if value_name else long_flag[2:].replace('-', '_'))
    if flags == ('--addons-path',):
        group.add_option(*flags, dest=dest, action="callback", callback=_check_addons_path, nargs=1, type="string")
    elif flags == ('--test-enable',):
        group.add_option(*flags, dest=dest, action="callback", callback=_test_enable)
    elif flags == ('--with-demo',):
        group.add_option(*flags, dest='with_demo', action="store_true")
    elif flags == ('--without-demo',) and major >= SERIES_19:
        group.add_option(*flags, dest='without_demo', metavar=value_name)
    elif flags in (('--log-web',), ('--log-sql',)):
        group.add_option(*flags, dest='log_handler', action="append_const",
                         const='odoo.http:DEBUG' if flags == ('--log-web',) else 'odoo.sql_db:DEBUG')
    elif flags == ('--log-handler',):
        group.add_option(*flags, dest=dest, action="append", metavar=value_name)
    elif value_name is None:
        group.add_option(*flags, dest=dest, action="store_false" if dest in ('http_enable', 'list_db')
                         else "store_true")
    elif dest in CHOICES:
        group.add_option(*flags, dest=dest, type="choice", choices=CHOICES[dest], metavar=value_name)
    else:
        group.add_option(*flags, dest=dest, type="int" if dest in INTEGERS else "string", metavar=value_name)


def parser(prog: str, version: str, major: int) -> optparse.OptionParser:
    usage = "%prog [options]"
    if major >= SERIES_19:  # "odoo-bin [--addons-path=PATH,...] server [options]"
        name, _, command = prog.partition(' ')
        prog, usage = name, f"%prog [--addons-path=PATH,...] {command} [options]"
    result = optparse.OptionParser(prog=prog, usage=usage, version=f"Odoo Server {version}")
    result.major = major
    for title, options in option_groups(major):
        group = optparse.OptionGroup(result, title)
        for flags, value_name in options:
            _add(group, flags, value_name, major)
        result.add_option_group(group)
    return result


def parse(opts: optparse.OptionParser, args: list[str]) -> dict:
    """The options as a dict, with real Odoo's defaults and its refusal of
    anything left over."""
    if opts.major >= SERIES_19:  # a bare --without-demo means --without-demo=True
        args = [f'{arg}=True' if arg == '--without-demo' and (i == len(args) - 1 or args[i + 1].startswith('-'))
                else arg for i, arg in enumerate(args)]
    values, rest = opts.parse_args(args)
    if rest:
        opts.error(f"unrecognized parameters: '{' '.join(rest)}'")
    config = {key: value for key, value in vars(values).items()}
    for key, default in DEFAULTS.items():
        if config.get(key) is None:
            config[key] = default
    config['log_handler'] = list(config['log_handler'] or [])
    config['init'] = dict.fromkeys(config['init'].split(','), 1) if config.get('init') else {}
    config['update'] = dict.fromkeys(config['update'].split(','), 1) if config.get('update') else {}
    config['test_enable'] = bool(config.get('test_tags'))
    if opts.major >= SERIES_19:
        config['with_demo'] = _with_demo(config.get('with_demo'), config.pop('without_demo', None))
        if config['test_enable']:
            config['stop_after_init'] = True
        if 'all' in config['update']:
            config['update'] = {'base': 1}
    if ',' in (config.get('db_name') or '') and (config['init'] or config['update']):
        opts.error("Cannot use -i/--init or -u/--update with multiple databases in the -d/--database/db_name")
    return config


def _with_demo(with_demo, without_demo) -> bool:
    if without_demo is None:
        return bool(with_demo)
    if without_demo.lower() in ('1', 'yes', 'true', 'on'):
        return False
    if without_demo.lower() in ('0', 'no', 'false', 'off'):
        return True
    deferred_warnings.append(("option %s: since 19.0, invalid boolean value: %r, assume %s", '--without-demo',
                              without_demo, without_demo != 'None'))
    return without_demo == 'None'


def default_data_dir() -> str:
    """Where real Odoo keeps its data without --data-dir (appdirs' user data dir)."""
    home = os.path.expanduser('~')
    if not os.path.isdir(home):
        return '/var/lib/odoo'
    base = os.environ.get('XDG_DATA_HOME') or os.path.join(home, '.local', 'share')
    return os.path.join(base, 'Odoo')


def program(command: str) -> str:
    return f'{os.path.basename(sys.argv[0])} {command}'
