#!/usr/bin/env bash
# Idempotent set-up on Debian 12: system packages (only those missing), .venv, the project,
# and the pinned biometric models. A second run with nothing changed takes about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(pcscd vsmartcard-vpcd libpcsclite-dev swig postgresql chromium fonts-ocr-b fonts-noto-cjk)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing system packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.stamp-$(cat setup.cfg pyproject.toml simulators/pyproject.toml | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "setup: installing egate and egate-simulators into .venv"
  .venv/bin/pip install -q --upgrade pip
  # A gate installs egate only; this machine runs the demo and the tests, so it adds the simulators.
  # Playwright drives Debian's chromium (tests/test_kiosk*.py): it must never fetch a browser of its own.
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 .venv/bin/pip install -q -e '.[test]' -e ./simulators
  rm -f .venv/.stamp-*; touch "$stamp"
fi
.venv/bin/egate models fetch
