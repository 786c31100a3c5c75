"""The system packages gate of a recipe: a phase that runs apt, apt-get,
aptitude or dpkg is refused when the recipe loads, naming the phase."""

from __future__ import annotations

import pytest

from helpers import recipe
from odooops.errors import InvalidInput
from odooops.odoo.policy import system_package_tool
from odooops.runner import recipe as recipes

REFUSAL = ("system packages cannot be installed in a build; use a phase that installs Python requirements, "
           "or add the package to the runner's image")

REFUSED = {
    "apt-get install -y libxml2-dev": "apt-get",
    "apt update": "apt",
    "aptitude install lsb-release": "aptitude",
    "dpkg -i wkhtmltox.deb": "dpkg",
    "/usr/bin/apt-get install -y curl": "apt-get",
    "DEBIAN_FRONTEND=noninteractive apt-get install -y x": "apt-get",
    "sudo apt-get install -y x": "apt-get",
    "sudo -E -u root apt-get install -y x": "apt-get",
    "env DEBIAN_FRONTEND=noninteractive apt-get install x": "apt-get",
    "timeout 600 apt-get update": "apt-get",
    "pip install -r requirements.txt && apt-get install -y x": "apt-get",
    "true; dpkg -l": "dpkg",
    "ls | xargs -I {} dpkg -i {}": "dpkg",
    "false || apt install x": "apt",
    "echo one\napt-get install -y x": "apt-get",
    "pip install git+https://example.com/r.git#egg=r && apt install x": "apt",
    "echo '#' ; apt install x": "apt",
    "sudo \\\n  apt-get install x": "apt-get",
    "sh -c 'apt-get update'": "apt-get",
    "bash -ec \"echo hi && sudo apt install x\"": "apt",
    "if true; then apt-get install x; fi": "apt-get",
    "for p in a b; do apt-get install $p; done": "apt-get",
    "(cd /tmp && apt-get download x)": "apt-get",
    "echo $(apt-get install -y x)": "apt-get",
    "echo `dpkg -l`": "dpkg",
}

ALLOWED = [
    "echo apt",
    "echo apt-get install x",
    "pip install aptly",
    "pip install python-apt",
    "echo 'a && apt-get install x'",
    "echo \"; dpkg -i x\"",
    "echo done > apt",
    "grep -r dpkg docs/",
    "command -v apt-get || echo 'no apt here'",
    "python3 -m pip install --user apt-wrapper",
    "echo ok # then apt-get install x",
    "# apt-get install x\necho ok",
    "./apt-get-notes.sh",
    "ls /var/lib/dpkg",
    "echo 'unclosed apt-get",  # sh refuses it: nothing is installed
]


def load(tmp_path, *phases: dict | str):
    text = "".join(p if isinstance(p, str) else recipe(p) for p in phases)
    (tmp_path / ".odooops.toml").write_text(text)
    return recipes.load(tmp_path)


@pytest.mark.parametrize("command, tool", REFUSED.items())
def test_a_phase_that_runs_a_system_package_tool_is_refused_naming_it(tmp_path, command, tool):
    with pytest.raises(InvalidInput) as refused:
        load(tmp_path, {"name": "lint", "command": "true"}, {"name": "deps", "command": command})
    assert str(refused.value) == f".odooops.toml: phase 2 (deps) runs {tool}: {REFUSAL}"


@pytest.mark.parametrize("command", ALLOWED)
def test_a_phase_that_only_mentions_one_loads(tmp_path, command):
    loaded = load(tmp_path, {"name": "ok", "command": command})
    assert loaded.phases[0].argv == ["/bin/sh", "-c", command]


@pytest.mark.parametrize("argv, tool", [
    (["apt-get", "install", "-y", "x"], "apt-get"),
    (["sudo", "dpkg", "-i", "x.deb"], "dpkg"),
    (["env", "-i", "PATH=/usr/bin", "aptitude", "install", "x"], "aptitude"),
    (["/bin/bash", "-o", "pipefail", "-c", "true | apt install x"], "apt"),
    (["sh", "-c", "sh -c 'dpkg -i x.deb'"], "dpkg"),
    (["echo", "&&", "apt-get", "install"], None),  # no shell: && is an argument of echo
    (["bash", "scripts/setup.sh"], None),
    (["python3", "-c", "print('apt-get install')"], None),
    (["pip", "install", "aptly"], None),
])
def test_a_command_given_as_a_list(argv, tool):
    assert system_package_tool(argv) == tool


def test_a_list_command_in_a_recipe_is_refused_too(tmp_path):
    with pytest.raises(InvalidInput, match=r"^\.odooops\.toml: phase 1 \(sys\) runs dpkg: system packages"):
        load(tmp_path, "[[phases]]\nname = 'sys'\ncommand = ['sudo', 'dpkg', '-i', 'x.deb']\n")
