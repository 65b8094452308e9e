#!/bin/sh
# station — 执法信息采集站 / body-camera ingest station (Debian package).
# The station lives in its own virtual environment under /opt/station; on an installed station
# every user of the command works on the one vault, /var/lib/station, unless STATION_HOME or
# --home says otherwise.
: "${STATION_HOME:=/var/lib/station}"
export STATION_HOME
exec /opt/station/venv/bin/station "$@"
