"""The web page in a real headless browser (Debian's chromium driven by Selenium and
chromium-driver, both from the package registries): upload a real frame, wait for the
result, see the overlay and the figures.

Skipped where chromium, chromium-driver or selenium is missing. Set
``SKYSOLVE_PAGE_SCREENSHOT=FILE.png`` to keep a screenshot of the solved page.
"""

from __future__ import annotations

import os
import shutil

import pytest

from skysolve.tests.realframes import ALT40, DATA, REFERENCE

from .conftest import API_KEY

webdriver = pytest.importorskip("selenium.webdriver")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                reason="needs Debian's chromium and chromium-driver")


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1200,1800"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    yield driver
    driver.quit()


def test_upload_a_real_frame_and_see_the_solution(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server.url + "/")
    assert "skysolve" in browser.title
    browser.find_element(By.ID, "file").send_keys(str(DATA / ALT40))
    browser.find_element(By.ID, "fov-lo").send_keys("10")
    browser.find_element(By.ID, "fov-hi").send_keys("13")
    browser.find_element(By.ID, "apikey").send_keys(API_KEY)
    browser.find_element(By.ID, "solve").click()
    figures = browser.find_element(By.ID, "figures")
    WebDriverWait(browser, 300).until(lambda d: figures.get_attribute("data-state"))
    assert figures.get_attribute("data-state") == "success", browser.find_element(
        By.ID, "status").text
    WebDriverWait(browser, 60).until(
        lambda d: d.find_element(By.ID, "overlay").get_attribute("data-matched"))
    text = {row.find_elements(By.TAG_NAME, "td")[0].text:
            row.find_elements(By.TAG_NAME, "td")[1].text
            for row in figures.find_elements(By.TAG_NAME, "tr")}
    ra, dec = REFERENCE[ALT40]
    assert abs(float(text["RA (centre)"].rstrip("°")) - ra) < 0.01
    assert abs(float(text["Dec (centre)"].rstrip("°")) - dec) < 0.01
    assert float(text["Field of view"].split("°")[0]) == pytest.approx(11.4, abs=0.2)
    canvas = browser.find_element(By.ID, "overlay")
    assert int(canvas.get_attribute("data-matched")) >= 10
    # the picture and the overlay were drawn: the canvas is neither blank nor one colour
    colours = browser.execute_script("""
        const c = document.getElementById('overlay');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const seen = new Set();
        for (let i = 0; i < d.length; i += 4 * 97) seen.add(d[i] * 65536 + d[i+1] * 256 + d[i+2]);
        return seen.size;""")
    assert colours > 50
    links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR,
                                                                      "a.download")]
    assert any(link.endswith("/wcs_file/" + link.rsplit("/", 1)[-1]) for link in links)
    assert any(link.endswith("/kml_file/" + link.rsplit("/", 1)[-1]) for link in links)
    assert len(links) == 7
    # the list is fetched again after the solve (on a connection opened before the
    # workers started: they must not hold it open)
    WebDriverWait(browser, 30).until(
        lambda d: ALT40 in d.find_element(By.ID, "recent-jobs").get_attribute("textContent"))
    keep = os.environ.get("SKYSOLVE_PAGE_SCREENSHOT")
    if keep:
        browser.save_screenshot(keep)


def test_a_position_half_given_is_refused_not_dropped(server, browser):
    """RA typed without Dec: the page said nothing and solved without the position the
    user gave; now the server's refusal is shown and no job is made."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server.url + "/")
    jobs_before = sum(server.get("/api/health")["jobs"].values())  # (any state)
    browser.find_element(By.ID, "file").send_keys(str(DATA / ALT40))
    browser.find_element(By.ID, "ra").send_keys("230.7")
    browser.find_element(By.ID, "apikey").send_keys(API_KEY)
    browser.find_element(By.ID, "solve").click()
    status = browser.find_element(By.ID, "status")
    WebDriverWait(browser, 120).until(
        lambda d: status.text.startswith(("Refused", "Job")) and "solving" not in status.text)
    assert "center_ra and center_dec go together" in status.text, status.text
    assert sum(server.get("/api/health")["jobs"].values()) == jobs_before
