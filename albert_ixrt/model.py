"""Load the torch model under test: hub id, local Hugging Face directory, TorchScript ``.pt``, or
a seeded random-weight *shape twin* built from a ``config.json`` (only when asked).

Every loaded model carries ``weights`` = "real", "random" or "known-answer", and every result it
touches repeats that label: a random-weight model measures speed and conversion, never accuracy; a
known-answer model (``albert_ixrt.known_answer``) proves the accuracy gate's verdict, never a model.
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from .config import DEFAULT_MODEL_ID
from .errors import AssetMissingError, InputFileError
from .fileio import sha256_file, sha256_json
from .options import MODEL_WEIGHT_FILES, TORCHSCRIPT_SUFFIXES, looks_like_hub_id  # noqa: F401  (checked without torch)

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAMES = ("start_logits", "end_logits")
#: The single-file weights of a hub checkpoint, hashed for the record (a sharded hub checkpoint's hash is
#: "unknown"; a local directory's covers every shard: ``Checkpoint``).  Every weights file a model
#: directory may hold is ``options.MODEL_WEIGHT_FILES`` (one list, read before torch is imported too).
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
INDEX_SUFFIX = ".index.json"
#: A known-answer model's TorchScript archive carries this extra file (JSON, "kind": KNOWN_ANSWER).
KNOWN_ANSWER = "known-answer"
KNOWN_ANSWER_EXTRA_FILE = "albert_ixrt.json"

#: The tiny profile: ALBERT's architecture at toy size, for fast tests and the offline self-test.
TINY_CONFIG = {
    "architectures": ["AlbertForQuestionAnswering"],
    "model_type": "albert",
    "vocab_size": 1000,
    "embedding_size": 32,
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_hidden_groups": 1,
    "num_attention_heads": 4,
    "intermediate_size": 128,
    "inner_group_num": 1,
    "hidden_act": "gelu_new",
    "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-12,
    "pad_token_id": 0,
    "bos_token_id": 2,
    "eos_token_id": 3,
}
RANDOM_SEED = 0


@dataclass
class LoadedModel:
    """A QA model as ``module(input_ids, attention_mask, token_type_ids) -> (start, end)``."""

    module: object            # torch.nn.Module (or a TorchScript module)
    name: str                 # what the user asked for
    kind: str                 # "hub" | "directory" | "torchscript" | "random" | "tiny"
    weights: str              # "real" | "random" | "known-answer"
    source_sha256: str        # hash of the weights (or of config + seed for random weights)
    config: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return {"random": "random weights", KNOWN_ANSWER: "known-answer model"}.get(self.weights, "real weights")

    def describe(self) -> dict:
        return {"model": self.name, "kind": self.kind, "weights": self.weights, "label": self.label,
                "source_sha256": self.source_sha256,
                "layers": self.config.get("num_hidden_layers"), "hidden_size": self.config.get("hidden_size")}


def _qa_wrapper():
    import torch

    class AlbertQA(torch.nn.Module):
        """Hugging Face AlbertForQuestionAnswering with the plain tensor interface of the engine."""

        def __init__(self, hf_model):
            super().__init__()
            self.hf = hf_model

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.hf(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                          return_dict=True)
            return out.start_logits, out.end_logits

    return AlbertQA


def wrap_hf(hf_model):
    hf_model.eval()
    return _qa_wrapper()(hf_model).eval()


def _read_config(path: Path) -> dict:
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputFileError(path, f"cannot read model config ({exc})") from None
    if not isinstance(cfg, dict) or cfg.get("model_type") != "albert":
        raise InputFileError(path, "not an ALBERT config.json (model_type must be 'albert')")
    return cfg


def random_twin(config: dict, seed: int = RANDOM_SEED, attn_implementation: str = "eager"):
    """The architecture of ``config`` with seeded random weights (the *shape twin*)."""
    import torch
    from transformers import AlbertConfig, AlbertForQuestionAnswering

    cfg = AlbertConfig(**{k: v for k, v in config.items() if k != "architectures"})
    cfg._attn_implementation = attn_implementation
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        hf = AlbertForQuestionAnswering(cfg)
    return wrap_hf(hf)


def is_offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in ("HF_HUB_OFFLINE", "ALBERT_IXRT_OFFLINE"))


def load_model(spec: str | os.PathLike = DEFAULT_MODEL_ID, *, random_weights: bool = False,
               attn_implementation: str = "eager", offline: bool | None = None) -> LoadedModel:
    """Resolve ``spec`` (hub id, directory, TorchScript file, config.json, or "tiny") to a model.

    ``attn_implementation="eager"`` by default: it is what exports to ONNX in the pattern that
    onnxruntime's transformer optimizer fuses into Attention; results match "sdpa".
    """
    spec_str = str(spec)
    path = Path(spec_str)
    if spec_str == "tiny":
        twin = random_twin(TINY_CONFIG, attn_implementation=attn_implementation)
        return LoadedModel(twin, "tiny", "tiny", "random", sha256_json([TINY_CONFIG, RANDOM_SEED]), dict(TINY_CONFIG))
    if path.suffix in TORCHSCRIPT_SUFFIXES:
        return load_torchscript(path)
    if path.name == "config.json" or path.suffix == ".json":
        if not path.is_file():
            raise AssetMissingError(f"model config not found: {path}")
        cfg = _read_config(path)
        if not random_weights:
            raise AssetMissingError(
                f"{path} describes the architecture only and holds no weights; pass --random-weights to build "
                "the seeded shape twin (speed and conversion only, never accuracy), or give a model directory.")
        return LoadedModel(random_twin(cfg, attn_implementation=attn_implementation), spec_str, "random", "random",
                           sha256_json([cfg, RANDOM_SEED]), cfg)
    if path.is_dir():
        return _load_directory(path, random_weights, attn_implementation)
    if not looks_like_hub_id(spec_str):
        raise AssetMissingError(
            f"model {spec_str!r} is neither a hub id (owner/name), a model directory, a TorchScript file "
            f"({', '.join(TORCHSCRIPT_SUFFIXES)}) nor a config.json")
    return _load_hub(spec_str, random_weights, attn_implementation, is_offline() if offline is None else offline)


@dataclass(frozen=True)
class Checkpoint:
    """The weights file(s) transformers will load from a model directory: one file, or an index and
    the shards it names (sorted by name: ``model-00001-of-0000N`` ... in shard order)."""

    files: tuple[Path, ...]          # what is read: the single file, or every shard
    index: Path | None = None        # the shard index, for a sharded checkpoint

    def sha256(self) -> str:
        """The weights' hash: the file's sha256; for a sharded checkpoint the sha256 of the JSON
        ``{"index": sha256(index file), "shards": [[name, sha256(shard)], ...]}`` with the shards in
        name order, so it covers the index and every shard."""
        if self.index is None:
            return sha256_file(self.files[0])
        return sha256_json({"index": sha256_file(self.index),
                            "shards": [[f.name, sha256_file(f)] for f in self.files]})


def find_checkpoint(path: Path) -> Checkpoint | None:
    """The first of ``MODEL_WEIGHT_FILES`` in ``path`` (transformers' own order), None when there is
    none; an index that cannot be read, or names a shard that is not there, is one clear error."""
    for name in MODEL_WEIGHT_FILES:
        candidate = path / name
        if not candidate.is_file():
            continue
        if not name.endswith(INDEX_SUFFIX):
            return Checkpoint((candidate,))
        return Checkpoint(shard_files(candidate), candidate)
    return None


def shard_files(index: Path) -> tuple[Path, ...]:
    """The shards ``index`` names (its ``weight_map`` values), each checked to exist beside it."""
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
        names = sorted(set(data["weight_map"].values()))
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputFileError(index, f"not a readable shard index (a JSON object with a weight_map; {exc})") from None
    if not names or not all(isinstance(n, str) and n and Path(n).name == n for n in names):
        raise InputFileError(index, "its weight_map names no shard files (or names outside the folder)")
    missing = [n for n in names if not (index.parent / n).is_file()]
    if missing:
        raise InputFileError(index, f"names shard {missing[0]}, which is not in {index.parent}"
                                    + (f" (nor {len(missing) - 1} more)" if len(missing) > 1 else ""))
    return tuple(index.parent / n for n in names)


def _load_directory(path: Path, random_weights: bool, attn_implementation: str) -> LoadedModel:
    cfg_path = path / "config.json"
    if not cfg_path.is_file():
        raise AssetMissingError(f"model directory {path} has no config.json; a Hugging Face model directory "
                                f"needs config.json and one of {', '.join(MODEL_WEIGHT_FILES)}")
    cfg = _read_config(cfg_path)
    if random_weights:
        return LoadedModel(random_twin(cfg, attn_implementation=attn_implementation), str(path), "random", "random",
                           sha256_json([cfg, RANDOM_SEED]), cfg)
    checkpoint = find_checkpoint(path)
    if checkpoint is None:
        raise AssetMissingError(
            f"model directory {path} has config.json but no weights (looked for {', '.join(MODEL_WEIGHT_FILES)}); "
            f"copy the checkpoint there (e.g. `hf download {DEFAULT_MODEL_ID} --local-dir {path}`), or pass "
            "--random-weights for the shape twin")
    from transformers import AlbertForQuestionAnswering

    first = checkpoint.index or checkpoint.files[0]
    try:
        hf = AlbertForQuestionAnswering.from_pretrained(str(path), attn_implementation=attn_implementation)
    except Exception as exc:  # safetensors, torch and transformers each raise their own error types
        text = str(exc).splitlines()[0]
        if "Weights only load failed" in text:
            raise InputFileError(first, "refused: the pickle holds objects other than tensors (state dicts "
                                        "are loaded with torch.load(weights_only=True))") from None
        raise InputFileError(first, f"cannot load the weights ({text})") from None
    return LoadedModel(wrap_hf(hf), str(path), "directory", "real", checkpoint.sha256(), cfg)


def _load_hub(model_id: str, random_weights: bool, attn_implementation: str, offline: bool) -> LoadedModel:
    if random_weights:
        raise AssetMissingError("--random-weights needs a config.json or a model directory, not a hub id "
                                f"({model_id!r}); e.g. --model ../shared/data/albert-base-v2/config.json")
    from transformers import AlbertForQuestionAnswering

    why = "offline mode" if offline else None
    if not offline:
        from .assets import hub_unreachable

        unreachable = hub_unreachable()  # one attempt: without it the hub client retries for ~30 s
        if unreachable:
            from huggingface_hub import constants

            offline, why = True, f"no network, {unreachable}"
            constants.HF_HUB_OFFLINE = True  # nor any other hub request of this process (each would wait)
    try:
        hf = AlbertForQuestionAnswering.from_pretrained(model_id, attn_implementation=attn_implementation,
                                                        local_files_only=offline)
    except OSError as exc:
        cause = f"{why}; not in the local cache" if why else f"no such model? {str(exc).splitlines()[0]}"
        raise AssetMissingError(
            f"could not load {model_id!r} from the Hugging Face hub or its local cache ({cause}). "
            f"On a machine with internet: `hf download {model_id} --local-dir DIR`, then pass "
            "--model DIR (or set ALBERT_IXRT_MODEL=DIR).") from None
    weights = _hub_weight_file(hf)
    return LoadedModel(wrap_hf(hf), model_id, "hub", "real", sha256_file(weights) if weights else "unknown",
                       hf.config.to_dict())


def _hub_weight_file(hf) -> Path | None:
    name = getattr(hf, "name_or_path", None) or getattr(hf.config, "_name_or_path", "")
    try:
        from huggingface_hub import try_to_load_from_cache

        for w in WEIGHT_FILES:
            found = try_to_load_from_cache(name, w)
            if isinstance(found, str):
                return Path(found)
    except Exception:  # the hash is informational; a cache layout change must not break loading
        return None
    return None


def load_torchscript(path: Path) -> LoadedModel:
    """A TorchScript file in ByteMLPerf's form: inputs (input_ids, attention_mask, token_type_ids),
    outputs (start_logits, end_logits).  Loaded only from an explicit path; checked by a dry run."""
    import torch

    if not path.is_file():
        raise AssetMissingError(f"TorchScript model not found: {path}")
    extra = {KNOWN_ANSWER_EXTRA_FILE: ""}
    try:
        with warnings.catch_warnings():  # torch 2.13 deprecates torch.jit.load; ByteMLPerf's models are TorchScript
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except (RuntimeError, ValueError) as exc:
        raise InputFileError(path, f"not a loadable TorchScript archive ({str(exc).splitlines()[0]})") from None
    module.eval()
    check_qa_module(module, path)
    # A TorchScript archive carries no config; one beside it tells the graph fuser the head count.
    beside = path.parent / "config.json"
    config = _read_config(beside) if beside.is_file() else {}
    weights = KNOWN_ANSWER if _archive_kind(path, extra[KNOWN_ANSWER_EXTRA_FILE]) == KNOWN_ANSWER else "real"
    return LoadedModel(TorchScriptQA(module), str(path), "torchscript", weights, sha256_file(path), config)


def archive_kind(path: str | os.PathLike) -> str | None:
    """The "kind" of an albert-ixrt TorchScript archive's label, read from its zip directory without torch;
    None for a plain exported model, a file that is no archive, or a label the loader refuses."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            labels = [n for n in archive.namelist() if n.endswith(f"/extra/{KNOWN_ANSWER_EXTRA_FILE}")]
            return _archive_kind(Path(path), archive.read(labels[0])) if labels else None
    except (OSError, zipfile.BadZipFile, InputFileError):
        return None


def _archive_kind(path: Path, text: str | bytes) -> str | None:
    """The "kind" of an albert-ixrt TorchScript label (absent: None, a plain exported model)."""
    if not text:
        return None
    try:
        return json.loads(text).get("kind")
    except (ValueError, AttributeError, UnicodeDecodeError):
        raise InputFileError(path, f"its {KNOWN_ANSWER_EXTRA_FILE} label is not a JSON object") from None


class TorchScriptQA:
    """Adapts a TorchScript QA module's outputs (tuple, list or dict) to (start, end)."""

    def __init__(self, module):
        self.module = module

    def __call__(self, input_ids, attention_mask, token_type_ids):
        return split_qa_outputs(self.module(input_ids, attention_mask, token_type_ids))

    def eval(self):
        self.module.eval()
        return self

    def to(self, *args, **kwargs):
        self.module.to(*args, **kwargs)
        return self


def split_qa_outputs(out):
    if isinstance(out, dict):
        return out["start_logits"], out["end_logits"]
    if hasattr(out, "start_logits"):
        return out.start_logits, out.end_logits
    if isinstance(out, (tuple, list)) and len(out) >= 2:
        return out[0], out[1]
    raise TypeError(f"expected (start_logits, end_logits), got {type(out).__name__}")


def check_qa_module(module, path: Path, seq: int = 8) -> None:
    """Dry-run a QA module on a 1x``seq`` batch; a wrong signature becomes one clear error."""
    import torch

    ids = torch.full((1, seq), 2, dtype=torch.long)
    feed = (ids, torch.ones_like(ids), torch.zeros_like(ids))
    try:
        with torch.inference_mode():
            start, end = split_qa_outputs(module(*feed))
    except Exception as exc:  # TorchScript raises many kinds; the user needs the one line below
        raise InputFileError(path, "TorchScript model does not take (input_ids, attention_mask, token_type_ids) "
                                   f"int64 [batch, seq] tensors: {str(exc).strip().splitlines()[-1][:200]}") from None
    for name, t in (("start_logits", start), ("end_logits", end)):
        if not hasattr(t, "shape") or tuple(t.shape) != (1, seq):
            raise InputFileError(path, f"TorchScript output {name} has shape {tuple(getattr(t, 'shape', ()))}, "
                                       f"expected (batch, seq) = (1, {seq})")
