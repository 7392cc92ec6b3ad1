"""The synthetic task's word-level tokenizer: a real `tokenizers` model, saved and reloaded."""

from __future__ import annotations

from transformers import AutoTokenizer

from fits import build_synthetic_tokenizer, generate_problems
from fits.synthetic._vocab import synthetic_vocabulary


def test_round_trip_special_tokens_and_reload(tmp_path):
    tok = build_synthetic_tokenizer(7)
    assert len(tok) == len(synthetic_vocabulary(7)) == 4 + 7 + 26 + 7
    p = generate_problems([3], seed=2)[0]
    ids = tok(p.prompt)["input_ids"]
    assert ids[0] == tok.bos_token_id and len(ids) == 1 + len(p.prompt.split())
    comp = tok(p.completion, add_special_tokens=False)["input_ids"]
    assert tok.decode(comp) == p.completion
    assert tok.unk_token_id not in ids + comp
    assert tok("x = 9")["input_ids"][-1] == tok.unk_token_id  # 9 is not a digit mod 7
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again(p.prompt)["input_ids"] == ids
    assert (again.pad_token_id, again.bos_token_id, again.eos_token_id) == (0, 1, 2)
    assert len(build_synthetic_tokenizer(11)) == len(tok) + 4
