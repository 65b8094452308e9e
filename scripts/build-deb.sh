#!/usr/bin/env bash
# Build the Debian package of the station: dist/station_<version>_<arch>.deb.
#
#   bash scripts/build-deb.sh [--ref GIT-REF] [--out DIR]
#
# Steps:
#   1. the source: the checkout's tracked files as they are (default; a changed tree gets a
#      ".dirty" version suffix) or, with --ref, exactly that commit (git archive);
#   2. a virtual environment built with Debian's python3.11 at its final path's twin under a
#      staging root (pip installs the project's wheel and its dependencies from PyPI; honours
#      PIP_CACHE_DIR / PIP_FIND_LINKS), the staging prefix rewritten to /opt/station/venv in its
#      scripts, byte code compiled for the installed paths (no __pycache__ appears at run time);
#   3. /usr/bin/station (a two-line wrapper: the vault /var/lib/station by default), the systemd
#      units of systemd/ with ExecStart on /usr/bin/station, the udev rules of udev-rules/, the
#      maintainer scripts of packaging/deb/ (always this checkout's, also for --ref builds);
#   4. dpkg-deb with root ownership (no fakeroot needed).
# Version: <pyproject version>+git<commit UTC time>.<short hash>[.dirty], so that a later commit
# always sorts later; STATION_DEB_VERSION overrides it.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PKG="$REPO/packaging/deb"
PY=${STATION_DEB_PYTHON:-/usr/bin/python3.11}
PREFIX=/opt/station
REF=""
OUT="$REPO/dist"

while [ $# -gt 0 ]; do
  case "$1" in
    --ref) REF=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n "2,21p" "$0"; exit 0 ;;
    *) echo "build-deb: unknown argument $1" >&2; exit 2 ;;
  esac
done

for tool in git dpkg-deb "$PY"; do
  command -v "$tool" >/dev/null || { echo "build-deb: $tool is missing (bash scripts/setup.sh)" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/station-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
src="$work/src"
root="$work/root"
mkdir -p "$src" "$root"

# 1. the source
cd "$REPO"
if [ -n "$REF" ]; then
  commit=$(git rev-parse --verify "$REF^{commit}")
  git archive "$commit" | tar -x -C "$src"
  dirty=""
else
  commit=$(git rev-parse HEAD)
  git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
    | tar -c --null -T - | tar -x -C "$src"
  dirty=""
  [ -z "$(git status --porcelain --untracked-files=no)" ] || dirty=".dirty"
fi
pyver=$("$PY" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$src/pyproject.toml")
stamp=$(date -u -d "@$(git show -s --format=%ct "$commit")" +%Y%m%d%H%M%S)
VERSION=${STATION_DEB_VERSION:-"$pyver+git$stamp.$(git rev-parse --short=7 "$commit")$dirty"}
ARCH=$(dpkg --print-architecture)

# 2. the virtual environment
venv="$root$PREFIX/venv"
"$PY" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" wheel --no-deps -w "$work/wheels" "$src"
"${pip[@]}" install --no-compile "$work"/wheels/station-*.whl
"${pip[@]}" uninstall -y pip setuptools >/dev/null 2>&1 || true
# the staging root out of every text file (script shebangs, pyvenv.cfg, activate scripts)
grep -rlI -- "$root" "$venv" | while IFS= read -r f; do sed -i "s|$root||g" "$f"; done
"$venv/bin/python" -m compileall -q -j 0 --invalidation-mode unchecked-hash \
  -s "$root" -p / "$venv/lib" >/dev/null
rm -f "$venv"/lib/python3*/site-packages/station-*.dist-info/direct_url.json
"$venv/bin/python" -c 'import station' # the environment imports (staging paths are gone)

# 3. the command, units, rules, documents, maintainer scripts
install -D -m 0755 "$PKG/station.sh" "$root/usr/bin/station"
mkdir -p "$root/lib/systemd/system" "$root/lib/udev/rules.d"
enable=()
all=()
for unit in "$src"/systemd/*.service "$src"/systemd/*.timer; do
  [ -e "$unit" ] || continue
  name=$(basename "$unit")
  sed 's|/usr/local/bin/station|/usr/bin/station|g' "$unit" > "$root/lib/systemd/system/$name"
  chmod 0644 "$root/lib/systemd/system/$name"
  all+=("$name")
  grep -q '^\[Install\]' "$unit" && enable+=("$name")
done
for rule in "$src"/udev-rules/*.rules; do
  install -m 0644 "$rule" "$root/lib/udev/rules.d/$(basename "$rule")"
done
install -D -m 0644 "$PKG/copyright" "$root/usr/share/doc/station/copyright"
install -m 0644 "$src/README.md" "$root/usr/share/doc/station/README.md"
[ -f "$src/CHANGELOG.md" ] && install -m 0644 "$src/CHANGELOG.md" "$root/usr/share/doc/station/CHANGELOG.md"

mkdir -p "$root/DEBIAN"
for script in preinst postinst prerm postrm; do
  sed -e "s|@UNITS@|${enable[*]}|g" -e "s|@ALL_UNITS@|${all[*]}|g" "$PKG/$script" \
    > "$root/DEBIAN/$script"
  chmod 0755 "$root/DEBIAN/$script"
done
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s|@VERSION@|$VERSION|" -e "s|@ARCH@|$ARCH|" -e "s|@SIZE@|$size|" \
  "$PKG/control.in" > "$root/DEBIAN/control"

# 4. the package
mkdir -p "$OUT"
deb="$OUT/station_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zgzip --build "$root" "$deb" >/dev/null
echo "$deb"
