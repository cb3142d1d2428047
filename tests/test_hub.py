"""The multi-user course on JupyterHub, for real: deploy/jupyterhub/setup.sh
sets up a hub on 127.0.0.1 with real Unix users (an instructor, two
students), the instructor's account builds and releases 01_derivatives, and
a real Chromium drives JupyterLab: each student logs in, fetches the
assignment from the Assignments panel, fills in the answers, validates and
submits; the instructor collects, grades with ``autodiff-course grade`` and
releases feedback, which a student then sees in the panel. Scores are
exact, and the Unix permissions are checked as the students themselves.

Needs root (useradd, runuser), npm, Debian's chromium and /usr/bin/python3
>= 3.11; ``.ci/run`` provides them. The shared environment (a venv from
/usr/bin/python3 plus the proxy) is kept in /opt/autodiff-hub-test between
runs (AUTODIFF_HUB_TEST_PREFIX overrides); the users, the exchange and the
course are made fresh and removed afterwards. Screenshots of every step and
the logs are copied to test-artifacts/hub/ when the test fails.
"""

from __future__ import annotations

import csv
import fcntl
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback
import urllib.request
from pathlib import Path

import nbformat
import pytest

from course_helpers import REPO

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.hub]

PREFIX = Path(os.environ.get("AUTODIFF_HUB_TEST_PREFIX", "/opt/autodiff-hub-test"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
ASSIGNMENT, NOTEBOOK = "01_derivatives", "derivatives.ipynb"
WAIT = 180_000  # ms: generous on a loaded 2-core machine
BOB_MISTAKE = ("def central_difference(f, x, eps):\n"
               "    return (f(x + eps) - f(x - eps)) / eps\n")


def _why_not():
    if os.geteuid() != 0:
        return "needs root (creates Unix users)"
    for tool in ("useradd", "userdel", "runuser", "npm", "bwrap"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    if not os.path.exists(CHROMIUM):
        return "needs Debian's chromium"
    try:
        subprocess.run(["/usr/bin/python3", "-c",
                        "import sys, venv; sys.exit(sys.version_info < (3, 11))"], check=True)
    except (OSError, subprocess.CalledProcessError):
        return "needs /usr/bin/python3 >= 3.11 with venv"
    return None


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Hub:
    """The set-up: users, paths, the running hub, logs and screenshots."""

    def __init__(self, work):
        tag = secrets.token_hex(2)
        self.instructor, self.alice, self.bob = (f"adh{tag}-{r}" for r in ("teach", "alice", "bob"))
        self.users = [self.instructor, self.alice, self.bob]
        self.password = secrets.token_urlsafe(12)
        self.exchange = PREFIX / f"exchange-{tag}"
        self.port, self.hub_port, self.api_port = _free_ports(3)
        self.base = f"http://127.0.0.1:{self.port}"
        self.work = work
        self.shots = work / "screenshots"
        self.shots.mkdir()
        self.process = None
        self.times = {}
        self.page = None  # the page in use, photographed if the test fails

    def home(self, user):
        return Path(pwd.getpwnam(user).pw_dir)

    @property
    def course(self):
        return self.home(self.instructor) / "autodiff-course"

    def setup(self):
        env = {**os.environ, "HUB_PREFIX": str(PREFIX), "HUB_EXCHANGE": str(self.exchange),
               "HUB_INSTRUCTOR": self.instructor, "HUB_STUDENTS": f"{self.alice} {self.bob}",
               "HUB_AUTH": "dummy", "HUB_DUMMY_PASSWORD": self.password,
               "HUB_IP": "127.0.0.1", "HUB_PORT": str(self.port),
               "HUB_HUB_PORT": str(self.hub_port), "HUB_PROXY_API_PORT": str(self.api_port),
               "HUB_APT": "0", "HUB_SYSTEMD": "0"}
        with open(self.work / "setup.log", "w") as log:
            proc = subprocess.run(["bash", str(REPO / "deploy" / "jupyterhub" / "setup.sh")],
                                  env=env, stdout=log, stderr=subprocess.STDOUT)
        assert proc.returncode == 0, (self.work / "setup.log").read_text()[-4000:]

    def start(self):
        hub_dir = PREFIX / "hub"
        (hub_dir / "jupyterhub.sqlite").unlink(missing_ok=True)  # users of earlier runs
        self.log = open(self.work / "hub.log", "w")
        self.process = subprocess.Popen(
            [str(PREFIX / "venv" / "bin" / "jupyterhub"), "-f", str(hub_dir / "jupyterhub_config.py")],
            cwd=hub_dir, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(f"{self.base}/hub/login", timeout=2)
                return
            except OSError:
                if time.time() > deadline or self.process.poll() is not None:
                    raise AssertionError("the hub did not start:\n"
                                         + (self.work / "hub.log").read_text()[-4000:])
                time.sleep(0.5)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # the hub stops the users' servers
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.process:
            self.log.close()

    def remove(self):
        for user in self.users:
            try:
                uid = pwd.getpwnam(user).pw_uid
            except KeyError:
                continue
            # anything of these test users still running (started by this test)
            pids = subprocess.run(["ps", "-o", "pid=", "-u", str(uid)], capture_output=True,
                                  text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            subprocess.run(["userdel", "--remove", user], capture_output=True)
        shutil.rmtree(self.exchange, ignore_errors=True)

    def as_user(self, user, command, check=True):
        """A shell command run as a Unix user, with the shared environment on PATH."""
        home = self.home(user)
        proc = subprocess.run(
            ["runuser", "-u", user, "--", "env", "-i", f"HOME={home}", f"USER={user}",
             "LANG=C.UTF-8", f"PATH={PREFIX / 'venv' / 'bin'}:/usr/local/bin:/usr/bin:/bin",
             "bash", "-c", command], cwd="/", capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise AssertionError(f"as {user}: {command} failed ({proc.returncode}):\n"
                                 f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return proc

    def shot(self, page, name):
        self.page = page
        page.screenshot(path=str(self.shots / f"{len(list(self.shots.iterdir())):02d}-{name}.png"))


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    why = _why_not()
    if why:
        pytest.skip(f"the JupyterHub test {why}")
    pytest.importorskip("playwright.sync_api")
    work = tmp_path_factory.mktemp("hub")
    PREFIX.mkdir(parents=True, exist_ok=True)
    lock = open(PREFIX / ".test-lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)  # one run at a time shares the prefix
    _remove_stale_users()
    hub = Hub(work)
    try:
        start = time.time()
        hub.setup()
        hub.times["setup"] = time.time() - start
        start = time.time()
        hub.start()
        hub.times["hub start"] = time.time() - start
        yield hub
    finally:
        hub.stop()
        hub.remove()
        lock.close()


def _remove_stale_users():
    """Users an interrupted earlier run of this test left behind (none running)."""
    for entry in pwd.getpwall():
        if re.fullmatch(r"adh[0-9a-f]{4}-(teach|alice|bob)", entry.pw_name):
            running = subprocess.run(["ps", "-o", "pid=", "-u", str(entry.pw_uid)],
                                     capture_output=True, text=True).stdout.split()
            if not running:
                subprocess.run(["userdel", "--remove", entry.pw_name], capture_output=True)


def _answers(course):
    """grade_id -> solution of each code answer cell, in notebook order."""
    nb = nbformat.read(course / "source" / ASSIGNMENT / NOTEBOOK, as_version=4)
    return {c.metadata.nbgrader["grade_id"]: c.source for c in nb.cells
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")}


def _login(browser, hub, user):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    hub.page = page
    page.goto(f"{hub.base}/hub/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", hub.password)
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_selector(".jp-LabShell", timeout=WAIT)
    page.wait_for_selector("div.lm-MenuBar-itemLabel:text-is('Nbgrader')", timeout=WAIT)
    return page


def _assignments_panel(page):
    page.click("div.lm-MenuBar-itemLabel:text-is('Nbgrader')")
    page.click("li.lm-Menu-item:has-text('Assignment List')")
    page.wait_for_selector("#released_assignments_list", timeout=WAIT)
    page.wait_for_selector("#released_assignments_list_loading", state="hidden", timeout=WAIT)


def _fill_in(page, answers):
    """Type each answer into the next answer cell still holding its stub."""
    stub = ".jp-CodeCell:has(.cm-content:has-text('raise NotImplementedError()'))"
    for code in answers:
        page.locator(stub).first.locator(".cm-content").click()
        page.keyboard.press("Control+A")
        page.keyboard.insert_text(code)
    assert page.locator(stub).count() == 0
    page.keyboard.press("Control+S")
    page.wait_for_selector(".jp-Notebook .jp-mod-dirty, .jp-mod-dirty", state="detached",
                           timeout=WAIT)


def _validate(page):
    page.click(".jp-NotebookPanel-toolbar :is(button, jp-button):has-text('Validate')")
    dialog = page.wait_for_selector(".jp-Dialog-content", timeout=WAIT)
    page.wait_for_function(
        "() => !document.querySelector('.jp-Dialog-content').innerText.includes('Validating')",
        timeout=WAIT)
    return dialog.inner_text()


def _student_works(browser, hub, user, answers):
    """Log in, fetch from the panel, fill in, validate, submit: the verdict."""
    page = _login(browser, hub, user)
    hub.shot(page, f"{user}-logged-in")
    _assignments_panel(page)
    hub.shot(page, f"{user}-assignments")
    page.click("#released_assignments_list button:has-text('Fetch')")
    fetched = page.wait_for_selector("#fetched_assignments_list .list_item", timeout=WAIT)
    page.click("#fetched_assignments_list a.assignment-notebooks-link")
    page.click("#fetched_assignments_list .nested_list_item a:text-is('derivatives')")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=WAIT)
    page.wait_for_selector(".jp-NotebookPanel-toolbar :is(button, jp-button):has-text('Validate')",
                           timeout=WAIT)
    hub.shot(page, f"{user}-opened")
    _fill_in(page, answers)
    hub.shot(page, f"{user}-filled-in")
    verdict = _validate(page)
    hub.shot(page, f"{user}-validated")
    page.click(".jp-Dialog-footer button, .jp-Dialog-footer jp-button")
    page.click(".lm-TabBar-tab:has-text('Assignments')")
    assert fetched.is_visible()
    page.click("#fetched_assignments_list button:has-text('Submit')")
    page.wait_for_selector("#submitted_assignments_list .nested_list_item", timeout=WAIT)
    hub.shot(page, f"{user}-submitted")
    # a student has the student tools only: no formgrader in the page or the server
    config = page.evaluate(
        "JSON.parse(document.getElementById('jupyter-config-data').textContent)")
    disabled = config["disabledExtensions"]
    assert "@jupyter/nbgrader:formgrader" in disabled
    assert "@jupyter/nbgrader:assignment-list" not in disabled
    assert "@jupyter/nbgrader:validate-assignment" not in disabled
    assert page.request.get(f"{hub.base}/user/{user}/formgrader").status == 404
    page.context.close()
    return verdict


def _scores(hub):
    export = hub.course / "hub-grades.csv"
    hub.as_user(hub.instructor, f"cd {hub.course} && nbgrader export --to {export}")
    with open(export, newline="") as f:
        return {r["student_id"]: float(r["score"]) for r in csv.DictReader(f)
                if r["assignment"] == ASSIGNMENT}


def test_course_on_jupyterhub(hub):
    from playwright.sync_api import sync_playwright

    started = time.time()
    try:
        _the_course(hub, sync_playwright)
    except BaseException:
        artifacts = Path(os.environ.get("HUB_ARTIFACTS", Path.cwd() / "test-artifacts" / "hub"))
        shutil.rmtree(artifacts, ignore_errors=True)
        shutil.copytree(hub.work, artifacts)
        sys.stderr.write(f"screenshots and logs kept in {artifacts}\n{traceback.format_exc()}")
        raise
    hub.times["course"] = time.time() - started
    print("hub test timings (s):", {k: round(v, 1) for k, v in hub.times.items()})


def _the_course(hub, sync_playwright):
    course, exchange = hub.course, hub.exchange / "autodiff-course"
    # the instructor built and released 01 from their own account
    assert (exchange / "outbound" / ASSIGNMENT / NOTEBOOK).exists()
    assert (course / "release" / ASSIGNMENT / NOTEBOOK).stat().st_uid == pwd.getpwnam(
        hub.instructor).pw_uid
    answers = _answers(course)
    points = {c.metadata.nbgrader["grade_id"]: c.metadata.nbgrader["points"]
              for c in nbformat.read(course / "source" / ASSIGNMENT / NOTEBOOK, as_version=4).cells
              if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")}
    full = sum(points.values())
    bob_answers = {**answers, "central_difference": BOB_MISTAKE}

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            start = time.time()
            verdict = _student_works(browser, hub, hub.alice, answers.values())
            # every test passes; what Validate lists are only the written
            # answers, which are graded by hand
            failed = verdict.count("The following cell failed")
            assert failed == verdict.count("You did not provide a response"), verdict
            assert "Error" not in verdict and "Traceback" not in verdict, verdict
            verdict = _student_works(browser, hub, hub.bob, bob_answers.values())
            assert "failed" in verdict.lower(), verdict
            assert "test_central_difference" in verdict or "central_difference" in verdict
            hub.times["two students in the browser"] = time.time() - start

            # the instructor has the formgrader, on the course
            page = _login(browser, hub, hub.instructor)
            listing = page.request.get(
                f"{hub.base}/user/{hub.instructor}/formgrader/api/assignments")
            assert listing.status == 200, listing.text()
            assert ASSIGNMENT in listing.text()
            page.click("div.lm-MenuBar-itemLabel:text-is('Nbgrader')")
            assert page.locator("li.lm-Menu-item:has-text('Formgrader')").count() >= 1
            hub.shot(page, "instructor-menu")
            page.context.close()

            # collect, grade, feedback: the instructor's commands, as the instructor
            start = time.time()
            hub.as_user(hub.instructor, f"cd {course} && nbgrader collect {ASSIGNMENT}")
            graded = hub.as_user(hub.instructor, f"cd {course} && autodiff-course grade {ASSIGNMENT}")
            assert "graded 2 submission(s)" in graded.stdout, graded.stdout + graded.stderr
            hub.as_user(hub.instructor, f"cd {course} && nbgrader generate_feedback {ASSIGNMENT}"
                        f" && nbgrader release_feedback {ASSIGNMENT}")
            hub.times["collect, grade, feedback"] = time.time() - start
            assert _scores(hub) == {hub.alice: full, hub.bob: full - points["test_central_difference"]}

            # bob sees the feedback in the panel
            page = _login(browser, hub, hub.bob)
            _assignments_panel(page)
            page.wait_for_selector(
                "#submitted_assignments_list :text('feedback available to fetch')", timeout=WAIT)
            page.click("#submitted_assignments_list button:has-text('Fetch Feedback')")
            page.wait_for_selector("#submitted_assignments_list :text('(view feedback)')",
                                   timeout=WAIT)
            hub.shot(page, "bob-feedback")
            page.context.close()
        except BaseException:
            if hub.page is not None and not hub.page.is_closed():
                hub.shot(hub.page, "at-failure")
            raise
        finally:
            browser.close()
    feedback = list((hub.home(hub.bob) / ASSIGNMENT / "feedback").glob(f"*/{NOTEBOOK[:-6]}.html"))
    assert len(feedback) == 1
    assert "off by a factor of 2" in feedback[0].read_text()

    # Unix permissions, checked as the students themselves
    inbound = exchange / "inbound"
    submissions = {s.name.split("+")[0]: s for s in inbound.iterdir()}
    assert set(submissions) == {hub.alice, hub.bob}
    bob_copy = submissions[hub.bob] / NOTEBOOK
    alice_copy = submissions[hub.alice] / NOTEBOOK
    q = shlex.quote  # submission folders have spaces in their names
    hub.as_user(hub.alice, f"cat {q(str(alice_copy))} > /dev/null")  # her own: readable
    hub.as_user(hub.instructor, f"cat {q(str(bob_copy))} > /dev/null")  # the instructor's group
    forbidden = [("cat", bob_copy), ("ls", inbound), ("ls", submissions[hub.bob]),
                 ("ls", course), ("cat", course / "source" / ASSIGNMENT / NOTEBOOK),
                 ("cat", course / "gradebook.db"),
                 ("cat", course / "submitted" / hub.bob / ASSIGNMENT / NOTEBOOK),
                 ("cat", hub.home(hub.bob) / ASSIGNMENT / NOTEBOOK)]
    for tool, path in forbidden:
        assert path.exists(), path  # as root: it is there
        command = f"{tool} {q(str(path))}"
        proc = hub.as_user(hub.alice, command + " > /dev/null", check=False)
        assert proc.returncode != 0 and "Permission denied" in proc.stderr, (command, proc)
