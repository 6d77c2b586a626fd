"""asyncio workload for test_asyncio: a TaskGroup under the task "main" holds
a CPU-busy task "busy" three coroutines deep (busy_outer -> busy_middle ->
busy_inner, which burns CPU in crunch() and yields now and then), two
tasks "sleeper-1", "sleeper-2" asleep in sleeper -> nap -> asyncio.sleep,
and "waiter", which awaits the task "busy" itself.

It knows its own truth: once the sleepers are asleep it writes, to the
file named by argv[1], every task's await chain as Python itself sees it
(cr_await, outermost first, each coroutine's qualified name and the line
where it waits), then prints "ready". It runs for argv[2] seconds. With
argv[3] it first sleeps that long before it imports asyncio (on 3.14 the
_asyncio module, which holds the debug offsets, is mapped only then)."""
import json
import sys
import time

if len(sys.argv) > 3:
    time.sleep(float(sys.argv[3]))
import asyncio  # noqa: E402

TRUTH = {}


def crunch(n):
    total = 0
    for i in range(n):
        total += i * i  # CRUNCH
    return total


async def busy_inner(until):
    # where busy_outer and busy_middle wait while this runs, and the line
    # of the crunch() call (two below the line that reads f_lineno)
    me = sys._getframe()
    TRUTH["busy"] = [(f.f_code.co_qualname, f.f_lineno) for f in (me.f_back.f_back, me.f_back)]
    TRUTH["busy"].append(("busy_inner", sys._getframe().f_lineno + 2))
    while time.monotonic() < until:
        crunch(20000)
        await asyncio.sleep(0)  # lets the loop run the others between bursts


async def busy_middle(until):
    await busy_inner(until)


async def busy_outer(until):
    await busy_middle(until)


async def wait_for(task):
    await task


async def nap(seconds):
    await asyncio.sleep(seconds)


async def sleeper(seconds):
    await nap(seconds)


def chain(task):
    """[(qualname, line)] of a suspended task, outermost first."""
    out = []
    coro = task.get_coro()
    while coro is not None and hasattr(coro, "cr_frame") and coro.cr_frame is not None:
        out.append((coro.cr_code.co_qualname, coro.cr_frame.f_lineno))
        coro = coro.cr_await
    return out


async def main(path, seconds):
    asyncio.current_task().set_name("main")
    until = time.monotonic() + seconds
    async with asyncio.TaskGroup() as tg:
        busy = tg.create_task(busy_outer(until), name="busy")
        sleepers = [tg.create_task(sleeper(seconds), name="sleeper-%d" % i) for i in (1, 2)]
        sleepers.append(tg.create_task(wait_for(busy), name="waiter"))
        await asyncio.sleep(0.2)  # everyone has started and the sleepers sleep
        truth = {t.get_name(): chain(t) for t in sleepers}
        truth["busy"] = TRUTH["busy"]
        truth["file"] = __file__
        with open(path, "w") as f:
            json.dump(truth, f)
        print("ready", flush=True)
        await asyncio.sleep(seconds)


asyncio.run(main(sys.argv[1], float(sys.argv[2])), debug=False)
