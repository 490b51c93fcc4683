"""The machinery behind each lesson: one module per lesson, named by its slug.

    lessons/00_start_here.ipynb           distlab.lessons.start_here
    lessons/01_unreliable_networks.ipynb  distlab.lessons.unreliable_networks
    lessons/02_latency.ipynb              distlab.lessons.latency
    lessons/03_data_consistency.ipynb     distlab.lessons.data_consistency
    lessons/04_fault_tolerance.ipynb      distlab.lessons.fault_tolerance
    lessons/06_circuit_breaker.ipynb      distlab.lessons.circuit_breaker
    lessons/09_cloud_native.ipynb         distlab.lessons.cloud_native
    (shared)                              distlab.lessons.plots, distlab.lessons.checks

A lesson's experiments live in its module so that its tests
(``tests/lessons/test_<slug>.py``) recompute every number the notebook states.
"""
