"""Thin rclpy nodes: parameters -> config, message -> core type, core call, publish."""
