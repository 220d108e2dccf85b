"""A character-level tokenizer built locally with `tokenizers`, saved in HF format.

One token per printable ASCII character plus newline: nothing to download, lossless on the
synthetic tasks, and the token-level noise GSPO is about grows with response length, which
characters make long. vLLM and lm-eval load it through AutoTokenizer like any other.
"""

from __future__ import annotations

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

PAD, EOS, UNK = "<|pad|>", "<|endoftext|>", "<|unk|>"
CHARS = ["\n"] + [chr(i) for i in range(32, 127)]


def build_tokenizer() -> PreTrainedTokenizerFast:
    """The char-level tokenizer: ids 0-2 are pad, eos, unk; then newline and ASCII 32..126."""
    vocab = {t: i for i, t in enumerate([PAD, EOS, UNK, *CHARS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=PAD,
                                   unk_token=UNK, padding_side="left")
