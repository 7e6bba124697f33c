"""The GitHub workflows, validated offline: schema, security audit, and the properties this book relies on."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

WORKFLOWS = sorted((Path(__file__).resolve().parents[1] / ".github/workflows").glob("*.yml"))
BIN = Path(sys.executable).parent


def load(path: Path) -> dict:
    workflow = yaml.safe_load(path.read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads the key `on` as True
    return workflow


def test_there_are_test_and_book_workflows():
    assert {p.name for p in WORKFLOWS} >= {"test.yml", "book.yml"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_matches_the_github_schema(path):
    result = subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing_offline():
    result = subprocess.run([str(BIN / "zizmor"), "--offline", "--no-progress", *map(str, WORKFLOWS)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_jobs_are_bounded_and_permissions_minimal(path):
    workflow = load(path)
    assert workflow["permissions"] == {"contents": "read"}
    for name, job in workflow["jobs"].items():
        assert "timeout-minutes" in job, f"{name} has no timeout"
        for step in job.get("steps", []):
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), f"unpinned: {step['uses']}"


def test_book_workflow_deploys_main_to_pages_with_least_privilege():
    workflow = load(next(p for p in WORKFLOWS if p.name == "book.yml"))
    deploy = workflow["jobs"]["deploy"]
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert "refs/heads/main" in deploy["if"] and deploy["needs"] == "build"
    uses = [step.get("uses", "") for job in workflow["jobs"].values() for step in job["steps"]]
    assert any(u.startswith("actions/upload-pages-artifact@") for u in uses)
    assert any(u.startswith("actions/deploy-pages@") for u in uses)


def test_book_workflow_offers_a_gpu_runner_and_caches_execution():
    workflow = load(next(p for p in WORKFLOWS if p.name == "book.yml"))
    inputs = workflow["on"]["workflow_dispatch"]["inputs"]
    assert set(inputs) == {"profile", "runner", "gpu"} and inputs["profile"]["options"] == ["quick", "full"]
    build = workflow["jobs"]["build"]
    assert "inputs.runner" in build["runs-on"]
    steps = {step.get("name", ""): step for step in build["steps"]}
    assert "requirements/gpu.txt" in build["env"]["RUNTIME"]
    assert "REQUIRE_GPU" in steps["Show the accelerator"]["env"]  # fails loudly without a GPU
    cache = steps["Restore the execution cache (chapter outputs)"]["with"]
    assert cache["path"] == "_build/.jupyter_cache"
    for source in ("book/**/*.md", "code/src/**", "requirements/*.txt"):
        assert source in cache["key"]


def test_test_workflow_runs_the_readme_test_command():
    workflow = load(next(p for p in WORKFLOWS if p.name == "test.yml"))
    commands = [step.get("run", "") for step in workflow["jobs"]["test"]["steps"]]
    assert "make test" in commands
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "make test" in readme
