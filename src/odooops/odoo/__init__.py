"""What OdooOps knows of Odoo: sources, addons, databases, odoo-bin and its log."""
