"""The three dependency lists (pyproject.toml, environment.yml,
binder/environment.yml) stay in step, and Binder is set up as documented."""

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def _pyproject():
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return data["dependencies"], data["optional-dependencies"]


def _pip_list(path):
    env = yaml.safe_load((REPO / path).read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    return [p for p in pip if not p.startswith("-")], env


def test_root_environment_matches_pyproject():
    runtime, extras = _pyproject()
    pip, env = _pip_list("environment.yml")
    assert sorted(pip) == sorted(runtime + extras["course"] + extras["test"])
    assert "python>=3.11" in env["dependencies"]


def test_binder_environment_matches_pyproject():
    runtime, extras = _pyproject()
    pip, env = _pip_list("binder/environment.yml")
    assert sorted(pip) == sorted(runtime + extras["course"])
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    major, minor = map(int, re.search(r"(\d+)\.(\d+)", python).groups())
    assert (major, minor) >= (3, 11)


def test_binder_post_build():
    script = (REPO / "binder" / "postBuild").read_text()
    assert "set -e" in script
    assert "pip install" in script
    for instructor in ("formgrader", "create-assignment", "course-list"):
        assert f"@jupyter/nbgrader:${{plugin}}" in script and instructor in script
    for student in ("assignment-list", "validate-assignment"):
        assert student not in script  # left on
    assert "course/release" in script


def test_chinese_edition_set_ups():
    """The Chinese interface and the CJK font in every set-up: the language
    pack with the course (so Binder and conda get it too), Debian's
    fonts-noto-cjk for CI and Binder (both editions' Binder)."""
    _, extras = _pyproject()
    assert any(r.startswith("jupyterlab-language-pack-zh-CN") for r in extras["course"])
    for env in ("environment.yml", "binder/environment.yml"):
        pip, _ = _pip_list(env)
        assert any(r.startswith("jupyterlab-language-pack-zh-CN") for r in pip), env
    for apt in ("binder/apt.txt", "autodiff_course/edition/binder/apt.txt"):
        assert "fonts-noto-cjk" in (REPO / apt).read_text().split(), apt
    assert "fonts-noto-cjk" in (REPO / ".ci" / "run").read_text()
