#!/usr/bin/env bash
# Set up autodiff-course on one Debian server with JupyterHub: run as root
# from a clone of the instructor's (private) repository:
#
#   sudo HUB_INSTRUCTOR=teacher HUB_STUDENTS="alice bob" deploy/jupyterhub/setup.sh
#
# Safe to re-run (adds new students, updates the environment and configs).
# Settings (environment variables, defaults in brackets):
#   HUB_PREFIX      where everything goes                [/opt/autodiff-hub]
#   HUB_EXCHANGE    nbgrader's exchange folder           [/srv/nbgrader/exchange]
#   HUB_INSTRUCTOR  the instructor's Unix user           [instructor]
#   HUB_STUDENTS    students' Unix users, space-separated (created if missing)
#   HUB_RELEASE     assignments built and released now   [01_derivatives]
#   HUB_IP, HUB_PORT  where the hub listens              [all interfaces, 8000]
#   HUB_HUB_PORT, HUB_PROXY_API_PORT  internal ports on 127.0.0.1 [8081, 8001]
#   HUB_AUTH        pam (Unix passwords) | dummy (one shared password,
#                   HUB_DUMMY_PASSWORD; for tests on 127.0.0.1 only)  [pam]
#   HUB_SSL_CERT, HUB_SSL_KEY  serve HTTPS with this certificate
#   HUB_APT=0       do not apt-get install missing system packages
#   HUB_SYSTEMD=0   do not install and start the systemd service
set -euo pipefail
umask 022

REPO="$(cd "$(dirname "$0")/../.." && pwd)"
PREFIX="${HUB_PREFIX:-/opt/autodiff-hub}"
EXCHANGE="${HUB_EXCHANGE:-/srv/nbgrader/exchange}"
INSTRUCTOR="${HUB_INSTRUCTOR:-instructor}"
STUDENTS="${HUB_STUDENTS:-}"
RELEASE="${HUB_RELEASE-01_derivatives}"
AUTH="${HUB_AUTH:-pam}"
PROXY_VERSION=5.3.0  # configurable-http-proxy, tested with JupyterHub 6.1.1
VENV="$PREFIX/venv"

say() { echo "setup: [${SECONDS}s] $*"; }
die() { echo "setup: error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (sudo): it creates users and system folders"
case "$AUTH" in
  pam) ;;
  dummy) [ -n "${HUB_DUMMY_PASSWORD:-}" ] || die "HUB_AUTH=dummy needs HUB_DUMMY_PASSWORD" ;;
  *) die "HUB_AUTH must be pam or dummy, not '$AUTH'" ;;
esac

# 1. System packages (Debian): Python >= 3.11 with venv, Node.js and npm
#    for the proxy, bubblewrap and prlimit for the grader's sandbox, the CJK
#    font of the Chinese edition.
need=()
[ -x /usr/bin/python3 ] || need+=(python3)
/usr/bin/python3 -c "import ensurepip, venv" 2>/dev/null || need+=(python3-venv)
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
command -v prlimit >/dev/null 2>&1 || need+=(util-linux)
# the Chinese edition's figures draw their text with Noto Sans CJK
[ -e /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ] || need+=(fonts-noto-cjk)
if [ ${#need[@]} -gt 0 ]; then
  [ "${HUB_APT:-1}" = 1 ] || die "missing Debian packages: ${need[*]} (apt-get install ${need[*]})"
  say "installing ${need[*]}"
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
/usr/bin/python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  die "/usr/bin/python3 is $(/usr/bin/python3 --version 2>&1); nbgrader 0.9.6 needs 3.11 or newer"

# 2. One Python environment for everybody, readable by all users: JupyterHub,
#    JupyterLab, nbgrader and the course package (engine and tools).
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  /usr/bin/python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
# The dependencies are resolved again only when pyproject.toml changed; the
# package itself is always reinstalled from this clone.
stamp="$VENV/.autodiff-requirements"
wanted="$(sha256sum "$REPO/pyproject.toml" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  say "installing the course package and JupyterHub into $VENV"
  "$VENV/bin/python" -m pip install --quiet "$REPO[course,hub]"
  echo "$wanted" > "$stamp"
else
  say "updating the course package in $VENV"
  "$VENV/bin/python" -m pip install --quiet --no-deps --force-reinstall "$REPO"
fi
chmod -R a+rX "$VENV"

# 3. The proxy (npm).
if [ ! -x "$PREFIX/proxy/node_modules/.bin/configurable-http-proxy" ]; then
  say "installing configurable-http-proxy $PROXY_VERSION"
  mkdir -p "$PREFIX/proxy"
  npm install --prefix "$PREFIX/proxy" --no-audit --no-fund --loglevel=error \
    "configurable-http-proxy@$PROXY_VERSION" >/dev/null
fi
chmod -R a+rX "$PREFIX/proxy"

# 4. Unix users: home folders private to their owner (0700).
for user in "$INSTRUCTOR" $STUDENTS; do
  if ! id -u "$user" >/dev/null 2>&1; then
    say "creating user $user"
    useradd --create-home --shell /bin/bash "$user"
  fi
  chmod 0700 "$(getent passwd "$user" | cut -d: -f6)"
done
IHOME="$(getent passwd "$INSTRUCTOR" | cut -d: -f6)"
COURSE="$IHOME/autodiff-course"

# 5. The exchange: everyone may create in it (nbgrader wants mode 777; the
#    sticky bit stops users removing each other's folders).
mkdir -p "$EXCHANGE"
chmod 1777 "$EXCHANGE"

# 6. Jupyter configuration.
#    Everyone (the environment's own config folder): the course, the
#    exchange, private submissions.
mkdir -p "$VENV/etc/jupyter"
cat > "$VENV/etc/jupyter/nbgrader_config.py" <<EOF
# written by deploy/jupyterhub/setup.sh
c = get_config()
c.CourseDirectory.course_id = "autodiff-course"
c.Exchange.root = "$EXCHANGE"
# a submission is readable by its author and the instructor only
c.ExchangeFactory.submit = "autodiff_course.exchange.PrivateSubmit"
# Validate's kernel polls in slices (a lost wake-up held a widget cell 60 s)
c.AsyncKernelManager.client_class = "autodiff_course.edition.kernel_polling.SlicedKernelClient"
EOF
#    Everyone: no "Jupyter news" pop-up on a course server.
mkdir -p "$VENV/share/jupyter/lab/settings"
cp "$REPO/deploy/jupyterhub/etc/everyone/overrides.json" "$VENV/share/jupyter/lab/settings/"
#    Students (JUPYTER_CONFIG_PATH=<prefix>/etc/student, set by the hub): the
#    Assignments panel and Validate; no formgrader, no assignment creation,
#    no course list (front end and server).
rm -rf "$PREFIX/etc/student"
mkdir -p "$PREFIX/etc" "$PREFIX/etc/instructor"
cp -r "$REPO/deploy/jupyterhub/etc/student" "$PREFIX/etc/student"
#    The instructor: everything, the formgrader on the course folder.
cat > "$PREFIX/etc/instructor/nbgrader_config.py" <<EOF
# written by deploy/jupyterhub/setup.sh
c = get_config()
c.CourseDirectory.root = "$COURSE"
EOF
chmod -R a+rX "$PREFIX/etc"

#    The hub's own folder (its config, database, cookie secret): root only.
mkdir -p "$PREFIX/hub"
chmod 0700 "$PREFIX/hub"
cp "$REPO/deploy/jupyterhub/jupyterhub_config.py" "$PREFIX/hub/jupyterhub_config.py"
HUB_JSON="$PREFIX/hub/hub.json" PREFIX="$PREFIX" INSTRUCTOR="$INSTRUCTOR" \
STUDENTS="$STUDENTS" AUTH="$AUTH" "$VENV/bin/python" - <<'EOF'
import json, os
e = os.environ
hub = {"prefix": e["PREFIX"], "ip": e.get("HUB_IP", ""), "port": int(e.get("HUB_PORT", 8000)),
       "hub_port": int(e.get("HUB_HUB_PORT", 8081)),
       "proxy_api_port": int(e.get("HUB_PROXY_API_PORT", 8001)),
       "instructor": e["INSTRUCTOR"], "students": e["STUDENTS"].split(), "auth": e["AUTH"],
       "dummy_password": e.get("HUB_DUMMY_PASSWORD", ""),
       "ssl_cert": e.get("HUB_SSL_CERT", ""), "ssl_key": e.get("HUB_SSL_KEY", "")}
fd = os.open(e["HUB_JSON"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(fd, "w") as f:
    json.dump(hub, f, indent=2)
EOF

# 7. The instructor's course folder (sources and config, from this clone),
#    then build and release, as the instructor.
if [ ! -f "$COURSE/nbgrader_config.py" ]; then
  say "copying the course to $COURSE"
  mkdir -p "$COURSE"
  cp "$REPO/course/nbgrader_config.py" "$COURSE/"
  cp -r "$REPO/course/notebooks" "$COURSE/"
  cp -r "$REPO/course/translations" "$COURSE/"  # the Chinese edition's catalogs
  chown -R "$INSTRUCTOR:" "$COURSE"
fi
chmod 0700 "$COURSE"
as_instructor() {
  runuser -u "$INSTRUCTOR" -- env -i HOME="$IHOME" USER="$INSTRUCTOR" LANG=C.UTF-8 \
    PATH="$VENV/bin:/usr/local/bin:/usr/bin:/bin" bash -c "cd '$COURSE' && $1"
}
for assignment in $RELEASE; do
  say "building and releasing $assignment as $INSTRUCTOR"
  as_instructor "autodiff-course build $assignment && nbgrader release_assignment $assignment --force"
done

# 8. The service.
if [ "${HUB_SYSTEMD:-1}" = 1 ] && [ -d /run/systemd/system ]; then
  cat > /etc/systemd/system/autodiff-hub.service <<EOF
[Unit]
Description=JupyterHub for autodiff-course
After=network.target

[Service]
User=root
WorkingDirectory=$PREFIX/hub
ExecStart=$VENV/bin/jupyterhub -f $PREFIX/hub/jupyterhub_config.py
Restart=on-failure

[Install]
WantedBy=multi-user.target
EOF
  systemctl daemon-reload
  systemctl enable --now autodiff-hub.service
  systemctl restart autodiff-hub.service
  say "JupyterHub is running (systemctl status autodiff-hub)"
else
  say "start the hub with: cd $PREFIX/hub && $VENV/bin/jupyterhub -f $PREFIX/hub/jupyterhub_config.py"
fi
