"""Files a person names (a photo, an avatar, a controls file, a model): how a message shows their path.

`shown(path)` is the one rule: the path as it was looked for, absolute (`~` expanded, a relative path joined to the
current directory). A node's relative parameter is taken against the directory the node was started in (`ros2
launch` starts nodes where it was run, a systemd unit in /), and a `gaussian-head` path against the shell's: a
message that repeated 'me.jpg' as given did not say where it was looked for.
"""

from __future__ import annotations

import os


def shown(path: str | os.PathLike) -> str:
    """The file `path` as messages show it: absolute, `~` expanded, not resolved through links (a relative
    'photos/me.jpg' run from /home/op is '/home/op/photos/me.jpg'). '' stays '' (nothing was given)."""
    text = os.fspath(path)
    return os.path.abspath(os.path.expanduser(text)) if text else text
