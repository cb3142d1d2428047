"""The deployment files parse and agree with the repository (fast, static).

The single server (deploy/jupyterhub/) is run for real by test_hub.py; the
Kubernetes files (deploy/kubernetes/) are not run anywhere, so this checks
what can be checked without a cluster: the YAML parses, the hub hook is
valid Python, the paths they copy exist, and both set-ups give students the
same role configuration.
"""

import json
import re
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
HUB = REPO / "deploy" / "jupyterhub"
K8S = REPO / "deploy" / "kubernetes"
INSTRUCTOR_ONLY = {"formgrader", "create-assignment", "course-list"}


def test_students_get_the_student_tools_only():
    page = json.loads((HUB / "etc" / "student" / "labconfig" / "page_config.json").read_text())
    assert set(page["disabledExtensions"]) == {f"@jupyter/nbgrader:{p}" for p in INSTRUCTOR_ONLY}
    server = json.loads((HUB / "etc" / "student" / "jupyter_server_config.json").read_text())
    off = server["ServerApp"]["jpserver_extensions"]
    assert off == {"nbgrader.server_extensions.formgrader": False,
                   "nbgrader.server_extensions.course_list": False}


def test_setup_script_is_valid_bash_and_uses_the_files():
    subprocess.run(["bash", "-n", str(HUB / "setup.sh")], check=True)
    script = (HUB / "setup.sh").read_text()
    for used in ("deploy/jupyterhub/etc/student", "deploy/jupyterhub/etc/everyone/overrides.json",
                 "deploy/jupyterhub/jupyterhub_config.py"):
        assert used in script and (REPO / used).exists()
    assert "autodiff_course.exchange.PrivateSubmit" in script
    _names_the_sliced_kernel_client(script)


def _names_the_sliced_kernel_client(text):
    """Students' Validate on the hub gets the kernel client that polls in slices."""
    from traitlets.utils.importstring import import_item

    from autodiff_course.edition.kernel_polling import SlicedKernelClient

    found = re.search(r'c\.AsyncKernelManager\.client_class = "([\w.]+)"', text)
    assert found and import_item(found.group(1)) is SlicedKernelClient


def test_kubernetes_values_parse_and_hook_compiles():
    values = yaml.safe_load((K8S / "values.yaml").read_text())
    hook = values["hub"]["extraConfig"]["autodiff-course"]
    compile(hook, "extraConfig", "exec")
    course = values["custom"]["autodiff"]
    uids = [course["instructor"]["uid"], *course["students"].values()]
    assert len(uids) == len(set(uids))  # nobody shares a Unix identity
    storage = values["singleuser"]["storage"]
    mount = storage["extraVolumeMounts"][0]
    assert mount["mountPath"] == "/srv/nbgrader/exchange"
    claim = storage["extraVolumes"][0]["persistentVolumeClaim"]["claimName"]
    docs = list(yaml.safe_load_all((K8S / "exchange.yaml").read_text()))
    pvc = next(d for d in docs if d["kind"] == "PersistentVolumeClaim")
    assert pvc["metadata"]["name"] == claim and pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    for role in ("student", "instructor"):
        assert f"/etc/autodiff-hub/{{role}}" in hook or f"/etc/autodiff-hub/{role}" in hook


def test_kubernetes_image_copies_existing_files():
    dockerfile = (K8S / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (\S+) ", dockerfile, flags=re.M):
        assert (REPO / source).exists(), source
    assert "/srv/nbgrader/exchange" in dockerfile
    assert "autodiff_course.exchange.PrivateSubmit" in dockerfile
    _names_the_sliced_kernel_client(dockerfile)
    assert "/etc/autodiff-hub/student" in dockerfile
