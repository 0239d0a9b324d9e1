"""The subject once loaded: the model, its tokenizer and the SQuAD file, with the hashes and versions
a sign-off record names (what exactly was judged, by which suite, on which machine)."""
from __future__ import annotations

import functools
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .. import assets
from ..fileio import sha256_file
from ..model import LoadedModel, is_offline, load_model
from ..tokenizer import AlbertTokenizer
from .plan import Plan


@dataclass
class LoadedSubject:
    model: LoadedModel
    tokenizer: AlbertTokenizer
    squad: Path

    def describe(self) -> dict:
        return {"model": self.model.name, "kind": self.model.kind, "weights": self.model.weights,
                "weights_sha256": self.model.source_sha256, "tokenizer": str(Path(self.tokenizer.path).resolve()),
                "tokenizer_sha256": file_sha256(str(self.tokenizer.path)), "squad": str(self.squad.resolve()),
                "squad_sha256": file_sha256(str(self.squad)), "layers": self.model.config.get("num_hidden_layers"),
                "hidden_size": self.model.config.get("hidden_size")}


@functools.lru_cache(maxsize=16)
def file_sha256(path: str) -> str:
    return sha256_file(path)


def load_subject(plan: Plan) -> LoadedSubject:
    """The model the plan names (the built-in tiny self-test when none is), the tokenizer that belongs to
    it (vocabulary checked), and the SQuAD file (the plan's; the self-test's sample; else the official
    dev set: ``assets`` finds it, downloading it only when online)."""
    from ..loaders import load_tokenizer
    from ..selftest import squad_sample_path

    model = load_model(plan.subject.model, random_weights=plan.subject.random_weights)
    tokenizer = load_tokenizer(model, plan.data.tokenizer)
    if plan.data.squad:
        squad = Path(plan.data.squad)
    elif plan.data.sample:
        squad = squad_sample_path()
    else:
        squad = assets.squad_dev_path(None, download=not is_offline())
    return LoadedSubject(model, tokenizer, Path(squad))


@functools.lru_cache(maxsize=1)
def suite_identity() -> dict:
    """This suite's version, and its git commit (and whether the checkout has uncommitted changes)
    when it runs from a checkout; a record names both so a result can be traced to the code."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        ident = {"version": version("albert-ixrt")}
    except PackageNotFoundError:
        ident = {"version": "unknown (not installed)"}
    root = Path(__file__).resolve().parents[2]
    ident.update(commit=None, dirty=None)
    if (root / ".git").exists():
        try:
            head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                  timeout=10)
            dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.SubprocessError):
            return ident
        if head.returncode == 0:
            changed = bool(dirty.stdout.strip()) if dirty.returncode == 0 else None
            ident.update(commit=head.stdout.strip(), dirty=changed)
    return ident


@functools.lru_cache(maxsize=8)
def gpu_identity(device: str) -> dict:
    """The GPU behind ``device`` and the driver (None on the CPU, or when nothing answers); asked once per
    process (every acceptance test's JUnit properties carry it)."""
    if not str(device).startswith("cuda"):
        return {"gpu": None, "driver": None}
    out: dict = {"gpu": None, "driver": None}
    try:
        import torch

        if torch.cuda.is_available():
            index = int(str(device).split(":")[1]) if ":" in str(device) else 0
            out["gpu"] = torch.cuda.get_device_name(index)
    except Exception:  # naming the GPU must never fail a judgement
        pass
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
        if smi.returncode == 0 and smi.stdout.strip():
            out["driver"] = smi.stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError):
        pass
    return out
