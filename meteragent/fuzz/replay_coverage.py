"""Replay a fuzz corpus through the target under the stdlib tracer; print line coverage.

    .venv/bin/python -m meteragent.fuzz.replay_coverage [CORPUS_DIR]

Counts the lines inside function bodies of the decoding modules (frame, messages, readings,
varint, codec, replay) that the corpus executes; encoder-only and sender-side functions are
included in the denominator, so 100% is not expected. Complements libFuzzer's edge count.
"""

from __future__ import annotations

import dis
import inspect
import os
import sys
import tempfile
import trace
import types
from pathlib import Path

import meteragent.protocol as protocol_pkg
from meteragent.fuzz.targets import seed_corpus, test_one_input

MODULES = ["frame", "messages", "readings", "varint", "codec", "replay"]


def _function_lines(path: Path) -> set[int]:
    """Lines inside function bodies (module and class bodies run at import, before tracing;
    ``def`` and decorator lines are not statements of the body)."""
    source = path.read_text(encoding="utf-8")
    text = source.splitlines()
    lines: set[int] = set()

    def walk(code: types.CodeType) -> None:
        if code.co_flags & inspect.CO_OPTIMIZED and code.co_name != "<genexpr>":
            for _, n in dis.findlinestarts(code):
                if n is not None and not text[n - 1].lstrip().startswith(("def ", "@")):
                    lines.add(n)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                walk(const)

    walk(compile(source, str(path), "exec"))
    return lines


def main() -> None:
    default = Path(tempfile.gettempdir()) / "meteragent-protocol-corpus"
    corpus = (
        Path(sys.argv[1]) if len(sys.argv) > 1 else Path(os.environ.get("FUZZ_CORPUS", default))
    )
    seed_corpus(corpus)
    inputs = [p.read_bytes() for p in sorted(corpus.iterdir()) if p.is_file()]
    tracer = trace.Trace(count=True, trace=False)
    for data in inputs:
        tracer.runfunc(test_one_input, data)
    counts = tracer.results().counts
    base = Path(protocol_pkg.__file__).parent
    total_hit = total_lines = 0
    print(f"corpus: {len(inputs)} inputs from {corpus}")
    for name in MODULES:
        path = base / f"{name}.py"
        executable = _function_lines(path)
        hit = {line for (f, line) in counts if f == str(path)} & executable
        total_hit += len(hit)
        total_lines += len(executable)
        print(f"  {name:10s} {len(hit):4d}/{len(executable):4d} lines")
    print(f"  {'total':10s} {total_hit:4d}/{total_lines:4d} = {100 * total_hit / total_lines:.1f}%")


if __name__ == "__main__":
    main()
