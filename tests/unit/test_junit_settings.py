"""The README's `python3 -m pytest -q` writes JUnit XML by default (reports/junit.xml, not under
results/), and record_property's figures reach it without pytest's xunit2 warning."""
from __future__ import annotations

import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

from child_env import child_env

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]

PROBE = '''
def test_measures(record_property):
    record_property("bytemlperf_em", 80.5)
'''


def _run_probe(tmp_path: Path, family: str) -> tuple[subprocess.CompletedProcess, Path]:
    (tmp_path / "test_probe.py").write_text(PROBE)
    (tmp_path / "pytest.ini").write_text(f"[pytest]\naddopts = {SETTINGS['addopts']}\njunit_family = {family}\n")
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                        "-p", "no:randomly", "test_probe.py"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=120, env=child_env())
    return p, tmp_path / "reports" / "junit.xml"


def test_default_junit_path_is_reports_and_ignored_by_git():
    assert "--junitxml=reports/junit.xml" in SETTINGS["addopts"].split()
    assert "/reports/" in (ROOT / ".gitignore").read_text().splitlines()


def test_record_property_reaches_the_xml_without_a_warning(tmp_path):
    p, xml = _run_probe(tmp_path, SETTINGS["junit_family"])
    assert p.returncode == 0, p.stdout + p.stderr
    assert "incompatible with junit_family" not in p.stdout + p.stderr
    props = {e.get("name"): e.get("value") for e in ET.parse(xml).iter("property")}
    assert props == {"bytemlperf_em": "80.5"}


def test_xunit2_would_warn(tmp_path):
    """The planted-bad side: the family the settings avoid makes pytest warn (xunit2's schema has
    no per-testcase properties, so strict JUnit readers reject the file)."""
    p, _ = _run_probe(tmp_path, "xunit2")
    assert "record_property is incompatible with junit_family 'xunit2'" in p.stdout + p.stderr
