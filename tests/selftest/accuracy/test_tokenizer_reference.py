"""The offset-tracking tokenizer gives the same ids as a plain transcription of the reference
(google-research/albert tokenization.py: preprocess_text + encode_pieces) on every dev-set word
and question, so the feature count equals the reference pipeline's."""
import unicodedata

import pytest

from albert_ixrt.squad.features import split_words

pytestmark = pytest.mark.selftest


def reference_ids(sp, text):
    out = " ".join(text.strip().split()).replace("``", '"').replace("''", '"')
    out = "".join(c for c in unicodedata.normalize("NFKD", out) if not unicodedata.combining(c)).lower()
    pieces = []
    for piece in sp.encode(out, out_type=str):
        if len(piece) > 1 and piece[-1] == "," and piece[-2].isdigit():
            cur = sp.encode(piece[:-1].replace("\u2581", ""), out_type=str)
            if piece[0] != "\u2581" and cur[0][0] == "\u2581":
                cur = cur[1:] if len(cur[0]) == 1 else [cur[0][1:], *cur[1:]]
            pieces.extend([*cur, piece[-1]])
        else:
            pieces.append(piece)
    return [sp.piece_to_id(p) for p in pieces]


def test_ids_equal_the_reference_on_the_whole_dev_set(dev_examples, albert_tokenizer):
    sp = albert_tokenizer.sp
    texts = {e.question for e in dev_examples}
    for context in {e.context for e in dev_examples}:
        texts.update(split_words(context)[0])
    mismatches = [t for t in texts if albert_tokenizer.encode(t) != reference_ids(sp, t)]
    print(f"\n{len(texts)} distinct dev words and questions, {len(mismatches)} mismatches")
    assert not mismatches, mismatches[:10]
