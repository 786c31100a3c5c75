"""Version of this stand-in Odoo tree (a test double: see tests/standin/README.md).

Laid out as a real Odoo's odoo/release.py is, so that whatever reads a tree's
version reads this one the same way. Tests make trees of other versions by
rewriting the version_info line (to 16.0, 18.0, 19.0 ...); odoo-bin reads it at
run time."""

RELEASE_LEVELS = [ALPHA, BETA, RELEASE_CANDIDATE, FINAL] = ['alpha', 'beta', 'candidate', 'final']
RELEASE_LEVELS_DISPLAY = {ALPHA: ALPHA, BETA: BETA, RELEASE_CANDIDATE: 'rc', FINAL: ''}

# (MAJOR, MINOR, MICRO, RELEASE_LEVEL, SERIAL, SUFFIX), as real Odoo has it
version_info = (17, 0, 0, 'final', 0, '')
version = ('.'.join(str(s) for s in version_info[:2]) + RELEASE_LEVELS_DISPLAY[version_info[3]]
           + str(version_info[4] or '') + version_info[5])
series = serie = major_version = '.'.join(str(s) for s in version_info[:2])

product_name = 'Odoo'
description = 'Odoo Server'
license = 'LGPL-3'
