"""A browser user of chat_server's web page, for tests/chat_web.rs: headless Chromium driven
through ChromeDriver (Selenium). It joins as NAME, says so on stdout, waits for the line a
terminal user sends, answers, waits for that user to leave, then prints what its page shows,
one line each, and exits 0.

Usage: python3 chat_page.py URL NAME EXPECTED_LINE ANSWER LEAVE_LINE
Each step waits at most 20 s; a step that times out exits 1 with what the page showed.
"""
import sys

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

url, name, expected, answer, leave = sys.argv[1:6]

options = Options()
options.binary_location = "/usr/bin/chromium"
for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
    options.add_argument(flag)
browser = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))


def shown():
    return [item.text for item in browser.find_elements(By.CSS_SELECTOR, "#log li")]


def wait_for(line):
    try:
        WebDriverWait(browser, 20).until(lambda _: line in shown())
    except Exception:
        print("timed out waiting for %r; the page showed %r" % (line, shown()), file=sys.stderr)
        browser.quit()
        sys.exit(1)


def say(step):
    print(step, flush=True)


try:
    browser.get(url)
    browser.find_element(By.ID, "name").send_keys(name)
    browser.find_element(By.ID, "join").click()
    wait_for("Welcome, %s!" % name)
    say("joined")
    wait_for(expected)
    browser.find_element(By.ID, "line").send_keys(answer)
    browser.find_element(By.ID, "send").click()
    say("answered")
    wait_for(leave)
    for line in shown():
        say(line)
finally:
    browser.quit()
