"""Odoo addons discovery and the dependency graph: modules found in any folder
of a checkout (submodules included) as Odoo.sh finds them, manifests read and
never run, and every graph problem reported at once. The last test runs over
real Odoo trees named by ODOOOPS_TEST_ODOO_SOURCES (`17.0=/path[,16.0=/path]`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import git, make_repo
from odoo_world import ODOO_SOURCES, standin_tree
from odooops.odoo import addons
from odooops.odoo.addons import AddonsError


def module(root: Path, folder: str, **manifest) -> Path:
    """A module at root/folder with this manifest (name and depends filled in)."""
    path = root / folder
    path.mkdir(parents=True)
    (path / "__init__.py").write_text("")
    manifest = {"name": path.name.title(), "depends": ["base"], **manifest}
    (path / "__manifest__.py").write_text(repr(manifest) + "\n")
    return path


def write_manifest(root: Path, folder: str, text: str) -> Path:
    path = root / folder
    path.mkdir(parents=True)
    (path / "__init__.py").write_text("")
    (path / "__manifest__.py").write_text(text)
    return path


def odoo_tree(root: Path) -> Path:
    """A tiny Odoo: base and web in odoo/addons, the rest in addons/."""
    module(root, "odoo/addons/base", depends=[])
    module(root, "odoo/addons/web", auto_install=True)
    module(root, "addons/mail", depends=["base", "web"])
    module(root, "addons/sale", depends=["mail"])
    module(root, "addons/stock", depends=["mail"])
    module(root, "addons/sale_stock", depends=["sale", "stock"], auto_install=True)
    return root


def collected(tmp_path: Path, project: Path, *extra: tuple[Path, str]) -> addons.Addons:
    odoo = odoo_tree(tmp_path / "odoo")
    return addons.collect([(odoo / "odoo/addons", "odoo"), (odoo / "addons", "odoo"), *extra, (project, "project")])


def problems(error: pytest.ExceptionInfo[AddonsError]) -> list[str]:
    assert str(error.value).splitlines() == error.value.problems
    return error.value.problems


def test_modules_are_found_in_nested_folders_in_addons_path_order(tmp_path):
    module(tmp_path, "addons/sale_custom")
    module(tmp_path, "vendor/group/report_x")
    module(tmp_path, "top")
    module(tmp_path, "addons/crm_custom")
    found = addons.discover(tmp_path, "project")
    assert [(m.name, m.path.relative_to(tmp_path).as_posix()) for m in found] == [
        ("crm_custom", "addons/crm_custom"), ("sale_custom", "addons/sale_custom"),
        ("top", "top"), ("report_x", "vendor/group/report_x")]
    assert {m.origin for m in found} == {"project"}
    assert found[0].manifest == {"name": "Crm_Custom", "depends": ["base"]}


def test_a_folder_is_grouped_with_its_addons_path_even_when_the_walk_meets_it_twice(tmp_path):
    module(tmp_path, "a_mod")
    module(tmp_path, "b/inner")
    module(tmp_path, "c_mod")
    found = addons.collect([(tmp_path, "project")])
    assert found.paths == [tmp_path, tmp_path / "b"]
    assert [m.name for m in addons.discover(tmp_path, "project")] == ["a_mod", "c_mod", "inner"]


def test_modules_of_a_git_submodule_are_found_like_any_folder(tmp_path):
    oca = tmp_path / "oca"
    make_repo(oca, {"web_responsive/__init__.py": "", "web_responsive/__manifest__.py": "{'depends': ['web']}"})
    project = make_repo(tmp_path / "project", {"shop/__init__.py": "", "shop/__manifest__.py": "{'name': 'Shop'}"})
    git(project, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(oca), "vendor/oca")
    assert (project / "vendor/oca/.git").is_file()
    assert [m.name for m in addons.discover(project, "project")] == ["shop", "web_responsive"]


def test_dot_folders_are_neither_modules_nor_searched(tmp_path):
    module(tmp_path, ".git/modules/hidden")
    module(tmp_path, ".venv/lib/pkg")
    module(tmp_path, "addons/.draft")
    write_manifest(tmp_path, ".broken", "{{{")  # never read either
    module(tmp_path, "addons/seen")
    assert [m.name for m in addons.discover(tmp_path, "project")] == ["seen"]


def test_a_module_folder_is_not_searched_for_modules(tmp_path):
    module(tmp_path, "shop")
    module(tmp_path, "shop/tests/fixtures/inner")
    write_manifest(tmp_path, "shop/static/broken", "not a manifest (")  # would fail if it were read
    assert [m.path for m in addons.discover(tmp_path, "project")] == [tmp_path / "shop"]


def test_the_repository_root_cannot_be_a_module(tmp_path):
    (tmp_path / "__manifest__.py").write_text("{'name': 'Root'}")
    module(tmp_path, "inner")
    with pytest.raises(AddonsError) as error:
        addons.discover(tmp_path, "project")
    [problem] = problems(error)
    assert "root is itself a module" in problem and "folder of its own" in problem


def test_symbolic_links_are_followed_but_not_round_a_loop(tmp_path):
    module(tmp_path, "addons/shop")
    module(tmp_path, "elsewhere/tools/report_x")
    (tmp_path / "addons/loop").symlink_to(tmp_path / "addons", target_is_directory=True)
    (tmp_path / "addons/up").symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / "addons/tools").symlink_to(tmp_path / "elsewhere/tools", target_is_directory=True)
    (tmp_path / "elsewhere/tools/back").symlink_to(tmp_path / "addons", target_is_directory=True)
    found = addons.collect([(tmp_path, "project")])
    assert {n: m.path.relative_to(tmp_path).as_posix() for n, m in found.modules.items()} == {
        "shop": "addons/shop", "report_x": "addons/tools/report_x"}
    assert found.shadowed == []  # the folder is entered once, by the link the walk met first


def test_a_syntax_error_names_the_file_and_line(tmp_path):
    write_manifest(tmp_path, "addons/x", "{\n    'name': 'X',\n    'depends': ['base'\n    'version': '1.0',\n}\n")
    with pytest.raises(AddonsError) as error:
        addons.discover(tmp_path, "project")
    [problem] = problems(error)
    assert problem.startswith("addons/x/__manifest__.py, line ")
    assert "not valid Python" in problem


def test_a_manifest_is_never_run(tmp_path):
    pwned = tmp_path / "pwned"
    run_me = f"__import__('pathlib').Path({str(pwned)!r}).touch()"  # what running the manifest would do
    text = f"{{\n    'name': 'X',\n    'depends': ['base'],\n    'data': {run_me},\n}}\n"
    write_manifest(tmp_path, "addons/x", text)
    with pytest.raises(AddonsError) as error:
        addons.discover(tmp_path, "project")
    assert not pwned.exists()
    [problem] = problems(error)
    assert problem.startswith("addons/x/__manifest__.py, line 4: __import__('pathlib')")
    assert "is not a literal" in problem


def test_a_manifest_is_one_dict_literal(tmp_path):
    write_manifest(tmp_path, "a", "['base']\n")
    write_manifest(tmp_path, "b", "{'name': 'B'}\nprint('hi')\n")
    write_manifest(tmp_path, "c", "{'depends': ['base', WEB]}\n")
    write_manifest(tmp_path, "d", "{**{'name': 'D'}}\n")
    with pytest.raises(AddonsError) as error:
        addons.discover(tmp_path, "project")
    assert problems(error) == [
        "a/__manifest__.py, line 1: a manifest is one dict literal and nothing else",
        "b/__manifest__.py, line 2: a manifest is one dict literal and nothing else",
        "c/__manifest__.py, line 1: WEB is not a literal (a manifest is read, never run)",
        "d/__manifest__.py, line 1: ** is not a literal (a manifest is read, never run)",
    ]


def test_manifest_keys_have_the_types_odoo_relies_on(tmp_path):
    write_manifest(tmp_path, "x", "{\n 'name': 3,\n 'depends': 'base',\n 'installable': 'yes',\n 'version': 1.0,\n}")
    write_manifest(tmp_path, "y", "{'depends': ['base'],\n 'auto_install': ['sale']}")
    with pytest.raises(AddonsError) as error:
        addons.discover(tmp_path, "project")
    assert problems(error) == [
        "x/__manifest__.py, line 2: 'name' must be a string, not int 3",
        "x/__manifest__.py, line 5: 'version' must be a string, not float 1.0",
        "x/__manifest__.py, line 4: 'installable' must be True or False, not str 'yes'",
        "x/__manifest__.py, line 3: 'depends' must be a list of module names, not str 'base'",
        "y/__manifest__.py, line 2: 'auto_install' names sale, missing from 'depends'",
    ]


def test_read_manifest_alone(tmp_path):
    path = write_manifest(tmp_path, "m", "# a comment\n{'name': 'M', 'depends': ('base',)}\n") / "__manifest__.py"
    assert addons.read_manifest(path) == {"name": "M", "depends": ("base",)}
    (path).write_text("{'name': open('x')}")
    with pytest.raises(AddonsError, match=r"^m/__manifest__.py, line 1: open\('x'\) is not a literal"):
        addons.read_manifest(path, tmp_path)


def test_collect_lists_the_problems_of_every_root(tmp_path):
    write_manifest(tmp_path / "extra", "bad_one", "{'name': f()}")
    write_manifest(tmp_path / "project", "bad-name", "{'name': 'Dash'}")
    write_manifest(tmp_path / "project", "bad_two", "{")
    with pytest.raises(AddonsError) as error:
        addons.collect([(tmp_path / "extra", "oca"), (tmp_path / "missing", "enterprise"),
                        (tmp_path / "project", "project")])
    found = problems(error)
    assert len(found) == 3
    assert found[0].startswith("enterprise: ") and found[0].endswith("missing is not a folder")
    assert found[1].startswith("bad-name: a module's folder is named with letters, digits and _ only")
    assert found[2].startswith("bad_two/__manifest__.py, line 1: not valid Python")


def test_a_folder_of_odoo_s_or_an_extra_repository_that_is_no_module_is_passed_over(tmp_path):
    """As Odoo does until something needs it; the project's own are errors."""
    write_manifest(tmp_path / "extra", "bad_one", "{'name': f()}")
    write_manifest(tmp_path / "extra", "bad-name", "{'name': 'Dash'}")
    write_manifest(tmp_path / "project", "needs_it", "{'depends': ['bad_one']}")
    found = addons.collect([(tmp_path / "project", "project"), (tmp_path / "extra", "oca")])
    assert set(found.modules) == {"needs_it"}
    assert found.ignored == ["oca: bad-name: a module's folder is named with letters, digits and _ only, as Odoo "
                             "imports it as odoo.addons.<folder>",
                             "oca: bad_one/__manifest__.py, line 1: f() is not a literal (a manifest is read, never run)"]
    with pytest.raises(AddonsError, match="module needs_it needs bad_one, found in no addons path"):
        addons.check(found, ["needs_it"])


def test_an_addons_path_needs_one_module_with_an_init(tmp_path):
    (tmp_path / "data_only").mkdir()
    (tmp_path / "data_only/__manifest__.py").write_text("{'data': ['x.xml']}")
    with pytest.raises(AddonsError, match=r"^\.: odoo-bin refuses this addons path"):
        addons.discover(tmp_path, "project")


def test_the_first_of_a_name_wins_and_the_others_are_shadowed(tmp_path):
    project = tmp_path / "project"
    first = module(project, "web")
    module(project, "shop", depends=["web"])
    module(tmp_path / "oca", "shop")
    found = collected(tmp_path, project, (tmp_path / "oca", "oca"))
    assert found.modules["web"].origin == "odoo"
    assert found.modules["shop"].origin == "oca"
    assert [(m.name, m.origin) for m in found.shadowed] == [("shop", "project"), ("web", "project")]
    assert found.shadowed[1].path == first
    odoo = tmp_path / "odoo"
    assert found.paths == [odoo / "odoo/addons", odoo / "addons", tmp_path / "oca", project]


def test_select_own_all_and_names(tmp_path):
    project = tmp_path / "project"
    module(project, "shop")
    module(project, "shop_report", depends=["shop"])
    module(project, "old", installable=False)
    module(tmp_path / "oca", "web_responsive", depends=["web"])
    module(tmp_path / "oca", "oca_old", installable=False)
    found = collected(tmp_path, project, (tmp_path / "oca", "oca"))
    assert addons.select(found) == ["shop", "shop_report"]
    assert addons.select(found, "own") == ["shop", "shop_report"]
    assert addons.select(found, "all") == ["shop", "shop_report", "web_responsive"]
    assert addons.select(found, ["sale", "shop", "sale"]) == ["sale", "shop"]
    assert addons.select(found, "shop_report, sale") == ["sale", "shop_report"]


def test_select_names_each_unknown_module_and_where_it_looked(tmp_path):
    project = tmp_path / "project"
    module(project, "shop")
    found = collected(tmp_path, project)
    with pytest.raises(AddonsError) as error:
        addons.select(found, ["shop", "nope", "gone"])
    assert [p.split(";")[0] for p in problems(error)] == [
        "module nope found in no addons path", "module gone found in no addons path"]
    assert str(project) in problems(error)[0] and str(tmp_path / "odoo/addons") in problems(error)[0]


def test_check_passes_for_a_sound_graph(tmp_path):
    project = tmp_path / "project"
    module(project, "shop", depends=["sale_stock"], version="17.0.1.0.0")
    found = collected(tmp_path, project)
    addons.check(found, ["shop"])
    addons.check(found, ["shop"], series="17.0")


def test_check_names_a_missing_dependency(tmp_path):
    project = tmp_path / "project"
    module(project, "sale_extra", depends=["sale_custom", "sale"])
    module(project, "other", depends=["nowhere"])
    found = collected(tmp_path, project)
    with pytest.raises(AddonsError) as error:
        addons.check(found, ["other", "sale_extra", "unknown"])
    assert sorted(problems(error)) == [
        "module other needs nowhere, found in no addons path",
        "module sale_extra needs sale_custom, found in no addons path",
        "module unknown found in no addons path",
    ]


def test_check_names_the_members_of_each_cycle_in_order(tmp_path):
    project = tmp_path / "project"
    module(project, "c_mod", depends=["a_mod"])
    module(project, "a_mod", depends=["b_mod"])
    module(project, "b_mod", depends=["c_mod", "sale"])
    module(project, "x_mod", depends=["y_mod"])
    module(project, "y_mod", depends=["x_mod"])
    module(project, "top", depends=["b_mod", "x_mod"])
    found = collected(tmp_path, project)
    with pytest.raises(AddonsError) as error:
        addons.check(found, ["top"])
    assert problems(error) == ["dependency cycle: a_mod → b_mod → c_mod → a_mod",
                               "dependency cycle: x_mod → y_mod → x_mod"]
    with pytest.raises(AddonsError, match="dependency cycle: x_mod → y_mod → x_mod"):
        addons.install_order(found, ["x_mod"])


def test_check_names_a_module_that_is_not_installable_and_who_needs_it(tmp_path):
    project = tmp_path / "project"
    module(project, "legacy", installable=False, depends=["never_looked_at"])
    module(project, "shop", depends=["legacy"])
    module(project, "shop_report", depends=["legacy", "shop"])
    found = collected(tmp_path, project)
    with pytest.raises(AddonsError) as error:
        addons.check(found, ["shop_report"])
    assert problems(error) == ["module legacy is not installable (its manifest says so), needed by shop, shop_report"]


def test_check_refuses_an_empty_selection(tmp_path):
    project = tmp_path / "project"
    module(project, "old", installable=False)
    found = collected(tmp_path, project)
    with pytest.raises(AddonsError, match=r"^the project has no installable module$"):
        addons.check(found, addons.select(found))


def test_check_needs_base(tmp_path):
    module(tmp_path, "shop", depends=[])
    found = addons.collect([(tmp_path, "project")])
    with pytest.raises(AddonsError) as error:
        addons.check(found, ["shop"])
    assert problems(error) == ["module base found in no addons path: Odoo installs it first in every database"]


def test_check_given_a_series_checks_versions_as_odoo_does(tmp_path):
    project = tmp_path / "project"
    module(project, "shop", version="16.0.1.0.0")
    found = collected(tmp_path, project)
    with pytest.raises(AddonsError, match=r"^module shop: version '16.0.1.0.0' is not x.y, x.y.z, 17.0.x.y"):
        addons.check(found, ["shop"], series="17.0")
    assert addons.adapt_version("1.2", "17.0") == "17.0.1.2"
    assert addons.adapt_version("17.0.1.2.3", "17.0") == "17.0.1.2.3"
    assert addons.adapt_version("17.0", "17.0") == "17.0.17.0"


def test_dependencies_are_what_the_targets_need_without_them(tmp_path):
    project = tmp_path / "project"
    module(project, "shop", depends=["sale"])
    module(project, "shop_report", depends=["shop", "stock"])
    module(project, "bare", depends=[])  # Odoo loads base first all the same
    found = collected(tmp_path, project)
    assert addons.dependencies(found, ["shop", "shop_report"]) == ["base", "mail", "sale", "stock", "web"]
    assert addons.dependencies(found, ["bare"]) == ["base"]
    assert addons.dependencies(found, ["base"]) == []


def test_install_order_is_odoos_depth_then_name(tmp_path):
    project = tmp_path / "project"
    module(project, "shop", depends=["sale_stock"])
    found = collected(tmp_path, project)
    assert addons.install_order(found, ["shop"]) == ["base", "web", "mail", "sale", "stock", "sale_stock", "shop"]


def test_module_properties_and_their_odoo_defaults(tmp_path):
    project = tmp_path / "project"
    write_manifest(project, "bare", "{}")
    module(project, "auto", depends=["base", "web"], auto_install=["web"], version="2.1")
    module(project, "always", auto_install=[])
    found = collected(tmp_path, project)
    bare, auto = found.modules["bare"], found.modules["auto"]
    assert (bare.depends, bare.installable, bare.version, bare.auto_install) == ([], True, "1.0", None)
    assert (auto.version, auto.auto_install) == ("2.1", frozenset({"web"}))
    assert found.modules["web"].auto_install == frozenset({"base"})  # True: all of depends
    assert found.modules["always"].auto_install == frozenset()


def odoo_sources() -> list:
    """(version, tree) of the stand-in (tests/standin) and of each real Odoo
    named by ODOOOPS_TEST_ODOO_SOURCES: the stand-in's tree has Odoo's layout."""
    return [pytest.param(s.version, s.path, id=s.id) for s in ODOO_SOURCES]  # None: the stand-in


@pytest.mark.parametrize(("version", "tree"), odoo_sources())
def test_an_odoo_tree(version: str, tree: Path | None, tmp_path):
    tree = tree or standin_tree(tmp_path / "odoo", version)
    # a source checkout has addons/ beside odoo/addons; a packaged Odoo has only the latter
    roots = [(tree / sub, "odoo") for sub in ("odoo/addons", "addons") if (tree / sub).is_dir()]
    found = addons.collect(roots)
    assert {"base", "web", "mail"} <= set(found.modules)
    assert found.modules["base"].path == tree / "odoo/addons/base"
    addons.check(found, ["mail"], series=version)
    assert {"base", "web"} <= set(addons.dependencies(found, ["mail"]))
    assert addons.install_order(found, ["mail"])[0] == "base"
