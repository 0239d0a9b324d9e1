"""Loaders: the model's tokenizer, the SQuAD examples and features, the model's conversion, and a
runner for a backend (Polygraphy's loader layer: each builds or loads one artefact).

Shared by the acceptance session and the commands (evaluate, bench, layerwise, loadgen, ...), so a
runner the CLI builds and one the session judges come from the same code.
"""
from __future__ import annotations

from pathlib import Path

from . import assets
from .config import DEFAULT_SQUAD, SquadSettings
from .engine_input import ENGINE_BACKENDS, engine_graph
from .errors import AlbertIxrtError, InputFileError
from .model import LoadedModel
from .squad.data import Example, load_squad
from .squad.features import Feature
from .tokenizer import AlbertTokenizer


def resolve_tokenizer(model: LoadedModel, option: str | None) -> Path:
    """The tokenizer that belongs to ``model``: explicit option, the model directory's own
    spiece.model, the self-test tokenizer for the tiny model, else the shared/default lookup."""
    if option:
        return assets.tokenizer_path(option)
    if model.kind == "tiny":
        from .selftest import selftest_spiece

        return selftest_spiece()
    own = Path(model.name) / "spiece.model"
    if model.kind == "directory" and own.is_file():
        return own
    return assets.tokenizer_path(None)


def check_vocab(tokenizer: AlbertTokenizer, model: LoadedModel) -> None:
    vocab = model.config.get("vocab_size")
    if vocab and tokenizer.vocab_size > vocab:
        raise InputFileError(tokenizer.path, f"tokenizer has {tokenizer.vocab_size} pieces but model {model.name} "
                                             f"embeds only {vocab}: they do not belong together")


def load_tokenizer(model: LoadedModel, option: str | None) -> AlbertTokenizer:
    """The model's tokenizer, its vocabulary checked against the model's."""
    tokenizer = AlbertTokenizer(resolve_tokenizer(model, option))
    check_vocab(tokenizer, model)
    return tokenizer


def prepare_data(squad: str | Path, tokenizer: AlbertTokenizer, settings: SquadSettings = DEFAULT_SQUAD,
                 limit: int | None = None, progress: bool = True,
                 shard: tuple[int, int] | None = None, *, use_cache: bool = True,
                 workers: int = 1) -> tuple[list[Example], list[Feature]]:
    """Examples (the first ``limit``, then shard ``shard=(index, count)`` of them) and their features
    (from the feature cache unless ``use_cache`` is false; ``workers`` processes build them)."""
    from .feature_cache import cached_features
    from .parallel import shard as take_shard

    examples = load_squad(squad)
    chosen = range(len(examples))
    if limit is not None:
        if limit < 1:
            raise AlbertIxrtError(f"--limit must be >= 1, got {limit}")
        chosen = chosen[:limit]
    if shard is not None:
        part = take_shard(chosen, *shard)        # a contiguous run of example indices
        chosen = range(part[0], part[-1] + 1) if part else range(chosen.start, chosen.start)
    return examples[chosen.start:chosen.stop], cached_features(
        squad, tokenizer, settings, examples=examples, select=(chosen.start, chosen.stop), use_cache=use_cache,
        workers=workers, progress=progress)


def conversion_dir(model: LoadedModel) -> Path:
    """Where ``model``'s conversion is cached (by the hash of its weights)."""
    return assets.CACHE_DIR / "onnx" / model.source_sha256[:16]


def converted(model: LoadedModel, progress: bool = True) -> tuple[Path, dict]:
    """(folder, manifest) of ``model``'s conversion in the user cache (each stage reused when unchanged)."""
    from .export import convert

    out = conversion_dir(model)
    return out, convert(model, out, progress=progress)


def make_runner(backend: str, model: LoadedModel | None, precision: str, onnx: str | Path | None = None, **kw):
    """A runner for ``backend``; ONNX-based backends take ``onnx`` (or convert ``model`` first and take
    the graph the one engine-input decision picks, ``engine_input.engine_graph``)."""
    from .runners import create_runner

    if backend == "torch":
        return create_runner("torch", model=model, precision=precision, **kw)
    if backend in ENGINE_BACKENDS:
        from .engine import import_tensorrt

        import_tensorrt(backend)  # a missing library is reported now, not after a conversion
    if onnx is None:
        if model is None:
            raise AlbertIxrtError(f"backend {backend} needs --onnx or --model")
        out, manifest = converted(model)
        onnx = engine_graph(manifest, out, backend, precision)
    return create_runner(backend, onnx_path=str(onnx), precision=precision, **kw)


def engine_options(backend: str, batch_sizes, max_seq: int = DEFAULT_SQUAD.max_seq_length, tf32: bool = False) -> dict:
    """Runner options of an engine (empty for other backends): one profile covering every batch the
    caller feeds (and a last partial batch) at any length up to ``max_seq``, decided before the build."""
    if backend not in ENGINE_BACKENDS:
        return {}
    from .engine import ShapeProfile

    return {"profile": ShapeProfile.for_feeds(list(batch_sizes), max_seq), "tf32": tf32}
