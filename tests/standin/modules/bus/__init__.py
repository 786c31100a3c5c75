# The stand-in's bus module (tests/standin/README.md): its manifest and data
# files are read by the stand-in odoo-bin; no Python of it is ever imported.
