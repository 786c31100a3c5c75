"""The Odoo virtualenv's requirements: substitutes for what needs system
headers, the key a virtualenv is reused by, and pip's failure named."""

from __future__ import annotations

from odooops.odoo import pyenv

ODOO_16_LIKE = """\
gevent==20.9.0 ; python_version > '3.7' and python_version <= '3.9'
gevent==21.8.0 ; python_version > '3.9'  # (Jammy)
psycopg2==2.8.6; sys_platform == 'win32' or python_version >= '3.8'
python-ldap==3.4.0 ; sys_platform != 'win32'
# a comment about psycopg2
-r other.txt
Werkzeug==2.0.2
"""


def test_substitutes_keep_versions_and_markers_or_replace_the_pin():
    subs = pyenv.parse_substitutes(pyenv.DEFAULT_SUBSTITUTES + ",gevent=gevent==22.10.2")
    out = pyenv.substituted(ODOO_16_LIKE, subs).splitlines()
    assert out[0] == "gevent==22.10.2; python_version > '3.7' and python_version <= '3.9'"
    assert out[1] == "gevent==22.10.2; python_version > '3.9'  # (Jammy)"
    assert out[2] == "psycopg2-binary==2.8.6; sys_platform == 'win32' or python_version >= '3.8'"
    assert out[3] == "# left out by OdooOps: python-ldap==3.4.0 ; sys_platform != 'win32'"
    assert out[4:] == ["# a comment about psycopg2", "-r other.txt", "Werkzeug==2.0.2"]


def test_names_are_compared_as_pip_does():
    subs = pyenv.parse_substitutes("Python_LDAP=")
    assert pyenv.substituted("python-ldap==3.4.0\npython.ldap>=3\n", subs).count("# left out") == 2


def test_the_key_follows_the_interpreter_and_every_file(tmp_path):
    (tmp_path / "odoo").mkdir()
    (tmp_path / "odoo" / "requirements.txt").write_text("Werkzeug==2.0.2\n")
    (tmp_path / "shop").mkdir()
    base = pyenv.gather(tmp_path / "odoo", [("project", tmp_path / "shop")], {})
    assert [label for label, _ in base.files] == ["odoo"]
    (tmp_path / "shop" / "requirements.txt").write_text("requests\n")
    more = pyenv.gather(tmp_path / "odoo", [("project", tmp_path / "shop")], {})
    other = pyenv.gather(tmp_path / "odoo", [("project", tmp_path / "shop")], {}, python="/usr/bin/python3.10")
    assert len({base.key, more.key, other.key}) == 3
    assert more.key == pyenv.gather(tmp_path / "odoo", [("project", tmp_path / "shop")], {}).key


def test_pip_s_failure_names_the_package():
    watch = pyenv.PipWatch()
    for line in ["Collecting Werkzeug==2.0.2", "Collecting odooops-no-such-thing==0.0.1",
                 "ERROR: Could not find a version that satisfies the requirement odooops-no-such-thing==0.0.1 "
                 "(from versions: none)", "ERROR: No matching distribution found for odooops-no-such-thing==0.0.1"]:
        watch.feed(line)
    assert watch.reason("") == "the requirement odooops-no-such-thing==0.0.1 did not install: pip's output above says why"
    built = pyenv.PipWatch()
    for line in ["Collecting gevent==21.8.0", "  Getting requirements to build wheel: finished with status 'error'",
                 "error: subprocess-exited-with-error"]:
        built.feed(line)
    assert "gevent" in built.reason("odoo")


def test_an_old_gevent_gets_the_zope_interface_it_works_with(tmp_path):
    """gevent < 24 (Odoo 16.0 to 18.0 below Python 3.12) dies at start with
    zope.interface 7+ or zope.event 5.1+ and a virtualenv's own setuptools:
    prefork mode's gevent process (workers, /websocket) would never come up."""
    (tmp_path / "odoo").mkdir()
    (tmp_path / "odoo" / "requirements.txt").write_text(
        "gevent==22.10.2 ; sys_platform != 'win32' and python_version > '3.10' and python_version < '3.12'\n")
    pinned = pyenv.gather(tmp_path / "odoo", [], {}).files[0][1]
    assert 'zope.interface<7 ; python_version < "3.12"' in pinned
    assert 'zope.event<5.1 ; python_version < "3.12"' in pinned
    (tmp_path / "odoo" / "requirements.txt").write_text("gevent==24.2.1 ; python_version >= '3.12'\n")
    assert "zope.interface" not in pyenv.gather(tmp_path / "odoo", [], {}).files[0][1]
