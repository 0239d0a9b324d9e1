"""Find the model, the tokenizer and the SQuAD dev set: option > environment variable > local
cache > the checkout's ``../shared/data`` > download (with sha256 check).

Every miss says exactly what was looked for and how to supply it.
"""
from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

from .config import CACHE_DIR, DEFAULT_MODEL_ID, KNOWN_SHA256, SQUAD_DEV_SHA256, SQUAD_DEV_URL
from .errors import AssetMissingError, InputFileError
from .fileio import atomic_path, sha256_file

__all__ = ["AssetMissingError", "DEFAULT_MODEL_ID", "squad_dev_path", "tokenizer_path", "model_config_path",
           "download", "verify_sha256", "shared_data_dir"]

ENV_SQUAD = "ALBERT_IXRT_SQUAD"
ENV_TOKENIZER = "ALBERT_IXRT_TOKENIZER"
ENV_MODEL = "ALBERT_IXRT_MODEL"
ENV_SHARED = "ALBERT_IXRT_SHARED_DATA"


def shared_data_dir() -> Path:
    """``../shared/data`` beside the checkout (read-only data laid out for tests), or $ALBERT_IXRT_SHARED_DATA."""
    env = os.environ.get(ENV_SHARED)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data"


def verify_sha256(path: Path, expected: str | None = None) -> Path:
    """Check ``path`` against ``expected`` (or the known hash of its file name, if any)."""
    expected = expected or KNOWN_SHA256.get(path.name)
    if expected:
        got = sha256_file(path)
        if got != expected:
            raise InputFileError(path, f"sha256 {got} does not match the official {expected}; "
                                       "the file is corrupt or not the official one")
    return path


def _first_existing(candidates: list[tuple[str, Path | None]]) -> Path | None:
    for _, p in candidates:
        if p is not None and p.exists():
            return p
    return None


def squad_dev_path(option: str | None = None, *, download: bool = True, cache_dir: Path = CACHE_DIR) -> Path:
    """The SQuAD v1.1 dev set: --squad, $ALBERT_IXRT_SQUAD, the cache, ../shared/data, or a download."""
    explicit = option or os.environ.get(ENV_SQUAD)
    if explicit:
        p = Path(explicit)
        if not p.is_file():
            raise AssetMissingError(f"SQuAD file not found: {p} (from {'--squad' if option else ENV_SQUAD})")
        return p  # a user's own file may be a subset: not hash-checked
    cached = cache_dir / "dev-v1.1.json"
    shared = shared_data_dir() / "squad" / "dev-v1.1.json"
    found = _first_existing([("cache", cached), ("shared", shared)])
    if found:
        return verify_sha256(found)
    if download:
        return fetch(SQUAD_DEV_URL, cached, SQUAD_DEV_SHA256)
    raise AssetMissingError(
        f"SQuAD v1.1 dev set not found (looked at --squad, ${ENV_SQUAD}, {cached}, {shared}); pass --squad "
        f"PATH or download {SQUAD_DEV_URL} (sha256 {SQUAD_DEV_SHA256})")


def tokenizer_path(option: str | None = None) -> Path:
    """ALBERT's spiece.model: --tokenizer (file or model dir), $ALBERT_IXRT_TOKENIZER, a model dir given
    as $ALBERT_IXRT_MODEL, or ../shared/data/albert-base-v2."""
    for source, value in (("--tokenizer", option), (ENV_TOKENIZER, os.environ.get(ENV_TOKENIZER)),
                          (ENV_MODEL, os.environ.get(ENV_MODEL))):
        if not value:
            continue
        p = Path(value)
        if p.is_dir():
            p = p / "spiece.model"
        if p.is_file():
            return p
        if source != ENV_MODEL:
            raise AssetMissingError(f"SentencePiece model not found: {p} (from {source})")
    shared = shared_data_dir() / "albert-base-v2" / "spiece.model"
    if shared.is_file():
        return shared
    hub = _hub_cached_file(DEFAULT_MODEL_ID, "spiece.model")
    if hub:
        return hub
    raise AssetMissingError(
        f"ALBERT SentencePiece model not found (looked at --tokenizer, ${ENV_TOKENIZER}, {shared}, the Hugging "
        f"Face cache of {DEFAULT_MODEL_ID}); pass --tokenizer PATH/spiece.model or a model directory")


def model_config_path() -> Path:
    """albert-base's config.json (the architecture of the reference model), for the shape twin."""
    shared = shared_data_dir() / "albert-base-v2" / "config.json"
    if shared.is_file():
        return shared
    hub = _hub_cached_file(DEFAULT_MODEL_ID, "config.json")
    if hub:
        return hub
    raise AssetMissingError(f"albert-base config.json not found at {shared} nor in the Hugging Face cache; "
                            "pass a config.json with --model CONFIG --random-weights")


#: One connection attempt to the hub, this long at most, before any download.
HUB_PROBE_TIMEOUT_S = 5.0


def hub_unreachable(timeout: float = HUB_PROBE_TIMEOUT_S) -> str | None:
    """Why the Hugging Face hub cannot be reached now (None: it can): one TCP connection to its
    endpoint.  Hand-written because huggingface_hub retries a failed connection five times with
    back-off (about 30 s of "Retrying in ..." lines) and offers no setting for it; with this answer
    the callers load from the local cache only and say "no network" in one line."""
    import socket
    from urllib.parse import urlparse

    try:
        from huggingface_hub import constants

        endpoint = constants.ENDPOINT
    except ImportError:
        endpoint = "https://huggingface.co"
    url = urlparse(endpoint)
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        return f"{host}:{port} unreachable: {getattr(exc, 'strerror', None) or exc}"
    return None


def _hub_cached_file(repo: str, name: str) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(repo, name)
    return Path(found) if isinstance(found, str) else None


def fetch(url: str, dest: Path, sha256: str | None, timeout: float = 30.0) -> Path:
    """Download ``url`` to ``dest`` (atomically), then check its sha256; clear errors offline."""
    from tqdm import tqdm

    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, atomic_path(dest) as tmp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with open(tmp, "wb") as out, tqdm(total=total, unit="B", unit_scale=True, desc=dest.name) as bar:
                for block in iter(lambda: resp.read(1 << 16), b""):
                    out.write(block)
                    bar.update(len(block))
            if sha256:
                got = sha256_file(tmp)
                if got != sha256:
                    raise InputFileError(url, f"downloaded file has sha256 {got}, expected {sha256}; not kept")
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise AssetMissingError(f"cannot download {url} ({reason}); no network? Fetch it elsewhere and pass its "
                                f"path (expected sha256 {sha256})") from None
    return dest


download = fetch


MODEL_FILES = ("config.json", "spiece.model", "model.safetensors", "pytorch_model.bin")


def fetch_model(model_id: str, dest: str | Path) -> Path:
    """Download ``model_id``'s config, tokenizer and weights into ``dest`` (a local HF directory),
    and record each file's sha256 in ``dest/SHA256SUMS`` for later runs to check against."""
    from huggingface_hub import snapshot_download

    why = hub_unreachable()
    if why:
        raise AssetMissingError(f"cannot download {model_id!r}: no network ({why}); copy a model directory "
                                f"to {dest} by hand")
    dest = Path(dest)
    try:
        snapshot_download(model_id, local_dir=str(dest), allow_patterns=list(MODEL_FILES))
    except Exception as exc:  # huggingface_hub raises many connection/HTTP error types
        raise AssetMissingError(f"cannot download {model_id!r} from the Hugging Face hub "
                                f"({str(exc).splitlines()[0]}); copy a model directory there by hand") from None
    have = [dest / f for f in MODEL_FILES if (dest / f).is_file()]
    if not any(f.name in ("model.safetensors", "pytorch_model.bin") for f in have):
        raise AssetMissingError(f"{model_id!r} downloaded to {dest} without weights")
    from .fileio import write_text_atomic

    write_text_atomic(dest / "SHA256SUMS", "".join(f"{sha256_file(f)}  {f.name}\n" for f in have))
    return dest
