"""A module's tests, read and never run: each tests/test_*.py that the
module's tests/__init__.py imports is parsed with ast, its test classes (those
deriving from Odoo's test cases) and their test_* methods are found, and each
outcome is decided from the method body (README.md: "Test outcomes"). Results
are logged as real Odoo 17.0's test runner logs them (odoo/tests/result.py)."""

from __future__ import annotations

import ast
import builtins
import logging
import os
import re
import time
from dataclasses import dataclass, field

ODOO_CASES = {'BaseCase', 'TransactionCase', 'SingleTransactionCase', 'SavepointCase', 'HttpCase'}
SPEC = re.compile(r'^([+-]?)(\*|\w*)(?:\/([\w\/]*(?:.py)?))?(?::(\w*))?(?:\.(\w*))?$')
_selector_logger = logging.getLogger('odoo.tests.tag_selector')
_gc_logger = logging.getLogger('odoo.addons.base.models.ir_attachment')


@dataclass
class Test:
    module: str
    file: str           # absolute path of the test file
    file_module: str    # odoo.addons.<module>.tests.<file>
    cls: str
    method: str
    tags: set
    sequence: int
    outcome: str        # pass, fail, error, skip
    lineno: int = 0
    line: str = ''
    message: str = ''   # failure/error text or skip reason


@dataclass
class Result:
    failures: int = 0
    errors: int = 0
    run: int = 0
    skipped: int = 0
    stats: dict = field(default_factory=dict)   # module -> [entries, seconds, queries]

    def ok(self) -> bool:
        return self.failures == self.errors == 0

    def update(self, other: Result) -> None:
        self.failures += other.failures
        self.errors += other.errors
        self.run += other.run
        self.skipped += other.skipped
        for module, (entries, seconds, queries) in other.stats.items():
            mine = self.stats.setdefault(module, [0, 0.0, 0])
            mine[0] += entries
            mine[1] += seconds
            mine[2] += queries

    def __str__(self):
        return f'{self.failures} failed, {self.errors} error(s) of {self.run} tests'


class Selector:
    """--test-tags as Odoo reads it: [-][tag][/module][:class][.method], comma-separated."""

    def __init__(self, spec: str):
        self.include, self.exclude = set(), set()
        for item in {t.strip() for t in spec.split(',') if t.strip()}:
            match = SPEC.match(item)
            if not match:
                _selector_logger.error('Invalid tag %s', item)
                continue
            sign, tag, module, klass, method = match.groups()
            include = sign != '-'
            if not tag and include:
                tag = 'standard'
            elif not tag or tag == '*':
                tag = None
            path = None
            if module and module.endswith('.py'):
                path, module = module[:-3].replace('/', '.'), None
            (self.include if include else self.exclude).add((tag, module, klass, method, path))
        if self.exclude and not self.include:
            self.include.add(('standard', None, None, None, None))

    def check(self, test: Test) -> bool:
        tags = test.tags | {test.module}

        def matching(spec):
            tag, module, klass, method, path = spec
            return not ((tag and tag not in tags) or (path and not test.file_module.endswith(path))
                        or (not path and module and module != test.module) or (klass and klass != test.cls)
                        or (method and method != test.method))

        return not any(matching(s) for s in self.exclude) and any(matching(s) for s in self.include)


def _names(node) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f'{_names(node.value)}.{node.attr}'
    return ''


def _imports(tree: ast.Module, package: str) -> dict:
    """Local name -> dotted origin, from the file's imports."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            origin = node.module or ''
            if node.level:
                parts = package.split('.')[:-node.level]
                origin = '.'.join(parts + ([node.module] if node.module else []))
            for alias in node.names:
                found[alias.asname or alias.name] = f'{origin}.{alias.name}'
        elif isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.split('.')[0]
                found[local] = alias.name if alias.asname else local
    return found


def _exception_name(node, imports: dict) -> str:
    """How a traceback's last line names the exception a `raise` raises."""
    name = _names(node.func if isinstance(node, ast.Call) else node)
    head, _, rest = name.partition('.')
    if not rest and hasattr(builtins, name):
        return name
    origin = imports.get(head)
    if origin:
        return f'{origin}.{rest}' if rest else origin
    return name


def _message(call) -> str:
    """str() of an exception built from literal arguments ('' for none)."""
    if not isinstance(call, ast.Call) or not call.args:
        return ''
    try:
        values = [ast.literal_eval(a) for a in call.args]
    except ValueError:
        return '<not a literal>'
    return str(values[0]) if len(values) == 1 else str(tuple(values))


def _outcome(method: ast.FunctionDef, imports: dict, lines: list[str]) -> tuple:
    """The first statement directly in the body that decides: a raise (error),
    self.fail(...) (fail), self.skipTest(...) (skip); else a pass."""
    for stmt in method.body:
        text = lines[stmt.lineno - 1].strip()
        if isinstance(stmt, ast.Raise):
            if stmt.exc is None:
                return 'error', stmt.lineno, text, 'RuntimeError: No active exception to reraise'
            name, message = _exception_name(stmt.exc, imports), _message(stmt.exc)
            return 'error', stmt.lineno, text, f'{name}: {message}' if message else name
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            called = _names(stmt.value.func)
            if called == 'self.fail':
                message = _message(stmt.value) if stmt.value.args else 'None'
                return 'fail', stmt.lineno, text, f'AssertionError: {message}'
            if called == 'self.skipTest':
                return 'skip', stmt.lineno, text, _message(stmt.value)
    return 'pass', 0, '', ''


def _tags(cls: ast.ClassDef) -> set:
    tags = {'standard', 'at_install'}
    for decorator in cls.decorator_list:
        if isinstance(decorator, ast.Call) and _names(decorator.func).split('.')[-1] == 'tagged':
            for arg in decorator.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    if arg.value.startswith('-'):
                        tags.discard(arg.value[1:])
                    else:
                        tags.add(arg.value)
    return tags


def _file_tests(module: str, path: str) -> list[Test]:
    with open(path, encoding='utf-8') as f:
        source = f.read()
    tree, lines = ast.parse(source), source.splitlines()
    stem = os.path.splitext(os.path.basename(path))[0]
    file_module = f'odoo.addons.{module}.tests.{stem}'
    imports = _imports(tree, file_module)
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}

    def is_case(cls, seen=()):
        for base in cls.bases:
            name = _names(base).split('.')[-1]
            if name in ODOO_CASES or (name in classes and name not in seen and is_case(classes[name], (*seen, name))):
                return True
        return False

    def methods(cls, seen=()):
        found = {}
        for base in cls.bases:
            name = _names(base).split('.')[-1]
            if name in classes and name not in seen:
                found.update(methods(classes[name], (*seen, name)))
        found.update({n.name: n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name.startswith('test')})
        return found

    def sequence(cls):
        for item in cls.body:
            if isinstance(item, ast.Assign) and any(isinstance(t, ast.Name) and t.id == 'test_sequence'
                                                   for t in item.targets):
                return ast.literal_eval(item.value)
        return 0

    tests = []
    for name in sorted(classes):
        cls = classes[name]
        if not is_case(cls):
            continue
        for method_name, method in sorted(methods(cls).items()):
            outcome, lineno, line, message = _outcome(method, imports, lines)
            tests.append(Test(module, path, file_module, name, method_name, _tags(cls), sequence(cls),
                              outcome, lineno, line, message))
    return tests


def module_tests(module: str, module_path: str) -> list[Test]:
    """Tests of the files tests/__init__.py imports (as Odoo's loader finds
    test_* submodules of the tests package), files in name order."""
    init = os.path.join(module_path, 'tests', '__init__.py')
    if not os.path.isfile(init):
        return []
    with open(init, encoding='utf-8') as f:
        tree = ast.parse(f.read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names.update([node.module] if node.module else [a.name for a in node.names])
    tests = []
    for name in sorted(n for n in names if n.startswith('test_')):
        path = os.path.join(module_path, 'tests', f'{name}.py')
        if os.path.isfile(path):
            tests.extend(_file_tests(module, path))
    return tests


def run(tests: list[Test], filestore_files: int) -> Result:
    """Log the tests as Odoo's runner would have run them; return the counts."""
    result = Result()
    tests = sorted(tests, key=lambda t: t.sequence)  # stable: keeps the loader's order
    classes = []
    for test in tests:
        logger = logging.getLogger(test.file_module)
        if (test.file_module, test.cls) not in classes:
            if classes:
                _gc(filestore_files if len(classes) == 1 else 0)
            classes.append((test.file_module, test.cls))
        t0 = time.time()
        result.run += 1
        description = f'{test.cls}.{test.method}'
        logger.info('Starting %s ...', description)
        if test.outcome == 'skip':
            result.skipped += 1
            logger.info('skipped %s : %s', description, test.message)
        elif test.outcome in ('fail', 'error'):
            if test.outcome == 'fail':
                result.failures += 1
            else:
                result.errors += 1
            traceback = (f'Traceback (most recent call last):\n  File "{test.file}", line {test.lineno}, '
                         f'in {test.method}\n    {test.line}\n{test.message}\n')
            logger.info('=' * 70)
            logger.error("%s: %s\n%s", 'FAIL' if test.outcome == 'fail' else 'ERROR', description, traceback)
        stat = result.stats.setdefault(test.module, [0, 0.0, 0])
        stat[0] += 1
        stat[1] += time.time() - t0
        stat[2] += 2
    if classes:
        _gc(filestore_files if len(classes) == 1 else 0)
    for module in {t.module for t in tests}:
        result.stats[module][0] += 2 * len({c for (m, c) in classes if m.startswith(f'odoo.addons.{module}.')})
    return result


def _gc(checked: int) -> None:
    _gc_logger.info('filestore gc %d checked, 0 removed', checked)
