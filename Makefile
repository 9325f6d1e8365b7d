# Two commands on a fresh machine: `make run` and `make test`.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell md5sum requirements.txt | cut -c1-12)

.PHONY: run test setup browser postgres clean bench drill

run: $(STAMP)
	$(PY) -m server.local

test: $(STAMP) browser postgres
	$(PY) -m pytest -q

setup: $(STAMP)

# Benchmarks and the fault drill (issue 7): the sandbox GHL and the service under gunicorn.
bench: $(STAMP)
	$(PY) -m bench.run_bench $(BENCH_ARGS)

drill: $(STAMP)
	$(PY) -m bench.drill --minutes $(or $(DRILL_MINUTES),2) $(DRILL_ARGS)

$(STAMP): requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# Debian's Chromium and ChromeDriver, for the catalog page test in a real browser.
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium chromium-driver; \
	fi

# Debian's PostgreSQL server binaries: the tests start their own server in a temporary directory
# (bench/postgres_server.py); nothing is configured or started system-wide.
postgres:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && $$SUDO apt-get install -y -q postgresql; \
	fi

clean:
	rm -rf $(VENV) var
