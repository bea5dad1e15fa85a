"""The harness: the embedded runner (lockstep), the judge, reports, the bring-up check, rehearsals and benchmarks."""
