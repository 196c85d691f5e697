# Two commands on a fresh Debian 12 machine:
#   make demo   set up, then run a simulated lane end to end with a summary
#   make test   set up, then run the whole test suite with real pcscd/vpcd, ptys and PostgreSQL
.PHONY: setup demo test bench clean

setup:
	@scripts/setup.sh

demo: setup
	.venv/bin/egate demo

test: setup
	.venv/bin/python -m pytest -q $(PYTEST_ARGS)

bench: setup
	.venv/bin/egate bench all

clean:
	rm -rf .venv var build *.egg-info
