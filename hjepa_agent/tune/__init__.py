"""``hjepa-agent tune``: the watchdog's thresholds, judged on recorded runs (issue 5).

``tune replay`` (replay.py) re-runs the watchdog's core offline along a recorded run's journal
(nodes/journal.py) with given thresholds; ``tune calibrate`` (calibrate.py) sets thresholds from
nominal runs by split conformal; ``tune sweep`` (sweep.py) replays nominal and faulted runs over a
grid of thresholds and recommends a set. scoring.py holds the pure statistics (quantiles, episode
scores, the recommendation), plots.py the figures, cli.py the command line. What a replay uses is one
nodes/journal.ReplayContext, passed explicitly: no module keeps state between calls.
"""
