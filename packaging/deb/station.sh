#!/bin/sh
# station — 执法信息采集站 / body-camera ingest station (Debian package).
# The station lives in its own virtual environment under /opt/station; on an installed station
# every user of the command works on the one vault, /var/lib/station, unless STATION_HOME or
# --home says otherwise. After an upgrade whose catalog migration failed (the catalog was left
# as it was), the previous version kept in /opt/station/previous runs instead, until the
# upgrade is completed (dpkg --configure station) or the previous package is reinstalled.
: "${STATION_HOME:=/var/lib/station}"
export STATION_HOME
if [ -e /opt/station/previous/ACTIVE ]; then
    echo "station: 升级未完成，运行旧版本 $(cat /opt/station/previous/VERSION 2>/dev/null) / upgrade not finished (catalog migration failed): running the previous version" >&2
    exec /opt/station/previous/bin/python -m station "$@"
fi
exec /opt/station/venv/bin/station "$@"
