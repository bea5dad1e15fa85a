"""ROS-free PyBullet simulation: world, robot from URDF + description, scenarios, sensors."""
