"""A listener process leaves what it holds for good out of the garbage collector's full passes
(mailsite/runtime.py `settle_collector`), after collecting what is garbage already. Run in a process of its own:
freezing the test process would keep every later test's objects."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_garbage_goes_first_and_the_rest_is_left_out_of_full_passes() -> None:
    script = textwrap.dedent(
        """
        import gc, weakref
        from mailsite import runtime

        class Node:
            pass

        gc.disable()  # nothing collected before the call: only settle_collector may find the cycle
        cycle = Node()
        cycle.itself = cycle
        gone = weakref.ref(cycle)
        del cycle
        kept = [Node() for _ in range(1000)]
        before = len(gc.get_objects(generation=2))
        runtime.settle_collector()
        assert gone() is None, "a cycle that was garbage already is collected, not frozen"
        assert gc.get_freeze_count() >= before + len(kept), (gc.get_freeze_count(), before)
        assert not any(o is kept[0] for o in gc.get_objects()), "what the process holds is out of every pass"
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr
