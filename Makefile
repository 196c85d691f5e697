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

# Sync chaos, the long run: 500 rounds of kills, partitions and flapping per database (CI runs 50);
# CHAOS_ROUNDS and CHAOS_SEED override (the seed of a failed run is in its message).
.PHONY: chaos
chaos: setup
	CHAOS_ROUNDS=$${CHAOS_ROUNDS:-500} .venv/bin/python -m pytest -q -s tests/test_sync_chaos.py -k chaos_every $(PYTEST_ARGS)

BENCHES = bench.chip_read bench.biometrics.face bench.biometrics.finger \
          bench.drivers.door_link bench.drivers.fingerprint_link bench.drivers.camera_stream bench.sync_outbox

bench: setup
	@for b in $(BENCHES); do echo "== $$b"; .venv/bin/python -m $$b || exit 1; done

clean:
	rm -rf .venv var build *.egg-info
