#!/bin/sh
# Make sure the real services the tests use are installed: Debian's mosquitto and influxdb
# (chromium for the report rendering test and the board, victoria-metrics for the InfluxDB v2 write path,
# poppler-utils to read printed reports back). Installs them when missing and we are root.
# The tests start their own instances on free loopback ports; nothing is started here.
set -eu
missing=""
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing="$missing mosquitto"
command -v influxd >/dev/null 2>&1 || [ -x /usr/bin/influxd ] || missing="$missing influxdb"
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing="$missing chromium"
command -v victoria-metrics >/dev/null 2>&1 || [ -x /usr/bin/victoria-metrics ] || missing="$missing victoria-metrics"
# mosquitto_sub: the broker's own delivery ceiling in the drain benchmark (bench/drain.py)
command -v mosquitto_sub >/dev/null 2>&1 || missing="$missing mosquitto-clients"
command -v pdftotext >/dev/null 2>&1 || missing="$missing poppler-utils"  # reads printed reports back
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
    # Debian's packages may try to start system-wide daemons; the tests use their own.
    exit 0
fi
echo "WARNING: missing Debian packages:$missing (run as root, or: sudo apt-get install$missing)" >&2
if [ "${CI:-}" = "true" ]; then exit 1; fi
