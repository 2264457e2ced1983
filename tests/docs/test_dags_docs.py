"""dags_docs/ holds one page per flow that exists, each with its sections, a mermaid diagram and every parameter."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest
from prefect import Flow

import flows

DOCS = Path(__file__).parents[2] / "dags_docs"
SECTIONS = ("## Purpose", "## Reads / writes", "## Parameters", "## Tasks", "## Failure modes and runbook")


def _flows() -> dict[str, Flow]:
    found: dict[str, Flow] = {}
    for module in pkgutil.iter_modules(flows.__path__):
        loaded = importlib.import_module(f"flows.{module.name}")
        for value in vars(loaded).values():
            if isinstance(value, Flow) and value.__module__ == loaded.__name__:
                found[value.name] = value
    return found


FLOWS = _flows()


def test_every_flow_has_a_page_and_every_page_a_flow() -> None:
    pages = {page.stem for page in DOCS.glob("*.md")}
    assert pages == set(FLOWS), (
        f"pages without a flow: {pages - set(FLOWS)}; flows without a page: {set(FLOWS) - pages}"
    )


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_a_page_has_its_sections_a_diagram_and_every_parameter(name: str) -> None:
    text = (DOCS / f"{name}.md").read_text()
    positions = [text.find(section) for section in SECTIONS]
    assert all(p >= 0 for p in positions) and positions == sorted(positions), f"{name}.md sections: {SECTIONS}"
    assert re.search(r"```mermaid\n.*?(flowchart|graph) ", text, re.S), f"{name}.md has no mermaid diagram"
    parameters = text[text.index("## Parameters") : text.index("## Tasks")]
    for parameter in inspect.signature(FLOWS[name].fn).parameters:
        assert f"`{parameter}`" in parameters, f"{name}.md does not document parameter {parameter}"
    source = inspect.getsourcefile(FLOWS[name].fn)
    assert source is not None and f"flows/{Path(source).name}" in text, f"{name}.md does not name its module"
