"""JupyterHub for one autodiff-course server (installed by setup.sh).

Real Unix users, each with their own single-user JupyterLab started by the
local process spawner; configurable-http-proxy in front. Everything this
file needs is in hub.json beside it (written by setup.sh): the install
prefix, the address, the instructor, the students and the authenticator.

Students get nbgrader's student tools only (Assignments panel, Validate);
the instructor also gets the formgrader. Which is which is set per user at
spawn time through JUPYTER_CONFIG_PATH (folders under <prefix>/etc/).
"""

import json
import os

c = get_config()  # noqa: F821  (provided by JupyterHub)

here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "hub.json")) as f:
    hub = json.load(f)
prefix = hub["prefix"]
venv = os.path.join(prefix, "venv")

c.JupyterHub.ip = hub["ip"]
c.JupyterHub.port = hub["port"]
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = hub["hub_port"]
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{hub['proxy_api_port']}"
c.JupyterHub.db_url = "sqlite:///" + os.path.join(here, "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = os.path.join(here, "jupyterhub_cookie_secret")
c.ConfigurableHTTPProxy.command = [
    os.path.join(prefix, "proxy", "node_modules", ".bin", "configurable-http-proxy")]
c.ConfigurableHTTPProxy.pid_file = os.path.join(here, "jupyterhub-proxy.pid")
if hub.get("ssl_cert"):  # production: TLS at the hub (or put a TLS proxy in front)
    c.JupyterHub.ssl_cert = hub["ssl_cert"]
    c.JupyterHub.ssl_key = hub["ssl_key"]

# Who may log in. Production: PAM (the users' Unix passwords) or an OAuth
# authenticator (e.g. oauthenticator) mapping to these Unix names. "dummy"
# (one shared password) exists for the automated test on 127.0.0.1 only.
instructor, students = hub["instructor"], hub["students"]
c.Authenticator.allowed_users = {instructor, *students}
if hub["auth"] == "dummy":
    c.JupyterHub.authenticator_class = "dummy"
    c.DummyAuthenticator.password = hub["dummy_password"]
else:
    c.JupyterHub.authenticator_class = "pam"

# Each user's server runs as that Unix user, from the shared environment.
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [os.path.join(venv, "bin", "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.notebook_dir = "~"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 90
c.Spawner.environment = {"PATH": os.pathsep.join(
    [os.path.join(venv, "bin"), "/usr/local/bin", "/usr/bin", "/bin"])}


def _role_config(spawner):
    """The instructor's or the students' Jupyter configuration folder."""
    role = "instructor" if spawner.user.name == instructor else "student"
    spawner.environment["JUPYTER_CONFIG_PATH"] = os.path.join(prefix, "etc", role)


c.Spawner.pre_spawn_hook = _role_config
