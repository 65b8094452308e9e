"""Supervisors' reports (R17): retention, compliance (R1, R2, R13), device health (R3, R4).

Each report is built by a pure function from rows and parameters into a ``Report`` (sections of
rows plus optional charts), then rendered as a text table, CSV, JSON or one self-contained HTML
page (``station.reports.render``)."""
