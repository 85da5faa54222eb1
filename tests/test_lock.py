"""The lock (constraints.txt): what CI, the README's commands and the Docker image install."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][^\s+;@]*)")


def _pins() -> dict[str, str]:
    lines = [line for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.startswith("#")]
    pins = {}
    for line in lines:
        # A URL, a path or a local version label ("+cpu") would not install on another machine.
        match = PIN.fullmatch(line)
        assert match, f"constraints.txt: not a plain name==version pin: {line!r}"
        pins[canonicalize_name(match[1])] = match[2]
    return pins


def test_every_dependency_in_pyproject_is_pinned_within_its_range():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values() for r in extra)]
    pins = _pins()
    for text in wanted:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        if name == canonicalize_name(project["name"]):
            continue  # an extra of our own package
        assert name in pins, f"{requirement.name} is not in constraints.txt: run scripts/lock.sh"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {requirement.name}=={pins[name]}, outside {requirement.specifier}: run scripts/lock.sh")


def test_readme_ci_and_image_install_with_the_lock():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"```sh\n(.*?)\n```", readme, re.DOTALL)[:2]
    assert readme.startswith("# Bildungslotse\n\n```sh\n") and len(commands) == 2
    assert all(" -c constraints.txt " in command for command in commands), commands
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert commands[1] in ci  # the README's test command, verbatim
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^COPY .*constraints\.txt", dockerfile, re.MULTILINE)
    assert re.search(r"^RUN pip install -c constraints\.txt ", dockerfile, re.MULTILINE)
