"""`gaussian-head`: the command-line tool. Each subcommand lives in gaussian_head_ros/commands/<name>.py
with `add_arguments(parser)` and `run(args) -> int`; heavy imports happen only when it runs."""

from __future__ import annotations

import argparse
import atexit
import importlib
import logging
import os
import signal
import sys
import threading

from gaussian_head_ros import __version__

# name -> one-line help. Order is the order `--help` lists them.
COMMANDS = {
    "reconstruct": "one portrait photo -> a drivable Gaussian head avatar (.ply)",
    "track": "a video of the operator -> per-frame head pose and expression (JSONL)",
    "render": "drive an avatar with tracked controls (or the idle animation) and write a video",
    "bench": "rasterizer and driving speed on this machine (FPS per backend and size)",
    "eval": "self/cross-reenactment metrics on a talking-head clip (PSNR, reader correlations, holes, identity)",
    "prepare": "track and cache training clips into a dataset index (resumable), then stop",
    "train": "train the learned RAR reconstructor from a config file",
    "demo": "the whole pipeline through ROS 2: photo -> avatar, video -> tracker -> renderer -> mp4",
}

EPILOG = """examples:
  gaussian-head reconstruct photo.jpg -o me.ply --preview out/
  gaussian-head track clip.mp4 -o controls.jsonl
  gaussian-head render me.ply --controls controls.jsonl -o me.mp4
  gaussian-head bench --json
Run 'gaussian-head COMMAND --help' for the options of one command.
The same from Python, without ROS: python -c 'import gaussian_head_ros.core as c; help(c)' (README: "From Python")."""


def say_defaults(parser: argparse.ArgumentParser) -> None:
    """Append "(default: X)" to the help of every option of `parser` with a default that its help does not already
    say: `gaussian-head render --help` listed --size, --distance and --background without theirs, while some options
    wrote theirs by hand (user28, s28). Flags (store_true/false), options without a default (None) and empty ones
    ('' or []: "not given", each help says what that means) are left as they are; a list shows as on the command
    line (--background 0.0 0.0 0.0)."""
    for a in parser._actions:  # argparse offers no public iterator over a parser's actions
        if (not a.option_strings or a.help in (None, argparse.SUPPRESS) or a.default in (None, argparse.SUPPRESS, "")
                or isinstance(a, (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._HelpAction))
                or (isinstance(a.default, (list, tuple)) and not a.default) or "default" in a.help.lower()):
            continue
        shown = " ".join(map(str, a.default)) if isinstance(a.default, (list, tuple)) else str(a.default)
        a.help = f"{a.help} (default: {shown.replace('%', '%%')})"


def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    parser = argparse.ArgumentParser(
        prog="gaussian-head",
        description="One portrait photo -> a drivable 3D Gaussian head avatar (RAR), driven by a camera, "
                    "rendered in real time. The ROS 2 nodes use the same code.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"gaussian_head_ros {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = {}
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        try:
            mod = importlib.import_module(f"gaussian_head_ros.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"gaussian_head_ros.commands.{name}":
                raise
            p.description = help_text + " (not available in this build)"
            continue
        mod.add_arguments(p)
        # -v after the command too (`render me.ply -o me.mp4 -v` was 'unrecognized arguments: -v'; user48); SUPPRESS:
        # not given there, the top-level -v (or its False) stands
        p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log debug messages")
        say_defaults(p)
        modules[name] = mod
    return parser, modules


def main(argv: list[str] | None = None) -> int:
    parser, modules = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.command:
        parser.print_help()
        return 0
    if args.command not in modules:
        print(f"gaussian-head: '{args.command}' is not available in this build", file=sys.stderr)
        return 2
    # a SIGTERM (kill, timeout, a supervisor) ends the command as Ctrl-C does, its files being written dropped: it
    # killed the process there, leaving a .NAME.partial-PID file (cut-off output before files.WholeFile). The demo's
    # too: its rclpy installs no handler (commands/demo.py; rclpy's shut its recorder down and the demo recorded on to
    # its end, user48). Not off the main thread (signal handlers live there).
    # A Ctrl-C raised where Python drops it (a weakref callback) is raised again (_SignalNotDropped).
    previous = hook = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminated)
        sys.unraisablehook = hook = _SignalNotDropped(sys.unraisablehook)
    try:
        return int(modules[args.command].run(args) or 0)
    except (_Terminated, KeyboardInterrupt) as e:  # files being written are not left cut short (files.WholeFile)
        return _ended_by_signal(args.command, e)
    except SystemError as e:  # a signal's exception raised as a compiled function (numba's dispatcher) returned comes
        # out as "CPUDispatcher(...) returned a result with an exception set", the signal's as its cause (a SIGTERM
        # during `render`'s drive: a traceback and exit 1, CI of session 37), or several such deep when it came
        # while numba loaded the function from its cache (_numba_unpickle inside _apply's dispatcher, session 39)
        signal_exc = _signal_behind(e)
        if signal_exc is not None:
            return _ended_by_signal(args.command, signal_exc)
        raise
    except BrokenPipeError:  # stdout's reader left (`track clip.mp4 -o - | head -1`): said 'error: Broken pipe'
        return _reader_left()
    except ValueError as e:  # bad input: one line a person can act on
        print(f"gaussian-head {args.command}: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # a missing, unreadable or unwritable file: the system's one line, no traceback
        from gaussian_head_ros.core.files import shown

        print(f"gaussian-head {args.command}: error: {e.strerror or e}: {shown(e.filename or '')}".rstrip(": "),
              file=sys.stderr)
        return 1
    finally:
        if hook is not None:  # before the SIGTERM handler goes
            hook.cancel()
            sys.unraisablehook = hook.previous
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


class _Terminated(BaseException):
    """A SIGTERM, raised where the command is, as KeyboardInterrupt is for SIGINT (past `except Exception`)."""


def _terminated(signum, frame):
    raise _Terminated


class _SignalNotDropped:
    """sys.unraisablehook while a command runs: a Ctrl-C (or SIGTERM) whose exception Python raised inside a weakref
    callback or a __del__ is not dropped there but raised again where the command is, AGAIN_AFTER_S later (from a
    timer thread: raised in this hook it would be dropped again, 'Exception ignored in sys.unraisablehook'). Python
    prints such an exception as 'Exception ignored in ...' with its traceback and goes on: a Ctrl-C at `track`'s first
    frame, while scipy was being imported (importlib's module-lock callback, `_get_module_lock.<locals>.cb`), was lost,
    and track ran to its end, exit 0, over the previous output (ci49: 1 of 40 interrupts 0-0.2 s into the writing).
    Any other unraisable exception goes to the hook that was there (`previous`)."""

    AGAIN_AFTER_S = 0.01

    def __init__(self, previous):
        self.previous = previous
        self.timer: threading.Timer | None = None

    def __call__(self, unraisable) -> None:
        if not issubclass(unraisable.exc_type, (KeyboardInterrupt, _Terminated)):
            self.previous(unraisable)
            return
        signum = signal.SIGINT if issubclass(unraisable.exc_type, KeyboardInterrupt) else signal.SIGTERM
        # a real signal to the main thread, not _thread.interrupt_main: a signal wakes a sleep or a blocking read
        self.timer = threading.Timer(self.AGAIN_AFTER_S, signal.pthread_kill, (threading.main_thread().ident, signum))
        self.timer.daemon = True
        self.timer.start()

    def cancel(self) -> None:
        """Forget a signal not yet raised again (the command has ended)."""
        if self.timer is not None:
            self.timer.cancel()


def _interrupt_handled() -> None:
    """Tell CPython the KeyboardInterrupt it saw leave an exec() or eval() of a string was handled. It marks one that
    leaves such code as unhandled, even when a caller catches it (pythonrun.c, run_eval_code_obj), and under `python -m`
    the interpreter then ends itself by SIGINT after our exit(130) (Py_RunMain): a Ctrl-C during mediapipe's per-frame
    namedtuple, or during scipy's `exec("from numpy import *")` at `track`'s first frame, printed 'interrupted (Ctrl-C)'
    and ended with returncode -2 (CI of c6a7bcc, 2 of ~6 runs under load). Running a string resets that mark first."""
    exec("pass", {})


def _signal_behind(e: SystemError) -> BaseException | None:
    """The _Terminated or KeyboardInterrupt a chain of SystemErrors wraps (each the next one's __cause__ or
    __context__: "... returned a result with an exception set"), or None when the chain ends in anything else."""
    seen: set[int] = set()
    exc: BaseException | None = e
    while isinstance(exc, SystemError) and id(exc) not in seen:
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return exc if isinstance(exc, (_Terminated, KeyboardInterrupt)) else None


def _reader_left() -> int:
    """The end of a command whose stdout's reader left: silent, status 128 + SIGPIPE (141), as a shell tool that
    SIGPIPE ends (Python ignores SIGPIPE, so a write raises BrokenPipeError instead). stdout is pointed at /dev/null
    first: Python's own flush of it at exit would raise again ('Exception ignored ... BrokenPipeError')."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + signal.SIGPIPE


def _ended_by_signal(command: str, e: BaseException) -> int:
    """The line and exit status of a command ended by Ctrl-C (KeyboardInterrupt: 130; it said nothing before) or a
    SIGTERM (_Terminated: 143)."""
    if isinstance(e, _Terminated):
        print(f"gaussian-head {command}: terminated (SIGTERM)", file=sys.stderr)
        return 128 + signal.SIGTERM
    _interrupt_handled()
    print(f"gaussian-head {command}: interrupted (Ctrl-C)", file=sys.stderr)
    return 130


class _Ending:
    """The end of the `gaussian-head` process once its command has returned (program). What is left then is Python's
    and the native libraries' teardown (torch, MediaPipe, numba: 0.5 s at rest, 0.7-4.3 s at load 18-36 after
    `reconstruct`, cli63), in which a Ctrl-C ended the process by SIGINT (status -2, no line; user64: Python undoes
    its signal handlers before the native teardown), and one landing in an atexit function would be printed by
    Python as 'Exception ignored in atexit callback' with its traceback. Once `begin` is called a Ctrl-C or SIGTERM
    ends the process at once with 130 / 143 and a line saying its work was done; `now`, run as the last atexit
    function, ends it with the command's status without the native teardown (every file the command wrote is closed
    by then; the standard streams and logging are flushed first)."""

    def __init__(self):
        self.status: int | None = None
        self.command = ""

    def begin(self, status: int, command: str) -> None:
        self.status, self.command = status, command
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._signalled)
            signal.signal(signal.SIGTERM, self._signalled)

    def _signalled(self, signum, frame) -> None:
        how = "interrupted (Ctrl-C)" if signum == signal.SIGINT else "terminated (SIGTERM)"
        _flushed(f"gaussian-head {self.command}: {how} while exiting; its work was done\n".replace(" :", ":"))
        os._exit(128 + signum)

    def now(self) -> None:
        if self.status is None:  # main() did not return (a traceback): Python's own ending
            return
        logging.shutdown()
        _flushed()
        os._exit(self.status)


def _flushed(line: str = "") -> None:
    """Write `line` to stderr, then flush stdout and stderr (a reader that left is no error here)."""
    for stream, text in ((sys.stderr, line), (sys.stdout, ""), (sys.stderr, "")):
        try:
            if text:
                stream.write(text)
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream
            pass


def program() -> None:
    """The `gaussian-head` executable (bin/gaussian-head, setup.py's console script, `python -m
    gaussian_head_ros.cli`): main() with the process's arguments, then the process ends with its status (see
    _Ending). Not for calling from Python: it ends the process; call main(argv) instead."""
    ending = _Ending()
    atexit.register(ending.now)  # registered before the command imports anything: run after their atexit functions
    status = main()
    ending.begin(status, next((a for a in sys.argv[1:] if a in COMMANDS), ""))
    sys.exit(status)


if __name__ == "__main__":
    program()
