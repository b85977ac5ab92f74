"""app.py in a real browser: headless Chromium (Debian's chromium + chromium-driver, installed by
scripts/test.sh) types a prompt, clicks Generate, waits for the audio and saves a screenshot."""

from __future__ import annotations

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

from tests.test_app import served  # noqa: F401  (the app launched on a local port)


@pytest.mark.slow
def test_generate_in_the_browser(served, tmp_path):  # noqa: F811
    _, url = served
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1200"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        browser.get(url)
        wait = WebDriverWait(browser, 90)
        box = wait.until(ready.element_to_be_clickable((By.CSS_SELECTOR, "#prompt textarea")))
        box.send_keys("a dog barks")
        steps = browser.find_elements(By.CSS_SELECTOR, "input[type=number]")
        assert steps, "no number inputs on the page"
        browser.find_element(By.CSS_SELECTOR, "#text-generate").click()
        # the player is labelled with the clip's seed, and shows the clip's length, only once it holds a result
        player = "#text-audio-0"
        wait.until(
            lambda b: (
                "clip 1: seed 0" in b.find_element(By.CSS_SELECTOR, player).text
                and "0:03" in b.find_element(By.CSS_SELECTOR, player).text
            )
        )
        wait.until(lambda b: "000_a_dog_barks.wav" in b.page_source)  # the wav offered for download
        assert "clip 1: seed 0" in browser.find_element(By.CSS_SELECTOR, "#text-audio-0").text
        browser.save_screenshot(str(tmp_path / "app.png"))
        assert (tmp_path / "app.png").read_bytes()[:4] == b"\x89PNG"
    except Exception:
        browser.save_screenshot(str(tmp_path / "failed.png"))
        (tmp_path / "failed.html").write_text(browser.page_source)
        raise
    finally:
        browser.quit()
