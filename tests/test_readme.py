"""The README stays true: its operations section is the catalog's, its quick start the Makefile's."""

import json
import re
from pathlib import Path

from catalog import generate
from catalog.readme_table import BEGIN, END, README, operations_table
from catalog.registry import load_catalog

ROOT = Path(__file__).resolve().parent.parent


def test_readme_operations_table_is_current():
    text = README.read_text()
    current = text[text.index(BEGIN) + len(BEGIN):text.index(END)].strip()
    assert current == operations_table(load_catalog(), generate.generate()).strip(), (
        "README.md's operations table is stale: run .venv/bin/python -m catalog.readme_table --write")


def test_quick_start_commands_exist_in_the_makefile_and_ci_runs_the_readme_test_command():
    makefile = (ROOT / "Makefile").read_text()
    assert "\nrun:" in makefile and "\ntest:" in makefile
    assert "make run" in README.read_text() and "make test" in README.read_text()
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_procfile_web_starts_gunicorn_on_the_app_factory_and_binds_port():
    web = [line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:")]
    assert web and "gunicorn" in web[0] and "server.app:create_app()" in web[0] and "$PORT" in web[0]


def test_every_python_command_in_the_readme_runs_the_venv_python():
    # The system python lacks the packages (`No module named 'flask'`); `make run` and
    # `make test` set up .venv. The generated operations table keeps its own marker.
    text = README.read_text().replace(BEGIN, "")
    bare = re.findall(r"(?<![\w/.-])python3? -m [\w.]+", text)
    assert not bare, f"README.md runs Python without .venv/bin/: {bare}"
    assert ".venv/bin/python -m server.cli" in text


def test_one_node_version_in_the_readme_the_generated_app_and_the_test_harness():
    from zapier_app.__main__ import package_json
    generated = package_json("https://example.com")["engines"]["node"]
    harness = json.loads((ROOT / "tests" / "zapier" / "package.json").read_text())["engines"]["node"]
    assert generated == harness == ">=20"
    text = README.read_text()
    assert "Node.js 20 or newer" in text
    assert not re.search(r"Node(\.js)? (1[0-9]|2[1-9])\b", text), "README.md names another Node version"
