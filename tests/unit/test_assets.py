"""Asset lookup: explicit paths, sha256 checks, and clear errors when offline."""
import socket

import pytest

from albert_ixrt import assets
from albert_ixrt.errors import AssetMissingError, InputFileError


def test_squad_path_precedence(tmp_path, monkeypatch, squad_path):
    mine = tmp_path / "mine.json"
    mine.write_text('{"data": []}')
    monkeypatch.setenv(assets.ENV_SQUAD, str(squad_path))
    assert assets.squad_dev_path(str(mine)) == mine                 # option beats environment
    assert assets.squad_dev_path(None) == squad_path                  # environment next
    with pytest.raises(AssetMissingError, match="from --squad"):
        assets.squad_dev_path(str(tmp_path / "nope.json"))


def test_shared_dev_set_is_hash_checked(squad_path):
    assert assets.verify_sha256(squad_path) == squad_path


def test_wrong_hash_is_reported(tmp_path):
    fake = tmp_path / "dev-v1.1.json"
    fake.write_text("{}")
    with pytest.raises(InputFileError, match="does not match the official"):
        assets.verify_sha256(fake)


def test_nothing_found_offline_says_how_to_supply(tmp_path, monkeypatch):
    monkeypatch.setenv(assets.ENV_SHARED, str(tmp_path / "empty"))
    monkeypatch.delenv(assets.ENV_SQUAD, raising=False)
    with pytest.raises(AssetMissingError, match="pass --squad PATH or download https://"):
        assets.squad_dev_path(None, download=False, cache_dir=tmp_path)


def test_download_failure_is_clear_and_leaves_nothing(tmp_path):
    with socket.socket() as s:                 # a closed local port: refused at once, no network used
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dest = tmp_path / "dev-v1.1.json"
    with pytest.raises(AssetMissingError, match=f"cannot download http://127.0.0.1:{port}/dev-v1.1.json"):
        assets.fetch(f"http://127.0.0.1:{port}/dev-v1.1.json", dest, "0" * 64, timeout=5)
    assert list(tmp_path.iterdir()) == []
