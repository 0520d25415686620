"""Checks that keep the model true: the code's surface against `surface.py`, and every threat
found against `responses.py`. Each returns the problems as sentences naming what to add where;
an empty list means the model and the code agree."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from .model import Model
from .responses import RESPONSES, Accepted, Control
from .surface import SURFACES

ROOT = Path(__file__).resolve().parent.parent


def surface_problems(code: dict[str, set[str]], model: Model) -> list[str]:
    problems = []
    for kind, table in SURFACES.items():
        have = code[kind]
        missing_from_model = sorted(have - set(table))
        missing_from_code = sorted(set(table) - have)
        if missing_from_model:
            problems.append(
                f"{kind}s in the code but not in the model (add to threatmodel/surface.py): "
                + ", ".join(missing_from_model)
            )
        if missing_from_code:
            problems.append(
                f"{kind}s in the model but not in the code (remove from threatmodel/surface.py): "
                + ", ".join(missing_from_code)
            )
        unknown = sorted(
            f"{name} -> {element}"
            for name, element in table.items()
            if element not in model.elements
        )
        if unknown:
            problems.append(
                f"{kind}s mapped to no element of threatmodel/model.py: " + ", ".join(unknown)
            )
    return problems


@cache
def _test_functions(path: str) -> frozenset[str]:
    file = ROOT / path
    if not file.is_file():
        return frozenset()
    tree = ast.parse(file.read_text())
    return frozenset(
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    )


def named_test_exists(node_id: str) -> bool:
    path, _, function = node_id.partition("::")
    return function in _test_functions(path)


def response_problems(found_threat_ids: set[str]) -> list[str]:
    """Every threat found needs a control with at least one existing test, or an acceptance
    with a reason and an owner; a response for a threat never found is stale."""
    problems = []
    for threat_id in sorted(found_threat_ids - set(RESPONSES)):
        problems.append(
            f"threat {threat_id} has neither a control nor an acceptance "
            "(add it to threatmodel/responses.py)"
        )
    for threat_id in sorted(set(RESPONSES) - found_threat_ids):
        problems.append(
            f"threat {threat_id} has a response but is found on no element "
            "(remove it from threatmodel/responses.py)"
        )
    for threat_id, response in sorted(RESPONSES.items()):
        if isinstance(response, Control):
            if not response.tests:
                problems.append(f"threat {threat_id}: control {response.requirement} names no test")
            for node_id in response.tests:
                if not named_test_exists(node_id):
                    problems.append(f"threat {threat_id}: test {node_id} does not exist")
            if not response.requirement:
                problems.append(f"threat {threat_id}: control names no requirement")
        elif isinstance(response, Accepted) and not (response.reason and response.owner):
            problems.append(f"threat {threat_id}: acceptance needs a reason and an owner")
    return problems
