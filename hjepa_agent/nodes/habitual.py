"""habitual node: world state -> proposed velocity (Mode-1, one ONNX call per state).

Subscribes (through the input guard, nodes/topics.py INPUTS["habitual"]): agent/world_state/early (JointState:
            the estimator's world state before its ambiguity is computed; the policy does not read it).
Publishes:  agent/habitual/cmd (geometry_msgs/TwistStamped, header.stamp = origin camera stamp), /diagnostics.
Parameters: models_dir, use_cuda, ego_model, robot (the manifest's robot fingerprint must be this robot
            description's with this ego model: nodes/common.py declare_robot), latent_source (all
            read-only). latent_source: the encoder whose latent the policy reads ("encoder" or
            "world_encoder"); it must equal
            perception's encoder_model and the latent the policy was trained on (the manifest's
            models.habitual.trained.data.latent_source), else the node refuses to start.
"""
from __future__ import annotations

from hjepa_agent.core.habitual import HabitualPolicy
from hjepa_agent.core.models import load_habitual
from hjepa_agent.core.types import WorldState
from hjepa_agent.nodes.codec import proposal_to_msg
from hjepa_agent.nodes.common import Diagnostics, declare, declare_ego_model, declare_robot, run_node
from hjepa_agent.nodes.guard import GuardedNode, Receipt
from hjepa_agent.config.paths import models_dir as models_path


class HabitualNode(GuardedNode):
    """Thin wrapper around core.habitual.HabitualPolicy."""

    def __init__(self, **kwargs) -> None:
        super().__init__("habitual", **kwargs)
        models_dir = str(models_path(declare(self, "models_dir", "", "directory with manifest.yaml and ONNX "
                                                         "models (relative: from here, else the package's)")))
        use_cuda = declare(self, "use_cuda", True, "use CUDA when it truly works")
        latent_source = declare(self, "latent_source", "encoder",
                                "latent the policy reads: 'encoder' or 'world_encoder' (= perception's encoder_model)")
        ego = declare_ego_model(self)
        model, action_scale, speed_norm = load_habitual(models_dir, prefer_cuda=use_cuda, latent_source=latent_source,
                                                        expected=declare_robot(self, ego))
        self.core = HabitualPolicy(model, action_scale, speed_norm)
        self.count = 0
        self.pub = self.publisher("agent/habitual/cmd")
        self.subscribe("world_state", self.on_world_state)
        self.diag = Diagnostics(self)
        self.create_timer(1.0, self.report)

    def on_world_state(self, ws: WorldState, rx: Receipt) -> None:
        """Propose an action for each world state (validated by the guard)."""
        self.count += 1
        self.pub.publish(proposal_to_msg(self.core.act(ws)))

    def report(self) -> None:
        """Publish /diagnostics (the guard adds its counters)."""
        self.diag.publish("OK", f"{self.count} proposals", {"proposals": self.count})


def main() -> None:
    """Entry point: ros2 run hjepa_agent habitual."""
    run_node(HabitualNode)
