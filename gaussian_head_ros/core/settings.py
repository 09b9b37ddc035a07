"""Settings described once: a config dataclass field carries its default, its description and its range
or choices; node parameters (their descriptors and on-set checks), config validation and the test of
config/avatar.yaml and the launch arguments all read them from there.

    @dataclass
    class ExampleConfig:
        max_faces: int = setting(2, "faces considered per frame", range=(1, 8))
        min_cutoff: float = setting(2.0, "One Euro cutoff, Hz", range=(0.01, 30.0), param="filter_min_cutoff")
        tuning: float = 0.5  # not a setting: no parameter

    settings(ExampleConfig)       # {"max_faces": Setting(...), "filter_min_cutoff": Setting(...)}, by parameter name
    check_settings(ExampleConfig(max_faces=40))   # ValueError: max_faces must be within 1..8, got 40

Only fields made with `setting()` are settings; a config may have other fields (internal tuning).
A node declares a parameter per Setting (nodes/common.py: declare_settings); `param` renames the
parameter when the field's name alone would be ambiguous on the node (filter_min_cutoff).
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass, field, fields
from typing import Any

_KEY = "gaussian_head_ros.setting"


@dataclass(frozen=True)
class Setting:
    """One setting: parameter name, config field, default, description, inclusive range or choices, and whether
    it is read at start only."""

    name: str  # the node parameter's name
    field: str  # the config dataclass field it fills
    default: Any
    description: str
    range: tuple | None = None  # (lo, hi), inclusive; of each value for a list setting
    choices: tuple | None = None  # allowed values
    read_only: bool = False  # read when the node starts only: its parameter is read-only (set by -p or a params file)
    frame: bool = False  # a tf frame id (a header.frame_id): not empty, no leading '/', no whitespace

    def check(self, value) -> None:
        """Raise ValueError, naming the setting, when `value` (or a value of a list setting) is outside its range, or
        `value` is not one of its choices, and when a value of a setting with a range is no number (`gaussian-head
        reconstruct --option max_gaussians=abc` ended in a TypeError traceback from the comparison; user26, s26).
        A `frame` setting must name a tf frame: tf2 refuses frame ids that start with '/', RViz shows nothing for an
        empty one, and one with whitespace (' head') names no frame that tf or RViz has (user18, s18; s19). Each
        node checked its own frame_id (reconstruction_node only, s19); render_node's and video_source_node's took
        '' and '/face_display' (s28)."""
        if self.frame and (not isinstance(value, str) or not value or value.startswith("/")
                           or any(c.isspace() for c in value)):
            raise ValueError(f"{self.name} must name a tf frame (not empty, no leading '/', no whitespace), "
                             f"got {value!r}")
        many = hasattr(value, "__iter__") and not isinstance(value, (str, bytes))  # a list, tuple or array.array
        values = list(value) if many else [value]
        if self.range is not None and not all(isinstance(v, numbers.Real) for v in values):
            kind = "an integer" if isinstance(self.default, int) and not isinstance(self.default, bool) else "a number"
            raise ValueError(f"{self.name} must be {kind}{' each' if many else ''}, got {value!r}")
        if self.range is not None and not all(self.range[0] <= v <= self.range[1] for v in values):
            raise ValueError(f"{self.name} must be within {self.range[0]}..{self.range[1]}{' each' if many else ''}, "
                             f"got {values if many else value}")
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{self.name} must be one of {', '.join(map(str, self.choices))}, got {value!r}")

    def replace(self, **changes) -> Setting:
        """A copy with the given fields changed (dataclasses.replace)."""
        return dataclasses.replace(self, **changes)


def setting(default, description: str, *, range: tuple | None = None, choices: tuple | None = None,
            param: str | None = None, read_only: bool = False, frame: bool = False):
    """A dataclass field that is a setting (see the module docstring). Lists are copied per instance. `read_only`: a
    setting a node reads when it starts only (its description says so: 'read at start'). `frame`: its value is a tf
    frame id (Setting.check refuses an empty one, a leading '/' and whitespace)."""
    meta = {_KEY: (description, tuple(range) if range else None, tuple(choices) if choices else None, param,
                   read_only, frame)}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


def settings(cls, only: tuple[str, ...] | None = None) -> dict[str, Setting]:
    """{parameter name: Setting} of the dataclass `cls` (only the fields named in `only`, when given)."""
    out = {}
    for f in fields(cls):
        if _KEY not in f.metadata or (only is not None and f.name not in only):
            continue
        description, rng, choices, param, read_only, frame = f.metadata[_KEY]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        s = Setting(param or f.name, f.name, default, description, rng, choices, read_only, frame)
        out[s.name] = s
    return out


def check_settings(config) -> None:
    """Raise ValueError when a field of the dataclass instance `config` is outside its setting's range."""
    for s in settings(type(config)).values():
        s.check(getattr(config, s.field))


def unknown_names(what: str, unknown, known) -> str:
    """The error for names given that `what` (e.g. 'mesh_fit options') does not take: each with the known name it
    is closest to in spelling (difflib, as the nodes' unknown parameters are said: nodes/common.py), then all the
    known names. `reconstruct --option max_gausians=40000` listed 120 names to search for the one meant."""
    import difflib

    known = sorted(known)
    said = []
    for name in sorted(unknown):
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        said.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return f"unknown {what}: {', '.join(said)}; known: {', '.join(known)}"
