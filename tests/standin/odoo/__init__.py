"""The stand-in `odoo` package: a test double of Odoo's command line, log,
tests, tables and filestore for the subset OdooOps uses (tests/standin/README.md).
It runs no real Odoo code and imports no module it installs."""
