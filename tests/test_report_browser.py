"""The report in a real browser: headless Chromium (Debian's `chromium`) runs the page's JS
offline, plotly draws its SVGs, and the sample filters driven through the URL hash hide the
right rows. The screenshot is left in the test's tmp dir (printed; `pytest -s` shows the path)."""

import re
import shutil
import subprocess

import pytest

from assay.report import build
from tests.report_fixture import make_run

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(CHROMIUM is None, reason="chromium not on PATH: `apt-get install -y chromium` "
                                                          "(.ci/run installs it before `make test`)")]


def _chromium(tmp_path, *args: str) -> str:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
             "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=20000"]
    done = subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _visible(dom: str) -> list[str]:
    """The data-status of every sample block that the page's JS left visible."""
    blocks = re.findall(r'<details class="sample"[^>]*>', dom)
    return [re.search(r'data-status="([^"]*)"', b).group(1) for b in blocks if " hidden" not in b]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    build(root / "report.html", make_run(root))
    return root, (root / "report.html").as_uri()


def test_plots_render_offline(page):
    root, url = page
    dom = _chromium(root, "--dump-dom", url)
    drawn = set(re.findall(r'<div id="(fig-[a-z]+)" class="[^"]*js-plotly-plot', dom))
    assert {"fig-funnel", "fig-reasons", "fig-judges", "fig-agreement", "fig-revision", "fig-kinds"} <= drawn, drawn
    assert dom.count('class="main-svg"') >= 2 * len(drawn)  # plotly's own SVG layers, made by its JS
    assert len(_visible(dom)) == 4 and 'id="shown">4 of 4' in dom


def test_filter_by_reason_from_the_url(page):
    root, url = page
    dom = _chromium(root, "--dump-dom", f"{url}#reason=pii")
    assert _visible(dom) == ["rejected"] and 'id="shown">1 of 4' in dom
    assert 'data-reasons="off_domain pii"' in dom


def test_status_filter_and_text_search_from_the_url(page):
    root, url = page
    dom = _chromium(root, "--dump-dom", f"{url}#status=accepted&q=90%20DAYS")
    assert _visible(dom) == ["accepted"]  # only the revised sample said "90 days" (before revision; search ignores case)


def test_screenshot(page):
    root, url = page
    shot = root / "report.png"
    _chromium(root, f"--screenshot={shot}", "--window-size=1280,2400", url)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 30_000  # a drawn page, not a blank one
    print(f"report screenshot: {shot}")
