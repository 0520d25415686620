"""The committed diagram and threat list are what the model generates today
(`python -m threatmodel` rewrites them)."""

from threatmodel.generate import (
    DOT,
    SVG,
    SVG_DIGEST_PREFIX,
    THREATS,
    dfd_source,
    resolved,
    svg_digest,
    threats_markdown,
)

HINT = "regenerate with: python -m threatmodel"


def test_the_committed_diagram_source_and_threat_list_are_current():
    model = resolved()
    assert DOT.read_text() == dfd_source(model), HINT
    assert THREATS.read_text() == threats_markdown(model), HINT


def test_the_committed_svg_was_drawn_from_the_committed_source():
    digest_line = SVG.read_text().splitlines()[1]
    assert digest_line == f"{SVG_DIGEST_PREFIX}{svg_digest(DOT.read_text())} -->", HINT
