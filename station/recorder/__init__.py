"""Recorder drivers behind one interface (``base``): the ZFY-LINE/1 serial protocol
(``protocol``, ``serial_driver``; docs/recorder-protocol.md), mass-storage-only recorders
(``mass_storage``) and the simulator (``simulator``, ``station sim recorder``)."""
