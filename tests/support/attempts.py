"""One attempt on an executor, start to outcome, from code that has no event loop."""

from __future__ import annotations

import asyncio

from jobnest.executors.base import AttemptSpec, Executor, Outcome


def run_attempt(executor: Executor, spec: AttemptSpec) -> Outcome:
    """Start ``spec`` on ``executor`` in a new event loop, wait for its outcome, then close
    the executor."""

    async def main() -> Outcome:
        try:
            return await (await executor.start(spec)).wait()
        finally:
            await executor.close()

    return asyncio.run(main())
