"""The synthetic task's tokenizer: one token per word, built with the ``tokenizers`` library.

The vocabulary is closed and small: 4 special tokens (``<pad>``, ``<bos>``, ``<eos>``,
``<unk>``), the 7 symbols of the task (``= + - * , ? >``), the 26 letter names and the numbers
``0 .. prime - 1``. It is a real ``tokenizers`` WordLevel model with a whitespace
pre-tokenizer and a template that adds ``<bos>``, wrapped as ``PreTrainedTokenizerFast`` so
that it saves and loads with the model like any Hugging Face tokenizer.
"""

from __future__ import annotations

import string
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedTokenizerFast

__all__ = ["SPECIAL_TOKENS", "SYMBOLS", "build_synthetic_tokenizer", "synthetic_vocabulary"]

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")
SYMBOLS = ("=", "+", "-", "*", ",", "?", ">")


def synthetic_vocabulary(prime: int = 7) -> list[str]:
    """The ordered vocabulary for arithmetic modulo ``prime`` (token id = position)."""
    return [
        *SPECIAL_TOKENS,
        *SYMBOLS,
        *string.ascii_lowercase,
        *(str(v) for v in range(prime)),
    ]


def build_synthetic_tokenizer(prime: int = 7) -> PreTrainedTokenizerFast:
    """A word-level tokenizer for the synthetic task, wrapped for transformers.

    ``tokenizer(prompt)`` gives ``<bos>`` followed by one id per word; completions are encoded
    with ``add_special_tokens=False`` and ``<eos>`` appended by the data code. Decoding joins
    words with spaces, so ``decode(encode(text))`` returns ``text``.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(synthetic_vocabulary(prime))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A",
        pair="<bos> $A $B",
        special_tokens=[("<bos>", vocab["<bos>"])],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        bos_token="<bos>",
        eos_token="<eos>",
        unk_token="<unk>",
        padding_side="right",
    )
    fast.model_input_names = ["input_ids", "attention_mask"]
    return fast
