"""The licences and the citation file: present, valid and in agreement with the package's metadata."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The Citation File Format 1.2.0 schema, as shipped by cffconvert 2.0.0 (cffconvert/schemas/1.2.0/schema.json).
CFF_SCHEMA = Path(__file__).parent / "data/citation-cff-1.2.0.schema.json"


def package_metadata() -> dict:
    return tomllib.loads((REPO_ROOT / "code/pyproject.toml").read_text())["project"]


def test_citation_file_matches_the_cff_schema():
    check = Path(sys.executable).with_name("check-jsonschema")
    result = subprocess.run([str(check), "--schemafile", str(CFF_SCHEMA), str(REPO_ROOT / "CITATION.cff")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_broken_citation_file(tmp_path):
    broken = yaml.safe_load((REPO_ROOT / "CITATION.cff").read_text())
    del broken["authors"]  # required by CFF 1.2.0
    (tmp_path / "CITATION.cff").write_text(yaml.safe_dump(broken))
    check = Path(sys.executable).with_name("check-jsonschema")
    result = subprocess.run([str(check), "--schemafile", str(CFF_SCHEMA), str(tmp_path / "CITATION.cff")],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "authors" in result.stdout + result.stderr


def test_citation_version_and_licence_are_the_packages():
    citation = yaml.safe_load((REPO_ROOT / "CITATION.cff").read_text())
    metadata = package_metadata()
    assert str(citation["version"]) == metadata["version"]
    assert citation["license"] == metadata["license"] == "MIT"


def test_code_is_mit_and_text_is_cc_by_4():
    licence = (REPO_ROOT / "LICENSE").read_text()
    assert licence.startswith("MIT License") and "Permission is hereby granted, free of charge" in licence
    text_licence = (REPO_ROOT / "LICENSE-TEXT").read_text()
    assert "CC BY 4.0" in text_licence and "creativecommons.org/licenses/by/4.0/legalcode" in text_licence
    footer = yaml.safe_load((REPO_ROOT / "_config.yml").read_text())["html"]["extra_footer"]
    assert "CC BY 4.0" in footer and "MIT" in footer
