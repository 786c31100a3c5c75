"""The commands of odoo-bin the stand-in knows: server (the default),
neutralize and help; any other is refused as real Odoo refuses an unknown one."""

from __future__ import annotations

import logging
import optparse
import os
import sys

from . import db, server

_neutralize_logger = logging.getLogger('odoo.cli.neutralize')
_finished_logger = logging.getLogger('odoo.modules.neutralize')
COMMANDS = {'help': 'Display the list of available commands',
            'neutralize': 'Neutralize a production database for testing: no emails sent, etc.',
            'server': 'Start the odoo server (default command)'}


def main() -> None:
    args = sys.argv[1:]
    if len(args) > 1 and args[0].startswith('--addons-path=') and not args[1].startswith('-'):
        args = [*args[1:], args[0]]
    command = 'server'
    if args and not args[0].startswith('-'):
        command, args = args[0], args[1:]
    if command == 'server':
        server.main(args)
    elif command == 'neutralize':
        neutralize(args)
    elif command == 'help':
        name = os.path.basename(sys.argv[0])
        listing = "\n    ".join(f"    {n.ljust(12)}{doc}" for n, doc in sorted(COMMANDS.items()))
        print(f"Odoo CLI, use '{name} --help' for regular server options.\n\nAvailable commands:\n    {listing}\n\n"
              f"Use '{name} <command> --help' for individual command help.")
    else:
        sys.exit(f'Unknown command {command!r}')


def neutralize(args: list[str]) -> None:
    """Run the data/neutralize.sql of every installed module (--stdout: print
    them in BEGIN; ... COMMIT; instead)."""

    def stdout_option(parser):
        group = optparse.OptionGroup(parser, "Neutralize", "Neutralize the database specified by the `-d` argument.")
        group.add_option("--stdout", action="store_true", dest="to_stdout",
                         help="Output the neutralization SQL instead of applying it")
        parser.add_option_group(group)

    config, values = server.configure('neutralize', args, stdout_option)
    dbname = config.get('db_name')
    if not dbname:
        _neutralize_logger.error('Neutralize command needs a database name. Use "-d" argument')
        sys.exit(1)
    if not values.to_stdout:
        _neutralize_logger.info("Starting %s database neutralization", dbname)
    try:
        conn = db.connect(config, dbname)
        with conn, conn.cursor() as cr:
            cr.execute("SELECT name FROM ir_module_module WHERE state IN ('installed', 'to upgrade', 'to remove')")
            scripts = []
            for (name,) in cr.fetchall():
                for path in config['addons_paths']:
                    script = os.path.join(path, name, 'data', 'neutralize.sql')
                    if os.path.isfile(script):
                        with open(script, encoding='utf-8') as f:
                            scripts.append(f.read().strip())
                        break
            if values.to_stdout:
                print('BEGIN;')
                for query in scripts:
                    print(query.rstrip(";") + ";")
                print("COMMIT;")
            else:
                for query in scripts:
                    cr.execute(query)
                _finished_logger.info("Neutralization finished")
        conn.close()
    except Exception:
        _neutralize_logger.critical("An error occurred during the neutralization. THE DATABASE IS NOT NEUTRALIZED!")
        sys.exit(1)


