"""The Docker image's recipe: lint, build context, lock file and the build-time pip set-up.

The image itself is built and run by ``make container-check`` (container/check.sh).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import tomllib
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


def test_host_pip_passes_only_what_means_something_in_the_build(tmp_path):
    """A real pip configuration, read by pip itself: host paths are left out, remote indexes and the proxy's CA kept."""
    stock = next(Path("/usr/share/ca-certificates").rglob("*.crt")).read_text()
    extra = "-----BEGIN CERTIFICATE-----\nTUlJQ3Byb3h5\n-----END CERTIFICATE-----"
    bundle = tmp_path / "proxy-bundle.pem"
    bundle.write_text(stock + "\n" + extra + "\n")
    (tmp_path / "constraints.txt").write_text("torch<=2.14.1\n")
    (tmp_path / "wheels").mkdir()
    config = tmp_path / "pip.conf"
    config.write_text("[global]\n"
                      f"constraint = {tmp_path / 'constraints.txt'}\n"
                      f"find-links = {tmp_path / 'wheels'}\n"
                      f"extra-index-url = file://{tmp_path}/simple https://mirror.example/simple\n"
                      "timeout = 60\n"
                      "trusted-host = mirror.example\n"
                      "[install]\n"
                      f"requirement = {tmp_path / 'constraints.txt'}\n")
    out = tmp_path / "out"
    out.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=str(config), HOME=str(tmp_path), XDG_CONFIG_DIRS=str(tmp_path / "xdg"),
               PIP_CERT=str(bundle), PIP_CONSTRAINT=str(tmp_path / "constraints.txt"),
               PIP_INDEX_URL="https://index.example/simple", PIP_FIND_LINKS=str(tmp_path / "wheels"))
    result = subprocess.run([sys.executable, str(ROOT / "container" / "host_pip.py"), str(out)], env=env,
                            capture_output=True, text=True, check=True)
    conf = dict(line.split(" = ") for line in (out / "pip.conf").read_text().splitlines()[1:])
    assert conf == {"extra-index-url": "https://mirror.example/simple", "timeout": "60",
                    "trusted-host": "mirror.example", "index-url": "https://index.example/simple",
                    "cert": load_host_pip().IMAGE_BUNDLE}
    assert (out / "pip.conf").read_text().startswith("[global]\n")
    assert str(tmp_path) not in (out / "pip.conf").read_text()
    assert (out / "extra-ca.pem").read_text() == extra
    assert "left out (paths on this host or not needed there): constraint, find-links, requirement" in result.stdout


def test_host_pip_writes_nothing_for_a_host_without_settings(tmp_path, monkeypatch):
    host_pip = load_host_pip()
    monkeypatch.setattr(host_pip, "host_settings", lambda: {"find-links": "/opt/wheels"})
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    host_pip.main(tmp_path)
    assert (tmp_path / "pip.conf").read_text() == ""
    assert (tmp_path / "extra-ca.pem").read_text() == ""


def test_base_image_is_pinned_by_date():
    default = re.search(r"^ARG BASE_IMAGE=(\S+)", (ROOT / "Dockerfile").read_text(), re.M)[1]
    assert re.fullmatch(r"debian:bookworm-\d{8}-slim", default)
