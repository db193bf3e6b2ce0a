"""The README and docs/: a short user's page with a valid Space header, and links, anchors, scripts
and configs that exist."""

import re

import pytest
import yaml

from helpers import REPO

README = REPO / "README.md"
PAGES = sorted((REPO / "docs").glob("*.md"))
LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def test_readme_is_a_short_page_with_the_space_header():
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    _, header, _ = text.split("---\n", 2)
    space = yaml.safe_load(header)
    assert space["sdk"] == "gradio" and space["app_file"] == "app.py"
    assert {"title", "sdk_version", "license"} <= set(space)
    for command in ("make demo", "make test", "dpe enhance", "train_accelerate.py", "dpe export onnx"):
        assert command in text, command


def test_docs_has_its_pages():
    assert {p.name for p in PAGES} >= {"training.md", "fullres.md", "results.md", "reliability.md",
                                       "architecture.md", "method.md"}


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda p: p.name)
def test_relative_links_and_anchors_exist(page):
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # a web address
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: {target}"
        if anchor:
            assert anchor in anchors(linked), f"{page.name}: {target}"


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda p: p.name)
def test_named_scripts_and_configs_exist(page):
    text = page.read_text()
    for name in re.findall(r"\b((?:benchmarks|configs|dpe_hf|tests)/[\w/.-]+\.(?:py|yaml))", text):
        if not (REPO / name).stem.isupper():  # benchmarks/NAME.py is a placeholder
            assert (REPO / name).is_file(), f"{page.name}: {name}"
    assert "design.md" not in text
