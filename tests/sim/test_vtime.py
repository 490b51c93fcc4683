"""Tests for the virtual-time event loop (distlab.sim.vtime)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import distlab
from distlab.errors import DeadlockError, VirtualTimeError
from distlab.sim import vtime
from tests import REPO


def test_sleep_advances_virtual_time_exactly():
    """A one-minute sleep ends at exactly t=60 virtual seconds."""

    async def main() -> float:
        await asyncio.sleep(60)
        return distlab.now()

    assert distlab.run(main) == 60.0


def test_start_sets_the_initial_clock():
    """`start=` is the virtual time at which the run begins."""

    async def main() -> float:
        await asyncio.sleep(5)
        return distlab.now()

    assert distlab.run(main, start=100.0) == 105.0


def test_thirty_second_timeout_fires_at_thirty_seconds():
    """asyncio.wait_for times out at its deadline in virtual time, not earlier or later."""

    async def main() -> tuple[str, float]:
        try:
            await asyncio.wait_for(asyncio.sleep(3600), timeout=30)
        except TimeoutError:
            return "timeout", distlab.now()
        return "finished", distlab.now()

    assert distlab.run(main) == ("timeout", 30.0)


def test_timers_due_at_the_same_instant_run_in_scheduling_order():
    """Ties are broken by scheduling order, which keeps runs replayable."""

    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        order: list[int] = []
        done = loop.create_future()
        for i in range(50):
            loop.call_later(1.0, order.append, i)
        loop.call_later(1.0, done.set_result, None)
        await done
        return order

    assert distlab.run(main) == list(range(50))


def test_call_at_orders_timers_by_time():
    """Timers fire in time order whatever order they were scheduled in."""

    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        fired: list[float] = []
        for when in [5.0, 1.0, 3.0, 2.0, 4.0]:
            loop.call_at(when, lambda: fired.append(loop.time()))
        await asyncio.sleep(10)
        return fired

    assert distlab.run(main) == [1.0, 2.0, 3.0, 4.0, 5.0]


@pytest.mark.parametrize("keep_every", [2, 4])
def test_cancelled_timers_never_fire(keep_every: int):
    """Cancelled timers never run; the others run in order, also when the heap is compacted.

    Cancelling 3 of 4 timers makes cancelled entries the majority, which triggers the
    loop's heap compaction; cancelling 1 of 2 only pops them off the top.
    """

    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        fired: list[int] = []
        handles = [loop.call_later(i + 1, fired.append, i) for i in range(2000)]
        for i, handle in enumerate(handles):
            if i % keep_every:
                handle.cancel()
        await asyncio.sleep(3000)
        return fired

    assert distlab.run(main) == list(range(0, 2000, keep_every))


def _seeded_walk() -> list[float]:
    async def walker(name: int, out: list[tuple[float, int]]) -> None:
        rng = distlab.rng()
        for _ in range(20):
            await asyncio.sleep(rng.expovariate(1.0))
            out.append((distlab.now(), name))

    async def main() -> list[float]:
        out: list[tuple[float, int]] = []
        await asyncio.gather(*(walker(i, out) for i in range(10)))
        return [t * 1000 + n for t, n in out]

    return distlab.run(main, seed=7)


def test_same_seed_same_result():
    """Two runs with the same seed produce the same interleaving."""
    assert _seeded_walk() == _seeded_walk()


def test_different_seed_different_result():
    """The seed matters: another seed gives another run."""

    async def main() -> float:
        return distlab.rng().random()

    assert distlab.run(main, seed=1) != distlab.run(main, seed=2)


def test_same_seed_same_result_in_another_process():
    """Determinism holds across processes (no hash randomisation or id() leaks)."""
    code = "from tests.sim.test_vtime import _seeded_walk; print(repr(_seeded_walk()))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "random", "PATH": ""},
        cwd=str(REPO),
    ).stdout
    assert out.strip() == repr(_seeded_walk())


def test_run_works_inside_a_running_loop_like_jupyter():
    """Inside a running event loop (as in a kernel) distlab.run uses a worker thread."""

    async def inner() -> float:
        await asyncio.sleep(90)
        return distlab.now()

    async def kernel_cell() -> float:
        # A notebook cell is sync code executing while the kernel's loop runs.
        return distlab.run(inner)

    assert asyncio.run(kernel_cell()) == 90.0


def test_exceptions_propagate_from_the_worker_thread():
    """An error inside main reaches the caller unchanged, also through the thread path."""

    class Boom(Exception):
        pass

    async def inner() -> None:
        raise Boom("x")

    async def kernel_cell() -> None:
        distlab.run(inner)

    with pytest.raises(Boom):
        asyncio.run(kernel_cell())


def _interrupt(target: str) -> None:
    """Send SIGINT as the kernel gets it: to the process, or to the virtual loop's thread.

    Linux may hand a process-directed signal to any thread; when it is not the main
    thread, the main thread is only woken if it comes back to Python by itself.
    """
    if target == "process":
        os.kill(os.getpid(), signal.SIGINT)
        return
    worker = next(t for t in threading.enumerate() if t.name == "distlab-virtual-loop")
    assert worker.ident is not None
    signal.pthread_kill(worker.ident, signal.SIGINT)


@pytest.mark.parametrize("target", ["process", "worker_thread"])
def test_interrupting_a_kernel_cell_stops_the_virtual_loop(target: str):
    """Ctrl-C (Jupyter's stop button) during distlab.run also stops the worker's loop.

    Otherwise a run that never ends would keep a core busy until the kernel restarts.
    """
    cancelled = threading.Event()

    async def forever() -> None:
        try:
            while True:
                await asyncio.sleep(1)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def kernel_cell() -> None:
        distlab.run(forever)  # blocks: the run never ends by itself

    # A real SIGINT, as the kernel gets it; the run is endless, so the signal always
    # arrives while the cell waits in distlab.run.
    # A kernel runs cells with Python's own SIGINT handler (KeyboardInterrupt); the test
    # process may have another by now (a test file run earlier in the same pytest-xdist
    # worker), so set it for the cell, as ipykernel does, and put the other one back.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    threading.Timer(0.2, _interrupt, (target,)).start()
    loop = asyncio.new_event_loop()  # like ipykernel's: no SIGINT handler of its own
    try:
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(kernel_cell())
    finally:
        loop.close()
        signal.signal(signal.SIGINT, previous)
    assert cancelled.wait(5.0), "the virtual loop kept running after the interrupt"


def test_thread_work_freezes_virtual_time():
    """While a thread works, the clock does not jump: a 10 ms virtual timeout cannot fire."""

    async def main() -> tuple[str, float]:
        result = await asyncio.wait_for(asyncio.to_thread(_slow_real_work), timeout=0.01)
        return result, distlab.now()

    assert distlab.run(main) == ("done", 0.0)


def _slow_real_work() -> str:
    time.sleep(0.05)  # real work in a thread, e.g. a blocking library call
    return "done"


def test_run_in_executor_freezes_virtual_time():
    """loop.run_in_executor is waited for in real time before the clock advances."""

    async def main() -> tuple[str, float]:
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(None, _slow_real_work)
        result = await asyncio.wait_for(fut, timeout=0.01)
        return result, distlab.now()

    assert distlab.run(main) == ("done", 0.0)


def _slow_endpoint(request: Request) -> JSONResponse:
    time.sleep(0.05)  # sync endpoint: Starlette runs it in an anyio worker thread
    return JSONResponse({"slow": True})


async def _virtual_endpoint(request: Request) -> JSONResponse:
    await asyncio.sleep(float(request.query_params.get("delay", "0.2")))
    return JSONResponse({"t": distlab.now()})


APP = Starlette(routes=[Route("/slow", _slow_endpoint), Route("/wait", _virtual_endpoint)])


def test_starlette_sync_endpoint_does_not_time_out_in_virtual_time():
    """anyio worker threads (Starlette sync endpoints) freeze the clock too."""

    async def main() -> dict[str, bool]:
        transport = httpx.ASGITransport(app=APP)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            response = await asyncio.wait_for(client.get("/slow"), timeout=0.01)
            return dict(response.json())

    assert distlab.run(main) == {"slow": True}


def test_hundred_concurrent_asgi_requests_share_the_clock():
    """100 concurrent requests that each wait 0.2 virtual s finish together at t=0.2."""

    async def main() -> tuple[int, float]:
        transport = httpx.ASGITransport(app=APP)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            responses = await asyncio.gather(*(client.get("/wait") for _ in range(100)))
            return sum(r.status_code == 200 for r in responses), distlab.now()

    count, end = distlab.run(main)
    assert count == 100
    assert end == pytest.approx(0.2)


def test_wait_for_times_out_an_asgi_call_in_virtual_time():
    """A server that takes 30 s is cut off by a 5 s timeout at exactly t=5."""

    async def main() -> float:
        transport = httpx.ASGITransport(app=APP)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(client.get("/wait?delay=30"), timeout=5)
            return distlab.now()

    assert distlab.run(main) == 5.0


def test_deadlock_is_reported_not_hung(monkeypatch: pytest.MonkeyPatch):
    """Waiting on an Event nobody sets raises DeadlockError naming the virtual time."""
    monkeypatch.setattr(vtime, "_DEADLOCK_AFTER", 0.2)

    async def main() -> None:
        await asyncio.sleep(3)
        await asyncio.Event().wait()

    with pytest.raises(DeadlockError, match=r"t=3\.0"):
        distlab.run(main)


def test_call_soon_threadsafe_from_another_thread_is_not_a_deadlock():
    """A callback delivered by a foreign thread wakes the idle loop."""

    async def main() -> str:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[str] = loop.create_future()
        threading.Timer(0.05, lambda: loop.call_soon_threadsafe(fut.set_result, "woke")).start()
        return await fut

    assert distlab.run(main) == "woke"


@pytest.mark.parametrize("bad", [42, "main", None])
def test_run_rejects_what_is_not_a_coroutine(bad: object):
    """distlab.run names the problem when given something it cannot run."""
    with pytest.raises(TypeError, match="coroutine"):
        distlab.run(bad)  # type: ignore[arg-type]


def test_run_rejects_a_sync_function():
    """A plain def (not async def) is refused with a message saying so."""

    def not_async() -> int:
        return 1

    with pytest.raises(TypeError, match="async def"):
        distlab.run(not_async)  # type: ignore[arg-type]


def test_now_outside_a_run_explains_itself():
    """distlab.now() outside distlab.run raises VirtualTimeError with a hint."""
    with pytest.raises(VirtualTimeError, match=r"distlab\.run"):
        distlab.now()


def test_clock_reads_virtual_time_from_sync_code():
    """distlab.clock() gives sync code (e.g. a breaker's clock=) the loop's time."""

    async def main() -> list[float]:
        read = distlab.clock()
        seen = [read()]
        await asyncio.sleep(90)
        seen.append(read())
        return seen

    assert distlab.run(main) == [0.0, 90.0]


def test_manual_clock_moves_only_when_told():
    """ManualClock reads the same until advanced, and advance returns the new time."""
    clock = distlab.ManualClock(start=10)
    assert clock() == 10.0
    assert clock.advance(2.5) == 12.5
    clock.sleep(0.5)
    assert clock() == clock.now == 13.0


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: distlab.ManualClock(start=-1), "start"),
        (lambda: distlab.ManualClock(start=float("nan")), "start"),
        (lambda: distlab.ManualClock().advance(-1), "seconds"),
        (lambda: distlab.ManualClock().advance(float("nan")), "seconds"),
        (lambda: distlab.ManualClock().advance(float("inf")), "seconds"),
    ],
)
def test_time_never_runs_backwards(make, name: str):
    """Negative, NaN or infinite start or advance is a ValueError naming the parameter."""
    with pytest.raises(ValueError, match=name):
        make()


def test_negative_start_is_rejected():
    """distlab.run(start=-1) names the bad parameter."""

    async def main() -> None:
        return None

    with pytest.raises(ValueError, match="start"):
        distlab.run(main, start=-1)
    with pytest.raises(ValueError, match="start"):
        distlab.run(main, start=float("nan"))


@pytest.mark.slow
def test_same_seed_same_result_inside_a_jupyter_kernel():
    """In a real kernel (a loop already running) the seeded run gives the same result."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("from tests.sim.test_vtime import _seeded_walk"),
        nbformat.v4.new_code_cell("print(repr(_seeded_walk()))"),
    ]
    repo = str(REPO)
    NotebookClient(
        nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": repo}}
    ).execute()
    printed = "".join(o.get("text", "") for o in nb.cells[1].outputs)
    assert printed.strip() == repr(_seeded_walk())
