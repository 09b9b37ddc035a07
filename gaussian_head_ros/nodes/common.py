"""What every node of the package does the same way: parameters declared from settings, diagnostics, main(), the
Fast DDS profile."""

from __future__ import annotations

import atexit
import contextlib
import logging
import math
import os
import re
import signal
import sys
import threading
import time
from typing import NoReturn

import rclpy
import rclpy.logging
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import (InvalidParameterTypeException, InvalidParameterValueException, NotInitializedException,
                               ParameterNotDeclaredException)
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.parameter import Parameter

from gaussian_head_ros.core.settings import Setting
from gaussian_head_ros.nodes import entry


def descriptor(s: Setting) -> ParameterDescriptor:
    """The ParameterDescriptor of a setting (core/settings.py): its description (with its choices, when it
    has some), its range as an integer or floating-point range, by the default's type (a list setting's range bounds
    each value: `ros2 param describe` shows it; rclpy checks scalar ranges only, the node's checks the rest), and
    read_only for a setting read at start only."""
    text = s.description
    if s.choices and not all(str(c) in text for c in s.choices):
        text += f" (one of: {', '.join(map(str, s.choices))})"
    d = ParameterDescriptor(description=text, read_only=s.read_only)
    if s.range is not None and isinstance(s.default, int) and not isinstance(s.default, bool):
        d.integer_range = [IntegerRange(from_value=int(s.range[0]), to_value=int(s.range[1]), step=1)]
    elif s.range is not None:
        d.floating_point_range = [FloatingPointRange(from_value=float(s.range[0]), to_value=float(s.range[1]),
                                                     step=0.0)]
    return d


def release_free_memory() -> bool:
    """Hand the heap's free pages back to the system (glibc malloc_trim(0)); False where there is no glibc.

    For a node that works in bursts on large buffers (a photo: decoded image, ~6 MB messages, the
    reconstruction's arrays) and then idles: glibc keeps freed memory for reuse. mesh_fit on 8 photos of
    1600 px in one process (this machine): RSS +52..+61 MB over the first photo's without a trim, -80..-106 MB
    with one after each; test_hostile_inputs' photo flood once saw the node 115 MB larger after 30 photos."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # musl, macOS: no malloc_trim
        return False
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)
    return True


_M_ARENA_MAX = -8  # mallopt's parameter number for the arena limit (glibc's malloc.h)


def limit_malloc_arenas(arenas: int | None = None) -> bool:
    """Limit glibc's malloc to `arenas` arenas in this process (mallopt M_ARENA_MAX; None: launcher.MALLOC_ARENAS),
    unless the user set MALLOC_ARENA_MAX (glibc reads it itself); False where there is no glibc or the user chose.
    Call it before the process starts threads: each thread that allocates takes an arena of its own up to glibc's
    limit (8 per core), and memory freed in those arenas is mostly kept (malloc_trim returns little of it).

    Measured (user58 and lead, s58): mesh_fit reconstructing four portraits in turn in one process, malloc_trim after
    each (/tmp/user58/memopt.py, this 2-core machine), RSS after each of 12 photos: 377, 418, 403, 405, 429, 446,
    463, 477, 495, 509, 527, 526 MB by default, still climbing (the reconstruction node gained ~10 MB a photo in a
    39-minute soak: ~1 GB in a day of 100 swaps); with 2 arenas 388, 411, 412, 414 and 414 from then on. The
    growth lies on the hair matte's path (pymatting's sparse solvers and numba threads); Python's own allocations
    grew 54 KB. The launch files and launcher.NodeProcess set MALLOC_ARENA_MAX in a node's environment as well (the
    whole limit: this call comes after the imports' threads took arenas, 3 of them here; 12 photos: 393 -> 454 MB,
    still creeping, with this call alone)."""
    import ctypes
    import ctypes.util

    from gaussian_head_ros.nodes.launcher import MALLOC_ARENAS

    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl, macOS: no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(_M_ARENA_MAX, int(MALLOC_ARENAS if arenas is None else arenas)) == 1


def declare_settings(node, table: dict[str, Setting], check=None) -> None:
    """Declare one parameter per setting of `table` ({parameter name: Setting}), described, with its
    default; then a value of the wrong type or out of its range or choices (from a params file or an
    override, which the on-set callback does not see) goes back to its default, alone, with an error log
    line, and the node starts (rclpy raises on such an override while declaring). `check`
    (name, value), raising ValueError, replaces the range/choices check when a node checks more.

    Floating-point settings also take integers (`ros2 param set /render_node fps 15`, `-p fps:=15`, a YAML
    `fps: 15`), converted to float: rclpy refuses a value of another type than the declared one (only
    `dynamic_typing` would let it through, and then any type), so integer overrides are converted before
    the declaration and integer sets in a pre-set callback (rclpy >= Iron; older ones keep refusing).
    In that callback (`ros2 param set` only) integer settings also take a whole float (`width 600.0`) and boolean
    ones 0 or 1 (`mirror 1`, as the launch files' flags take them): rclpy refused both with only `Wrong parameter
    type, expected '2' got '3'` (user25, s25). A fractional float for an integer stays refused."""
    floats = {name for name, s in table.items() if isinstance(s.default, float) or
              (isinstance(s.default, (list, tuple)) and s.default and isinstance(s.default[0], float))}
    whole = {name for name, s in table.items() if isinstance(s.default, int) and not isinstance(s.default, bool)}
    flags = {name for name, s in table.items() if isinstance(s.default, bool)}
    scalar_floats = {name for name in floats if isinstance(table[name].default, float)}
    ints = (Parameter.Type.INTEGER, Parameter.Type.INTEGER_ARRAY)

    def as_float(p: Parameter) -> Parameter:
        if p.name not in floats or p.type_ not in ints:
            return p
        return Parameter(p.name, value=float(p.value) if p.type_ == Parameter.Type.INTEGER
                         else [float(v) for v in p.value])

    def as_declared(p: Parameter) -> Parameter:
        p = number_from_text(p)
        if p.name in whole and p.type_ == Parameter.Type.DOUBLE and float(p.value).is_integer():
            return Parameter(p.name, value=int(p.value))
        if p.name in flags and p.type_ == Parameter.Type.INTEGER and p.value in (0, 1):
            return Parameter(p.name, value=bool(p.value))
        return as_float(p)

    def number_from_text(p: Parameter) -> Parameter:
        """A string that reads as a finite number, for a number setting: that number (a float; as_declared makes
        a whole one an int for an integer setting). `ros2 param set /render_node distance_m 1e9` sends the string
        '1e9' (the CLI's YAML 1.1 reads a number without a '.' as text) and rclpy refused it with only "Wrong
        parameter type, expected '3' got '4'" (user40); now the setting's range says why 1e9 is refused.
        For a list-of-floats setting, a string that reads as a list of finite numbers: those numbers, as floats.
        `ros2 param set /render_node background '[1, 0.5, 0.5]'` sends a list of integers and floats mixed as that
        string (the CLI makes a list a double array only when every item is a float) and rclpy refused it with only
        "Wrong parameter type, expected '8' got '4'" (user46, s46); now the setting's own check answers."""
        if p.type_ != Parameter.Type.STRING:
            return p
        if p.name in floats - scalar_floats:
            values = numbers_in_list_text(p.value)
            return p if values is None else Parameter(p.name, value=values)
        if p.name not in whole and p.name not in scalar_floats:
            return p
        try:
            value = float(p.value)
        except ValueError:
            return p
        # 'nan' / 'inf' for a float setting: the float, which its range refuses with the value named (rclpy said only
        # "Wrong parameter type, expected '3' got '4'" for `ros2 param set /render_node fov_deg nan`; user46, s46)
        return Parameter(p.name, value=value) if math.isfinite(value) or p.name in scalar_floats else p

    overrides = getattr(node, "_parameter_overrides", None)  # rclpy keeps no public accessor for these
    if isinstance(overrides, dict):  # a params file's line as a set of it is taken: `max_gaussians: 5000.0` (or
        # "5000") was refused at start, "expecting type 'INTEGER'; using the default 0", and taken by `ros2 param set`
        for name in set(table) & set(overrides):  # (user48b)
            overrides[name] = as_declared(overrides[name])
    if hasattr(node, "add_pre_set_parameters_callback"):
        node.add_pre_set_parameters_callback(lambda params: [as_declared(p) for p in refuse_undeclared(node, params)])

    def refused(name: str, value) -> bool:
        """Whether `value` fails the setting's check (said in an error line: the default is used)."""
        try:
            (check or (lambda _, v: table[name].check(v)))(name, value)
            return False
        except (ValueError, TypeError) as e:
            said = str(e) if str(e).startswith(name) else f"{name}: {e}"  # the checks' messages name it, mostly
            node.get_logger().error(f"parameter {said}; using the default {table[name].default!r}")
            return True

    for name, s in table.items():
        given = overrides.get(name) if isinstance(overrides, dict) else None
        # a read-only setting is checked before it is declared: refused after, it could not be set back
        if s.read_only and given is not None and refused(name, given.value):
            node.declare_parameter(name, s.default, descriptor(s), ignore_override=True)
            continue
        try:
            node.declare_parameter(name, s.default, descriptor(s))
        except (InvalidParameterValueException, InvalidParameterTypeException) as e:
            # rclpy checks an override against the descriptor's range and the default's type while
            # declaring, and raises: the node would not start over one bad line of a params file. Out of range, the
            # setting's own check says it ('width must be within 16..4096, got 3'), not rclpy's text, which named the
            # value twice and the parameter last ('... out of range. Min: 16, Max: 4096, value: 3: width'; user55)
            why = e.args[0].removesuffix(f": {name}")  # (rclpy's texts end with the name)
            if isinstance(e, InvalidParameterValueException) and given is not None:
                try:
                    s.check(given.value)
                except (ValueError, TypeError) as own:
                    why = str(own)[len(name):].lstrip(": ") if str(own).startswith(name) else str(own)
            node.get_logger().error(f"parameter {name}: {why}; using the default {s.default!r}")
            node.declare_parameter(name, s.default, descriptor(s), ignore_override=True)
    for name, s in table.items():
        if not s.read_only and refused(name, node.get_parameter(name).value):
            node.set_parameters([Parameter(name, value=s.default)])
    warn_unknown_overrides(node)


def numbers_in_list_text(text: str) -> list[float] | None:
    """'[1, 0.5, 0.5]' (a YAML flow list of numbers, as `ros2 param set` sends one that mixes integers and floats)
    -> [1.0, 0.5, 0.5]; None when the text is no such list: no brackets, an item that is no finite number (text, a
    bool, nan, inf), or no item."""
    inner = text.strip()
    if not (inner.startswith("[") and inner.endswith("]")):
        return None
    values = []
    for item in inner[1:-1].split(","):
        try:
            value = float(item)
        except ValueError:
            return None
        if not math.isfinite(value):
            return None
        values.append(value)
    return values or None


class UndeclaredParameter(ParameterNotDeclaredException):
    """rclpy's ParameterNotDeclaredException (rclpy's parameter service answers it as the set's reason) with a
    message that names the parameter and says what the user may have meant (unknown_parameter)."""

    def __init__(self, reason: str):
        Exception.__init__(self, reason)


def refuse_undeclared(node, params: list) -> list:
    """`params` (rclpy Parameters about to be set on `node`) as they are; raises UndeclaredParameter for the first one
    `node` does not have, naming it, the closest parameter name or the node it belongs to, and the node's parameters.
    rclpy (9.1, Kilted) answered `ros2 param set /render_node widht 384` with only 'Invalid access to undeclared
    parameter(s): []' (its check lists the names from a generator its `any()` has used up; user43, s43). A pre-set
    callback: rclpy calls those before its own check."""
    if getattr(node, "_allow_undeclared_parameters", False):  # rclpy keeps no public accessor for this
        return params
    for p in params:
        if not node.has_parameter(p.name):
            hint = unknown_parameter(node, p.name, remedy=lambda other: f" (ros2 param set {_node_named(node, other)} "
                                                                        f"{p.name} ...)")
            raise UndeclaredParameter(f"{node.get_name()} has no parameter '{p.name}': nothing set{hint}")
    return params


def _node_named(node, name: str) -> str:
    """The full name of a node called `name` on `node`'s graph: the one in `node`'s namespace when there is one, else
    the first the graph lists (photo_node runs on the operator's host, in its own namespace), else the name it
    would have in `node`'s namespace."""
    here = f"{node.get_namespace().rstrip('/')}/{name}"
    found = [f"{ns.rstrip('/')}/{n}" for n, ns in node.get_node_names_and_namespaces() if n == name]
    return here if here in found or not found else found[0]


def unknown_parameter(node, name: str, owners: dict | None = None, remedy=None) -> str:
    """What to add when `name` was given to `node`, which has no such parameter: '; it is <other node>'s' and
    `remedy`(<that node's name>) for another node's parameter of this package (`owners`:
    _package_parameter_owners(), read when None), else ' (did you mean '<closest>'?)' when one is close, then
    '; its parameters: <all declared, rclpy's included>'."""
    import difflib

    owners = _package_parameter_owners() if owners is None else owners
    others = [n for n in owners.get(name, ()) if n != node.get_name()]
    known = sorted(node._parameters)  # the declared ones, rclpy's own included (no public accessor either)
    if others:
        return f"; it is {' and '.join(others)}'s" + (remedy(others[0]) if remedy else "")
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return (f" (did you mean '{close[0]}'?)" if close else "") + f"; its parameters: {', '.join(known)}"


def warn_unknown_overrides(node) -> list[str]:
    """Warn (one log line each) about values given for parameters the node does not have: a misspelt name in a
    params file or a `-p` (`fsp:=15`) is otherwise dropped by rclpy without a word, and the node runs on its
    default. Says the closest parameter name when there is one. Call after every parameter is declared; returns
    the unknown names. (`qos_overrides.*` are read by publishers and subscriptions, not declared here.)"""
    overrides = getattr(node, "_parameter_overrides", None)  # rclpy keeps no public accessor for these
    if not isinstance(overrides, dict):
        return []
    unknown = sorted(n for n in overrides if not node.has_parameter(n) and not n.startswith("qos_overrides."))
    owners = _package_parameter_owners() if unknown else {}
    for name in unknown:  # another node's parameter: a `/**:` section gives its values to every node (user24, s24)
        hint = unknown_parameter(node, name, owners, lambda other: (
            " (a `/**:` section of a parameters file gives its values to every node: put it under "
            f"`{other}:` to give it to that node only)"))
        node.get_logger().warning(f"parameter '{name}' given, but {node.get_name()} has no such parameter: ignored"
                                  + (" here" if hint.startswith("; it is") else "") + hint)
    return unknown


def _package_parameter_owners() -> dict[str, list[str]]:
    """Parameter name -> the package's nodes that have it (the installed config/avatar.yaml); {} where it cannot be
    read (not installed)."""
    import yaml

    from gaussian_head_ros.nodes.launcher import package_share, parameter_owners

    try:
        return parameter_owners(package_share() / "config" / "avatar.yaml")
    except (LookupError, OSError, yaml.YAMLError):  # ament_index: package not found; no file; not YAML
        return {}


def check_parameters(table: dict[str, Setting], params, check=None) -> None:
    """Raise ValueError for the first rclpy Parameter of `params` outside its setting's range or choices; `check`
    (name, value), raising ValueError, replaces that check when a node checks more (as in declare_settings)."""
    for p in params:
        if p.name in table:
            (check or (lambda _, v, s=table[p.name]: s.check(v)))(p.name, p.value)


def diagnostics(node, task: str, level: int, message: str, hardware_id: str, values: dict) -> DiagnosticArray:
    """One DiagnosticStatus named '<node>: <task>' (status_name) in an array stamped now."""
    arr = DiagnosticArray()
    arr.header.stamp = node.get_clock().now().to_msg()
    arr.status = [DiagnosticStatus(level=level, name=status_name(node.get_fully_qualified_name(), task), message=message,
                                   hardware_id=hardware_id,
                                   values=[KeyValue(key=str(k), value=str(v)) for k, v in values.items()])]
    return arr


def status_name(node_fq_name: str, task: str) -> str:
    """The name of a node's DiagnosticStatus: '<node>: <task>', <node> the node's fully qualified name without its
    leading '/': 'render_node' in the root namespace, 'robot1/render_node' under `namespace:=robot1`, so that the
    nodes of two robots on the one absolute /diagnostics topic differ."""
    return f"{node_fq_name.lstrip('/')}: {task}"


# What rmw_dds_common's graph cache gives as an endpoint's node name and namespace while it has no node information
# for the endpoint's participant: a `ros2 topic pub --once` that published and left before its node information
# arrived, a plain DDS writer (no ROS node at all).
UNKNOWN_NODE_NAME, UNKNOWN_NODE_NAMESPACE = "_NODE_NAME_UNKNOWN_", "_NODE_NAMESPACE_UNKNOWN_"
UNNAMED_NODE = "(a node the ROS graph has no name for)"  # for lists of endpoints' nodes (endpoint_node's `unnamed`)


def endpoint_node(info, unnamed: str | None = None) -> str | None:
    """The fully qualified name of the node behind a graph endpoint (rclpy TopicEndpointInfo, from
    get_publishers_info_by_topic): '/render_node' in the root namespace (its node_namespace is '/'),
    '/robot1/render_node' under `namespace:=robot1`; `unnamed` (None unless given: say no name) where the graph has
    none for it (UNKNOWN_NODE_NAME): before, a line named such a sender '_NODE_NAMESPACE_UNKNOWN_/_NODE_NAME_UNKNOWN_'
    (user43, s43)."""
    if info.node_name in ("", UNKNOWN_NODE_NAME) or info.node_namespace == UNKNOWN_NODE_NAMESPACE:
        return unnamed
    return f"{info.node_namespace.rstrip('/')}/{info.node_name}"


def latched_reader_problem(qos, topic: str, what: str, now: str = "the one shown now", depth: int = 1) -> str:
    """What a subscription with QoS `qos` (rclpy QoSProfile, as the graph reports a subscriber's) on the latched
    (reliable, transient local, keep last `depth`) `topic` misses of it, in words, or '' when it gets the sample kept
    there. `what` names that sample ('the avatar'), `now` what the one kept there is to its readers. A volatile
    reader gets only samples published after it joined; a best-effort one is sent no kept sample at all (Fast DDS
    sends them to reliable readers only: `ros2 topic echo --qos-reliability best_effort` on avatar/cloud printed
    nothing in 20 s, README 'Topics'). Neither is an incompatible QoS, so DDS and rclpy say nothing on either side
    (user24, s24)."""
    from rclpy.qos import DurabilityPolicy, ReliabilityPolicy

    volatile = qos.durability != DurabilityPolicy.TRANSIENT_LOCAL
    best_effort = qos.reliability == ReliabilityPolicy.BEST_EFFORT
    if not (volatile or best_effort):
        return ""
    how = " and ".join(w for w, on in (("volatile", volatile), ("best effort", best_effort)) if on)
    return (f"subscribes to {topic} {how}: it does not get {what} published before it joined ({now}), "
            f"only later ones{' (best effort: megabytes in fragments, often lost)' if best_effort else ''}. {topic} "
            f"is latched: subscribe reliable and transient local, depth {depth} (RViz: Durability Policy Transient "
            "Local, Reliability Policy Reliable; `ros2 topic echo` chooses it by itself)")


class LatchedReaders:
    """Says once per subscription (in the node's log, a warning naming the subscriber's node) which subscribers of
    the node's latched publishers cannot get the sample kept there (latched_reader_problem). Call check() from a
    timer: the graph has no subscription-matched callback in rclpy."""

    MAX_SAID = 1000  # subscriptions remembered as said (a churning subscriber could otherwise grow the set)

    def __init__(self, node, publishers: list, what: str, now: str = "the one shown now"):
        self.node, self.publishers, self.what, self.now = node, publishers, what, now
        self._said: set = set()

    def check(self) -> list[str]:
        """The lines said now (each also logged)."""
        lines = []
        for pub in self.publishers:
            for info in self.node.get_subscriptions_info_by_topic(pub.topic_name):
                gid = bytes(info.endpoint_gid)
                if gid in self._said:
                    continue
                problem = latched_reader_problem(info.qos_profile, pub.topic_name, self.what, self.now,
                                                 pub.qos_profile.depth)
                node = endpoint_node(info)
                if problem and node is not None:  # an unnamed one is said at a later check, once the graph names it
                    if len(self._said) >= self.MAX_SAID:
                        self._said.clear()
                    self._said.add(gid)
                    lines.append(f"{node} {problem}")
                    self.node.get_logger().warning(lines[-1])
        return lines


def best_effort_publisher_events(node, topic: str):
    """rclpy PublisherEventCallbacks for a publisher of `topic` with the sensor-data QoS (best effort, volatile): a
    subscriber that asks for more (reliable: rqt's, RViz's and rclpy's default; or transient local) is sent nothing,
    and this says so with what to subscribe with, where rclpy's own line ('requesting incompatible QoS. No messages
    will be sent to it. Last incompatible policy: RELIABILITY') names no remedy (user24, s24)."""
    from rclpy.event_handler import PublisherEventCallbacks
    from rclpy.qos import qos_policy_name_from_kind

    def said(event) -> None:
        policy = qos_policy_name_from_kind(event.last_policy_kind)
        node.get_logger().warning(
            f"a subscriber of {topic} asks for {policy} this topic does not offer, and gets nothing "
            f"({event.total_count} such subscription(s) so far): it is published best effort and volatile (sensor "
            "data QoS, so that a slow reader never holds the frames back); subscribe best effort and volatile "
            "(rclpy: qos_profile_sensor_data; RViz's Image display: Reliability Policy Best Effort; `ros2 topic echo` "
            "chooses it by itself)")

    return PublisherEventCallbacks(incompatible_qos=said)


def reliable_subscription_events(node, topic: str, what: str, unheard: dict):
    """rclpy SubscriptionEventCallbacks for a reliable subscription of `topic` (resolved name) that reads `what`
    ('photos'): a publisher offering less (best effort: rclpy's qos_profile_sensor_data, which image publishers often
    take) is never heard, and rclpy's own line ('New publisher discovered on topic ..., offering incompatible QoS. No
    messages will be received from it. Last incompatible policy: RELIABILITY') named neither the sender nor a remedy:
    a photo sent so never arrived and the node said nothing else (user64). This names each such publisher's node once
    per topic (a warning) with what to publish with, and keeps `unheard[(node name, topic)] = policy` for
    /diagnostics (best_effort_publishers tells which are still there)."""
    from rclpy.event_handler import SubscriptionEventCallbacks
    from rclpy.qos import qos_policy_name_from_kind

    def said(event) -> None:
        policy = qos_policy_name_from_kind(event.last_policy_kind)
        for name in best_effort_publishers(node, topic) or ["a publisher"]:
            if unheard.get((name, topic)) == policy:
                continue
            unheard[(name, topic)] = policy
            how = ("best effort" if policy == "RELIABILITY" else f"a {policy} this node's subscription does not accept")
            node.get_logger().warning(
                f"{name} publishes {topic} {how}: DDS delivers none of its {what} to this node, which reads them "
                "reliable (so that a photo's fragments all arrive). Publish them reliable (rclpy: QoSProfile(depth=1, "
                "reliability=ReliabilityPolicy.RELIABLE), transient local to latch them, as photo_node does; `ros2 "
                f"topic pub --qos-reliability reliable`) ({event.total_count} such publisher(s) so far)")

    return SubscriptionEventCallbacks(incompatible_qos=said)


def best_effort_publishers(node, topic: str) -> list[str]:
    """The nodes (endpoint_node's names) with a best-effort publisher of `topic` on `node`'s graph."""
    from rclpy.qos import ReliabilityPolicy

    return [endpoint_node(i, "a publisher the graph names no node for") for i in node.get_publishers_info_by_topic(topic)
            if i.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT]


FACE_CONTROL_TYPE = "gaussian_head_ros/msg/FaceControl"  # the controls' type as the graph names it (other_topics)


def other_topics(node, type_name: str, but: str, skip_nodes: frozenset = frozenset(), subscribed: bool = False) -> list[str]:
    """The topics of message type `type_name` ('sensor_msgs/msg/Image') on `node`'s graph, other than `but`, that
    have a publisher (`subscribed`: a subscriber) of that type besides the nodes named in `skip_nodes` (node names
    without namespace), sorted: where a node that gets nothing on `but` could listen instead, or where the readers of
    what a node sends to nobody on `but` listen (a remapping or a namespace away). The graph's topic types are its
    publishers' and subscribers' together, so a topic where only a subscriber takes that type while another type is
    published there does not count (user37 saw such a topic offered as a camera)."""
    endpoints = node.get_subscriptions_info_by_topic if subscribed else node.get_publishers_info_by_topic
    return sorted(name for name, types in node.get_topic_names_and_types()
                  if type_name in types and name != but
                  and {i.node_name for i in endpoints(name) if i.topic_type == type_name} - set(skip_nodes))


# A video_source_node's status on /diagnostics (task VIDEO_SOURCE_TASK) carries VIDEO_ENDED_KEY "true" once its file
# ended without `loop`: the tracker reading its frames names the end, not a camera that stopped (s19), with
# VIDEO_FRAMES_KEY: the frames published since the video last began from its start, as each loop does (frames_published
# counts them all: a file played again after its end, `loop` set true, was said 'ended after 156 frames' for its 78;
# s20; and a 516-frame file looped 12 times, then `loop` set false, 'ended after 6192 frames'; s25).
# VIDEO_AGAIN_KEY: how the video plays again, the source's own words (VideoSourceNode.again), which the tracker's line
# quotes: it advised the launch argument loop:=true also after `loop` was set false at run time (user52); empty while
# the video plays (it said 'loop set false while it played' of a looping file; user55).
VIDEO_SOURCE_TASK, VIDEO_ENDED_KEY, VIDEO_FRAMES_KEY = "video source", "video_ended", "frames_played"
VIDEO_AGAIN_KEY = "play_again"


# Environment variables through which a user chooses the Fast DDS configuration; any one set means "mine".
FASTDDS_USER_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_BUILTIN_TRANSPORTS")
FASTDDS_RMWS = ("rmw_fastrtps_cpp", "rmw_fastrtps_dynamic_cpp")
FASTDDS_DEFAULTS = "Fast DDS defaults:"  # how apply_fastdds_profile's line begins when no profile is in effect


def say_fastdds_profile(logger, line: str) -> None:
    """Log apply_fastdds_profile's `line` with `logger`: a warning when Fast DDS runs on its defaults (no profile in
    effect: large images are lost), else information."""
    (logger.warning if line.startswith(FASTDDS_DEFAULTS) else logger.info)(line)


def companion_topic(node, name: str, base: str) -> str:
    """The topic a node should use for `name` (e.g. "camera/camera_info"), a topic that belongs with its topic
    `base` (e.g. "camera/image_raw"), so that remapping `base` moves `name` too, as image_transport and RViz do:
    a topic below `base` goes below its new name (`face_control/expression_basis` under `-r
    face_control:=/operator/face_control` is `/operator/face_control/expression_basis`), a topic beside it goes
    beside its new name (`camera/camera_info` under `-r camera/image_raw:=/usb_cam/image_raw` is
    `/usb_cam/camera_info`). A remapping of `name` itself wins. Without either, `name` as given. Before this
    rule (try8) `camera_topic:=/usb_cam/image_raw` left the tracker on a guessed field of view while
    /usb_cam/camera_info was published, and two robots' render nodes remapped to one operator's `face_control`
    never received the operator's expression basis; neither said so."""
    own, plain = node.resolve_topic_name(name), node.resolve_topic_name(name, only_expand=True)
    base_to, base_from = node.resolve_topic_name(base), node.resolve_topic_name(base, only_expand=True)
    if own != plain or base_to == base_from:
        return own
    if plain.startswith(base_from + "/"):
        return base_to + plain[len(base_from):]
    here, there = plain.rsplit("/", 1), base_from.rsplit("/", 1)
    if here[0] == there[0]:
        return base_to.rsplit("/", 1)[0] + "/" + here[1]
    return own


def apply_fastdds_profile() -> str:
    """Point Fast DDS at the package's profile (share/gaussian_head_ros/config/fastdds.xml: shared memory
    with segments large enough for 512x512 images) when the user chose no Fast DDS configuration of their
    own. Call before rclpy.init(); it sets FASTDDS_DEFAULT_PROFILES_FILE in this process's environment.

    Left alone: any of FASTDDS_USER_VARIABLES set (non-empty), a DEFAULT_FASTDDS_PROFILES.xml in the
    working directory (Fast DDS loads that one itself), or an RMW other than Fast DDS. Returns one line
    saying which configuration is in effect, for the node's log."""
    rmw = os.environ.get("RMW_IMPLEMENTATION", "") or "rmw_fastrtps_cpp"
    if rmw not in FASTDDS_RMWS:
        return f"middleware {rmw}: the package's Fast DDS profile does not apply"
    for var in FASTDDS_USER_VARIABLES:
        if os.environ.get(var):
            value = os.environ[var]
            if os.path.realpath(value) in _package_profiles():  # env.sh or the launch file chose ours
                return f"Fast DDS profile: {value} (the package's, set by env.sh or the launch file)"
            if var != "FASTDDS_BUILTIN_TRANSPORTS" and not os.path.isfile(value):
                # Fast DDS prints 'XMLPARSER Error realpath failed' and runs on its defaults; the line said
                # 'configured by the user' (user21, s21: fastdds_profile:=/nope.xml, DEPLOYMENT.md's
                # /path/to/fastdds_unicast.xml copied as written)
                return (f"{FASTDDS_DEFAULTS} {var}={value} is no file: Fast DDS cannot load it and runs on its "
                        "defaults (512x512 images go in UDP fragments, which best-effort subscribers mostly lose; no "
                        "unicast peers); give the path of a profile that exists, or unset it for the package's")
            return f"Fast DDS configured by the user: {var}={value}"
    if os.path.isfile("DEFAULT_FASTDDS_PROFILES.xml"):
        return f"Fast DDS profile of the working directory: {os.path.abspath('DEFAULT_FASTDDS_PROFILES.xml')}"
    from gaussian_head_ros.nodes.launcher import package_share

    try:
        profile = package_share() / "config" / "fastdds.xml"
    except LookupError as e:  # ament_index: package not found (not installed or not sourced)
        return f"{FASTDDS_DEFAULTS} the package's profile was not found ({e}); large images may be slow"
    if not profile.is_file():
        return f"{FASTDDS_DEFAULTS} {profile} is missing; large images may be slow"
    os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(profile)
    return (f"Fast DDS profile: {profile} (the package's; set FASTDDS_DEFAULT_PROFILES_FILE to use your own)")


def package_profile_segment_bytes() -> int:
    """The shared-memory segment size (bytes) of the package's Fast DDS profile when it is the one in effect in this
    process (FASTDDS_DEFAULT_PROFILES_FILE names it, as env.sh, the launch files and apply_fastdds_profile set it;
    the first <segment_size> of the file), else 0: another middleware or a user's own configuration, whose limits
    this package does not know. A message larger than the segment goes out in UDP fragments (README, "Fast DDS
    profile")."""
    rmw = os.environ.get("RMW_IMPLEMENTATION", "") or "rmw_fastrtps_cpp"
    path = os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE", "")
    if rmw not in FASTDDS_RMWS or not path or os.path.realpath(path) not in _package_profiles() \
            or any(os.environ.get(v) for v in FASTDDS_USER_VARIABLES if v != "FASTDDS_DEFAULT_PROFILES_FILE"):
        return 0
    try:
        with open(path) as fh:
            found = re.search(r"<segment_size>\s*(\d+)\s*</segment_size>", fh.read())
    except OSError:
        return 0
    return int(found.group(1)) if found else 0


def _package_profiles() -> set[str]:
    """Real paths of the package's own Fast DDS profile: installed (share/) and in the source checkout."""
    from gaussian_head_ros.nodes.launcher import package_share

    paths = {os.path.realpath(os.path.join(os.path.dirname(__file__), "..", "..", "config", "fastdds.xml"))}
    try:
        paths.add(os.path.realpath(package_share() / "config" / "fastdds.xml"))
    except LookupError:
        pass
    return paths


_interrupted = threading.Event()
_spinning = threading.Event()


def _on_sigint(signum, frame):
    """Python's half of a Ctrl-C (rclpy's own handler runs first and shuts the context down). While an
    executor spins that shutdown is enough (spin ends), and a KeyboardInterrupt raised at an arbitrary bytecode
    there would half-build rclpy objects: a Task interrupted in its __init__ prints "Exception ignored in
    Future.__del__ ... AttributeError: 'Task' object has no attribute '_exception'" (rclpy 9.1.2, seen in CI on
    a Ctrl-C of `ros2 launch`). Outside spin (start-up, teardown) it raises KeyboardInterrupt as usual, except inside
    a finalizer (a __del__ the garbage collector runs): Python only prints an exception raised there ('Exception ignored
    in: <function RcutilsLogger.__del__ ...> ... KeyboardInterrupt', a node Ctrl-C'd in its start-up, stop18 s18) and
    goes on; the context rclpy's handler shut down ends the start-up (run_nodes: a node made next raises
    NotInitializedException, no spin)."""
    _interrupted.set()
    if not _spinning.is_set() and not _in_finalizer(frame):
        raise KeyboardInterrupt


def _in_finalizer(frame) -> bool:
    """Whether the Python frame `frame` (a signal handler's) runs inside a __del__."""
    while frame is not None:
        if frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False


@contextlib.contextmanager
def spinning():
    """Mark the main thread's executor.spin(): a Ctrl-C during it ends spin through the context's shutdown
    (rclpy's signal handler) instead of a KeyboardInterrupt (see `_on_sigint`). The mark stays when spin ends:
    the Python half of the Ctrl-C that ended it runs at the main thread's next bytecode, which can come after spin
    (the main thread was in C: a callback's graph query that raised on the invalid context, the wait), inside
    run_nodes' `except`, where its KeyboardInterrupt escaped with a traceback and exit status -2 (the tracker's
    face_control subscription count each tick, test_launch_hosts' Ctrl-C test, review21 s21). run_nodes clears the
    mark once further interrupts are ignored."""
    _spinning.set()
    yield


def note_interrupts() -> None:
    """Call before rclpy.init() (whose signal handler then chains to this one): remember that a Ctrl-C came,
    so that `interrupted()` knows it. A SIGINT that is ignored (a background job) stays ignored; the quiet exit of
    an executable's imports (entry.quiet_exit) ends here."""
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGINT) in (signal.default_int_handler, entry.quiet_exit):
        signal.signal(signal.SIGINT, _on_sigint)


PARENT_POLL_S = 0.5


def started_detached(starter_ignores_sighup: bool | None = None) -> str:
    """Why this process was started to outlive the process that started it, or "" when it was not.

    Three deliberate detachments: `setsid` (the process leads its own session), a shell job of an interactive
    shell, which `disown` may detach (it leads its own process group; `ros2 launch` and `ros2 run` start their
    nodes in their own group), and `nohup` on this process itself (SIGHUP ignored here but not in the process that
    started it; under `nohup ros2 launch` the launcher ignores it too, and its nodes still end with it).
    starter_ignores_sighup: whether that process ignored SIGHUP (None: the one read as this process started,
    entry.STARTER_IGNORES_SIGHUP, where None, unreadable, counts as detached)."""
    if os.getsid(0) == os.getpid():
        return "started with setsid"
    if os.getpgrp() == os.getpid():
        return "a shell job (its own process group)"
    if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
        ignored = entry.STARTER_IGNORES_SIGHUP if starter_ignores_sighup is None else starter_ignores_sighup
        if not ignored:
            return "started with nohup"
    return ""


def end_with_parent(poll_s: float = PARENT_POLL_S) -> None:
    """End this node as on a Ctrl-C (SIGINT to itself) when the launcher that started it is gone.

    `ros2 launch` stopped with SIGTERM (what `kill`, supervisord or a container runtime sends) does not stop
    its processes: launch's own handler only logs 'using SIGTERM can result in orphaned processes' and exits
    (launch/launch_service.py, `_on_sigterm`), and `ros2 run` ends on SIGTERM without signalling its child.
    Measured here before this rule: the three nodes of `ros2 launch gaussian_head_ros avatar.launch.py` ran on,
    adopted by init, still driving the face. A daemon thread polls os.getppid() every `poll_s` s (0.5: the
    node ends within ~0.5 s + its Ctrl-C teardown); when the parent changes (the process was adopted) it logs
    why and sends SIGINT to this process. The parent is the one this process had as it started (entry.STARTED_BY,
    read before the imports): read here, a `ros2 launch` SIGTERMed in its first ~2 s, its nodes still importing,
    had left them adopted by init already, the watch unarmed, and they ran on for good (user53: tracker_node and
    video_source_node of operator.launch.py, 4 of 5 tries at 1.0-2.0 s); one adopted even before that (the launch
    SIGTERMed as it started them, Python itself still starting) knows its launcher from launcher.LAUNCHED_BY_ENV,
    which our launch files set. A parent already gone here is said and the process ended at once (end_process(0);
    called after rclpy.init, the line reaches the node's log file). Not armed when the process starts already
    adopted (parent pid 1) or was detached on purpose (`started_detached`: setsid, nohup, a shell job): `nohup
    render_node &` from a start script that then exits ended the node silently within a second (try8, session 8). Linux
    prctl(PR_SET_PDEATHSIG) was not used: it fires when the parent *thread* that forked ends, which a
    launcher's worker thread may do while the launcher lives on. A process that starts its nodes with setsid and stops
    them itself (launcher.NodeProcess: the demo) arms it through launcher.END_WITH_PARENT_ENV."""
    from gaussian_head_ros.nodes.launcher import END_WITH_PARENT_ENV, LAUNCHED_BY_ENV

    parent = entry.STARTED_BY  # as the process started: the parent read here ended the imports' seconds before
    launched_by = os.environ.get(LAUNCHED_BY_ENV, "")
    starter_ignores_sighup = None  # as read when the process started
    if parent == 1 and launched_by.isdigit() and int(launched_by) > 1:  # our launch file's, gone before it was read
        parent = int(launched_by)
        starter_ignores_sighup = signal.getsignal(signal.SIGHUP) is signal.SIG_IGN  # a launch under nohup: as ours
    if parent == 1 or os.name != "posix" or (started_detached(starter_ignores_sighup)
                                             and os.environ.get(END_WITH_PARENT_ENV) != "1"):
        return

    def say() -> None:
        rclpy.logging.get_logger(os.path.basename(sys.argv[0])).warning(
            f"the process that started this node (pid {parent}) has ended: stopping as on Ctrl-C; to keep a node "
            "running on its own, start it with setsid or nohup")

    if os.getppid() != parent:  # it ended while this process imported: nothing made yet, ended here
        say()
        rclpy.try_shutdown(context=rclpy.get_default_context())
        end_process(0)

    def stop() -> None:
        say()
        os.kill(os.getpid(), signal.SIGINT)

    entry.watch_parent(parent, poll_s, stop, "end_with_parent")


def interrupted(e: BaseException) -> bool:
    """True for what a Ctrl-C or a SIGTERM raised out of spin(): a KeyboardInterrupt; the RuntimeError pybind11
    makes of one raised while rclpy converts a message it takes ('Unable to convert call argument ...'); or
    any RuntimeError once rclpy's default context is shut down. rclpy's own SIGTERM (and SIGINT)
    handler shuts the context down at once, and an executor that is building its wait set at that moment
    raises RCLError 'failed to initialize wait set: the given context is not valid' (rclpy/executors.py
    checks context.ok() only after the wait) instead of ExternalShutdownException, and rclpy.spin() entered
    just after it fails creating its executor: `kill` of avatar_pipeline or render_node ended 3 in 8 times with
    such a traceback and exit status 1 (try7, session 7), which a supervisor counts as a crash. Also a node made
    after that shutdown (avatar_pipeline makes several, one after the other): its constructor raises
    NotInitializedException ('rclpy.init() has not been called'; a Ctrl-C 2 s into the composed launch, tidy18)."""
    return isinstance(e, KeyboardInterrupt) or (
        isinstance(e, (RuntimeError, NotInitializedException)) and (_interrupted.is_set() or not rclpy.ok()))


def ignore_further_interrupts() -> None:
    """Let teardown finish: a terminal's Ctrl-C signals `ros2 launch` and every node at once, and the
    launch then forwards its own SIGINT, so a node gets two; the second must not raise KeyboardInterrupt
    halfway through destroy_node(). (`ros2 launch` still escalates to SIGTERM when a node hangs.)"""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def close_ros_log() -> None:
    """End rcl's logging if this process's context has not (rcl_logging_fini through rclpy's Context._logging_fini,
    under its lock), so that the node's log file (`$ROS_LOG_DIR`, else `$ROS_HOME/log`: <exe>_<pid>_<ms>.log) gets
    its last lines. rcl_logging_spdlog writes that file through a buffer it flushes every 5 s and at an ERROR line;
    rclpy flushes it only in Context.shutdown(), which a Ctrl-C or SIGTERM skips (rclpy's signal handler shuts the
    rcl context down in C, and then Context.try_shutdown() does nothing), and end_process's os._exit skipped the
    rest: every line of a node's last seconds was lost from its file. Under a SIGTERM'd `ros2 launch` that was the one line
    saying why the node stopped ('the process that started this node ... has ended'): its stderr was launch's pipe,
    closed (user26, s26: no trace of it anywhere). After this, lines go to the console only (rcl's own fallback).
    Uses rclpy's private Context members (rclpy 9, Kilted: `_logging_initialized`, `_lock`, `_logging_fini`); does
    nothing where they are missing."""
    ctx = rclpy.get_default_context()
    fini, lock = getattr(ctx, "_logging_fini", None), getattr(ctx, "_lock", None)
    if not getattr(ctx, "_logging_initialized", False) or fini is None or lock is None:
        return
    if lock.acquire(timeout=1.0):  # held by nobody at the end; never wait long for it
        try:
            fini()
        finally:
            lock.release()


def end_process(code: int = 0) -> NoReturn:
    """End a node executable once its nodes are destroyed and rclpy is shut down: release the ROS
    context (the DDS participant leaves the graph), run the atexit handlers (logging flushes), flush
    stdout/stderr, and skip the interpreter's own finalization, which takes 1.5-3 s with torch,
    MediaPipe and numba loaded on a busy CPU (measured here at load 20 on 2 cores): a Ctrl-C must end
    every node within 5 s, and `ros2 launch` escalates to SIGTERM after 5. Never returns."""
    try:
        rclpy.get_default_context().destroy()
    finally:
        close_ros_log()
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def limit_blas_threads(n: int = 1) -> None:
    """Limit the BLAS/LAPACK libraries loaded in this process (numpy's OpenBLAS) to `n` threads.

    OpenBLAS starts one thread per core and its threads spin while they wait for each other; when other
    processes keep the cores busy that spinning turns a small LAPACK call into seconds. Measured on the 2-core
    development machine at load 6-10: the tracker's operator-basis SVD (300 frames x 1434, core/operator_basis.py
    `learn`) took 1.1-10.6 s with OpenBLAS's 2 threads and 0.10-0.12 s with 1, and the tracker published nothing
    meanwhile (its frames held by the render node: glass-to-glass p95 of ~1 s in `scripts/bench_latency.py`).
    Uses threadpoolctl; a library loaded after this call keeps its own setting."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n, user_api="blas")


# Python's GIL switch interval for node processes (sys.setswitchinterval; CPython's default is 5 ms). A thread that
# releases the GIL (a numpy call, a numba kernel, a DDS wait) waits up to one interval to take it back while another
# thread computes in Python: the convoy effect. In avatar_pipeline (tracker, renderer and reconstruction in one
# process) the reconstruction's thousands of short numpy calls and the renderer's kernels each waited so. Measured on
# the 2-core CI machine (scripts/bench_composed_pipeline.py: avatar_pipeline --photo lp_d8_man_glasses.jpg --video
# lp_d0.mp4 --backend cpu): 5 ms: the start-up photo reconstructed in 24-110 s (1.5 s alone), face display 6.3-6.7 fps;
# 1 ms: 5.1 s, 25.9 fps; 0.5 ms: 2.9-3.3 s, 29.3-29.5 fps. test_composed_pipeline failed whenever that reconstruction passed 90 s.
GIL_SWITCH_INTERVAL_S = 0.0005


def steady_timer(node, period_s: float, callback):
    """A timer of `node` calling `callback` every `period_s` seconds of the steady (monotonic) clock -> rclpy Timer.
    For the nodes' own upkeep: /diagnostics, the watches that say what is wrong, statuses waiting for an
    acknowledgement. rclpy's default timer runs on the node's ROS clock, which under use_sim_time stands still until
    the first /clock (and while a bag is paused): a robot launched with use_sim_time:=true whose camera bag was played
    without --clock, or not yet, published no /diagnostics and said nothing at all, its stamp-offset warning for just
    that case included (user50). Their callbacks read time.monotonic(), not the ROS clock."""
    from rclpy.clock import Clock, ClockType

    return node.create_timer(period_s, callback, clock=Clock(clock_type=ClockType.STEADY_TIME))


def watch_sim_clock(node):
    """Under use_sim_time, logs what core.pacing.SimClockWatch (the rule) says of `node`'s ROS clock (no /clock yet, a
    clock standing still, and when it comes or moves again), checked every second of the steady clock. Returns the
    steady_timer; the caller keeps it alive as long as the node."""
    from gaussian_head_ros.core.pacing import SimClockWatch

    watch = SimClockWatch()

    def check() -> None:
        said = watch.check(bool(node.get_parameter("use_sim_time").value), node.get_clock().now().nanoseconds,
                           time.monotonic())
        if said and said[0] == "warning":  # (one call site per severity: rclpy refuses a site that changes it)
            node.get_logger().warning(said[1])
        elif said:
            node.get_logger().info(said[1])

    return steady_timer(node, 1.0, check)


def this_domain(node) -> str:
    """'this ROS_DOMAIN_ID (42)': the domain `node` is in, for the lines that ask whether the operator's and the
    robot's hosts share one. 'in this ROS_DOMAIN_ID' alone sent the user to `echo $ROS_DOMAIN_ID` in each shell to
    compare; with the number the two logs side by side show a mismatch (user45, s45). With ROS_AUTOMATIC_DISCOVERY_RANGE
    OFF (launcher.discovery_off) the node finds no node of another process whatever the domain: said too, with the
    values to set instead (user48)."""
    from gaussian_head_ros.nodes.launcher import discovery_off

    said = f"this ROS_DOMAIN_ID ({node.context.get_domain_id()})"
    if discovery_off():
        said += (", though this node's discovery is off (ROS_AUTOMATIC_DISCOVERY_RANGE=OFF: it finds no node of another "
                 "process, on this host or another; unset it, or set LOCALHOST or SUBNET)")
    return said


def start_process(args=None, blas_threads: int = 1) -> str:
    """The start-up every node executable shares (`run`, and avatar_pipeline with all nodes in one process):
    glibc's malloc arenas limited (`limit_malloc_arenas`), BLAS libraries limited to `blas_threads` threads (0:
    their own default; see `limit_blas_threads`), the GIL switch interval (GIL_SWITCH_INTERVAL_S), the Fast DDS
    profile, Ctrl-C handling, rclpy.init(args). Returns the line saying which DDS profile is used.
    Arguments rcl cannot parse (a `--params-file` that is not a parameters file, a bad remapping) end the
    process with status 2 and rcl's reason in one line on stderr, not a traceback; so does a ROS_DOMAIN_ID no DDS
    has ports for (launcher.domain_id_problem: Fast DDS ended the process at its first node, in its own words)."""
    from rclpy.impl.implementation_singleton import rclpy_implementation

    from gaussian_head_ros.nodes.launcher import domain_id_problem

    if problem := domain_id_problem():
        print(f"{os.path.basename(sys.argv[0])}: cannot start: {problem}", file=sys.stderr)
        sys.exit(2)

    limit_malloc_arenas()  # before DDS's and the nodes' threads: a long day of photo swaps kept growing (s58)
    if blas_threads:
        limit_blas_threads(blas_threads)
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    dds = apply_fastdds_profile()
    note_interrupts()
    try:
        rclpy.init(args=args)
    except rclpy_implementation.RCLError as e:
        print(f"{os.path.basename(sys.argv[0])}: cannot start: {e}{rcl_argument_hint(str(e))}", file=sys.stderr)
        sys.exit(2)
    bridge_python_logging(rclpy.logging.get_logger(os.path.basename(sys.argv[0])))
    end_with_parent()  # after rclpy.init: a launcher gone already is said in the node's log file
    return dds


class RosLogBridge(logging.Handler):
    """Python `logging` records -> rcl logging, so that what core says in a node process (core logs through
    `logging.getLogger(__name__)`, STYLE.md) reaches the node's console line, its ROS log file and /rosout like the
    node's own lines; Python `warnings` come through it too (`logging.captureWarnings`). Before, a node process had no
    Python logging handler: core's warnings went to stderr as bare text through logging's last resort (no node name,
    not in /rosout nor the log file: 'gsplat is not usable here ...; using the cpu rasterizer', 'numba could not
    write the cache ...', an ICC profile that cannot be read), and its info lines were dropped ('JPEG decoded at 1/2
    ... to stay within N pixels' for a photo above max_pixels, 'neutral face calibrated from 30 frames') (user46, s46).

    `logger`: the rclpy logger the lines go to: the process's (its executable's name) until `log_core_under` gives
    a one-node process its node's logger (which also publishes on /rosout); avatar_pipeline's nodes share one process
    and its lines stay under `avatar_pipeline`. Python levels map to rcl's (DEBUG debug, INFO info, WARNING warn,
    ERROR error, CRITICAL fatal); rcl filters by the logger's level (`--log-level`)."""

    def __init__(self, logger):
        super().__init__(logging.DEBUG)
        self.logger = logger

    def emit(self, record: logging.LogRecord) -> None:
        # one call line per severity: rclpy keys each logging call site to one severity, and raised 'Logger severity
        # cannot be changed between calls' for the second severity through a shared line
        try:
            text, level = self.format(record).rstrip(), record.levelno
            if level >= logging.CRITICAL:
                self.logger.fatal(text)
            elif level >= logging.ERROR:
                self.logger.error(text)
            elif level >= logging.WARNING:
                self.logger.warning(text)  # a Python warning's text ends with a newline: stripped
            elif level >= logging.INFO:
                self.logger.info(text)
            else:
                self.logger.debug(text)
        except Exception:  # rcl's logging already finished (process end): said on stderr by logging itself
            self.handleError(record)


_bridge: RosLogBridge | None = None


def bridge_python_logging(logger) -> RosLogBridge:
    """Send Python logging (and, through it, Python warnings) to the rclpy logger `logger` from now on
    (`RosLogBridge`); called again, the bridge already installed takes the new logger. The package's own loggers pass
    info and up (debug too when `logger` is enabled for debug: `--log-level debug`); other libraries' warnings and
    up, as Python's default. Returns the handler (installed on the root logger)."""
    global _bridge
    if _bridge is None:
        _bridge = RosLogBridge(logger)
        logging.getLogger().addHandler(_bridge)
        logging.captureWarnings(True)
    _bridge.logger = logger
    debug = logger.is_enabled_for(rclpy.logging.LoggingSeverity.DEBUG)
    logging.getLogger("gaussian_head_ros").setLevel(logging.DEBUG if debug else logging.INFO)
    return _bridge


_one_node = False  # set by `run`: the process has one node, and core's lines go under that node's logger


def log_core_under(node) -> None:
    """Called first in each node's __init__, before it starts a thread that may log: in a process of one node (`run`)
    Python logging (core's lines) goes from then on to this node's logger (`robot1.render_node` under a namespace, and
    on /rosout) instead of the process's (`render_node`). Switched after the node was made, core's first lines came
    under either logger by timing: the render node's warm-up thread said 'cpu rasterizer ready' under `[render_node]`
    in one of four fresh-clone CIs, and `log_level:=render_node:=debug` under a namespace did not show it (s50). In
    avatar_pipeline's process (several nodes) the lines stay under `avatar_pipeline`."""
    if _one_node and _bridge is not None:
        bridge_python_logging(node.get_logger())


def rcl_argument_hint(reason: str) -> str:
    """What to write instead, for an rcl reason that does not say it ('' for the others). A list parameter whose
    items mix integers and floats (`-p background:=[1, 0.5, 0.5]`, or in a params file) ended the node with rcl's
    'Sequence should be of same type. Value type 'double' do not belong at line_num 1' (user46, s46): rcl's YAML
    parser takes one type per list. A parameter given no value, `-p photo_path:=''` in a shell (which takes the
    quotes), ended it with rcl's 'Couldn't parse parameter override rule: '-p photo_path:='. Error: error not set'
    (user51)."""
    if "Sequence should be of same type" in reason:
        return (" (the items of a list parameter must all be of one type: write whole numbers among floats with a "
                "decimal point, as background [1.0, 0.5, 0.5], not [1, 0.5, 0.5])")
    empty = re.search(r"parameter override rule: '-p ([^' ]+):='", reason)
    if empty:
        name = empty.group(1)
        return (f" ({name} is given no value: for an empty string write -p {name}:=\"''\" in a shell (YAML's empty "
                "string, quoted), or leave the parameter out for its default)")
    return ""


def run(node_class, args=None, threads: int = 0, blas_threads: int = 1) -> NoReturn:
    """main() of a node executable: `start_process`, then `run_nodes` with the one node (it logs the DDS profile
    line): spun (multi-threaded when threads > 0) until Ctrl-C or shutdown, destroyed, the process ended
    (end_process: never returns)."""
    global _one_node
    dds = start_process(args, blas_threads)
    _one_node = True

    def make(nodes: list) -> None:
        nodes.append(node_class())
        say_fastdds_profile(nodes[0].get_logger(), dds)

    run_nodes(make, threads)


def run_nodes(make_nodes, threads: int = 0) -> NoReturn:
    """The life of a node process after `start_process` (`run`, and avatar_pipeline with several nodes in one
    process): make_nodes(nodes) makes the process's nodes, appending each to the list `nodes` as it is made;
    they spin until Ctrl-C or shutdown (one node with threads 0: rclpy.spin; else a MultiThreadedExecutor of
    `threads` threads); then the executor is shut down (2 s for running callbacks), the nodes made so far are
    destroyed, newest first (also when a Ctrl-C, SIGTERM or error came while making them), rclpy is shut down
    and the process ends (end_process(0): never returns). An error that is no interrupt is raised."""
    nodes, executor = [], None
    try:
        make_nodes(nodes)
        for n in nodes if rclpy.ok() else ():  # (a Ctrl-C while making them: see below)
            n._sim_clock_timer = watch_sim_clock(n)
        if not rclpy.ok():
            pass  # a Ctrl-C or SIGTERM while making them shut the context down: an executor made now would fail
            # (rclpy.spin creating its own), and rclpy then prints that half-made executor's __del__ error
        elif threads:
            executor = MultiThreadedExecutor(num_threads=threads)
            for n in nodes:
                executor.add_node(n)
            with spinning():
                executor.spin()
        else:
            with spinning():
                rclpy.spin(nodes[0])
    except ExternalShutdownException:
        pass
    except (KeyboardInterrupt, RuntimeError, NotInitializedException) as e:
        if not interrupted(e):
            raise
    finally:
        ignore_further_interrupts()
        _spinning.clear()  # set by spinning() (a late half of the Ctrl-C that ended spin must not raise)
        if executor is not None:
            executor.shutdown(timeout_sec=2.0)
        for n in reversed(nodes):
            n.destroy_node()
        # this context, named: rclpy.try_shutdown() without one replaces the default context by a new, empty one once
        # it is shut down, and end_process then released and closed the log of that one, not this (user26, s26)
        rclpy.try_shutdown(context=rclpy.get_default_context())
    end_process(0)


class Loading:
    """Whether a node's worker thread is inside a slow load, so that destroy_node does not wait for it.

    The rule: a thread still loading (kernels, a model, a JIT warm-up: 5-20 s on the busy 2-core machine, much of it
    in C code that nothing interrupts) holds nothing to release, since what it loads is not in use yet, and the
    process ends without it (end_process; daemon threads). Waiting for it made a Ctrl-C in a launch's first seconds
    take 5-10 s, past the 5 s after which `ros2 launch` escalates SIGINT to SIGTERM (user18's render node, 52dfead;
    tidy18's composed launch: the tracker's MediaPipe load and the reconstructor's warm-up, session 18).

    The worker thread: `begin()` before a load (a Loading made with loading=True starts inside one), `end()` after
    it: False when the node was stopped meanwhile (destroy_node did not wait; the node may be destroyed): the worker
    then drops what it loaded and returns, without logging or publishing. destroy_node: `if loading.stop():
    thread.join(timeout)`: True when the worker is not inside a load (wait for it as usual). Thread-safe."""

    def __init__(self, loading: bool = False):
        self._lock = threading.Lock()
        self._loading = loading
        self._stopped = False

    def begin(self) -> None:
        """The worker starts a load."""
        with self._lock:
            self._loading = True

    def end(self) -> bool:
        """The worker's load is over: True to go on, False when the node was stopped meanwhile (return then)."""
        with self._lock:
            self._loading = False
            return not self._stopped

    def stop(self) -> bool:
        """destroy_node: True when the worker is to be waited for (not inside a load); a later end() returns False."""
        with self._lock:
            self._stopped = True
            return not self._loading


class Latest:
    """A one-item mailbox from a subscription callback to a worker thread: the newest item wins and
    nothing queues, so a slow worker never blocks the executor nor falls behind."""

    def __init__(self):
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._item = None

    def put(self, item) -> bool:
        """Store `item`; True when it replaced one the worker had not taken yet."""
        with self._lock:
            replaced = self._item is not None
            self._item = item
        self._ready.set()
        return replaced

    def take(self, timeout: float):
        """The newest item, or None when nothing came within `timeout` seconds (or on wake())."""
        if not self._ready.wait(timeout):
            return None
        with self._lock:
            item, self._item = self._item, None
            self._ready.clear()
        return item

    def wake(self) -> None:
        """Let a waiting take() return now (for shutdown)."""
        self._ready.set()


class InOrderLatched:
    """A latched publisher (reliable, transient local, depth 1) of a sequence of messages that every live reader
    needs in full, such as avatar/status (each photo's final status): a message is published once every matched
    reliable reader has acknowledged the one before, or `ack_wait_s` after it (a reader that went away without
    leaving the graph, or a link down for longer); messages that come meanwhile wait, in order. A late joiner gets
    the newest published message only, as from any depth-1 latched topic.

    Why: a keep-last-1 writer keeps only its newest sample for repairs, so of two samples published back to back the
    first is lost for good to a reader that missed its datagram (Fast DDS 3.2.3, rmw_fastrtps 9.3.3; measured here
    between two network namespaces: with the link down for 0.3 s while two statuses went out back to back, 0 of 6
    first ones arrived, 6 of 6 second ones; on one host over shared memory 300 of 300 pairs arrived; paced by
    acknowledgement, 6 of 6 and 5 of 5, each acknowledged 0.2-0.3 s after the link came back, also after 2 s down).
    A deeper writer history would repair them too, but hands every late joiner up to that many old samples, oldest
    first (`ros2 topic echo --once avatar/status` then prints a stale status).

    A reader that lets two waits in a row run out (a process SIGKILLed: it stays matched until its DDS lease ends, 20 s
    and more) holds two messages `ack_wait_s` each, not every one: from then on messages go out as they come, unpaced,
    until every reader has acknowledged again (the reader caught up or left the graph). Before this rule each status
    waited the full 5 s behind a dead photo_node (user14, s14). Not after one wait: across a link that was down, a
    reader whose acknowledgement was lost acknowledges only once the next message reaches it (measured in
    test_two_hosts' network namespaces: the wait for BUSY(B)'s acknowledgement ran out after 5 s although the link was
    back after 1 s; SUPERSEDED(B), published then, was acknowledged 1.3 s later). Going unpaced after that one wait
    published BUSY(C) at once, and the operator lost SUPERSEDED(B) (2 runs of 2).

    publish() may be called from any thread; a timer of `node` publishes what waits (every `poll_s`). `unacked`
    counts messages published while a reader had not acknowledged the one before (after `ack_wait_s`, or unpaced
    while one lags)."""

    LAG_AFTER = 2  # waits in a row that ran out before messages go out unpaced (see above: one is not enough)

    def __init__(self, node, msg_type, topic: str, ack_wait_s: float = 5.0, poll_s: float = 0.05):
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

        self.publisher = node.create_publisher(msg_type, topic, QoSProfile(
            depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE))
        self.ack_wait_s = ack_wait_s
        self.unacked = 0
        self._lock = threading.Lock()
        self._waiting: list = []  # messages not published yet, oldest first
        self._sent_at: float | None = None  # monotonic time of the last message not known to be acknowledged
        self._ran_out = 0  # waits in a row that ran out (no acknowledgement in ack_wait_s); LAG_AFTER: publish unpaced
        steady_timer(node, poll_s, self._drain)

    def publish(self, msg) -> None:
        """Publish `msg` now when every reader has the message before it; else after, in order."""
        with self._lock:
            self._waiting.append(msg)
            self._drain_locked()

    def pending(self) -> int:
        """Messages waiting for a reader's acknowledgement of the one before."""
        with self._lock:
            return len(self._waiting)

    def flush(self, timeout_s: float) -> None:
        """Publish every waiting message within `timeout_s` seconds, each after the acknowledgement of the one before
        or its share of the time (for a node that is stopping)."""
        from rclpy.duration import Duration

        end = time.monotonic() + timeout_s
        with self._lock:
            while self._waiting:
                if self._sent_at is not None:
                    left = 0.0 if self._ran_out >= self.LAG_AFTER else max(0.0, min(
                        self.ack_wait_s, (end - time.monotonic()) / len(self._waiting)))
                    self.publisher.wait_for_all_acked(Duration(seconds=left))
                    self._sent_at = None
                self.publisher.publish(self._waiting.pop(0))
                self._sent_at = time.monotonic()

    def _acked(self) -> bool:
        from rclpy.duration import Duration

        return self.publisher.wait_for_all_acked(Duration(seconds=0))

    def _drain(self) -> None:
        with self._lock:
            self._drain_locked()

    def _drain_locked(self) -> None:
        while self._waiting:
            if self._sent_at is not None:
                if self._acked():
                    self._sent_at, self._ran_out = None, 0
                elif self._ran_out < self.LAG_AFTER and time.monotonic() - self._sent_at < self.ack_wait_s:
                    return
                else:  # this wait ran out, or LAG_AFTER waits in a row did: a reader is gone, do not wait for it
                    self._ran_out = min(self._ran_out + 1, self.LAG_AFTER)
                    self.unacked += 1
            self.publisher.publish(self._waiting.pop(0))
            self._sent_at = time.monotonic()


class RecurringLog:
    """The log line of an event that recurs every few seconds by design (a new operator expression basis: on
    some clips every 2-5 s): the first at INFO, then at most one INFO line per `every_s` seconds, which says how
    many came since the one before; the others at DEBUG (`--log-level debug` shows each)."""

    def __init__(self, logger, every_s: float = 60.0):
        self._logger, self.every_s = logger, every_s
        self._said_at: float | None = None  # monotonic seconds of the last INFO line
        self._unsaid = 0  # events at DEBUG since then

    def say(self, line: str) -> None:
        now = time.monotonic()
        if self._said_at is None or now - self._said_at >= self.every_s:
            more = f" [{self._unsaid} more since the last such line {now - self._said_at:.0f} s ago, each at DEBUG]" \
                if self._unsaid else ""
            self._logger.info(line + more)
            self._said_at, self._unsaid = now, 0
        else:
            self._unsaid += 1
            self._logger.debug(line)


class CausesSaid:
    """The causes (an exception's text) of inputs a node refuses or skips, each said in the log once, or again at most
    every `again_s` seconds of the same cause (None: once), and held for `shown_s` seconds for /diagnostics. A faulty
    publisher repeats its fault every message: said once, not every message; two causes that alternate (an empty
    camera frame, then one of a wrong encoding) are each said, where one throttle for all of them said only the first
    (user33, s34). At most `remembered` causes are held (then forgotten: a cause with a counter in its text)."""

    def __init__(self, again_s: float | None = None, shown_s: float = 5.0, remembered: int = 64):
        self.again_s, self.shown_s, self.remembered = again_s, shown_s, remembered
        self._said: dict[str, float] = {}  # cause -> monotonic s it was last said
        self._seen: dict[str, float] = {}  # cause -> monotonic s it last came
        self._lock = threading.Lock()  # (an executor callback and a worker thread may both add)

    def add(self, cause: str, now: float) -> bool:
        """Note that `cause` came at monotonic seconds `now`; True when the log should say it now (the first time, or
        `again_s` after it was last said)."""
        with self._lock:
            for held in (self._said, self._seen):
                if cause not in held and len(held) >= self.remembered:
                    held.clear()
            self._seen.pop(cause, None)
            self._seen[cause] = now  # (newest last)
            said = self._said.get(cause)
            if said is not None and (self.again_s is None or now - said < self.again_s):
                return False
            self._said[cause] = now
            return True

    def recent(self, now: float) -> list[str]:
        """The causes that came in the last `shown_s` seconds before `now`, the newest last."""
        with self._lock:
            return [c for c, t in self._seen.items() if now - t <= self.shown_s]


# A topic with more than one publisher this long is said (SharedTopic; the default of the render and tracker nodes'
# shared_topic_say_s): it outlasts the DDS lease of a crashed publisher's stale entry (Fast DDS: 20 s), so a node
# restarted after a crash is not a second one.
SHARED_TOPIC_SAY_S = 25.0


class SharedTopic:
    """Watches one topic for more than one publisher held for `after_s` seconds (two operators' trackers on one
    face_control; two render nodes, two robots launched in one namespace, on one face_display; two cameras on one
    tracker's camera/image_raw), so a node can say it once per set of publishers. The wait outlasts the DDS lease of a
    crashed publisher's stale entry (20 s in Fast DDS), so a node restarted after a crash is not taken for a second one."""

    def __init__(self, node, topic: str, after_s: float):
        self.node, self.topic, self.after_s = node, topic, after_s
        self._known: list[str] = []  # the publishers ('namespace/name') of the current set of more than one
        self._since, self._said = 0.0, False
        self.count = 0  # publishers at the last look (`due`)
        self.last_names: list[str] = []  # the publishers the last look that found some found (kept after they leave)

    def due(self, now: float) -> list[str]:
        """The publishers ('namespace/name', sorted) when there have been more than one for `after_s` seconds of
        monotonic time `now` and this set was not said yet (then it counts as said); else []. Each call also
        notes the count and the names (`last_names`: kept after the last publisher left; when it left, to the
        millisecond, a subscription's matched event says: render_node's mixer keeps it)."""
        names = sorted(endpoint_node(i, UNNAMED_NODE) for i in self.node.get_publishers_info_by_topic(self.topic))
        if names:
            self.last_names = names
        self.count = len(names)
        if len(names) < 2:
            self._known, self._said = [], False
            return []
        if names != self._known:
            self._known, self._since, self._said = names, now, False
        elif not self._said and now - self._since >= self.after_s:
            self._said = True
            return names
        return []

    def held_s(self, now: float) -> float:
        """Seconds the current set of more than one publisher has lasted (0 with one or none)."""
        return now - self._since if self._known else 0.0

    def held(self, now: float) -> list[str]:
        """The publishers of the current set of more than one while it has lasted `after_s` seconds at monotonic time
        `now` (said or not: for a status that warns while it lasts), else []; as of the last `due`."""
        return list(self._known) if self._known and now - self._since >= self.after_s else []
