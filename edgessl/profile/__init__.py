"""Measuring latency tables: what to measure (:mod:`.blocks`), the resumable profile
(:mod:`.measure`), calibration, validation and re-calibration (:mod:`.validate`), the device
kit's bundle and import (:mod:`.bundle`), and checking or re-fitting a table on this device
(:mod:`.check`). Everything is timed with the one runtime (:mod:`edgessl.runtime`) through
``edgessl bench``'s sessions (:func:`edgessl.deploy.bench.module_session`,
:func:`edgessl.deploy.bench.prepare`); the table itself and the predictor live in
:mod:`edgessl.cost.latency`."""
