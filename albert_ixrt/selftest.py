"""The embedded default of ``albert-ixrt run --profile tiny``: everything the project makes itself.

- a SentencePiece model trained on the project's own small text (``selftest_data/corpus.txt``),
  with ALBERT's special ids (<pad>=0, <unk>=1, [CLS]=2, [SEP]=3, [MASK]=4);
- a small SQuAD-format sample written for the project (``selftest_data/squad_sample.json``);
- the tiny seeded random-weight ALBERT (``model.load_model("tiny")``).

Offline, in seconds; every result is labelled a self-test (the model is random: its EM/F1 only
show that the pipeline runs end to end).
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from .config import CACHE_DIR
from .fileio import atomic_path, sha256_file

SELFTEST_LABEL = "self-test (tiny random-weight model, project-made tokenizer and sample; not an accuracy figure)"
SPIECE_VOCAB_SIZE = 300


def data_file(name: str) -> Path:
    return Path(str(resources.files("albert_ixrt") / "selftest_data" / name))


def squad_sample_path() -> Path:
    return data_file("squad_sample.json")


def selftest_spiece(cache_dir: Path = CACHE_DIR) -> Path:
    """Train (once; cached by the corpus hash) the self-test SentencePiece model and return its path."""
    import sentencepiece as spm

    from .tokenizer import preprocess_with_map

    corpus = data_file("corpus.txt")
    key = sha256_file(corpus)[:16]
    dest = Path(cache_dir) / "selftest" / f"spiece-{key}-{SPIECE_VOCAB_SIZE}.model"
    if dest.is_file():
        return dest
    lines = [preprocess_with_map(line)[0] for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    with atomic_path(dest) as tmp:
        prefix = tmp.with_suffix("")
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines), model_prefix=str(prefix), vocab_size=SPIECE_VOCAB_SIZE,
            model_type="unigram", character_coverage=1.0, hard_vocab_limit=False,
            pad_id=0, unk_id=1, bos_id=-1, eos_id=-1, user_defined_symbols=["[CLS]", "[SEP]", "[MASK]"],
            normalization_rule_name="identity", minloglevel=2, num_threads=1, seed_sentencepiece_size=10000,
        )
        Path(f"{prefix}.model").replace(tmp)
        Path(f"{prefix}.vocab").unlink(missing_ok=True)
    return dest
