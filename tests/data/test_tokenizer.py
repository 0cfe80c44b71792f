"""The word-level tokenizer of docs/ARCHITECTURE.md section 3."""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from vtbench.data.text import PAD, UNK, Tokenizer, words


def test_fit_encode_decode():
    tok = Tokenizer.fit(["Now we write a THREE.", "write a seven", "let's draw"])
    assert tok.vocab[:2] == ["a", "write"] and len(tok) == len(tok.vocab) + 2
    ids = tok.encode(["write a three", "write a nine please"], max_len=3)
    assert ids.shape == (2, 3) and ids.dtype == torch.long
    assert ids[0].tolist() == [tok.index["write"], tok.index["a"], tok.index["three"]]
    assert ids[1, 2].item() == UNK  # "nine" unknown; "please" truncated
    assert tok.decode(tok.encode(["let's draw a seven"], max_len=6)[0]) == "let's draw a seven"
    assert words("Don't STOP-now!") == ["don't", "stop", "now"]


def test_padding_and_lengths():
    tok = Tokenizer(["a", "b"])
    ids = tok.encode(["a b a", "b", ""])
    assert ids.tolist() == [[2, 3, 2], [3, PAD, PAD], [PAD, PAD, PAD]]
    assert tok.encode([]).shape == (0, 1) and tok.encode(["a"], max_len=4).tolist() == [[2, 0, 0, 0]]
    with pytest.raises(ValueError):
        tok.encode(["a"], max_len=0)


def test_words_of_any_script_stay_whole():
    assert words("Sauté the JALAPEÑO, don’t burn it") == ["sauté", "the", "jalapeño", "don't", "burn", "it"]
    assert words("Cre\u0300me bru\u0302le\u0301e") == words("Crème brûlée") == ["crème", "brûlée"]  # decomposed
    tok = Tokenizer.fit(["crème brûlée", "let’s go"])
    assert tok.decode(tok.encode(["Crème let's"])[0]) == "crème let's"


def test_bad_input_is_a_clear_error():
    tok = Tokenizer(["a", "b"])
    with pytest.raises(TypeError, match="texts must be a sequence of texts, got one string"):
        tok.encode("a b")
    with pytest.raises(TypeError, match="texts must be a sequence of texts"):
        Tokenizer.fit("a b")
    with pytest.raises(TypeError, match="texts must hold strings, got int"):
        tok.encode(["a", 3])
    for ids in ([-1], [4], torch.tensor([2, 9])):
        with pytest.raises(ValueError, match=r"ids must lie in 0..3 \(this tokenizer's 4 ids\)"):
            tok.decode(ids)
    with pytest.raises(ValueError, match="a tokenizer state is"):
        Tokenizer.from_state_dict({})


def test_max_size_and_state_dict():
    tok = Tokenizer.fit(["a a a b b c"], max_size=4)
    assert tok.vocab == ["a", "b"] and len(tok) == 4
    again = Tokenizer.from_state_dict(tok.state_dict())
    assert again.vocab == tok.vocab and torch.equal(again.encode(["c b a"]), tok.encode(["c b a"]))
    with pytest.raises(ValueError):
        Tokenizer(["a", "a"])
    with pytest.raises(ValueError):
        Tokenizer(["two words"])


@given(st.lists(st.text(max_size=30), max_size=8))
def test_fitted_texts_have_no_unknown_words(texts):
    tok = Tokenizer.fit(texts)
    ids = tok.encode(texts)
    n_words = torch.tensor([len(words(t)) for t in texts], dtype=torch.long)
    assert (ids != UNK).all() and ((ids > 1).sum(1) == n_words).all()
