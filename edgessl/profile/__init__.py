"""Measuring latency tables: what to measure (:mod:`.blocks`), how to run it (:mod:`.backends`,
the torch-free :mod:`.runners`), the resumable profile (:mod:`.measure`), calibration and
validation (:mod:`.validate`), and the device kit's bundle and import (:mod:`.bundle`). The
table itself and the predictor live in :mod:`edgessl.cost.latency`."""
