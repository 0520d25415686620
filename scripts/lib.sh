# Shared by the project's scripts: a virtual environment with the pinned dependencies.

# ensure_venv REQUIREMENTS_FILE: create .venv if needed and install the file when it changed.
ensure_venv() {
    local requirements="$1"
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ]; then
            echo "==> installing python3-venv"
            apt-get update -qq && apt-get install -y -qq python3-venv
        else
            echo "Python's venv module is missing: sudo apt-get install python3-venv" >&2
            exit 1
        fi
    fi
    if [ ! -x .venv/bin/python ]; then
        echo "==> creating .venv"
        python3 -m venv .venv
    fi
    local stamp
    stamp=".venv/.installed-$(cat requirements*.txt meteragent/pyproject.toml | sha256sum | cut -c1-16)-$(basename "$requirements")"
    if [ ! -f "$stamp" ]; then
        echo "==> installing $requirements"
        .venv/bin/python -m pip install --quiet --upgrade pip
        .venv/bin/python -m pip install --quiet -r "$requirements"
        touch "$stamp"
    fi
}
