"""station: software of a body-camera ingest station (执法信息采集站).

Rules the code cites (R1…R18) are in ../shared/RULES.md.
"""

__version__ = "0.1.0"
