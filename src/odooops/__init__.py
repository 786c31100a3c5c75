"""OdooOps: a self-hosted control plane for Odoo projects."""

__version__ = "0.1.0"
