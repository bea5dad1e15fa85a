"""ROS-free core logic. Nothing here imports rclpy, *_msgs or torch (a test enforces it)."""
