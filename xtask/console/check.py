"""Drives mqd's web console in headless Chromium over the DevTools protocol.

Usage: check.py CHROMIUM URL SCREENSHOT

mqd serves the console at URL with traffic flowing (cargo xtask console sets
that up): topic `shop.orders` (more than 30 messages, growing), topic
`sensors.kitchen` (1 message), a persistent session `shell-1` away with 3
messages queued, token `ops` (admin) and `app` (not). Checks what the page
shows, purges and deletes through its buttons, saves a screenshot. Prints one
`ok CHECK` line per check; on a failure, what was seen, and exits 1.
"""

import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket  # websocket-client

CHROMIUM, URL, SCREENSHOT = sys.argv[1:4]


class Page:
    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def js(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expr}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def until(self, name, expr, limit=20):
        """Waits until `expr` is truthy; its value."""
        deadline = time.time() + limit
        value = None
        while time.time() < deadline:
            try:
                value = self.js(expr)
            except RuntimeError as e:
                # The page is not there yet (still loading).
                value = f"error: {e}"[:300]
                time.sleep(0.2)
                continue
            if value:
                print(f"ok {name}", flush=True)
                return value
            time.sleep(0.2)
        fail(name, f"still {value!r} after {limit} s")


def fail(name, why):
    print(f"FAILED {name}: {why}", flush=True)
    try:
        PAGE.call("Page.bringToFront")
        shot(SCREENSHOT.replace(".png", "-failed.png"))
        print(PAGE.js("document.body.innerText"), flush=True)
    finally:
        sys.exit(1)


def shot(path):
    data = PAGE.call("Page.captureScreenshot", format="png")["data"]
    with open(path, "wb") as f:
        f.write(base64.b64decode(data))
    print(f"screenshot: {path}", flush=True)


def cell(topic, cls):
    return f"(document.querySelector('tr[data-topic=\"{topic}\"] td.{cls}') || {{}}).textContent"


def start_browser():
    profile = tempfile.mkdtemp(prefix="mq-console-")
    proc = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--hide-scrollbars", "--window-size=1280,1000", f"--user-data-dir={profile}",
         "--remote-debugging-port=0", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    port = None
    while time.time() < deadline and port is None:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            break
        m = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
        if m:
            port = int(m.group(1))
    if port is None:
        proc.kill()
        sys.exit(f"FAILED start: {CHROMIUM} did not open its DevTools port")
    targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
    page = next(t for t in targets if t["type"] == "page")
    return proc, Page(page["webSocketDebuggerUrl"])


BROWSER, PAGE = start_browser()
try:
    PAGE.call("Page.enable")
    PAGE.call("Page.navigate", url=URL)
    PAGE.until("the page polls the API and shows it live",
               "document.getElementById('status').textContent.startsWith('live')")

    # Topics with their sequence ranges.
    PAGE.until("topics listed with their sequence ranges",
               f"/^1 \u2026 (\\d+)$/.test({cell('shop.orders', 'seqs')}) && "
               f"+{cell('shop.orders', 'seqs')}.split(' ')[2] >= 30 && "
               f"{cell('sensors.kitchen', 'seqs')} === '1 \u2026 1'")

    # Sessions and their queues.
    PAGE.until("an away persistent session with its queue",
               "[...document.querySelectorAll('#sessions tr[data-client=\"shell-1\"]')]"
               ".some(r => r.querySelector('.state').textContent === 'away, persistent' && "
               "r.querySelector('.filter').textContent === 'jobs' && "
               "r.querySelector('.waiting').textContent === '3')")

    # Rates over time, plotted.
    PAGE.until("the rate plot has points and a topic a rate above zero",
               f"+document.getElementById('rates').dataset.points >= 3 && "
               f"parseFloat({cell('shop.orders', 'rate')}) > 0", limit=30)

    # Without a token nothing can be purged or deleted.
    PAGE.until("purge and delete are locked without a token",
               "[...document.querySelectorAll('#topics button')].every(b => b.disabled)")

    def set_token(value):
        PAGE.js("(() => { const t = document.getElementById('token');"
                f" t.value = {json.dumps(value)}; t.dispatchEvent(new Event('input')); }})()")

    def purge(topic, before):
        PAGE.js(f"(() => {{ const r = document.querySelector('tr[data-topic=\"{topic}\"]');"
                f" r.querySelector('input').value = '{before}';"
                " r.querySelector('button.purge').click(); })()")

    message = "document.getElementById('message').textContent"

    set_token("app")
    PAGE.until("buttons unlock once a token is typed",
               "!document.querySelector('tr[data-topic=\"shop.orders\"] button.purge').disabled")
    purge("shop.orders", 10)
    PAGE.until("a token without admin is refused, and says why",
               f"{message}.includes('refused') && {message}.includes('admin = true')")
    PAGE.until("nothing was purged", f"{cell('shop.orders', 'seqs')}.startsWith('1 ')")

    set_token("ops")
    PAGE.until("the admin token unlocks the buttons",
               "!document.querySelector('tr[data-topic=\"shop.orders\"] button.purge').disabled")
    purge("shop.orders", 10)
    PAGE.until("purge with the admin token", f"{message}.startsWith('purged shop.orders below 10')")
    PAGE.until("the topic starts at the purge point", f"{cell('shop.orders', 'seqs')}.startsWith('10 ')")

    click_delete = ("document.querySelector('tr[data-topic=\"sensors.kitchen\"] button.delete')"
                    ".click()")
    PAGE.js(click_delete)
    PAGE.until("delete asks for a confirmation",
               "(document.querySelector('tr[data-topic=\"sensors.kitchen\"] button.delete') || {})"
               ".textContent === 'Confirm delete'")
    PAGE.js(click_delete)
    PAGE.until("delete with the admin token", f"{message}.startsWith('deleted sensors.kitchen')")
    PAGE.until("the deleted topic is gone",
               "!document.querySelector('tr[data-topic=\"sensors.kitchen\"]')")

    # Let the plot gather a few more points for the picture.
    time.sleep(3)
    shot(SCREENSHOT)
finally:
    BROWSER.kill()
