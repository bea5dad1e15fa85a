"""hjepa_agent: an H-JEPA embodied agent as ROS 2 nodes running ONNX models."""
__version__ = "0.1.0"
