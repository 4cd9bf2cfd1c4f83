"""The documentation site: the configuration reference is what the config classes generate, and
every page is in the navigation (``mkdocs build --strict`` in CI checks the links)."""

from __future__ import annotations

import os

import yaml

from wtpipe.cli.reference import markdown

ROOT = os.path.join(os.path.dirname(__file__), "..")


def test_the_configuration_reference_is_current():
    with open(os.path.join(ROOT, "docs", "configuration.md"), encoding="utf-8") as handle:
        page = handle.read()
    assert page == markdown(), (
        "docs/configuration.md is stale: run python tools/config_reference.py"
    )


def test_the_reference_has_every_key_with_its_help():
    page = markdown()
    for key in (
        "`shards`",
        "`photometric`",
        "`freeze_prototypes_steps`",
        "`koleo`",
        "`resources.nodes`",
    ):
        assert key in page
    rows = [line for line in page.splitlines() if line.startswith("| `")]
    assert rows and all(not line.rstrip().endswith("|  |") for line in rows)  # no key without help


def pages(entries: list) -> list[str]:
    found = []
    for entry in entries:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        found += pages(value) if isinstance(value, list) else [value]
    return found


def test_every_page_is_in_the_navigation():
    with open(os.path.join(ROOT, "mkdocs.yml"), encoding="utf-8") as handle:
        nav = pages(yaml.safe_load(handle)["nav"])
    on_disk = sorted(f for f in os.listdir(os.path.join(ROOT, "docs")) if f.endswith(".md"))
    assert sorted(nav) == on_disk


def test_the_architecture_page_names_every_package():
    """Each subpackage and top-level module of wtpipe has its row (or line) on the page."""
    with open(os.path.join(ROOT, "docs", "architecture.md"), encoding="utf-8") as handle:
        page = handle.read()
    package = os.path.join(ROOT, "wtpipe")
    names = [
        f"wtpipe/{name}"
        for name in sorted(os.listdir(package))
        if not name.startswith(("_", "."))
        and (name.endswith(".py") or os.path.isdir(os.path.join(package, name)))
    ]
    missing = [name for name in names if f"`{name}`" not in page]
    assert missing == []
