#!/usr/bin/env bash
# System packages the test suite needs beyond Python: Kannel for the gateway end-to-end tests,
# Chromium for the browser tests.
# Installs them when running as root and they are missing; otherwise says what to install.
set -euo pipefail
packages=(kannel kannel-extras chromium)
missing=()
for package in "${packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ]; then
    echo "==> installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    # The gateway runs only inside the tests, started by them; not as a system service.
    systemctl disable --now kannel >/dev/null 2>&1 || true
    pkill -x bearerbox >/dev/null 2>&1 || true
else
    echo "WARNING: missing ${missing[*]}: sudo apt-get install ${missing[*]}" >&2
fi
