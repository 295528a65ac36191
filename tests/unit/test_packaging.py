"""Packaging metadata: what setuptools needs so that ``make install`` on a fresh clone prints no warning
of the project's own (the licence as an SPDX expression, a layout the editable install maps with a
plain .pth file)."""

import tomllib
from pathlib import Path

from packaging.licenses import canonicalize_license_expression
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_license_is_an_spdx_expression():
    license_ = PYPROJECT["project"]["license"]
    # a table ({text = …}) is deprecated by setuptools and stops being supported after 2027-02-18
    assert isinstance(license_, str)
    assert canonicalize_license_expression(license_) == "AGPL-3.0-or-later"
    # the classifier would contradict the expression (setuptools >= 77 refuses both together)
    assert not any(c.startswith("License ::") for c in PYPROJECT["project"].get("classifiers", []))


def test_build_backend_understands_spdx_licenses():
    requires = [Requirement(r) for r in PYPROJECT["build-system"]["requires"]]
    setuptools = [r for r in requires if r.name == "setuptools"]
    assert len(setuptools) == 1
    # every version the specifier lets pip pick is at least 77 (the first with PEP 639 support)
    assert not setuptools[0].specifier.contains(Version("76.99"))
    assert setuptools[0].specifier.contains(Version("77.0.0"))


def test_editable_install_uses_a_simple_layout():
    # package-dir {"" = "."} with top-level packages: setuptools writes a .pth to the project folder
    # instead of a meta-path finder, and does not warn about same-named folders in the working directory
    tool = PYPROJECT["tool"]["setuptools"]
    assert tool["package-dir"] == {"": "."}
    for include in tool["packages"]["find"]["include"]:
        package = include.rstrip("*")
        assert (ROOT / package / "__init__.py").is_file(), package
