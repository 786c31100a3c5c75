"""The log as real Odoo writes it: on stderr (or --logfile), one record per
line `2026-12-02 16:50:14,140 14639 INFO dbname odoo.modules.loading: message `
(the trailing space is Odoo's empty perf field; werkzeug's request lines carry
query count, query time and remaining time there), tracebacks as continuation
lines, and --log-level / --log-handler setting logger levels as real Odoo does."""

from __future__ import annotations

import logging
import os
import threading

FORMAT = '%(asctime)s %(pid)s %(levelname)s %(dbname)s %(name)s: %(message)s %(perf_info)s'
RUNBOT = 25  # real Odoo's level between INFO and WARNING, shown as INFO
logging.addLevelName(RUNBOT, "INFO")

_context = threading.local()
_process_db = {'name': '?'}

LEVEL_LOGGERS = {
    'debug_rpc_answer': ['odoo:DEBUG', 'odoo.sql_db:INFO', 'odoo.http.rpc:DEBUG'],
    'debug_rpc': ['odoo:DEBUG', 'odoo.sql_db:INFO', 'odoo.http.rpc.request:DEBUG'],
    'debug': ['odoo:DEBUG', 'odoo.sql_db:INFO'],
    'debug_sql': ['odoo.sql_db:DEBUG'],
    'runbot': ['odoo:RUNBOT', 'werkzeug:WARNING'],
    'warn': ['odoo:WARNING', 'werkzeug:WARNING'],
    'error': ['odoo:ERROR', 'werkzeug:ERROR'],
    'critical': ['odoo:CRITICAL', 'werkzeug:CRITICAL'],
}


def set_db(name: str | None) -> None:
    """The database name of the records that follow, in this thread and in
    threads that have not named their own ('?' when none)."""
    _process_db['name'] = name or '?'


def set_request_db(name: str | None) -> None:
    _context.dbname = name or '?'


def set_perf(perf: str | None) -> None:
    _context.perf = perf


class _Formatter(logging.Formatter):
    def format(self, record):
        record.pid = os.getpid()
        record.dbname = getattr(_context, 'dbname', None) or _process_db['name']
        return super().format(record)


class _Perf(logging.Filter):
    def filter(self, record):
        perf = getattr(_context, 'perf', None)
        record.perf_info = perf if perf else "- - -"
        _context.perf = None
        return True


def init(config: dict) -> None:
    old_factory = logging.getLogRecordFactory()

    def factory(*args, **kwargs):
        record = old_factory(*args, **kwargs)
        record.perf_info = ""
        return record

    logging.setLogRecordFactory(factory)
    if config.get('logfile'):
        os.makedirs(os.path.dirname(os.path.abspath(config['logfile'])), exist_ok=True)
        handler: logging.Handler = logging.FileHandler(config['logfile'])
    else:
        handler = logging.StreamHandler()
    handler.setFormatter(_Formatter(FORMAT))
    logging.getLogger().addHandler(handler)
    logging.getLogger('werkzeug').addFilter(_Perf())
    levels = [':INFO', *LEVEL_LOGGERS.get(config.get('log_level') or 'info', []), *config.get('log_handler', [])]
    for item in levels:
        name, _, level = item.strip().partition(':')
        logging.getLogger(name or None).setLevel(RUNBOT if level == 'RUNBOT' else getattr(logging, level, logging.INFO))
