"""Test bed for the dock: real stand-ins (exFAT images on loop devices, simulated recorders on
ptys, the daemon under ``umockdev-wrapper``) shared by ``station demo``, the benchmarks under
``bench/`` and the tests. Not part of the station: nothing in ``station`` imports it except the
demo command."""
