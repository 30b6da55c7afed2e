"""The account's sign-in delay is awaited, not slept in a worker thread: a burst of guesses at
one account leaves the server's threads to everyone else (issue 13, finding 7)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import anyio
import pytest
from anyio import to_thread
from sqlalchemy import Engine

from terugkeer.config import get_settings
from terugkeer.security.accounts import SignInError, add_user, sign_in_awaiting, sign_in_delay

PASSWORD = "een heel lang wachtwoord"


@pytest.fixture
def slow_account(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setenv("TERUGKEER_SIGNIN_FREE_FAILURES", "1")
    monkeypatch.setenv("TERUGKEER_SIGNIN_MAX_DELAY", "1.5")
    monkeypatch.setenv("TERUGKEER_ADDRESS_FAILURES", "1000")
    get_settings.cache_clear()
    add_user(engine, "idv-wait", "idv_officer", PASSWORD)
    yield engine
    get_settings.cache_clear()


def test_guesses_wait_without_holding_the_threads(slow_account: Engine) -> None:
    engine = slow_account

    async def scenario() -> tuple[float, int]:
        # a small pool (the server's is 40 threads), and twice its size of guesses
        to_thread.current_default_thread_limiter().total_tokens = threads
        refused = 0

        async def guess() -> None:
            nonlocal refused
            try:
                await sign_in_awaiting(engine, "idv-wait", "wrong password!!", "10.9.0.1")
            except SignInError:
                refused += 1

        for _ in range(3):  # past the free failures: the account now waits 1.5 s per attempt
            await guess()
        assert sign_in_delay(engine, "idv-wait", "10.9.0.1", datetime.now(UTC)) > 0
        async with anyio.create_task_group() as tg:
            for _ in range(burst):
                tg.start_soon(guess)
            await anyio.sleep(0.3)  # every guess is waiting now
            start = time.perf_counter()
            assert await to_thread.run_sync(lambda: 1 + 1) == 2  # another request's work
            elapsed = time.perf_counter() - start
        return elapsed, refused

    threads, burst = 4, 8
    # a thread of its own: a session-wide browser (tests/browser) keeps an event loop running in
    # the main thread
    with ThreadPoolExecutor(1) as pool:
        elapsed, refused = pool.submit(anyio.run, scenario).result()
    assert elapsed < 0.5, f"another request waited {elapsed:.2f} s for a thread"
    assert refused == 3 + burst
