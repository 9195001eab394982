"""What PyPI shows: the license, the project links, and README links that work there."""

from __future__ import annotations

import re
from importlib.metadata import metadata

from repo_paths import ROOT

REPOSITORY = "https://github.com/otel-productapi/otel-productapi"
#: Markdown links: [text](target)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def test_license_file_is_the_apache_2_license_the_metadata_names() -> None:
    """LICENSE holds the Apache License 2.0 text, and the wheel metadata says Apache-2.0."""
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "END OF TERMS AND CONDITIONS" in text
    meta = metadata("otel-productapi")
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta.get_all("License-File") == ["LICENSE"]


def test_project_urls_point_at_the_repository() -> None:
    """[project.urls]: homepage, repository, issues and documentation on GitHub."""
    urls = dict(
        entry.split(", ", 1) for entry in metadata("otel-productapi").get_all("Project-URL") or []
    )
    assert urls["Homepage"] == REPOSITORY
    assert urls["Repository"] == REPOSITORY
    assert urls["Issues"] == f"{REPOSITORY}/issues"
    assert urls["Documentation"] == f"{REPOSITORY}/blob/main/docs/telemetry.md"
    assert (ROOT / "docs" / "telemetry.md").is_file()


def test_readme_links_are_absolute_and_name_files_that_exist() -> None:
    """PyPI renders README.md without the repository: every link is absolute, and each
    link into the repository names a file or folder of this checkout on main."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = LINK.findall(readme)
    assert targets
    for target in targets:
        assert target.startswith(("https://", "#")), target
        if target.startswith(f"{REPOSITORY}/"):
            match = re.fullmatch(rf"{REPOSITORY}/(blob|tree)/main/([^#]+)(#.*)?", target)
            assert match is not None, target
            kind, path = match.group(1), ROOT / match.group(2)
            assert path.is_file() if kind == "blob" else path.is_dir(), target
