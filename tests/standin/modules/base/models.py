"""What the stand-in's base declares, read (never run) to know that installing
base creates tables; the tables themselves are made by odoo/db.py."""


class Models:
    _name = 'ir.module.module'
