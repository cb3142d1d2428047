"""A student's session in a real browser: JupyterLab on 127.0.0.1 driven by
Playwright with Debian's Chromium (no browser download).

Opens the pilot's student notebook, runs all cells, moves the slider and
sees the plot redraw, presses Validate and reads the verdict; once with the
answers filled in (success) and once untouched (the failures are reported).
Then the Chinese edition of the same notebook with JupyterLab's Chinese
interface: it runs, and its figures are drawn with a CJK font.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from course_helpers import fill_in, solution_sources

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ASSIGNMENT, NOTEBOOK = "01_derivatives", "derivatives.ipynb"
ZH_NOTEBOOK = "derivatives.zh-CN.ipynb"
# Appended to the Chinese notebook: the fonts matplotlib resolves for one of
# the notebook's Chinese figure titles (those a PDF of the figure embeds) and
# the missing-glyph warnings drawing it raises, printed by the kernel.
FONT_PROBE = """\
import io, re, warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    probe, probe_ax = plt.subplots()
    probe_ax.set_title(TITLE)
    pdf = io.BytesIO()
    probe.savefig(pdf, format="pdf")
    plt.close(probe)
fonts = sorted({f.decode() for f in re.findall(rb"/BaseFont /(?:[A-Z]{6}\\+)?([\\w-]+)",
                                                pdf.getvalue())})
glyphs = [str(w.message) for w in caught if "Glyph" in str(w.message)]
print("title fonts:", ", ".join(fonts), "| missing glyphs:", len(glyphs))
"""
# where the fixture's JupyterLab writes its log, and what each page wrote to
# the browser's console (both quoted when a test fails)
_SERVER_LOG: list[Path] = []
_CONSOLE: dict = {}
# Run All is given this many times when JupyterLab loses the notebook's kernel
RUN_ALL_ATTEMPTS = 5
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(built_course, tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        pytest.skip("no Chromium: install Debian's chromium (apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    course, problems = built_course
    assert problems == []
    root = tmp_path_factory.mktemp("student")
    shutil.copy(course / "release" / ASSIGNMENT / NOTEBOOK, root / "untouched.ipynb")
    shutil.copy(course / "release" / ASSIGNMENT / NOTEBOOK, root / "done.ipynb")
    fill_in(root / "done.ipynb", solution_sources(course / "source" / ASSIGNMENT / NOTEBOOK))
    _chinese_notebook(course, root)
    settings = root / "settings"
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
     ).write_text('{"fetchNews": "false", "checkForUpdates": false}')
    port, token = _free_port(), secrets.token_hex(8)
    log = tmp_path_factory.mktemp("lab-log") / "jupyterlab.log"
    _SERVER_LOG[:] = [log]
    written = log.open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
         f"--port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
         "--allow-root", f"--ServerApp.root_dir={root}",
         f"--LabApp.user_settings_dir={settings}",
         f"--LabApp.workspaces_dir={root / 'workspaces'}"],
        stdout=written, stderr=subprocess.STDOUT, cwd=root)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if time.time() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail("JupyterLab did not start:\n" + log.read_text()[-3000:])
            time.sleep(0.5)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser, base, token
        browser.close()
    server.terminate()
    server.wait(timeout=20)
    written.close()


def _chinese_notebook(course, root):
    """The Chinese edition, answers filled in, with FONT_PROBE at the end on
    one of its Chinese figure titles; the files beside it (test messages)."""
    import nbformat

    release = course / "release" / ASSIGNMENT
    for extra in release.glob("messages.*.po"):
        shutil.copy(extra, root / extra.name)
    target = root / ZH_NOTEBOOK
    shutil.copy(release / ZH_NOTEBOOK, target)
    fill_in(target, solution_sources(course / "source" / ASSIGNMENT / NOTEBOOK))
    nb = nbformat.read(target, as_version=4)
    titles = [t for c in nb.cells if c.cell_type == "code"
              for t in re.findall(r'set_title\(f?"([^"{}]*[\u4e00-\u9fff][^"{}]*)"', c.source)]
    assert titles, "no Chinese figure title in the Chinese notebook"
    nb.cells.append(nbformat.v4.new_code_cell(f"TITLE = {titles[0]!r}\n" + FONT_PROBE))
    nbformat.write(nb, target)


def _open(browser, base, token, name):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    console = _CONSOLE.setdefault(page, [])
    page.on("console", lambda m: console.append(f"{time.strftime('%H:%M:%S')} {m.type}: "
                                                f"{m.text[:300]}"))
    # leaving the page (a reload) is confirmed, as a student would
    page.on("dialog", lambda d: d.accept() if d.type == "beforeunload" else d.dismiss())
    page.goto(f"{base}/lab/tree/{name}?reset&token={token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=180_000)
    # the kernel has started and answers: its status in the toolbar is idle
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                           timeout=180_000)
    return page


def _diagnose(page, what):
    """Fail with what the page shows: a screenshot, open dialogs, errors."""
    shots = Path(os.environ.get("BROWSER_SHOTS", "test-artifacts/browser"))
    shots.mkdir(parents=True, exist_ok=True)
    shot = shots / f"{what.replace(' ', '-')}.png"
    page.screenshot(path=str(shot), full_page=False)
    dialogs = [d.inner_text() for d in page.query_selector_all(".jp-Dialog-content")]
    errors = [e.inner_text()[:500] for e in page.query_selector_all(
        ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")]
    status = page.get_attribute(".jp-Notebook-ExecutionIndicator", "data-status")
    server = _SERVER_LOG[0].read_text(errors="replace")[-4000:] if _SERVER_LOG else ""
    console = "\n".join(_CONSOLE.get(page, [])[-30:])
    pytest.fail(f"{what}: kernel status {status!r}; dialogs {dialogs}; "
                f"error outputs {errors[:3]}; screenshot {shot}; "
                f"the browser's console ends:\n{console}\nJupyterLab's log ends:\n{server}")


def _asks_for_kernel(dialog):
    """Whether ``dialog`` is JupyterLab's kernel choice, in any interface
    language: it offers the kernels in a drop-down list."""
    options = dialog.eval_on_selector_all(
        "select option", "os => os.map(o => o.text.trim())")
    return "Python 3 (ipykernel)" in options


def _keep_python(page):
    """JupyterLab lost the notebook's kernel and asks which kernel to start: a
    student keeps the proposed Python 3 and, as the page still shows no
    kernel, reloads it.

    Seen on a loaded machine: as the notebook opened, JupyterLab started its
    kernel twice at once (the server's log: two kernels started 3 ms or
    0.7 s apart) and the page took up neither. Every cell then asks for a
    kernel again, and each answer starts one more that the page does not take
    up; a reload, which reads the session back from the server, ends it."""
    page.click(".jp-Dialog-button.jp-mod-accept")
    page.reload()
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=180_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                           timeout=180_000)


def _run_all(page, until, timeout=240, menu=("Run", "Run All Cells")):
    """Run All Cells from the menu (``menu``: the labels of the menu and the
    item) and wait for the selector ``until``. A Run All that did not start
    (no cell ran), or whose kernel JupyterLab lost (it asks which kernel to
    start), is given again, RUN_ALL_ATTEMPTS in all; another dialog, or a run
    that ended without ``until``, fails with what the page shows."""
    from playwright.sync_api import TimeoutError as PageTimeout

    for attempt in range(RUN_ALL_ATTEMPTS):
        dialog = page.query_selector(".jp-Dialog-content")
        if dialog and _asks_for_kernel(dialog):  # JupyterLab lost the kernel before
            _keep_python(page)
        elif dialog:
            _diagnose(page, "dialog before Run All")
        try:
            page.click(f"div.lm-MenuBar-itemLabel:text-is('{menu[0]}')", timeout=15_000)
            page.click(f"li.lm-Menu-item:has-text('{menu[1]}')", timeout=15_000)
        except PageTimeout:
            continue  # a dialog came up meanwhile: the next attempt answers it
        started, idle_since = time.time(), None
        while time.time() < started + timeout:
            found = page.query_selector(until)
            if found and found.is_visible():
                return found
            dialog = page.query_selector(".jp-Dialog-content")
            if dialog and _asks_for_kernel(dialog):
                # the new kernel has none of the earlier cells: run them all again
                _keep_python(page)
                break
            if dialog:
                _diagnose(page, "dialog during Run All")
            prompts = page.eval_on_selector_all(
                ".jp-InputPrompt", "ps => ps.map(p => p.innerText.trim())")
            ran = any(t not in ("[ ]:", "") for t in prompts)
            idle = page.query_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
            idle_since = (idle_since or time.time()) if idle else None
            if idle_since and time.time() - idle_since > 20:
                if ran:
                    _diagnose(page, f"Run All ended without {until}")
                break  # nothing ran: the command was lost, give it once more
            page.wait_for_timeout(500)
        else:
            _diagnose(page, f"no {until} {timeout} s after Run All")
    _diagnose(page, f"Run All did not finish in {RUN_ALL_ATTEMPTS} attempts")


def _validate(page):
    page.click("button:has-text('Validate'), jp-button:has-text('Validate')")
    dialog = page.wait_for_selector(".jp-Dialog-content", timeout=120_000)
    page.wait_for_function(
        "() => !document.querySelector('.jp-Dialog-content').innerText.includes('Validating')",
        timeout=120_000)
    return dialog.inner_text()


def test_student_runs_plots_slides_and_validates(lab):
    browser, base, token = lab
    page = _open(browser, base, token, "done.ipynb")
    slider = _run_all(page, until=".widget-slider")
    page.wait_for_selector(".jp-OutputArea-output img", timeout=180_000)
    images = page.locator(".jp-OutputArea-output img").count()
    assert images >= 2  # the static log-log plot and the widget's figure
    page.wait_for_function(
        "s => { const box = s.closest('.widget-interact'); "
        "return box && box.querySelector('img'); }", arg=slider, timeout=180_000)
    before = slider.evaluate("s => s.closest('.widget-interact').querySelector('img').src")
    slider.query_selector(".noUi-handle").focus()
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "([s, old]) => { const img = s.closest('.widget-interact').querySelector('img'); "
        "return img && img.src !== old; }", arg=[slider, before], timeout=90_000)
    page.screenshot(path=str(Path(os.environ.get("BROWSER_SHOTS", "/tmp")) / "lab-01.png"))
    verdict = _validate(page)
    assert "Success" in verdict and "passes all the tests" in verdict, verdict
    page.close()


def test_validate_reports_failures_on_untouched_notebook(lab):
    browser, base, token = lab
    page = _open(browser, base, token, "untouched.ipynb")
    verdict = _validate(page)
    assert "failed" in verdict.lower() or "error" in verdict.lower(), verdict
    assert "NotImplementedError" in verdict, verdict
    page.close()


def _interface_language(base, token, locale):
    """JupyterLab's display language (Settings -> Language), for every page
    opened from now on."""
    import json

    body = json.dumps({"raw": json.dumps({"locale": locale})}).encode()
    request = urllib.request.Request(
        f"{base}/lab/api/settings/@jupyterlab/translation-extension:plugin", data=body,
        method="PUT", headers={"Authorization": f"token {token}",
                               "Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=30)


def test_chinese_notebook_in_the_chinese_interface_draws_with_a_cjk_font(lab):
    """The Chinese edition with jupyterlab-language-pack-zh-CN chosen: the
    menus are Chinese, Run All runs the notebook to its end, the figures'
    Chinese titles resolve to Noto Sans CJK and nothing lacks a glyph."""
    browser, base, token = lab
    _interface_language(base, token, "zh_CN")
    try:
        page = _open(browser, base, token, ZH_NOTEBOOK)
        menus = page.locator("div.lm-MenuBar-itemLabel").all_inner_texts()
        assert "运行" in menus and "Run" not in menus, menus  # the Chinese interface
        probe = _run_all(page, until=".jp-OutputArea-output:has-text('title fonts:')",
                         menu=("运行", "运行所有单元格"))
        line = probe.inner_text()
        page.wait_for_selector(".jp-OutputArea-output img", timeout=60_000)
        page.screenshot(path=str(Path(os.environ.get("BROWSER_SHOTS", "/tmp")) /
                                 "lab-01-zh.png"))
        outputs = " ".join(page.locator(".jp-OutputArea-output").all_inner_texts())
        page.close()
    finally:
        _interface_language(base, token, "default")
    assert "NotoSansCJK" in line and "missing glyphs: 0" in line, line
    assert "Glyph" not in outputs and "findfont" not in outputs  # no warning in any cell
    assert "Traceback" not in outputs
