"""The extraction sandbox: warm workers, limits, replacement, and every hostile file's reason."""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bastion.pipeline.extract.sandbox import ExtractionSandbox, SandboxError
from bastion.pipeline.model import ExtractionError, ExtractionResult
from tests.pipeline import hostile

STAND_IN = "tests.pipeline.hostile:"


@pytest.fixture(scope="module")
def quick() -> Iterator[ExtractionSandbox]:
    with ExtractionSandbox(target=STAND_IN + "quick_extract") as sandbox:
        yield sandbox


def reason_of(sandbox: ExtractionSandbox, data: bytes) -> str:
    with pytest.raises(ExtractionError) as caught:
        sandbox.extract_sync(data)
    return caught.value.reason


HOSTILE: list[tuple[Callable[[], bytes], str]] = [
    (hostile.png_renamed, "not_pdf"),
    (hostile.text_renamed, "not_pdf"),
    (hostile.empty, "empty"),
    (hostile.truncated, "truncated"),
    (hostile.encrypted_by_trailer, "encrypted"),
    (hostile.many_pages, "too_many_pages"),
    (hostile.decompression_bomb, "decompression_limit"),
    (hostile.javascript_open_action, "javascript"),
    (hostile.javascript_in_object_stream, "javascript"),
]


@pytest.mark.parametrize(("build", "reason"), HOSTILE, ids=[b.__name__ for b, _ in HOSTILE])
def test_hostile_files_get_their_reason_fast(
    quick: ExtractionSandbox, build: Callable[[], bytes], reason: str
) -> None:
    data = build()
    started = time.perf_counter()
    assert reason_of(quick, data) == reason
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("build", [hostile.prompt_injection, hostile.long_single_line])
def test_hostile_text_is_processed(quick: ExtractionSandbox, build: Callable[[], bytes]) -> None:
    data = build()
    result = quick.extract_sync(data)
    assert result.value("size") == len(data)


def test_workers_are_warm_and_reused(quick: ExtractionSandbox) -> None:
    pids = quick.pids
    data = hostile.normal_pdf()
    for _ in range(20):
        quick.extract_sync(data)
    assert quick.pids == pids  # the same processes served every document (bench/pipeline.py
    # measures what that saves)


@pytest.mark.skipif(not Path("/proc/self/limits").exists(), reason="needs /proc")
def test_workers_limit_their_address_space() -> None:
    with ExtractionSandbox(target=STAND_IN + "quick_extract", memory_mb=300) as sandbox:
        limits = Path(f"/proc/{sandbox.pids[0]}/limits").read_text()
    line = next(row for row in limits.splitlines() if row.startswith("Max address space"))
    assert line.split()[3:5] == [str(300 * 1024 * 1024)] * 2


def test_preflight_warnings_become_info_findings(quick: ExtractionSandbox) -> None:
    data = hostile.build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
        ],
        prefix=b"junk\n",
    )
    result = quick.extract_sync(data)
    assert [(f.rule_id, f.severity) for f in result.findings] == [
        ("preflight.header_offset", "info")
    ]


def test_timeout_kills_and_replaces_the_worker() -> None:
    with ExtractionSandbox(target=STAND_IN + "slow_extract", timeout_seconds=0.5) as sandbox:
        before = sandbox.pids
        started = time.perf_counter()
        assert reason_of(sandbox, hostile.normal_pdf(b"SLOW")) == "timeout"
        assert time.perf_counter() - started < 2.0
        assert sandbox.pids != before
        assert sandbox.extract_sync(hostile.normal_pdf()).pages == 1


def test_memory_error_is_memory_limit() -> None:
    with ExtractionSandbox(target=STAND_IN + "hungry_extract", memory_mb=384) as sandbox:
        before = sandbox.pids
        assert reason_of(sandbox, hostile.normal_pdf(b"HUNGRY")) == "memory_limit"
        assert sandbox.pids != before
        assert sandbox.extract_sync(hostile.normal_pdf()).pages == 1


def test_crash_at_the_memory_limit_is_memory_limit() -> None:
    """Native code that dies on a failed allocation: it says so on stderr, then aborts."""
    with ExtractionSandbox(target=STAND_IN + "crashing_extract", memory_mb=256) as sandbox:
        assert reason_of(sandbox, hostile.normal_pdf(b"BLOAT")) == "memory_limit"
        assert sandbox.extract_sync(hostile.normal_pdf()).pages == 1


def test_crash_and_exception_are_extract_failed() -> None:
    with ExtractionSandbox(target=STAND_IN + "crashing_extract") as sandbox:
        before = sandbox.pids
        with pytest.raises(ExtractionError) as caught:
            sandbox.extract_sync(hostile.normal_pdf(b"CRASH"))
        assert caught.value.reason == "extract_failed"
        assert "signal" in caught.value.detail
        assert sandbox.pids != before
        after_crash = sandbox.pids
        with pytest.raises(ExtractionError) as caught:
            sandbox.extract_sync(hostile.normal_pdf(b"RAISE"))
        assert caught.value.reason == "extract_failed"
        assert "stand-in extractor failure" in caught.value.detail
        assert sandbox.pids == after_crash  # an exception does not cost the worker
        assert sandbox.extract_sync(hostile.normal_pdf()).pages == 1


def test_output_on_stdout_does_not_break_the_protocol() -> None:
    with ExtractionSandbox(target=STAND_IN + "noisy_extract") as sandbox:
        for _ in range(3):
            assert sandbox.extract_sync(hostile.normal_pdf()).pages == 1


def test_worker_that_cannot_start_is_a_sandbox_error() -> None:
    sandbox = ExtractionSandbox(target="tests.pipeline.no_such_module:extract", start_timeout=20)
    try:
        with pytest.raises(SandboxError, match="no_such_module"):
            sandbox.start_sync()
    finally:
        sandbox.close_sync()


def test_closed_sandbox_refuses_work() -> None:
    sandbox = ExtractionSandbox(target=STAND_IN + "quick_extract")
    sandbox.close_sync()
    with pytest.raises(SandboxError):
        sandbox.extract_sync(hostile.normal_pdf())


async def test_async_pool_keeps_serving_while_one_document_hangs() -> None:
    sandbox = ExtractionSandbox(2, target=STAND_IN + "slow_extract", timeout_seconds=3.0)
    async with sandbox:
        slow = asyncio.ensure_future(sandbox.extract(hostile.normal_pdf(b"SLOW")))
        results = [await sandbox.extract(hostile.normal_pdf()) for _ in range(5)]
        assert not slow.done()  # served by the other worker while this one still hangs
        assert all(r.pages == 1 for r in results)
        with pytest.raises(ExtractionError) as caught:
            await slow
        assert caught.value.reason == "timeout"
        batch = await asyncio.gather(
            *(sandbox.extract(hostile.normal_pdf(), text_only=True) for _ in range(6))
        )
        assert len(batch) == 6


# --- with the real extractor -----------------------------------------------------------------


def _real_extractor_available() -> bool:
    try:
        from bastion.pipeline.extract import extract_document  # noqa: F401
    except ImportError:
        return False
    return True


real = pytest.mark.skipif(not _real_extractor_available(), reason="extractor not importable")


@pytest.fixture(scope="module")
def real_sandbox() -> Iterator[ExtractionSandbox]:
    with ExtractionSandbox() as sandbox:
        yield sandbox


@real
def test_real_extractor_reads_a_bundled_invoice(real_sandbox: ExtractionSandbox) -> None:
    from bastion.pipeline.samples import bundled_dir

    data = (bundled_dir() / "invoice_en_line_items.pdf").read_bytes()
    result = real_sandbox.extract_sync(data)
    assert isinstance(result, ExtractionResult)
    assert result.document_type == "invoice"
    assert result.pages == 1


@real
@pytest.mark.parametrize("build", [hostile.prompt_injection, hostile.long_single_line])
def test_real_extractor_processes_hostile_text(
    real_sandbox: ExtractionSandbox, build: Callable[[], bytes]
) -> None:
    data = build()
    started = time.perf_counter()
    result = real_sandbox.extract_sync(data)
    assert result.pages == 1
    assert result.text_chars > 100
    assert time.perf_counter() - started < real_sandbox.timeout_seconds


@real
@pytest.mark.parametrize(("build", "reason"), HOSTILE, ids=[b.__name__ for b, _ in HOSTILE])
def test_real_extractor_hostile_files(
    real_sandbox: ExtractionSandbox, build: Callable[[], bytes], reason: str
) -> None:
    assert reason_of(real_sandbox, build()) == reason


def test_sync_callers_share_the_workers_and_close_waits_for_them() -> None:
    import threading

    sandbox = ExtractionSandbox(1, target=STAND_IN + "quick_extract")
    sandbox.start_sync()
    results: list[int] = []

    def call() -> None:
        results.append(sandbox.extract_sync(hostile.normal_pdf()).pages)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [1, 1, 1, 1]  # one worker, four callers: one document at a time
    sandbox.close_sync()
    with pytest.raises(SandboxError):
        sandbox.extract_sync(hostile.normal_pdf())


def test_crash_is_not_memory_when_the_parent_is_large() -> None:
    # A forked worker's reported peak memory starts at its parent's: however large the
    # parent, a plain crash must not be taken for "memory_limit".
    page = resource.getpagesize()
    ballast = bytearray(420 * 1024 * 1024)
    ballast[::page] = b"\x01" * len(range(0, len(ballast), page))  # touch every page
    with (
        ExtractionSandbox(target=STAND_IN + "crashing_extract", memory_mb=512) as sandbox,
        pytest.raises(ExtractionError) as caught,
    ):
        sandbox.extract_sync(hostile.normal_pdf(b"CRASH"))
    assert caught.value.reason == "extract_failed", caught.value
    del ballast
