"""The station's screens: a kiosk at the dock (``/``), office pages (``/office/``) and JSON
(``/api/``), served by ``station run`` (setting ``web.listen``) and ``station web``."""
