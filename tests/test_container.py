"""The Docker image's recipe: lint, build context, lock file and the build-time pip set-up.

The image itself is built and run by ``make container-check`` (container/check.sh).
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def load_host_pip():
    spec = importlib.util.spec_from_file_location("host_pip", ROOT / "container" / "host_pip.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def locked(path: Path) -> dict[str, str]:
    """``{normalised name: version}`` of the ``name==version`` lines of a lock file."""
    pins = {}
    for line in path.read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def test_dockerfile_passes_hadolint():
    result = subprocess.run([str(Path(sys.executable).parent / "hadolint"), str(ROOT / "Dockerfile")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_build_context_holds_what_the_dockerfile_copies():
    allowed = {line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.startswith("!")}
    copied = [source for line in (ROOT / "Dockerfile").read_text().splitlines()
              if line.startswith("COPY ") and "--from" not in line for source in line.split()[1:-1]]
    assert copied and set(copied) <= allowed
    assert all((ROOT / source).exists() for source in allowed)


def test_lock_files_pin_every_dependency_within_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = locked(ROOT / "requirements.lock")
    test = {**runtime, **locked(ROOT / "requirements-test.lock")}
    for pins, requirements in ((runtime, project["dependencies"]),
                               (test, project["optional-dependencies"]["test"])):
        for requirement in map(Requirement, requirements):
            version = pins.get(canonicalize_name(requirement.name))
            assert version is not None, f"{requirement.name} is not pinned"
            assert requirement.specifier.contains(version), f"{requirement.name}=={version} is not {requirement}"
    assert "-r requirements.lock" in (ROOT / "requirements-test.lock").read_text()


def test_extra_certificates_are_those_debian_lacks(tmp_path):
    host_pip = load_host_pip()
    stock = next(Path("/usr/share/ca-certificates").rglob("*.crt"))
    extra = "-----BEGIN CERTIFICATE-----\nTUlJQ3Byb3h5\n-----END CERTIFICATE-----"
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(stock.read_text() + "\n" + extra + "\n")
    assert host_pip.extra_certificates(bundle) == [extra]


def test_host_pip_settings_point_pip_at_the_image_bundle(tmp_path, monkeypatch):
    host_pip = load_host_pip()
    monkeypatch.setattr(host_pip, "host_settings", lambda: {"timeout": "60", "cert": str(tmp_path / "b.pem")})
    monkeypatch.setattr(host_pip, "extra_certificates", lambda bundle: ["PEM"])
    (tmp_path / "b.pem").write_text("")
    host_pip.main(tmp_path)
    conf = (tmp_path / "pip.conf").read_text().splitlines()
    assert conf == ["[global]", "timeout = 60", f"cert = {host_pip.IMAGE_BUNDLE}"]
    assert (tmp_path / "extra-ca.pem").read_text() == "PEM"


def test_base_image_is_pinned_by_date():
    default = re.search(r"^ARG BASE_IMAGE=(\S+)", (ROOT / "Dockerfile").read_text(), re.M)[1]
    assert re.fullmatch(r"debian:bookworm-\d{8}-slim", default)


def test_host_folders_are_left_out_of_the_pip_settings():
    settings = {"extra-index-url": "file:///opt/simple https://mirror.example/simple", "find-links": "/opt/wheels",
                "timeout": "60"}
    assert load_host_pip().without_local_locations(settings) == {
        "extra-index-url": "https://mirror.example/simple", "timeout": "60"}
