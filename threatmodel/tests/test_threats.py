"""Every threat the model finds has a control with a test that exists, or an acceptance."""

import json
from pathlib import Path

import pytm
from pytm import TM, Threat

from threatmodel import responses
from threatmodel.consistency import response_problems
from threatmodel.generate import resolved
from threatmodel.model import ELEMENTS, FLOWS
from threatmodel.responses import Accepted, Control
from threatmodel.threats import OUR_THREATS


def found_ids():
    return {finding.threat_id for finding in resolved().tm.findings}


def test_every_threat_found_has_a_tested_control_or_an_acceptance():
    problems = response_problems(found_ids())
    assert not problems, "\n".join(problems)


def test_a_threat_with_no_response_fails_naming_it():
    model = resolved()
    TM._threats.append(
        Threat(
            SID="SMS99",
            target=["ExternalEntity"],
            description="the operator sells message metadata",
            condition="target.name == 'Operator SMSC'",
        )
    )
    model.tm.resolve()

    assert response_problems({f.threat_id for f in model.tm.findings}) == [
        "threat SMS99 has neither a control nor an acceptance (add it to threatmodel/responses.py)"
    ]


def test_a_control_whose_test_does_not_exist_fails_naming_it(monkeypatch):
    monkeypatch.setitem(
        responses.RESPONSES,
        "KEY03",
        Control(
            "S1", "IC06", "KEK in an HSM", ("devices/tests/test_hsm.py::test_kek_never_leaves",)
        ),
    )
    monkeypatch.setitem(responses.RESPONSES, "HA03", Accepted("", "Security admin"))

    assert response_problems(found_ids()) == [
        "threat HA03: acceptance needs a reason and an owner",
        "threat KEY03: test devices/tests/test_hsm.py::test_kek_never_leaves does not exist",
    ]


def test_our_threat_ids_do_not_clash_with_pytms_library():
    library = json.loads((Path(pytm.__file__).parent / "threatlib" / "threats.json").read_text())
    ours = [threat["SID"] for threat in OUR_THREATS]
    assert len(ours) == len(set(ours))
    assert not set(ours) & {threat["SID"] for threat in library}


def test_each_of_our_threats_is_found_on_the_element_it_names():
    assert {threat["SID"] for threat in OUR_THREATS} <= found_ids()


def test_every_element_takes_part_in_a_flow_and_every_flow_has_a_protocol():
    used = {source for source, *_ in FLOWS} | {sink for _, sink, *_ in FLOWS}
    assert set(ELEMENTS) - used == set()
    assert all(protocol for *_, protocol, _ in FLOWS)


def test_linddun_threats_cover_linkability_and_identifiability():
    categories = " ".join(t["stride"] for t in OUR_THREATS if t["SID"].startswith("LDN"))
    assert "Linkability" in categories and "Identifiability" in categories
