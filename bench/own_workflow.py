"""A plain Temporal workflow for bench_attempts (no wfmon code: the sandbox imports it)."""

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn
async def noop(n: int) -> int:
    return n


@workflow.defn
class ManyActivities:
    """``count`` trivial activities one after another: Temporal's round trip dominates."""

    @workflow.run
    async def run(self, count: int) -> int:
        total = 0
        for n in range(count):
            total += await workflow.execute_activity(
                noop, n, start_to_close_timeout=timedelta(seconds=10)
            )
        return total
