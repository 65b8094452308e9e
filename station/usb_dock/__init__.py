"""The dock (R1, R3, R4): hotplug (``hotplug``), slot pairing (``slots``), checks
(``checks``), read-only mounts (``mount``), dock sessions (``session``), enrolled devices and
alerts (``registry``) and the commands (``cli``). The dock on a bench for demos, benchmarks and
tests is ``station_testbed``."""
