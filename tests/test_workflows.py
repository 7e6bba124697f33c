"""The GitHub workflows, validated offline: schema, security audit, and the properties this book relies on."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((REPO_ROOT / ".github/workflows").glob("*.yml"))
BIN = Path(sys.executable).parent


def load(path: Path) -> dict:
    workflow = yaml.safe_load(path.read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads the key `on` as True
    return workflow


def workflow(name: str) -> dict:
    return load(next(p for p in WORKFLOWS if p.name == name))


def evaluate(expression: str, context: dict):
    """A GitHub Actions expression of the kind these workflows use: context paths, strings, booleans, null,
    parentheses, ``!``, ``==``/``!=`` (strings compared case-insensitively), ``&&`` and ``||`` (both return an
    operand, as in JavaScript). A path that is not in ``context`` is null, as GitHub makes an absent input."""
    expression = expression.strip().removeprefix("${{").removesuffix("}}")
    tokens = re.findall(r"\s*('[^']*'|&&|\|\||==|!=|!|\(|\)|[\w.-]+)", expression)
    assert "".join(tokens).replace(" ", "") == expression.replace(" ", ""), f"cannot read {expression!r}"
    tokens = [token.strip() for token in tokens]
    position = 0

    def take():
        nonlocal position
        position += 1
        return tokens[position - 1]

    def peek():
        return tokens[position] if position < len(tokens) else None

    def primary():
        token = take()
        if token == "(":
            value = either()
            assert take() == ")"
            return value
        if token == "!":
            return not primary()
        if token.startswith("'"):
            return token[1:-1]
        if token in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[token]
        value = context
        for part in token.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return value

    def comparison():
        left = primary()
        while peek() in ("==", "!="):
            operator, right = take(), primary()
            same = (left.lower() == right.lower() if isinstance(left, str) and isinstance(right, str)
                    else left == right)
            left = same if operator == "==" else not same
        return left

    def both():
        left = comparison()
        while peek() == "&&":
            take()
            right = comparison()
            left = right if left else left
        return left

    def either():
        left = both()
        while peek() == "||":
            take()
            right = both()
            left = left if left else right
        return left

    value = either()
    assert position == len(tokens), f"unread tokens in {expression!r}"
    return value


def test_the_expression_reader_follows_github():
    context = {"github": {"event_name": "push"}, "vars": {"R": "gpu"}}
    assert evaluate("${{ github.event_name == 'PUSH' && vars.R || 'x' }}", context) == "gpu"
    assert evaluate("${{ inputs.a || !(vars.R != 'gpu') && 'y' }}", context) == "y"
    assert evaluate("${{ vars.none && 'no' || '' }}", context) == ""


def test_there_are_test_book_colab_and_link_workflows():
    assert {p.name for p in WORKFLOWS} >= {"test.yml", "book.yml", "colab.yml", "links.yml"}


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
    jobs = workflow("book.yml")["jobs"]
    deploy = jobs["deploy"]
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert "refs/heads/main" in deploy["if"] and deploy["needs"] == "build"
    assert [step.get("uses", "").split("@")[0] for step in deploy["steps"]] == ["actions/deploy-pages"]


def test_book_workflow_uploads_only_pages_it_tested_on_the_same_commit():
    steps = workflow("book.yml")["jobs"]["build"]["steps"]
    names = [step.get("name", "") for step in steps]
    uploads = [i for i, step in enumerate(steps) if step.get("uses", "").startswith("actions/upload-pages-artifact@")]
    tests = [i for i, step in enumerate(steps) if "make test" in step.get("run", "")]
    assert len(uploads) == 1 and len(tests) == 1
    upload, test = steps[uploads[0]], steps[tests[0]]
    assert names.index("Build the book") < tests[0] < uploads[0]
    assert "if" not in test and "continue-on-error" not in test  # every build that may upload is tested
    # the quick CPU build is tested as built: the tests read the very folder that is uploaded
    assert f'MLBOOK_BOOK_HTML="$GITHUB_WORKSPACE/{upload["with"]["path"]}" make test' in test["run"]
    assert all("_build/html" not in step.get("run", "") for step in steps[tests[0] + 1:uploads[0]])


def test_a_deploy_in_progress_is_never_cancelled():
    book = workflow("book.yml")
    assert "concurrency" not in book  # a workflow-level group would cancel the deploy job with the build
    build, deploy = book["jobs"]["build"]["concurrency"], book["jobs"]["deploy"]["concurrency"]
    assert build["cancel-in-progress"] is True and "github.ref" in build["group"]
    assert deploy["cancel-in-progress"] is False and deploy["group"] != build["group"]
    assert "${{" not in deploy["group"]  # one deploy at a time for the repository, from any ref


def book_build_settings(event: str, inputs: dict | None = None, runner_variable: str = "") -> dict:
    """What the build job's runs-on, profile, runtime and GPU requirement evaluate to for an event."""
    build = workflow("book.yml")["jobs"]["build"]
    context = {"github": {"event_name": event}, "vars": {"MLBOOK_RUNNER": runner_variable}, "inputs": inputs or {}}
    settings = {"runs-on": evaluate(build["runs-on"], context),
                **{name: evaluate(build["env"][name], context) for name in ("MLBOOK_PROFILE", "RUNTIME")}}
    accelerator = next(step for step in build["steps"] if step.get("name") == "Show the accelerator")
    settings["REQUIRE_GPU"] = evaluate(accelerator["env"]["REQUIRE_GPU"], {**context, "env": settings})
    return settings


QUICK_CPU = {"runs-on": "ubuntu-latest", "MLBOOK_PROFILE": "quick", "RUNTIME": "requirements/runtime-cpu.txt",
             "REQUIRE_GPU": ""}
FULL_GPU = {"runs-on": "gpu", "MLBOOK_PROFILE": "full", "RUNTIME": "requirements/gpu.txt", "REQUIRE_GPU": "1"}


def test_pull_requests_build_quick_on_githubs_runner_whatever_inputs_and_variable_say():
    assert book_build_settings("pull_request", runner_variable="gpu") == QUICK_CPU
    # a pull request has no inputs, but its runner must not hang on that
    inputs = {"runner": "gpu", "profile": "full", "gpu": True}
    assert book_build_settings("pull_request", inputs, runner_variable="gpu")["runs-on"] == "ubuntu-latest"


def test_pushes_publish_quick_by_default_and_full_on_the_gpu_runner_the_variable_names():
    assert book_build_settings("push") == QUICK_CPU
    assert book_build_settings("push", runner_variable="gpu") == FULL_GPU


def test_manual_runs_keep_their_inputs():
    defaults = {"runner": "ubuntu-latest", "profile": "quick", "gpu": False}
    assert book_build_settings("workflow_dispatch", defaults, runner_variable="gpu") == QUICK_CPU
    assert book_build_settings("workflow_dispatch", {"runner": "gpu", "profile": "full", "gpu": True}) == FULL_GPU


def test_book_workflow_offers_a_gpu_runner_and_caches_execution():
    inputs = workflow("book.yml")["on"]["workflow_dispatch"]["inputs"]
    assert set(inputs) == {"profile", "runner", "gpu"} and inputs["profile"]["options"] == ["quick", "full"]
    steps = {step.get("name", ""): step for step in workflow("book.yml")["jobs"]["build"]["steps"]}
    cache = steps["Restore the execution cache (chapter outputs)"]["with"]
    assert cache["path"] == "_build/.jupyter_cache"
    for source in ("book/**/*.md", "code/src/**", "requirements/*.txt"):
        assert source in cache["key"]


def test_test_workflow_runs_the_readme_test_command():
    commands = [step.get("run", "") for step in workflow("test.yml")["jobs"]["test"]["steps"]]
    assert "make test" in commands
    readme = (REPO_ROOT / "README.md").read_text()
    assert "make test" in readme


def pins(path: Path) -> dict[str, str]:
    """``name==version`` lines of a requirements file, names normalised as pip does."""
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    pairs = (line.split("==") for line in lines if line)
    return {re.sub(r"[-_.]+", "-", name.strip().lower()): version.strip() for name, version in pairs}


def makefile_words(variable: str) -> list[str]:
    """The words of a ``VARIABLE := ...`` assignment in the Makefile, continuation lines included."""
    text = (REPO_ROOT / "Makefile").read_text().replace("\\\n", " ")
    return re.search(rf"^{variable} :=(.*)$", text, re.MULTILINE)[1].split()


def test_minimum_requirements_pin_the_declared_lower_bounds():
    project = tomllib.loads((REPO_ROOT / "code/pyproject.toml").read_text())["project"]
    declared = dict(re.fullmatch(r"([\w-]+)>=([\d.]+)", spec).groups() for spec in project["dependencies"])
    minimum = pins(REPO_ROOT / "requirements/minimum.txt")
    # the declared dependencies, the Keras that TensorFlow pulls in, the pyparsing of matplotlib 3.8's time, and pytest
    assert set(minimum) == set(declared) | {"keras", "pyparsing", "pytest"}
    for name, lower in declared.items():
        # the first release of the bound's series: 1.26 -> 1.26.0, 3 -> 3.0.0 (or x.y.1 where x.y.0 is unusable)
        bound = lower.split(".")
        assert minimum[name].split(".")[:len(bound)] == bound, f"{name}: {minimum[name]} is not {lower}'s first release"
    assert project["requires-python"] == ">=3.10"
    job = workflow("test.yml")["jobs"]["minimum"]
    assert "make test-minimum" in [step.get("run", "") for step in job["steps"]]
    setup = next(step for step in job["steps"] if step.get("uses", "").startswith("actions/setup-python@"))
    assert setup["with"]["python-version"] == project["requires-python"].removeprefix(">=")


def test_minimum_job_runs_every_package_module_tests_and_none_that_need_the_book_toolchain():
    book_tests, package_tests = makefile_words("BOOK_TESTS"), sorted(map(str, (REPO_ROOT / "tests").glob("test_*.py")))
    assert all((REPO_ROOT / path).is_file() for path in book_tests)
    package_tests = [Path(path) for path in package_tests if str(Path(path).relative_to(REPO_ROOT)) not in book_tests]
    modules = sorted(p.stem for p in (REPO_ROOT / "code/src/mlbook").glob("*.py") if not p.stem.startswith("_"))
    assert {f"test_{module}" for module in modules} <= {path.stem for path in package_tests}
    # a package test file imports, at its top, only the standard library, the package, its declared dependencies
    # (and Keras), pytest, and other test files: anything else would fail the minimum job's collection
    allowed = set(sys.stdlib_module_names) | {"mlbook", "numpy", "scipy", "matplotlib", "sklearn", "PIL", "skimage",
                                               "platformdirs", "tensorflow", "keras", "pytest", "conftest", "images"}
    for path in package_tests:
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module]
                for name in names:
                    top = name.split(".")[0]
                    assert top in allowed or (REPO_ROOT / "tests" / f"{top}.py") in package_tests, \
                        f"{path.name} imports {name}: list it in the Makefile's BOOK_TESTS or import it in the test"


def test_colab_workflow_runs_weekly_and_by_hand():
    triggers = workflow("colab.yml")["on"]
    assert set(triggers) == {"workflow_dispatch", "schedule"} and triggers["schedule"][0]["cron"]


def test_colab_workflow_runs_every_chapter_notebook_in_colabs_image_with_this_checkout(tmp_path):
    jobs = workflow("colab.yml")["jobs"]
    chapter = next(job for job in jobs.values() if "container" in job)
    image = chapter["container"] if isinstance(chapter["container"], str) else chapter["container"]["image"]
    assert image.split(":")[0] == "us-docker.pkg.dev/colab-images/public/runtime"
    assert chapter["strategy"]["fail-fast"] is False
    run = next(step for step in chapter["steps"] if "colab_run.py" in step.get("run", ""))
    assert re.match(r'python3 tools/colab_run\.py --install "\$PWD/code" .*"\$NOTEBOOK"$', run["run"])
    assert run["env"]["NOTEBOOK"] == "${{ matrix.notebook }}"
    # the matrix is the list another job writes: run that job's command here and compare with the repository
    matrix = re.fullmatch(r"\$\{\{ fromJSON\(needs\.(\w+)\.outputs\.(\w+)\) \}\}",
                          chapter["strategy"]["matrix"]["notebook"])
    lister = jobs[matrix[1]]
    assert chapter["needs"] == matrix[1]
    step_output = re.fullmatch(r"\$\{\{ steps\.(\w+)\.outputs\.(\w+) \}\}", lister["outputs"][matrix[2]])
    step = next(step for step in lister["steps"] if step.get("id") == step_output[1])
    github_output = tmp_path / "output"
    subprocess.run(["bash", "-e", "-c", step["run"]], cwd=REPO_ROOT,
                   env={**os.environ, "GITHUB_OUTPUT": str(github_output)}, check=True)
    key, _, value = github_output.read_text().strip().partition("=")
    notebooks = json.loads(value)
    assert key == step_output[2]
    chapters = [p for p in (REPO_ROOT / "book").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts]
    assert notebooks == sorted(str(p.relative_to(REPO_ROOT)) for p in chapters)
    assert len(notebooks) >= 14


def test_link_workflow_checks_links_weekly_with_execution_off_outside_make_test():
    links = workflow("links.yml")
    assert set(links["on"]) == {"schedule", "workflow_dispatch"} and links["on"]["schedule"][0]["cron"]
    commands = "\n".join(step.get("run", "") for step in links["jobs"]["linkcheck"]["steps"])
    assert "-b linkcheck" in commands and "nb_execution_mode=off" in commands
    assert "linkcheck" not in (REPO_ROOT / "Makefile").read_text()  # it needs the network: never in make test


def test_release_workflow_attaches_the_html_the_pdf_and_the_wheel_of_a_tested_build():
    release = workflow("release.yml")
    assert release["on"] == {"push": {"tags": ["v*"]}}
    job = release["jobs"]["release"]
    assert job["permissions"] == {"contents": "write"}
    commands = [step.get("run", "") for step in job["steps"]]
    order = [next(i for i, c in enumerate(commands) if needle in c)
             for needle in ("make book", "make test", "make pdf", "gh release create")]
    assert order == sorted(order), "the release must build and test before it publishes"
    collected = next(c for c in commands if "dist" in c and "zip" in c)
    assert "html" in collected and ".pdf" in collected and "pip wheel" in collected


def lock_entries(path: Path) -> dict[str, tuple[str, list[str]]]:
    """A hashed lock as ``{name: (version, [sha256, ...])}``, names normalised as pip does."""
    entries: dict[str, tuple[str, list[str]]] = {}
    name = None
    for line in path.read_text().splitlines():
        if match := re.match(r"([A-Za-z0-9][\w.-]*)==([^\s;\\]+)", line):
            name = re.sub(r"[-_.]+", "-", match[1].lower())
            entries[name] = (match[2], [])
        elif match := re.match(r"\s+--hash=sha256:([0-9a-f]{64})", line):
            entries[name][1].append(match[1])
    return entries


@pytest.mark.parametrize("runtime", ["runtime-cpu", "gpu"])
def test_each_lock_hashes_every_package_and_holds_every_pin_at_its_version(runtime):
    lock = lock_entries(REPO_ROOT / f"requirements/{runtime}.lock.txt")
    assert len(lock) > 100
    assert all(hashes for _, hashes in lock.values()), [name for name, (_, h) in lock.items() if not h]
    for source in (runtime, "book", "test", "build"):
        for name, version in pins(REPO_ROOT / f"requirements/{source}.txt").items():
            name = name.split("[")[0]  # tensorflow[and-cuda]
            assert lock[name][0] == version, f"{source}.txt pins {name}=={version}; the lock: {lock[name][0]}"


def test_constraints_are_the_cpu_lock_without_hashes_and_the_build_backend_is_locked():
    lock = lock_entries(REPO_ROOT / "requirements/runtime-cpu.lock.txt")
    constraints = {line.split(";")[0].strip() for line in (REPO_ROOT / "requirements/constraints.txt").read_text()
                   .splitlines() if line and not line.startswith("#")}
    assert {f"{name}=={version}" for name, (version, _) in lock.items()} == {
        re.sub(r"^[\w.-]+", lambda m: re.sub(r"[-_.]+", "-", m[0].lower()), pin) for pin in constraints}
    backend = tomllib.loads((REPO_ROOT / "code/pyproject.toml").read_text())["build-system"]["requires"]
    assert backend == ["setuptools==" + pins(REPO_ROOT / "requirements/build.txt")["setuptools"]]


def test_make_env_installs_only_hashed_files_and_builds_the_package_with_the_locked_backend():
    text = (REPO_ROOT / "Makefile").read_text()
    recipe = text[text.index("$(STAMP): $(LOCK)"):text.index("book: $(STAMP)")]
    assert "--require-hashes -r $(LOCK)" in recipe and "--no-build-isolation -e ./code" in recipe
    assert re.search(r"^LOCK := \$\(RUNTIME:\.txt=\.lock\.txt\)$", text, re.MULTILINE)
