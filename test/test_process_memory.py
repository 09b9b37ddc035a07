"""A node process keeps to a few glibc malloc arenas (nodes/common.limit_malloc_arenas, launcher.MALLOC_ARENAS), so
that memory freed by its worker threads goes back to where the next photo takes it: the reconstruction node grew ~10 MB
a photo over a 39-minute soak of photo swaps in glibc's default arenas (8 per core; user58, s58)."""

import os
import subprocess
import sys
import time

# Six threads that allocate at once, then glibc's own count of its arenas (malloc_info's <heap> elements).
_ARENAS = r"""
import ctypes, sys, tempfile, threading
from gaussian_head_ros.nodes.common import limit_malloc_arenas  # (its imports start threads of their own)
libc = ctypes.CDLL("libc.so.6")
libc.fopen.restype, libc.fopen.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes, libc.fclose.argtypes = [ctypes.c_int, ctypes.c_void_p], [ctypes.c_void_p]
def arenas():
    with tempfile.NamedTemporaryFile(suffix=".xml") as f:
        fp = libc.fopen(f.name.encode(), b"w")
        libc.malloc_info(0, fp)
        libc.fclose(fp)
        return open(f.name).read().count("<heap nr=")
before = arenas()
if sys.argv[1] == "limit":
    assert limit_malloc_arenas(), "mallopt refused"
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
start = threading.Barrier(6)
def work():
    start.wait()
    blocks = [libc.malloc(4096) for _ in range(2000)]
    start.wait()
    for b in blocks:
        libc.free(b)
threads = [threading.Thread(target=work) for _ in range(6)]
for t in threads: t.start()
for t in threads: t.join()
print(before, arenas())
"""


def _arenas(mode: str) -> tuple[int, int]:
    """(arenas after the imports, after six threads allocated) in a fresh process, limited at that point or not."""
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    r = subprocess.run([sys.executable, "-c", _ARENAS, mode], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    before, after = r.stdout.strip().splitlines()[-1].split()
    return int(before), int(after)


def test_a_node_process_keeps_to_the_malloc_arenas_it_is_given():
    """Six threads allocating at once: glibc gives each an arena of its own unless limited; after start_process's
    limit no thread adds one beyond launcher.MALLOC_ARENAS (the imports' own threads may have taken one before it:
    hence the launch files' MALLOC_ARENA_MAX, read at the process's start)."""
    from gaussian_head_ros.nodes.launcher import MALLOC_ARENAS

    before, after = _arenas("default")
    assert after >= before + 4, (before, after)  # the check sees new arenas where there is no limit
    before, after = _arenas("limit")
    assert after <= max(before, MALLOC_ARENAS), (before, after)


def test_node_processes_started_by_the_package_get_the_arena_limit_unless_the_user_set_one(tmp_path, monkeypatch):
    """launcher.NodeProcess (gaussian-head demo's nodes) and the launch files put MALLOC_ARENA_MAX in a node's
    environment (glibc reads it at the process's start, before any thread); a value the user exported stays."""
    from gaussian_head_ros.nodes.launcher import MALLOC_ARENAS, NodeProcess, malloc_arena_env

    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert malloc_arena_env() == {"MALLOC_ARENA_MAX": str(MALLOC_ARENAS)}
    p = NodeProcess("env", [sys.executable, "-c", "import os; print('arenas', os.environ.get('MALLOC_ARENA_MAX'))"],
                    tmp_path)
    deadline = time.monotonic() + 60
    while p.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert f"arenas {MALLOC_ARENAS}" in p.log(), p.log()
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    assert malloc_arena_env() == {}
    from gaussian_head_ros.nodes.common import limit_malloc_arenas

    assert limit_malloc_arenas() is False  # the user's choice, which glibc read itself
