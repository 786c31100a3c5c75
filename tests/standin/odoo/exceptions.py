"""The exceptions the stand-in raises where real Odoo raises its own, so that a
traceback's last line reads as real Odoo's does (odoo.exceptions.UserError: ...)."""


class UserError(Exception):
    """An error real Odoo shows to a user: a module that cannot be installed, for one."""
