"""Training datasets: one on-disk format (format.py) written from a robot's or the simulator's
recordings (bags.py, ``hjepa-agent dataset build``) and from the simulator's expert roll-outs
(collect.py, ``hjepa-agent dataset collect``), read by every trainer (docs/datasets.md)."""
