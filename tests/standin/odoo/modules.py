"""Modules as real Odoo finds them: a folder with a __manifest__.py (a dict
literal, read with ast, never run) in the addons path; versions prefixed with
the series as Odoo stores them; the dependency graph in Odoo's loading order
(by depth, then by name)."""

from __future__ import annotations

import ast
import logging
import os
import re

MANIFEST_NAMES = ('__manifest__.py', '__openerp__.py')
DEFAULT_MANIFEST = {
    'application': False, 'author': 'Odoo S.A.', 'auto_install': False, 'category': 'Uncategorized',
    'data': [], 'demo': [], 'demo_xml': [], 'init_xml': [], 'update_xml': [], 'depends': [],
    'description': '', 'installable': True, 'license': 'LGPL-3', 'name': False, 'sequence': 100,
    'summary': '', 'version': '1.0', 'website': '',
}
_logger = logging.getLogger('odoo.modules.module')
_graph_logger = logging.getLogger('odoo.modules.graph')


class Modules:
    """The modules of an addons path, for one series."""

    def __init__(self, addons_paths: list[str], series: str):
        self.paths = addons_paths
        self.series = series
        self._manifests: dict[str, dict | None] = {}

    def names(self) -> list[str]:
        found = set()
        for path in self.paths:
            if not os.path.exists(path):
                _logger.warning("addons path does not exist: %s", path)
                continue
            found.update(name for name in os.listdir(path)
                         if any(os.path.isfile(os.path.join(path, name, m)) for m in MANIFEST_NAMES))
        return sorted(found)

    def path(self, name: str) -> str | None:
        for path in self.paths:
            if any(os.path.isfile(os.path.join(path, name, m)) for m in MANIFEST_NAMES):
                return os.path.join(path, name)
        return None

    def manifest(self, name: str) -> dict | None:
        if name not in self._manifests:
            self._manifests[name] = self._load(name)
        return self._manifests[name]

    def _load(self, name: str) -> dict | None:
        path = self.path(name)
        if not path:
            return None
        file = next(os.path.join(path, m) for m in MANIFEST_NAMES if os.path.isfile(os.path.join(path, m)))
        manifest = dict(DEFAULT_MANIFEST, depends=[], data=[], demo=[])
        with open(file, encoding='utf-8') as f:
            manifest.update(ast.literal_eval(f.read()))
        if manifest['auto_install'] is True:
            manifest['auto_install'] = set(manifest['depends'])
        elif isinstance(manifest['auto_install'], (list, tuple, set)):
            manifest['auto_install'] = set(manifest['auto_install'])
        try:
            manifest['version'] = adapt_version(manifest['version'], self.series)
        except ValueError as e:
            if manifest.get('installable', True):
                raise ValueError(f"Module {name}: invalid manifest") from e
        manifest['path'] = path
        return manifest

    def has_models(self, name: str) -> bool:
        """Whether the module's Python declares a model (a class with _name or
        _inherit), as those that make Odoo create or update tables."""
        root = self.path(name)
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if d not in ('tests', 'static', '__pycache__')]
            for file in files:
                if file.endswith('.py') and file not in MANIFEST_NAMES:
                    with open(os.path.join(folder, file), encoding='utf-8') as f:
                        tree = ast.parse(f.read())
                    if any(isinstance(node, ast.ClassDef) and any(
                            isinstance(item, ast.Assign) and any(
                                isinstance(t, ast.Name) and t.id in ('_name', '_inherit') for t in item.targets)
                            for item in node.body) for node in ast.walk(tree)):
                        return True
        return False


def adapt_version(version: str, series: str) -> str:
    if version == series or not version.startswith(series + '.'):
        base_version, version = version, f'{series}.{version}'
    else:
        base_version = version[len(series) + 1:]
    if not re.match(r"^[0-9]+\.[0-9]+(?:\.[0-9]+)?$", base_version):
        raise ValueError(f"Invalid version {base_version!r}. Modules should have a version in format `x.y`, `x.y.z`,"
                         f" `{series}.x.y` or `{series}.x.y.z`.")
    return version


class Graph(dict):
    """Module name -> depth; iterated as Odoo loads: depth by depth, by name."""

    def add(self, modules: Modules, names: list[str]) -> None:
        pending = []
        for name in names:
            manifest = modules.manifest(name)
            if manifest and manifest['installable']:
                pending.append((name, manifest['depends']))
            else:
                _graph_logger.warning('module %s: not installable, skipped', name)
        progress = True
        while pending and progress:
            progress = False
            for name, depends in list(pending):
                if all(dep in self for dep in depends):
                    self[name] = 1 + max((self[dep] for dep in depends), default=-1)
                    pending.remove((name, depends))
                    progress = True
        for name, depends in pending:
            _graph_logger.info('module %s: Unmet dependencies: %s', name,
                               ', '.join(d for d in depends if d not in self))

    def __iter__(self):
        return iter(sorted(self.keys(), key=lambda name: (self[name], name)))
