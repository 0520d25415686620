"""Coverage-guided fuzz target for the protocol decoders (atheris / libFuzzer).

Run (5 minutes, both cores)::

    .venv/bin/python -m meteragent.fuzz.fuzz_protocol -max_total_time=300

Any libFuzzer flag may follow. The corpus lives outside the repository (``$FUZZ_CORPUS`` or
``<tmp>/meteragent-protocol-corpus``) and is seeded from ``vectors.json``. A crash is any
exception other than :class:`ProtocolError`, or a parsed message that does not re-encode to the
exact bytes it came from.

The first input byte picks what the rest is fed to:

0. ``open_frame`` on the raw bytes (header checks, key lookup, tag check, replay window);
1. the rest as a 117-byte plaintext, sealed under the test key, then opened: this reaches the
   payload parser *through* the frame path, which random frames never do (they fail the tag);
2. ``decode_payload`` directly, any length;
3. the varint decoder;
4. ``ReplayWindow`` fed a sequence of counters from the input.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["meteragent.protocol", "meteragent.fuzz.targets"]):
    from meteragent.fuzz.targets import seed_corpus, test_one_input


def default_corpus() -> Path:
    return Path(
        os.environ.get("FUZZ_CORPUS", Path(tempfile.gettempdir()) / "meteragent-protocol-corpus")
    )


def main() -> None:
    corpus = default_corpus()
    seed_corpus(corpus)
    argv = list(sys.argv)
    if not any(not a.startswith("-") for a in argv[1:]):
        argv.append(str(corpus))
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
