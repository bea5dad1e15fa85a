"""sim node: the PyBullet world on ROS topics, standing in for the robot's drivers.

Publishes: /clock, camera/image_raw (Image rgb8), camera/camera_info (CameraInfo: with each image, same stamp
           and frame; the robot description's camera as an ideal pinhole, sim/robot.py CameraSpec.pinhole),
           scan (LaserScan), odom (Odometry),
           joint_states (JointState), battery_state (BatteryState), motor_temperature
           (Temperature), goal_pose (PoseStamped, the scenario's goal, 1 Hz), /diagnostics; where tf2_msgs is
           importable (a robot's ROS 2; not in this project's wheels, where the log says so) also /tf (odom ->
           base_link with each odom) and /tf_static (the URDF's fixed joints, once, latched).
Subscribes (through the input guard, nodes/topics.py INPUTS["sim"]): cmd_vel (TwistStamped, or Twist as
           the guard's cmd_vel_type says, as the robot's driver takes it) — applied to the wheels at the
           next physics step; agent/bridge/output (the bridge's record of each command:
           the camera stamp it answered, for the latency figure and to tell the agent's commands from a
           foreign publisher's); base_stop (std_msgs/Bool: the base's own stop input, as a twist_mux lock or a
           motor e-stop would be: while true the wheels are held at zero whatever cmd_vel says).
Parameters: robot, scenario (YAML paths, read-only), episode_seed, realtime_factor
           (free-running mode only), gui (read-only), motor_temperature (read-only; false: no
           motor_temperature at all, as a driver without one, e.g. a Create 3's).
Injected faults (sim/faults.py, ``SimNode.faults``): what the sensors send, /clock and the stamps (a clock
           step or an invalid time), the odometry's pose, the goal, and other nodes in the process (an
           :class:`Intruder`: a teleop on cmd_vel, a babbling node on an agent topic, an e-stop storm),
           created at their onset on the executor given to :meth:`SimNode.attach` and destroyed at the
           episode's end.

When each sensor is due and the noise it adds: sim/sensors.py; the intruder nodes: nodes/intruders.py.

Two ways to run: ``hjepa-agent sim`` drives :meth:`SimNode.advance` in lockstep with the
agent (faster than real time); sim.launch.py lets a steady-clock timer advance it at
``realtime_factor`` x real time.
"""
from __future__ import annotations

import math
import time
from array import array
from dataclasses import dataclass, field

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry
from rclpy.clock import Clock, ClockType
from rclpy.qos import QoSProfile
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import BatteryState, CameraInfo, Image, JointState, LaserScan, Temperature

from hjepa_agent.config.urdf import read_urdf
from hjepa_agent.nodes.codec import Command, from_time, time_ns, to_time
from hjepa_agent.nodes.common import Diagnostics, declare
from hjepa_agent.nodes.guard import LATCHED_QOS, GuardedNode, Receipt
from hjepa_agent.nodes.intruders import IntruderNode
from hjepa_agent.nodes.tf import odom_transform, rclpy_type, tf_message
from hjepa_agent.config.paths import data_path
from hjepa_agent.sim.faults import FaultInjector
from hjepa_agent.sim.robot import RobotDescription, load_robot_description
from hjepa_agent.sim.scenario import Scenario, load_scenario
from hjepa_agent.sim.sensors import (CAMERA_EVERY, CAMERA_PHASE, TICK_S, DelayLine, camera_due, noisy_image, odom_due,
                                     odom_reading, slow_due)
from hjepa_agent.sim.world import SimWorld


@dataclass
class CmdLog:
    """What arrived on cmd_vel (sim time of arrival, v, w, header stamp ns (-1: an unstamped Twist),
    frame_id), the stamps the bridge declared as its own (agent/bridge/output) and the camera ->
    command latencies: the data the run summary is computed from. Everything but latency_ms is the
    current episode's (start_episode clears it, so a long run does not keep every command it ever
    received); latency_ms is the whole run's (8 bytes a sample)."""

    sim_t: list[float] = field(default_factory=list)
    v: list[float] = field(default_factory=list)
    w: list[float] = field(default_factory=list)
    stamp_ns: list[int] = field(default_factory=list)
    frame: list[str] = field(default_factory=list)
    declared: dict[int, set[tuple[float, float]]] = field(default_factory=dict)
    """The bridge's records: cmd_vel stamp ns -> the (v, w) it sent with that stamp."""
    origins_ns: list[int] = field(default_factory=list)
    """Camera stamps the bridge's commands answered, in arrival order."""
    latency_ms: array = field(default_factory=lambda: array("d"))

    def new_episode(self) -> None:
        """Forget the previous episode's commands (the run's latency samples stay)."""
        for xs in (self.sim_t, self.v, self.w, self.stamp_ns, self.frame, self.declared, self.origins_ns):
            xs.clear()


class SimNode(GuardedNode):
    """Publishes the simulated robot's sensors and applies cmd_vel."""

    def __init__(self, world: SimWorld | None = None, *, free_running: bool = False, **kwargs) -> None:
        super().__init__("sim", events=False, **kwargs)
        robot_path = declare(self, "robot", "", "robot description YAML")
        scenario_path = declare(self, "scenario", "", "scenario YAML (free-running mode)")
        seed = declare(self, "episode_seed", 0, "episode seed (free-running mode)", lo=0, hi=2**31 - 1)
        self.realtime_factor = declare(self, "realtime_factor", 1.0, "sim speed vs wall clock (free-running)",
                                       lo=0.1, hi=100.0)
        gui = declare(self, "gui", False, "open the PyBullet GUI")
        self.publish_temperature = declare(self, "motor_temperature", True, "publish motor_temperature (false: "
                                           "a robot whose drivers have none)")
        if world is None:
            robot = load_robot_description(robot_path or data_path("config", "robots", "diffbot.yaml"))
            world = SimWorld(robot, gui=gui)
        self.world = world
        self.robot: RobotDescription = world.robot
        self.scenario: Scenario | None = None
        self.tick = 0
        self.t_offset_s = 0.0
        self.cmd = (0.0, 0.0)
        self.log = CmdLog()
        self.camera_wall: dict[int, float] = {}
        self.last_camera_ns = -1
        self.last_cmd_origin_ns = -1
        self.base_stopped = False
        self.bridge_state: str | None = None
        """The bridge's state in its last record (agent/bridge/output: DRIVING, STOPPING, STOPPED, ESTOP)."""
        self._rng = np.random.default_rng(0)
        self.faults: FaultInjector | None = None
        """Injected faults (sim/faults.py), applied from their onset into each episode; None: none."""
        self.clock_shift_s = 0.0
        """How far /clock and the stamps are from the simulator's own time (a clock fault), s."""
        self.clock_s = 0.0
        """The last valid time published on /clock (s): where every sim-time node's clock stands."""
        self._delayed = DelayLine()   # (stamp, rgb, ranges) waiting to go out (sensor_delay)
        self._executor = None
        self.intruders: list[IntruderNode] = []
        """This episode's intruder nodes (sim/faults.Intruder), created at their onset."""
        self._goal_sent: tuple[float, float] | None = None
        self.pub_clock = self.publisher("/clock")
        self.pub_image = self.publisher("camera/image_raw")
        self.pub_camera_info = self.publisher("camera/camera_info")
        self.camera_info = camera_info(self.robot)
        self.pub_scan = self.publisher("scan")
        self.pub_odom = self.publisher("odom")
        self.pub_joints = self.publisher("joint_states")
        self.pub_battery = self.publisher("battery_state")
        self.pub_temp = self.publisher("motor_temperature") if self.publish_temperature else None
        self.publish_battery = True
        """Whether the base publishes a battery state (a driver profile may have none)."""
        self.pub_goal = self.publisher("goal_pose")
        self.pub_tf = self._publish_static_tf(world.urdf_path)
        self.subscribe("command", self.on_cmd)
        self.subscribe("bridge_output", self.on_bridge_output)
        self.subscribe("base_stop", self.on_base_stop)
        # stamped with sim time: /diagnostics carries one clock
        self.diag = Diagnostics(self, hardware_id="pybullet", stamp=lambda: to_time(self.ros_time_s))
        if free_running:
            self.start_episode(load_scenario(scenario_path or data_path("config", "scenarios", "open.yaml")), seed)
            self.create_timer(TICK_S / self.realtime_factor, self._free_tick,
                              clock=Clock(clock_type=ClockType.STEADY_TIME))

    def _publish_static_tf(self, urdf: str):
        """Where tf2_msgs is importable: publish the URDF's fixed joints on /tf_static (latched) and return
        a /tf publisher for odom -> base_link; otherwise say so in the log and return None."""
        try:
            tf_type = rclpy_type("tf2_msgs/msg/TFMessage")
        except ImportError:
            self.get_logger().info("tf2_msgs is not importable here: no /tf or /tf_static on DDS (a recording "
                                   "still has them: the recorder writes them)")
            return None
        static = self.create_publisher(tf_type, "/tf_static", LATCHED_QOS)
        static.publish(tf_message(read_urdf(urdf).static_transforms(), 0, 0, rclpy_type))
        return self.create_publisher(tf_type, "/tf", QoSProfile(depth=100))

    # -- episodes ---------------------------------------------------------------------------
    def start_episode(self, scenario: Scenario, seed: int) -> None:
        """Reset the world; sim time keeps increasing across episodes (never jumps back, whatever a clock
        fault did to /clock in the last one)."""
        self.stop_intruders()
        # A new goal writer per episode, as an operator's tool would be. The one writer of a whole run
        # stopped reaching each episode's new estimator for its first ten goals (the history depth) once
        # it had sent ~5000 samples: 20 s of lost-message waits an episode from episode 166 of a long
        # run (README, "What does not work yet": not reproduced with plain rclpy nodes).
        self.drop_publisher(self.pub_goal)
        self.pub_goal = self.publisher("goal_pose")
        if self.scenario is not None:
            self.t_offset_s = max(self.sim_time_s, self.ros_time_s, self.clock_s) + 1.0
        if self.faults is not None:   # a clock stepped back must not go below 0 (a time no clock can show)
            self.t_offset_s = max(self.t_offset_s, self.faults.clock_headroom_s())
        self.clock_shift_s = 0.0
        self.world.reset(scenario, seed)
        self.log.new_episode()
        self.scenario = self.world.layout  # this episode's layout, after the seeded jitter
        self.cmd = (0.0, 0.0)
        self.base_stopped = False
        self.bridge_state = None
        self.world.set_cmd(0.0, 0.0)
        self._rng = np.random.default_rng(seed)
        self.tick = 0
        self._delayed.clear()
        self._goal_sent = None
        if self.faults is not None:
            self.faults.reset(self.world)

    def attach(self, executor) -> None:
        """The executor intruder nodes (injected faults: other nodes in the process) are added to."""
        self._executor = executor

    def stop_intruders(self) -> None:
        """Remove and destroy this episode's intruder nodes (the episode is over)."""
        for node in self.intruders:
            if self._executor is not None:
                self._executor.remove_node(node)
            node.destroy_node()
        self.intruders = []

    def destroy_node(self) -> None:
        """Destroy the intruders too."""
        self.stop_intruders()
        super().destroy_node()

    @property
    def sim_time_s(self) -> float:
        """The simulator's own time (s): continuous, what physics and the run's judge go by."""
        return self.t_offset_s + self.world.time_s

    @property
    def goal_xy(self) -> tuple[float, float]:
        """The goal the user has set (m, odom frame): the layout's, unless a goal fault moved it."""
        if self._goal_sent is not None:
            return self._goal_sent
        return (float(self.scenario.goal.x_m), float(self.scenario.goal.y_m)) if self.scenario else (0.0, 0.0)

    @property
    def ros_time_s(self) -> float:
        """The time the simulator publishes on /clock and stamps its sensors with (s): its own time, unless a
        clock fault shifted it."""
        return self.sim_time_s + self.clock_shift_s

    # -- cmd_vel ------------------------------------------------------------------------------
    def on_cmd(self, cmd: Command, rx: Receipt) -> None:
        """Apply a command (finite: the guard refused others, as a driver would) unless the base's own
        stop input holds it, and log it."""
        v, w = cmd.v, cmd.w
        self.cmd = (v, w)
        if not self.base_stopped:
            self.world.set_cmd(v, w)
        self.log.sim_t.append(self.sim_time_s)
        self.log.v.append(v)
        self.log.w.append(w)
        self.log.stamp_ns.append(-1 if cmd.stamp_ns is None else cmd.stamp_ns)
        self.log.frame.append(cmd.frame_id)

    def on_bridge_output(self, record: tuple, rx: Receipt) -> None:
        """The bridge's record of a command it sent: its stamp is the agent's, and the camera stamp it
        answered gives the camera -> cmd_vel latency."""
        stamp_ns, v, w, origin, state = record
        self.log.declared.setdefault(stamp_ns, set()).add((v, w))
        self.bridge_state = state
        if origin is None:
            return
        self.log.origins_ns.append(origin)
        sent = self.camera_wall.pop(origin, None)
        if sent is not None:
            self.log.latency_ms.append((time.perf_counter() - sent) * 1e3)
        self.last_cmd_origin_ns = origin

    def on_base_stop(self, engaged: bool, rx: Receipt) -> None:
        """The base's own stop input: while engaged the wheels are held at zero."""
        self.base_stopped = engaged
        self.world.set_cmd(*((0.0, 0.0) if engaged else self.cmd))

    # -- stepping -----------------------------------------------------------------------------
    def _free_tick(self) -> None:
        self.advance()

    def advance(self) -> int | None:
        """Step physics by one tick and publish what is due. Returns the camera stamp (ns) if a frame went out."""
        self.step_clock()
        return self.publish_due()

    def step_clock(self) -> None:
        """Step physics by one tick and publish the new time on /clock (a clock fault: shifted, or once
        an invalid time, which every node must refuse and keep its last)."""
        self.world.step(TICK_S)
        self.tick += 1
        invalid = None
        if self.faults is not None:
            t_ep = self.world.time_s
            self.clock_shift_s = self.faults.clock_shift_s(t_ep)
            invalid = self.faults.invalid_clock_s(t_ep)
        if invalid is not None:
            sec = int(math.floor(invalid))
            self.pub_clock.publish(ClockMsg(clock=Time(sec=sec, nanosec=int(round((invalid - sec) * 1e9)))))
            return
        self.clock_s = self.ros_time_s
        self.pub_clock.publish(ClockMsg(clock=to_time(self.clock_s)))

    def publish_due(self) -> int | None:
        """Publish the sensors due at this tick (and what intruder nodes send). Returns the camera stamp (ns)
        if a frame went out."""
        stamp = to_time(self.ros_time_s)
        t_ep = self.world.time_s
        if self.faults is not None:
            self.faults.on_tick(self.world, t_ep)
            self._intrude(t_ep, stamp)
            if self._goal_target(t_ep) != self._goal_sent:   # a user who sets a new goal sends it at once
                self._publish_goal(stamp, t_ep)
        if odom_due(self.tick):
            self._publish_odom(stamp)
        if slow_due(self.tick):
            self._publish_slow(stamp)
        out = None
        if self.faults is not None and self.faults.sensors_dead(t_ep):
            self._delayed.clear()
        elif camera_due(self.tick):
            rgb = noisy_image(self.world.render_camera(), self._rng)
            if self.faults is not None:   # a frozen camera does repeat its frame bit for bit
                rgb = self.faults.image(rgb, t_ep)
            self._delayed.push(t_ep, (stamp, rgb, self.world.scan()))
        delay = 0.0 if self.faults is None else self.faults.delay_s(t_ep)
        for old_stamp, rgb, ranges in self._delayed.due(t_ep, delay):
            self._publish_scan(old_stamp, ranges)
            self._publish_image(old_stamp, rgb)
            out = time_ns(old_stamp)
        return out

    def _intrude(self, t_ep: float, stamp: Time) -> None:
        """Start the intruders whose onset has come; each publishes what is due."""
        started = {n.spec for n in self.intruders}
        for spec in self.faults.intruders():
            if t_ep >= spec.onset_s and spec not in started:
                node = IntruderNode(spec, context=self.context)
                if self._executor is not None:
                    self._executor.add_node(node)
                self.intruders.append(node)
                self.get_logger().info(f"fault {spec.kind}: node {node.get_name()} publishes on {spec.topic} "
                                       f"at {spec.rate_hz:g} Hz ({spec.payload})")
        for node in self.intruders:
            node.publish_due(t_ep, stamp)

    def _goal_target(self, t_ep: float) -> tuple[float, float] | None:
        """The goal the user publishes now (the layout's, unless a goal fault moved it)."""
        if self.scenario is None:
            return None
        goal = (float(self.scenario.goal.x_m), float(self.scenario.goal.y_m))
        if self.faults is None:
            return goal
        return self.faults.goal(t_ep, goal, self.world.pose(), self.scenario.obstacles)

    def _publish_goal(self, stamp, t_ep: float) -> None:
        target = self._goal_target(t_ep)
        if target is None:
            return
        goal = PoseStamped()
        goal.header.stamp = stamp
        goal.header.frame_id = "odom"
        goal.pose.position.x, goal.pose.position.y = target
        goal.pose.orientation.w = 1.0
        self.pub_goal.publish(goal)
        self._goal_sent = target

    def _publish_image(self, stamp, rgb: np.ndarray) -> None:
        msg = Image()
        msg.header.stamp = stamp
        msg.header.frame_id = self.robot.camera.link
        msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
        msg.encoding = "rgb8"
        msg.step = msg.width * 3
        msg.data = rgb.tobytes()
        ns = time_ns(stamp)
        self.camera_wall[ns] = time.perf_counter()
        if len(self.camera_wall) > 100:
            self.camera_wall.pop(next(iter(self.camera_wall)))
        self.last_camera_ns = ns
        self.camera_info.header = msg.header   # first: the frame's way to cmd_vel starts with the frame
        self.pub_camera_info.publish(self.camera_info)
        self.pub_image.publish(msg)

    def _publish_scan(self, stamp, ranges: np.ndarray) -> None:
        n = ranges.size
        msg = LaserScan()
        msg.header.stamp = stamp
        msg.header.frame_id = self.robot.scan.link   # beams in the laser link's frame (its mount: the URDF)
        msg.angle_min = float(self.robot.scan.angle_min_rad)
        msg.angle_increment = float(self.robot.scan.angle_increment_rad)
        msg.angle_max = msg.angle_min + msg.angle_increment * (n - 1)
        msg.scan_time = CAMERA_EVERY * TICK_S
        msg.range_min = float(self.robot.scan.range_min_m)
        msg.range_max = float(self.robot.scan.range_max_m)
        msg.ranges = [float(r) for r in ranges]
        self.pub_scan.publish(msg)

    def _publish_odom(self, stamp) -> None:
        x, y, yaw = self.world.pose()
        if self.faults is not None:   # odom_jump: the pose in the odom frame jumps, the robot does not
            dx, dy = self.faults.odom_offset(self.world.time_s, (x, y, yaw))
            x, y = x + dx, y + dy
        odo = odom_reading((x, y, yaw), self.world.twist(), self.world.lateral_speed(), self._rng)
        msg = Odometry()
        msg.header.stamp = stamp
        msg.header.frame_id = "odom"
        msg.child_frame_id = "base_link"
        msg.pose.pose.position.x, msg.pose.pose.position.y = odo.x, odo.y
        msg.pose.pose.orientation.z, msg.pose.pose.orientation.w = odo.quaternion_zw
        msg.twist.twist.linear.x, msg.twist.twist.linear.y, msg.twist.twist.angular.z = odo.v, odo.vy, odo.w
        msg.pose.covariance, msg.twist.covariance = list(odo.pose_covariance), list(odo.twist_covariance)
        self.pub_odom.publish(msg)
        if self.pub_tf is not None:
            self.pub_tf.publish(tf_message([odom_transform(msg)], stamp.sec, stamp.nanosec, rclpy_type))
        names, pos, vel, eff = self.world.joint_states()
        js = JointState()
        js.header.stamp = stamp
        js.name, js.position, js.velocity, js.effort = list(names), list(pos), list(vel), list(eff)
        self.pub_joints.publish(js)

    def _publish_slow(self, stamp) -> None:
        """Battery (unless ``publish_battery`` is off: a base without one) and motor temperature (where its
        publisher exists), the goal, /diagnostics."""
        volt, pct, current = self.world.battery()
        if self.publish_battery:
            bat = BatteryState()
            bat.header.stamp = stamp
            bat.voltage, bat.percentage, bat.current = float(volt), float(pct), float(-current)
            bat.present = True
            self.pub_battery.publish(bat)
        if self.pub_temp is not None:
            temp = Temperature()
            temp.header.stamp = stamp
            temp.header.frame_id = "motors"
            temp.temperature = float(self.world.motor_temperature_c())
            self.pub_temp.publish(temp)
        self._publish_goal(stamp, self.world.time_s)
        self.diag.publish("OK" if not self.base_stopped else "WARN", f"t={from_time(stamp):.2f} s",
                          {"battery_pct": f"{100 * pct:.1f}", "motor_temp_c": f"{self.world.motor_temperature_c():.1f}",
                           "base_stopped": str(self.base_stopped)})


def camera_info(robot: RobotDescription) -> CameraInfo:
    """sensor_msgs/CameraInfo of the robot's camera (no header yet): its size, K and P from
    CameraSpec.pinhole, no distortion ("plumb_bob", zeros), R the identity."""
    fx, fy, cx, cy = robot.camera.pinhole()
    msg = CameraInfo()
    msg.width, msg.height = robot.camera.width, robot.camera.height
    msg.distortion_model = "plumb_bob"
    msg.d = [0.0] * 5
    msg.k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


def main() -> None:
    """Entry point for sim.launch.py: the simulator, free-running at realtime_factor."""
    from hjepa_agent.nodes.common import run_node
    run_node(lambda: SimNode(free_running=True))


__all__ = ["CAMERA_EVERY", "CAMERA_PHASE", "CmdLog", "SimNode", "TICK_S", "camera_info", "main"]
