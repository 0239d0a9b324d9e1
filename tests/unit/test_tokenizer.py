"""The ALBERT tokenizer against the reference behaviour (sentencepiece + ALBERT preprocessing)."""
import pytest

from albert_ixrt.tokenizer import AlbertTokenizer, preprocess_with_map


def test_hello_world_matches_reference_ids(albert_tokenizer):
    assert albert_tokenizer.encode_pair_ids("Hello world") == [2, 10975, 126, 3]
    assert albert_tokenizer.encode("This is a test") == [48, 25, 21, 1289]


@pytest.mark.parametrize("text, expected", [
    ("  Hello \t\n World  ", "hello world"),
    ("``quoted''", '"quoted"'),
    ("Café Señor", "cafe senor"),
    ("ΟΔΟΣ", "οδος"),  # final sigma, as str.lower() does it
])
def test_preprocess_matches_albert_rules(text, expected):
    out, mapping = preprocess_with_map(text)
    assert out == expected
    assert len(mapping) == len(out)
    assert all(0 <= i < j <= len(text) for i, j in mapping)


def test_digit_comma_is_split_like_the_reference(albert_tokenizer):
    pieces = [p.piece for p in albert_tokenizer.tokenize("in 1,000, or 3,")]
    assert pieces[-1] == "," and pieces[-2] == "▁3"
    assert "▁1,000" in pieces and pieces[pieces.index("▁1,000") + 1] == ","


def test_world_comma_and_possessive_are_separate_pieces(albert_tokenizer):
    # transformers 5.x's AlbertTokenizer gets these wrong (single pieces); the reference splits them.
    assert [p.piece for p in albert_tokenizer.tokenize("world,")] == ["▁world", ","]
    assert [p.piece for p in albert_tokenizer.tokenize("denver's")] == ["▁denver", "'", "s"]


@pytest.mark.parametrize("text", ["Café ``Señor'' at Levi's Stadium, 24–10.", "x\u00a0y", "北京 大学", "(1,2,3)"])
def test_offsets_point_back_into_the_original_text(albert_tokenizer, text):
    pieces = albert_tokenizer.tokenize(text)
    assert pieces
    prev_end = 0
    for p in pieces:
        assert 0 <= p.start <= p.end <= len(text)
        assert p.start >= prev_end  # spans are ordered and do not overlap
        prev_end = p.end
        surface = text[p.start:p.end]
        assert surface.strip() == surface


def test_bad_tokenizer_files_give_clear_errors(tmp_path):
    from albert_ixrt.errors import AssetMissingError, InputFileError

    with pytest.raises(AssetMissingError, match="spiece.model"):
        AlbertTokenizer(tmp_path)
    junk = tmp_path / "junk.model"
    junk.write_bytes(b"not a model")
    with pytest.raises(InputFileError, match="junk.model: not a SentencePiece model"):
        AlbertTokenizer(junk)
