#!/usr/bin/env bash
# System packages beyond Python: Kannel for the gateway end-to-end tests, Chromium for the
# browser tests, redis-server for a Redis of our own where the machine runs none.
#   ./scripts/system-deps.sh [PACKAGE...]   (default: all of them)
# Installs the missing ones when running as root; otherwise says what to install.
set -euo pipefail
packages=("$@")
[ ${#packages[@]} -gt 0 ] || packages=(kannel kannel-extras chromium redis-server)
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
    # Kannel and Redis run only when the tests or the demo start them; not as system services.
    for service in kannel redis-server; do
        if [[ " ${missing[*]} " == *" $service "* ]]; then
            systemctl disable --now "$service" >/dev/null 2>&1 || true
        fi
    done
    if [[ " ${missing[*]} " == *" kannel "* ]]; then
        pkill -x bearerbox >/dev/null 2>&1 || true
    fi
else
    echo "WARNING: missing ${missing[*]}: sudo apt-get install ${missing[*]}" >&2
fi
