"""ament_python package setup: console scripts per node, data under share/hjepa_agent."""
import os
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "hjepa_agent"
NODES = ["perception", "estimator", "habitual", "planner", "watchdog", "bridge", "sim", "recorder"]
ONNX_RUNTIME = ['onnxruntime-gpu; platform_machine == "x86_64" and sys_platform == "linux"',
                'onnxruntime; platform_machine != "x86_64" or sys_platform != "linux"']
"""The GPU build where it has wheels, the CPU build elsewhere (aarch64 robots: it has no wheels there)."""

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
        (f"share/{PACKAGE}/config/scenarios", glob("config/scenarios/*.yaml")),
        (f"share/{PACKAGE}/config/robots", glob("config/robots/*.yaml")),
        (f"share/{PACKAGE}/config/profiles", glob("config/profiles/*.yaml")),
        (f"share/{PACKAGE}/urdf", glob("urdf/*")),
        (f"share/{PACKAGE}/models", [f for f in glob("models/*") if os.path.isfile(f)]),
        (f"share/{PACKAGE}/models/skidrover", glob("models/skidrover/*")),
    ],
    install_requires=["setuptools", "numpy", "pyyaml", "opencv-python-headless<5", "pybullet", "tqdm",
                      "matplotlib", "rosbags", *ONNX_RUNTIME],
    zip_safe=True,
    maintainer="hjepa_agent developers",
    maintainer_email="dev@hjepa-agent.invalid",
    description="H-JEPA embodied agent runtime as ROS 2 nodes running ONNX models",
    license="Apache-2.0",
    extras_require={"test": ["pytest", "hypothesis"]},
    entry_points={
        "console_scripts": [f"{n} = {PACKAGE}.nodes.{n}:main" for n in NODES]
        + ["hjepa-agent = hjepa_agent.cli:main"],
    },
)
