"""fixtures/ stays honest: every file there is described in its README and read by some test."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"


def fixture_files() -> list[Path]:
    return sorted(p for p in FIXTURES.rglob("*") if p.is_file() and p.name != "README.md")


def test_every_fixture_is_described_and_used():
    readme = (FIXTURES / "README.md").read_text(encoding="utf-8")
    tests = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").rglob("test_*.py")
                      if p != Path(__file__).resolve())
    files = fixture_files()
    assert len(files) >= 10
    undescribed = [str(p.relative_to(FIXTURES)) for p in files if f"`{p.name}`" not in readme]
    unused = [str(p.relative_to(FIXTURES)) for p in files if p.name not in tests]
    assert undescribed == [] and unused == []
