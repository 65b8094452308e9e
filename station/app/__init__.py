"""The station as one process: the composition root (``compose.build_daemon``) wires the
capabilities — dock sessions, archival transcoding, the inbox, integrity upkeep, the central
store, the screens — into :class:`station.app.daemon.Daemon`; ``station run`` (``cli``) starts
it. Nothing below this package imports it."""
