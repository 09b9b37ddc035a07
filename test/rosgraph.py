"""Helpers for tests across real processes: start node processes, spin until a condition holds."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from gaussian_head_ros.nodes.launcher import NodeProcess

ROOT = Path(__file__).resolve().parents[1]


def executable(name: str) -> list[str]:
    """The installed node/tool executable (from the colcon install space), run by this Python."""
    prefix = ROOT / "install" / "gaussian_head_ros"
    for sub in ("lib/gaussian_head_ros", "bin"):
        p = prefix / sub / name
        if p.exists():
            return [sys.executable, str(p)]
    raise FileNotFoundError(f"{name} is not installed under {prefix}; run 'make setup'")


class Proc(NodeProcess):
    """A child process whose output goes to the log file `log_path` (read it when a test fails)."""

    def __init__(self, cmd: list[str], log_path: Path, env: dict | None = None):
        super().__init__(Path(log_path).stem, cmd, Path(log_path).parent, env, log_path=log_path)

    @property
    def p(self):
        return self.proc

    def output(self) -> str:
        return self.log()


def spin_until(node, predicate, timeout: float, executor=None) -> bool:
    """Spin `node` until predicate() is true or timeout seconds pass."""
    import rclpy

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if executor is not None:
            executor.spin_once(timeout_sec=0.05)
        else:
            rclpy.spin_once(node, timeout_sec=0.05)
    return predicate()


class Graph:
    """The test's side of the ROS graph: one node spun in a thread, subscriptions that record."""

    def __init__(self):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.node = rclpy.create_node("launch_test_peer")
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._clients = {}
        self._run = True
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self):
        while self._run:
            self.executor.spin_once(timeout_sec=0.05)

    def record(self, msg_type, topic: str, qos, keep=lambda m: m) -> list:
        """[(arrival monotonic s, keep(msg))] of every message on `topic`, appended as they come (keep only
        what a test needs of an image: a stream of full frames fills the memory within minutes)."""
        got: list = []
        self.node.create_subscription(msg_type, topic, lambda m: got.append((time.monotonic(), keep(m))), qos)
        return got

    def nodes(self) -> set[str]:
        return {(ns.rstrip("/") + "/" + n) for n, ns in self.node.get_node_names_and_namespaces()}

    def parameters(self, node: str, names: list[str], timeout: float = 60.0) -> dict:
        from rclpy.parameter import parameter_value_to_python
        from rclpy.parameter_client import AsyncParameterClient

        if node not in self._clients:
            self._clients[node] = AsyncParameterClient(self.node, node)
        client = self._clients[node]
        assert client.wait_for_services(timeout_sec=timeout), f"no parameter services on {node}"
        future = client.get_parameters(names)
        deadline = time.monotonic() + timeout
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert future.done(), f"{node} did not answer get_parameters"
        return {n: parameter_value_to_python(v) for n, v in zip(names, future.result().values)}

    def set_parameters(self, node: str, values: dict, timeout: float = 60.0):
        """Set parameters of `node` in one request (rosgraph.set_parameters); the first one's SetParametersResult."""
        return set_parameters(self.node, node, values, timeout, spun=True)[0]

    def close(self):
        self._run = False
        self._thread.join(timeout=2)
        self.node.destroy_node()


SET_PARAMETERS_AGAIN_S = 5.0  # a set_parameters request unanswered this long goes again (set_parameters)


def set_parameters(node, target: str, values: dict, timeout: float = 60.0, spun: bool = False) -> list:
    """Set the parameters `values` (name -> value) of the node `target` (its full name, e.g.
    '/ns/video_source_node') in one request, as `ros2 param set` does for one; each value's ROS type from its Python
    type, as rclpy.parameter.Parameter infers it (bool, int, float, str; a list of floats is a double array).
    `node` is a plain rclpy node of the test: spun here while waiting, or, with `spun`, one that an executor already
    spins in another thread (graph_peer.Peer, Graph), only waited on. -> [SetParametersResult (successful, reason)],
    one per value, in order. Asserts the service is there and answers within `timeout` seconds each.

    The request goes again every SET_PARAMETERS_AGAIN_S while none is answered (setting the same values again
    changes nothing): Fast DDS drops a service's response when the service's reply writer has not yet matched this
    client's reply reader ('failed to send response (timeout): client will not receive response', rmw_response.cpp),
    which service_is_ready does not show (it sees this side's matches only). On a loaded machine discovery takes
    seconds, and the one request of test_a_video_that_ended_is_said_once_as_its_end went unanswered for 60 s with that
    line in the video source's log (s43 under 2 workers; s45 alone, in make test's timing phase)."""
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter

    def wait(predicate, seconds) -> bool:
        return wait_until(predicate, seconds, 0.05) if spun else spin_until(node, predicate, seconds)

    cli = node.create_client(SetParameters, f"{target}/set_parameters")
    try:
        assert wait(cli.service_is_ready, timeout), f"no set_parameters service on {target}"
        request = SetParameters.Request(parameters=[Parameter(k, value=v).to_parameter_msg()
                                                    for k, v in values.items()])
        futures, deadline = [], time.monotonic() + timeout
        answered = lambda: next((f for f in futures if f.done()), None)  # noqa: E731
        while answered() is None and time.monotonic() < deadline:
            futures.append(cli.call_async(request))
            wait(lambda: answered() is not None, min(SET_PARAMETERS_AGAIN_S, deadline - time.monotonic()))
        assert answered() is not None, f"{target} did not answer set_parameters {', '.join(values)} " \
                                       f"({len(futures)} requests in {timeout:g} s)"
        return list(answered().result().results)
    finally:
        node.destroy_client(cli)


def set_parameter(node, target: str, name: str, value, timeout: float = 60.0, spun: bool = False):
    """set_parameters of the one parameter `name` -> its SetParametersResult (successful, reason)."""
    return set_parameters(node, target, {name: value}, timeout, spun)[0]


def wait_until(predicate, timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


LOADING = "(test) a load made to last"
SPINNING = "(test) the nodes are made and spin"


def ctrl_c_while_loading(main: str, stalls: list[str], args: list[str], log_path: Path, count: int,
                         sets: dict | None = None) -> tuple[int | None, float, str]:
    """Ctrl-C a real node process while its threads load (common.Loading's rule: they are not waited for).

    Runs `main` ("module:function", a node executable's main) in a child process in which each of `stalls`
    ("module:name" or "module:Class.name") is replaced by a function that prints LOADING and sleeps 120 s, so that
    the SIGINT always lands in those loads, whatever the load of the machine; `sets` ("module:name" -> value) are
    set before. SIGINT (as a Ctrl-C and `ros2 launch` send) once `count` LOADING lines are out and the process's nodes
    are made and spin (common.run_nodes entered common.spinning: a Ctrl-C before would not reach destroy_node).
    -> (exit status, seconds from the SIGINT to the process's end, its output)."""
    import signal

    child = "\n".join([
        "import importlib, sys, time",
        "def stall(*args, **kwargs):",
        f"    print({LOADING!r}, flush=True)",
        "    time.sleep(120)",
        "def place(spec, value):",
        "    module, name = spec.split(':')",
        "    *owners, attr = name.split('.')",
        "    obj = importlib.import_module(module)",
        "    for owner in owners:",
        "        obj = getattr(obj, owner)",
        "    setattr(obj, attr, value)",
        *(f"place({spec!r}, {value!r})" for spec, value in (sets or {}).items()),
        *(f"place({spec!r}, stall)" for spec in stalls),
        "import contextlib, gaussian_head_ros.nodes.common as common",
        "made = common.spinning",
        "@contextlib.contextmanager",
        "def spinning():",
        "    with made():",
        f"        print({SPINNING!r}, flush=True)",
        "        yield",
        "common.spinning = spinning",
        f"module, function = {main!r}.split(':')",
        "sys.exit(getattr(importlib.import_module(module), function)())",
    ])
    proc = Proc([sys.executable, "-c", child] + args, log_path)
    try:
        assert wait_until(lambda: (proc.output().count(LOADING) >= count and SPINNING in proc.output())
                          or not proc.alive(), 120, 0.05), proc.output()
        assert proc.alive(), proc.output()
        t0 = time.monotonic()
        rc = proc.stop(signal.SIGINT, timeout=30.0)
        took = time.monotonic() - t0
    finally:
        proc.stop(signal.SIGKILL)
    return rc, took, proc.output()
