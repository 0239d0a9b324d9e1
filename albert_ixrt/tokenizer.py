"""ALBERT's SentencePiece tokenizer with the reference preprocessing, and character offsets.

Why not ``transformers.AlbertTokenizer``: in transformers 5.x it is backed by ``tokenizers`` and
splits differently from the reference ("world," and "denver's" come out as single pieces), and
the fast converter disagrees on ~2,400 SQuAD dev texts.  The reference (google-research/albert
``tokenization.py``, HF's slow tokenizer) drives sentencepiece directly after:

1. collapsing whitespace runs to one space (and stripping the ends);
2. turning the LaTeX quotes ``\u0060\u0060`` and ``''`` into ``"``;
3. NFKD, then dropping combining marks (accents);
4. lower-casing;

then re-splitting a piece that ends in "<digit>," so the comma stands alone.  We do the same and
also keep, for every piece, the span of *original* characters it came from, which lets
post-processing cut the answer out of the original context exactly (no hand-written alignment
library does this for SentencePiece with ALBERT's preprocessing, hence this module).
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import AssetMissingError, InputFileError

SPIECE_UNDERLINE = "\u2581"
CLS, SEP, PAD, UNK = "[CLS]", "[SEP]", "<pad>", "<unk>"


@dataclass(frozen=True)
class Piece:
    """One token: its id, its piece text, and its span [start, end) in the original text."""

    id: int
    piece: str
    start: int
    end: int


def preprocess_with_map(text: str, lower: bool = True) -> tuple[str, list[tuple[int, int]]]:
    """ALBERT's ``preprocess_text`` that also returns, for every output character, the span
    [start, end) of input characters it came from (two for a merged `` or '', else one).

    Per-character NFKD followed by dropping combining marks equals the whole-string version
    (canonical reordering only moves combining marks, which are dropped).
    """
    # 1. collapse whitespace (str.split semantics, as the reference uses).
    chars: list[tuple[str, int, int]] = []
    pending_space = -1
    for i, c in enumerate(text):
        if c.isspace():
            if chars and pending_space < 0:
                pending_space = i
            continue
        if pending_space >= 0:
            chars.append((" ", pending_space, pending_space + 1))
            pending_space = -1
        chars.append((c, i, i + 1))
    # 2. `` and '' -> "
    quoted: list[tuple[str, int, int]] = []
    k = 0
    while k < len(chars):
        c, i, j = chars[k]
        if c in "`'" and k + 1 < len(chars) and chars[k + 1][0] == c:
            quoted.append(('"', i, chars[k + 1][2]))
            k += 2
            continue
        quoted.append((c, i, j))
        k += 1
    # 3. NFKD without combining marks, 4. lower case.
    out_chars: list[str] = []
    out_map: list[tuple[int, int]] = []
    for c, i, j in quoted:
        for d in unicodedata.normalize("NFKD", c):
            if unicodedata.combining(d):
                continue
            for e in d.lower() if lower else d:
                out_chars.append(e)
                out_map.append((i, j))
    out = "".join(out_chars)
    if lower:
        # str.lower() is context-sensitive for one letter (final sigma); keep its answer.
        whole = "".join(q[0] for q in quoted)
        whole = "".join(d for d in unicodedata.normalize("NFKD", whole) if not unicodedata.combining(d)).lower()
        if whole != out and len(whole) == len(out):
            out = whole
    return out, out_map


class AlbertTokenizer:
    """SentencePiece + ALBERT preprocessing; ``tokenize`` returns pieces with original offsets."""

    def __init__(self, spiece_model: str | Path, lower: bool = True):
        import sentencepiece as spm

        path = Path(spiece_model)
        if path.is_dir():
            path = path / "spiece.model"
        if not path.is_file():
            raise AssetMissingError(
                f"SentencePiece model not found: {path}. Pass --tokenizer with a spiece.model file "
                "or a model directory that contains one (e.g. ../shared/data/albert-base-v2)."
            )
        self.path = path
        self.lower = lower
        self.sp = spm.SentencePieceProcessor()
        try:
            self.sp.load(str(path))
        except (OSError, RuntimeError) as exc:
            raise InputFileError(path, f"not a SentencePiece model ({str(exc).splitlines()[0]})") from None
        self.vocab_size = self.sp.get_piece_size()
        self.cls_id = self._special(CLS)
        self.sep_id = self._special(SEP)
        self.pad_id = self._special(PAD)
        self._tokenize_cached = lru_cache(maxsize=1 << 18)(self._tokenize_uncached)
        self._vocab_arrays = None

    def _special(self, piece: str) -> int:
        pid = self.sp.piece_to_id(piece)
        if pid == self.sp.unk_id() and piece != UNK:
            raise InputFileError(self.path, f"SentencePiece model has no {piece} piece; not an ALBERT vocabulary")
        return pid

    # -- public API ---------------------------------------------------------------------------
    def tokenize(self, text: str) -> tuple[Piece, ...]:
        """Pieces of ``text`` with spans in ``text``'s own character indices."""
        return self._tokenize_cached(text)

    def encode(self, text: str) -> list[int]:
        return [p.id for p in self.tokenize(text)]

    def encode_pair_ids(self, text: str) -> list[int]:
        """``[CLS] text [SEP]`` ids (what "Hello world" -> [2, 10975, 126, 3] checks)."""
        return [self.cls_id, *self.encode(text), self.sep_id]

    def piece_table(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``tokenize`` of many texts at once, as arrays: ids, starts and ends of every text's pieces
        one text after the other (int32), and each text's first piece (int64, len(texts) + 1).

        Text that preprocessing only lower-cases (``_plain_ascii``: most SQuAD words and questions)
        takes one batched SentencePiece call for its ids; its pieces must then spell it out ('▁' for
        each space and for the leading dummy prefix: checked text by text, else it takes the
        ``tokenize`` path, as does one with a "<digit>," piece), so each piece covers the next
        ``len(piece)`` characters, less a leading '▁' (the dummy prefix, or a space that
        ``_orig_span`` leaves out), and the offsets are cumulative sums of the pieces' lengths.
        The dev set's 52,000 distinct words and questions cost ~0.4 s this way, against ~2 s one
        ``encode(..., return_type="proto")`` call and Python offset walk each."""
        vocab, vocab_len, vocab_lead = self._vocab()
        n = len(texts)
        plain = [i for i, t in enumerate(texts) if t and _plain_ascii(t)]
        norms = [texts[i].lower() if self.lower else texts[i] for i in plain]
        ok_idx: list[int] = []
        ok_ids: list[list[int]] = []
        for i, norm, ids in zip(plain, norms, self.sp.encode(norms, out_type=int) if norms else []):
            if ("".join(map(vocab.__getitem__, ids)) == SPIECE_UNDERLINE + norm.replace(" ", SPIECE_UNDERLINE)
                    and not ("," in norm and any(_digit_comma(vocab[j]) for j in ids))):
                ok_idx.append(i)
                ok_ids.append(ids)
        ok = np.zeros(n, dtype=bool)
        ok[ok_idx] = True
        general = {i: self.tokenize(texts[i]) for i in np.flatnonzero(~ok).tolist()}
        counts = np.zeros(n, dtype=np.int64)
        ok_counts = np.fromiter(map(len, ok_ids), dtype=np.int64, count=len(ok_ids))
        counts[ok_idx] = ok_counts
        for i, pieces in general.items():
            counts[i] = len(pieces)
        first = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=first[1:])
        total = int(first[-1])
        out_ids = np.zeros(total, dtype=np.int32)
        out_starts = np.zeros(total, dtype=np.int32)
        out_ends = np.zeros(total, dtype=np.int32)
        flat = np.fromiter(chain.from_iterable(ok_ids), dtype=np.int64, count=int(ok_counts.sum()))
        if len(flat):
            length = vocab_len[flat]
            text_of = np.repeat(np.arange(len(ok_ids)), ok_counts)
            before = np.concatenate([[0], np.cumsum(ok_counts)])[:-1]       # each text's first flat piece
            csum = np.cumsum(length)
            ends = csum - np.concatenate([[0], csum])[before][text_of] - 1  # -1: the dummy prefix
            at = first[np.asarray(ok_idx)][text_of] + (np.arange(len(flat)) - before[text_of])
            out_ids[at] = flat
            out_starts[at] = ends - length + vocab_lead[flat]
            out_ends[at] = ends
        for i, pieces in general.items():
            sl = slice(first[i], first[i + 1])
            out_ids[sl] = [p.id for p in pieces]
            out_starts[sl] = [p.start for p in pieces]
            out_ends[sl] = [p.end for p in pieces]
        return out_ids, out_starts, out_ends, first

    def _vocab(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Every piece's text, length, and whether it starts with '▁' (built once)."""
        if self._vocab_arrays is None:
            vocab = [self.sp.id_to_piece(i) for i in range(self.vocab_size)]
            self._vocab_arrays = (vocab, np.array([len(p) for p in vocab], dtype=np.int64),
                                  np.array([p.startswith(SPIECE_UNDERLINE) for p in vocab], dtype=np.int64))
        return self._vocab_arrays

    # -- internals ------------------------------------------------------------------------------
    def _tokenize_uncached(self, text: str) -> tuple[Piece, ...]:
        return self._tokenize_plain(text) if _plain_ascii(text) else self._tokenize_general(text)

    def _tokenize_general(self, text: str) -> tuple[Piece, ...]:
        norm, norm_map = preprocess_with_map(text, self.lower)
        if not norm:
            return ()
        proto = self.sp.encode(norm, return_type="proto")
        byte_to_char = _byte_to_char_index(norm)
        pieces: list[Piece] = []
        for p in proto.pieces:
            c0, c1 = byte_to_char[p.begin], byte_to_char[p.end]
            if len(p.piece) > 1 and p.piece[-1] == "," and p.piece[-2].isdigit():
                pieces.extend(self._split_digit_comma(p.piece, norm, c0, c1, norm_map))
                continue
            pieces.append(Piece(p.id, p.piece, *_orig_span(c0, c1, norm, norm_map)))
        return tuple(pieces)

    def _tokenize_plain(self, text: str) -> tuple[Piece, ...]:
        """``_tokenize_uncached`` for text that preprocessing leaves as it is but for case (see
        ``_plain_ascii``): normalised character i is original character i and byte i, so the
        per-character maps are the identity and need not be built."""
        norm = text.lower() if self.lower else text
        if not norm:
            return ()
        pieces: list[Piece] = []
        for p in self.sp.encode(norm, return_type="proto").pieces:
            c0, c1 = p.begin, p.end
            piece = p.piece
            if len(piece) > 1 and piece[-1] == "," and piece[-2].isdigit():
                identity = [(i, i + 1) for i in range(len(norm))]
                pieces.extend(self._split_digit_comma(piece, norm, c0, c1, identity))
                continue
            while c0 < c1 and norm[c0] == " ":     # _orig_span with the identity map
                c0 += 1
            pieces.append(Piece(p.id, piece, c0, c1 if c0 < c1 else c0))
        return tuple(pieces)

    def _split_digit_comma(self, piece: str, norm: str, c0: int, c1: int,
                           norm_map: list[tuple[int, int]]) -> list[Piece]:
        """The reference re-encodes ``piece[:-1]`` (without '▁') and appends the comma alone."""
        body = piece[:-1].replace(SPIECE_UNDERLINE, "")
        sub = list(self.sp.encode(body, out_type=str))
        if piece[0] != SPIECE_UNDERLINE and sub and sub[0].startswith(SPIECE_UNDERLINE):
            sub = sub[1:] if len(sub[0]) == 1 else [sub[0][1:], *sub[1:]]
        sub.append(piece[-1])
        # Offsets: the surface of the whole piece is norm[c0:c1] (perhaps with a leading space);
        # walk the sub-pieces along it.
        out: list[Piece] = []
        pos = c0
        while pos < c1 and norm[pos] == " ":
            pos += 1
        for s in sub:
            text = s.replace(SPIECE_UNDERLINE, "")
            end = min(pos + len(text), c1)
            out.append(Piece(self.sp.piece_to_id(s), s, *_orig_span(pos, end, norm, norm_map)))
            pos = end
        return out


def _digit_comma(piece: str) -> bool:
    """A piece the reference splits again: "<digit>," (the comma goes alone)."""
    return len(piece) > 1 and piece[-1] == "," and piece[-2].isdigit()


def _plain_ascii(text: str) -> bool:
    """True when ``preprocess_with_map`` would only lower-case ``text``: ASCII (NFKD changes
    nothing, no combining marks, one character per byte), whitespace already collapsed to single
    spaces with none at the ends, and no `` or '' to merge.  Most SQuAD words and questions are
    such text; the general path stays for the rest."""
    return text.isascii() and "``" not in text and "''" not in text and text == " ".join(text.split())


def _byte_to_char_index(text: str) -> list[int]:
    """Map every UTF-8 byte offset of ``text`` (0..len(bytes)) to a character offset."""
    table: list[int] = []
    for ci, ch in enumerate(text):
        table.extend([ci] * len(ch.encode("utf-8")))
    table.append(len(text))
    return table


def _orig_span(c0: int, c1: int, norm: str, norm_map: list[tuple[int, int]]) -> tuple[int, int]:
    """Span of original characters behind normalised characters [c0, c1), leading space excluded."""
    while c0 < c1 and norm[c0] == " ":
        c0 += 1
    if c0 >= c1:  # a bare '▁' piece: an empty span at the next character
        at = norm_map[c0][0] if c0 < len(norm_map) else (norm_map[-1][1] if norm_map else 0)
        return at, at
    return norm_map[c0][0], norm_map[c1 - 1][1]
