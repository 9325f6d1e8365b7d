"""The README stays true: its operations table is the catalog's, its quick start the Makefile's."""

from pathlib import Path

from catalog.readme_table import BEGIN, END, README, operations_table
from catalog.registry import load_catalog

ROOT = Path(__file__).resolve().parent.parent


def test_readme_operations_table_is_current():
    text = README.read_text()
    current = text[text.index(BEGIN) + len(BEGIN):text.index(END)].strip()
    assert current == operations_table(load_catalog()).strip(), (
        "README.md's operations table is stale: run python -m catalog.readme_table --write")


def test_quick_start_commands_exist_in_the_makefile_and_ci_runs_the_readme_test_command():
    makefile = (ROOT / "Makefile").read_text()
    assert "\nrun:" in makefile and "\ntest:" in makefile
    assert "make run" in README.read_text() and "make test" in README.read_text()
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_procfile_web_starts_gunicorn_on_the_app_factory_and_binds_port():
    web = [line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:")]
    assert web and "gunicorn" in web[0] and "server.app:create_app()" in web[0] and "$PORT" in web[0]
