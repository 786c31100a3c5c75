"""Modules of the stand-in tree's own odoo/addons (base), as real Odoo keeps base there."""
