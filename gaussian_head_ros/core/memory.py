"""A process's own peak memory, as the training log and the memory tests read it."""

from __future__ import annotations


def peak_rss_mb() -> float:
    """This process's peak resident memory, MiB: VmHWM of /proc/self/status (Linux), the high-water mark of
    its own address space. Not getrusage's ru_maxrss, which Linux carries across fork + execve: a child
    process (a torchrun rank, a test's probe) starts with at least its parent's resident size at the fork,
    so a child of a 2.5 GB parent that read a 1.2 GB checkpoint showed +0 MiB there (measured). Falls back
    to ru_maxrss where /proc is absent."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kilobytes
