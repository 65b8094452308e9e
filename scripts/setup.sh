#!/usr/bin/env bash
# One-time set-up of a fresh machine (Debian 12, root, Python 3.11): system packages the station
# and its tests use for real (ffmpeg, ISO readers, umockdev, exFAT over FUSE, mtools, socat, fonts),
# then the project's virtual environment in .venv with the station installed in it.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  ffmpeg                      # transcode + sim volumes (ffmpeg, ffprobe)
  xorriso 7zip                # independent ISO readers, xorrecord for burning
  udftools                    # udfinfo: the UDF revision the images really carry (README claim)
  umockdev libumockdev0 gir1.2-umockdev-1.0   # synthetic udev devices/events in tests
  libgirepository1.0-dev libcairo2-dev pkg-config   # build PyGObject<3.51 for umockdev's GI API
  udev                        # udevadm test of our rules
  exfat-fuse exfatprogs fuse3 # a real recorder-like exFAT volume over FUSE on a loop device
  mtools dosfstools           # FAT images in user space
  socat                       # pty pairs for serial tests
  e2fsprogs util-linux        # loop devices, small ext4 vault for disk-full tests
  util-linux-extra            # fincore: pages of a file in the page cache (read-ahead test)
  fonts-wqy-zenhei            # CJK font for PDF labels and reports
  poppler-utils               # pdftotext/pdftoppm to check generated PDFs
  sqlite3 openssl             # tamper tests edit the catalog with the sqlite3 shell; bench baseline
  genisoimage                 # bench baseline for disc images (bench/disc_build.py)
  strace                      # races and kill -9 at chosen steps (syscall delay injection)
  chromium                    # headless browser for the web screens' end-to-end tests
  systemd                     # systemd-analyze verify/security of our units (no systemd as PID 1)
  ceph-mon ceph-mgr ceph-osd radosgw ceph-common   # a real S3 store with Object Lock (fleet tests)
  postgresql                  # a real central catalog database (fleet tests)
  faketime                    # clock tests: a station clock ahead of or behind the real one
  python3-venv dpkg-dev git   # scripts/build-deb.sh: the package's venv on Debian's python3.11
  shellcheck                  # lint of the build and maintainer scripts (they run as root)
  adduser init-system-helpers # what the package's maintainer scripts use (tests install it)
)

need_apt=0
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_apt=1
done
if [ "$need_apt" = 1 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: system packages missing and not root; run as root: apt-get install ${APT_PACKAGES[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=1200 update -qq
  apt-get -o DPkg::Lock::Timeout=1200 install -y -qq --no-install-recommends "${APT_PACKAGES[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# Re-install only when the project's dependencies changed (a stamp of pyproject.toml).
stamp=.venv/.station-setup
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! .venv/bin/python -c 'import station' 2>/dev/null; then
  if ! .venv/bin/python -m pip install -q -e '.[dev]' > .venv/setup.log 2>&1; then
    tail -30 .venv/setup.log >&2
    echo "setup: pip install failed (full log: .venv/setup.log)" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi
echo "setup: ok ($(.venv/bin/python --version), ffmpeg $(ffmpeg -version | head -1 | cut -d' ' -f3))"
