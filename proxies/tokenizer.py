"""Tokenizers for proxies: bytes by default (nothing to train, results independent of it), or a BPE trained
offline on the pool with `tokenizers`. Bits per byte are counted in bytes of UTF-8 text either way."""
from __future__ import annotations

import os
from typing import Iterable, Protocol

import numpy as np

from pipelines.runtime import storage
from pipelines.runtime.files import atomic_open

EOT_BYTE = 0  # separates documents in a byte stream (NUL does not occur in curated text)


class Tokenizer(Protocol):
    vocab_size: int
    eot: int

    def encode(self, text: str) -> np.ndarray: ...

    def describe(self) -> dict: ...


class ByteTokenizer:
    vocab_size = 256
    eot = EOT_BYTE

    def encode(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64)

    def describe(self) -> dict:
        return {"kind": "bytes", "vocab_size": 256, "eot": EOT_BYTE}


class BpeTokenizer:
    """Byte-level BPE from `tokenizers`; id 0 is the end-of-text token."""

    def __init__(self, tokenizer: object) -> None:
        self.tok = tokenizer
        self.vocab_size = tokenizer.get_vocab_size()
        self.eot = tokenizer.token_to_id("<eot>")

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 4096) -> "BpeTokenizer":
        from tokenizers import Tokenizer as HfTokenizer
        from tokenizers import decoders, models, pre_tokenizers, trainers

        tok = HfTokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<eot>"],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
        tok.train_from_iterator(texts, trainer=trainer)
        return cls(tok)

    def encode(self, text: str) -> np.ndarray:
        return np.asarray(self.tok.encode(text).ids, dtype=np.int64)

    def describe(self) -> dict:
        return {"kind": "bpe", "vocab_size": self.vocab_size, "eot": self.eot,
                "sha256": __import__("hashlib").sha256(self.tok.to_str().encode()).hexdigest()}

    def to_json(self) -> str:
        return self.tok.to_str()

    @classmethod
    def from_json(cls, body: str) -> "BpeTokenizer":
        from tokenizers import Tokenizer as HfTokenizer

        return cls(HfTokenizer.from_str(body))


def id_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned dtype that holds every id of a vocabulary: uint16 up to 65,536 ids, else uint32."""
    return np.dtype(np.uint16 if vocab_size <= 65536 else np.uint32)


def load_or_train(kind: str, vocab_size: int, folder: str, train_texts: list[str]) -> Tokenizer:
    """The byte tokenizer, or the BPE tokenizer saved in `folder` (trained on `train_texts` and saved there the
    first time)."""
    if kind == "bytes":
        return ByteTokenizer()
    path = os.path.join(folder, f"tokenizer-bpe-{vocab_size}.json")
    if storage.exists(path):
        return BpeTokenizer.from_json(storage.read_bytes(path).decode("utf-8"))
    tok = BpeTokenizer.train(train_texts, vocab_size)
    storage.makedirs(folder)
    with atomic_open(path) as fh:
        fh.write(tok.to_json())
    return tok
