"""What setup.py lets pip install is what the package runs on."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# numpy 2.0 added the array-API names that core's rules written once for numpy and torch (`xp`) call: atan2, asin,
# acos, concat (numpy 2.0 release notes, "array API compatible functions' aliases"). numpy 1.26 has arctan2,
# arcsin, arccos, concatenate only.
ARRAY_API_2 = ("atan2", "asin", "acos", "concat")


def test_the_numpy_floor_has_the_names_core_calls():
    """setup.py allowed numpy 1.26 while deform.py calls xp.atan2 / xp.asin / xp.concat on numpy arrays: a user whose
    pip kept numpy 1.26 got an AttributeError at the first driven frame (review22)."""
    floor = re.search(r'"numpy>=([0-9][0-9.]*)', (ROOT / "setup.py").read_text()).group(1)
    used = set()
    for path in (ROOT / "gaussian_head_ros").rglob("*.py"):
        used |= set(re.findall(r"\b(?:np|xp)\.(" + "|".join(ARRAY_API_2) + r")\(", path.read_text()))
    assert used, "no numpy 2.0 array-API name is called: this test guards nothing any more"
    major_minor = tuple(int(x) for x in floor.split(".")[:2])
    assert major_minor >= (2, 0), f"setup.py allows numpy {floor}, but the package calls {sorted(used)} (numpy >= 2.0)"
