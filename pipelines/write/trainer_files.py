"""The files one training shard is written as: Parquet rows, token files, Megatron's indexed dataset, provenance.

Token files (`tokens/NAME.bin`, `tokens/NAME.idx`): the flat token ids of the shard's documents in shard order,
each followed by the end-of-text id, as uint16 (vocabularies up to 65,536 ids) or uint32; and the int64 start of
every document with the total at the end.

Megatron-LM's indexed dataset (`megatron/NAME.bin`, `megatron/NAME.idx`), as `megatron.core.datasets.
indexed_dataset` and NeMo read it: `.bin` holds the same ids (uint16, or int32 above 65,536 ids); `.idx` is, little
endian: the 9 bytes `MMIDIDX\\x00\\x00`, version (uint64, 1), the dtype code (uint8: 8 for uint16, 4 for int32),
the sequence count S (uint64), the document count D + 1 (uint64), then S int32 sequence lengths (tokens), S int64
sequence pointers (byte offsets into `.bin`) and D + 1 int64 document indices (0, 1, ..., S: one sequence per
document, end-of-text included).
"""
from __future__ import annotations

import os
import struct
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.runtime import storage
from pipelines.runtime.files import atomic_open
from pipelines.schema import SCORES
from proxies.tokenizer import id_dtype

FORMATS = ("parquet", "tokens", "megatron")
FOLDERS = {"parquet": ("parquet",), "tokens": ("tokens",), "megatron": ("megatron",)}
SHARD_SCHEMA = pa.schema([
    pa.field("id", pa.string(), nullable=False), pa.field("repeat", pa.int32(), nullable=False),
    pa.field("text", pa.string()), pa.field("source", pa.string()), pa.field("domain", pa.string()),
    pa.field("scores", SCORES), pa.field("n_tokens", pa.int64(), nullable=False),
    pa.field("license", pa.string()), pa.field("consent", pa.string()),
])
PROVENANCE_SCHEMA = pa.schema([
    pa.field("shard", pa.string()), pa.field("position", pa.int64()), pa.field("id", pa.string()),
    pa.field("repeat", pa.int32()), pa.field("source_uri", pa.string()), pa.field("locator", pa.string()),
    pa.field("source", pa.string()), pa.field("domain", pa.string()), pa.field("license", pa.string()),
    pa.field("consent", pa.string()), pa.field("n_tokens", pa.int64()),
])
MEGATRON_HEADER = b"MMIDIDX\x00\x00"
MEGATRON_CODES = {np.dtype(np.uint16): 8, np.dtype(np.int32): 4}


def megatron_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16 if vocab_size <= 65536 else np.int32)


def shard_name(index: int, count: int) -> str:
    return f"shard-{index:05d}-of-{count:05d}"


def megatron_index(lengths: np.ndarray, dtype: np.dtype) -> bytes:
    """The `.idx` of a Megatron indexed dataset whose documents are one sequence each, of these lengths."""
    lengths = np.asarray(lengths, dtype=np.int64)
    pointers = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) * dtype.itemsize
    head = MEGATRON_HEADER + struct.pack("<QBQQ", 1, MEGATRON_CODES[dtype], len(lengths), len(lengths) + 1)
    return b"".join([head, lengths.astype("<i4").tobytes(), pointers.astype("<i8").tobytes(),
                     np.arange(len(lengths) + 1, dtype="<i8").tobytes()])


def write_shard(folder: str, name: str, rows: pa.Table, provenance: pa.Table, tokens: np.ndarray,
                lengths: np.ndarray, vocab_size: int, formats: tuple[str, ...]) -> list[str]:
    """Write one shard's files (each written whole); returns their paths relative to `folder`.
    `rows` follows SHARD_SCHEMA, `tokens` is the shard's ids end to end, `lengths` each row's token count."""
    starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    outputs: list[tuple[str, Callable[[Any], None]]] = [
        (f"provenance/{name}.parquet", lambda f: pq.write_table(provenance, f, compression="zstd"))]
    if "parquet" in formats:
        outputs.append((f"parquet/{name}.parquet", lambda f: pq.write_table(rows, f, compression="zstd")))
    if "tokens" in formats:
        outputs.append((f"tokens/{name}.bin", lambda f: f.write(_raw(tokens.astype(id_dtype(vocab_size), copy=False)))))
        outputs.append((f"tokens/{name}.idx", lambda f: f.write(_raw(starts))))
    if "megatron" in formats:
        dtype = megatron_dtype(vocab_size)
        outputs.append((f"megatron/{name}.bin", lambda f: f.write(_raw(tokens.astype(dtype, copy=False)))))
        outputs.append((f"megatron/{name}.idx", lambda f: f.write(megatron_index(lengths, dtype))))
    for relative, write in outputs:
        storage.makedirs(os.path.dirname(os.path.join(folder, relative)))
        with atomic_open(os.path.join(folder, relative), "wb") as fh:
            write(fh)
    return [relative for relative, _ in outputs]


def _raw(array: np.ndarray) -> memoryview:
    """An array's bytes, without a copy."""
    return memoryview(np.ascontiguousarray(array)).cast("B")
