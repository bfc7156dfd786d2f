#!/usr/bin/env python3
"""The browser client in a real browser: headless Chromium (Debian's chromium and
chromium-driver) driven by Selenium, against the real chat-server executable.

Run by `swift test` (Tests/EndToEndTests/BrowserTests.swift), or by hand:
    python3 Tests/Browser/browser_test.py --server .build/debug/chat-server [--screenshots docs]

Every wait is on a condition (30 s at most), never a fixed sleep. Exit status 0 when every
scenario passed; the first failure is printed with the page's console log.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

TIMEOUT = 30


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """chat-server on fixed loopback ports (a restart keeps them, as a real deployment does)."""

    def __init__(self, binary, folder, password=None):
        self.binary, self.folder = binary, folder
        self.port, self.web_port = free_port(), free_port()
        self.config = os.path.join(folder, "config-%d.json" % self.port)
        with open(self.config, "w") as f:
            json.dump({
                "server": {"port": self.port, "password": password},
                "database": {"path": "chat-%d.sqlite" % self.port},
                "web": {"enabled": True, "port": self.web_port},
                "history": {"onJoin": 50, "maxReplay": 500},
                "limits": {"rate": None, "loginTimeoutSeconds": 0},
                "log": {"messages": False},
            }, f)
        self.process = None

    def start(self):
        self.process = subprocess.Popen([self.binary, "--config", self.config], stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True)
        deadline = time.time() + TIMEOUT
        while time.time() < deadline:
            line = self.process.stdout.readline()
            if line.startswith("web listening on"):
                return
            if not line and self.process.poll() is not None:
                break
        raise RuntimeError("chat-server did not start")

    def kill(self):
        """kill -9: no shutdown notice, no goodbye."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(TIMEOUT)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()

    @property
    def url(self):
        return "http://127.0.0.1:%d/" % self.web_port


class Native:
    """A native-protocol client on a plain socket (a bot, or the terminal client)."""

    def __init__(self, port, name):
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.file = self.socket.makefile("r", encoding="utf-8")
        self.next_id = 1
        assert self.read()["type"] == "greeting"
        assert self.request({"type": "login", "name": name})["type"] == "welcome"

    def send(self, frame):
        self.socket.sendall((json.dumps(frame) + "\n").encode())

    def read(self):
        line = self.file.readline()
        if not line:
            raise EOFError("the server closed the connection")
        return json.loads(line)

    def request(self, frame):
        frame["id"] = self.next_id
        self.next_id += 1
        self.send(frame)
        while True:
            answer = self.read()
            if answer.get("re") == frame["id"]:
                return answer

    def join(self, room):
        answer = self.request({"type": "join", "room": room})
        assert answer["type"] == "joined", answer
        while self.read()["type"] != "history":
            pass

    def say(self, text, room="lobby"):
        answer = self.request({"type": "say", "room": room, "text": text})
        assert answer["type"] == "message", answer
        return answer["id"]

    def say_many(self, texts, room="lobby"):
        """Pipelined: all sent, then every acknowledgement read. Returns the ids."""
        first = self.next_id
        for text in texts:
            self.send({"type": "say", "room": room, "text": text, "id": self.next_id})
            self.next_id += 1
        ids = {}
        while len(ids) < len(texts):
            frame = self.read()
            if frame.get("type") == "message" and isinstance(frame.get("re"), int) and frame["re"] >= first:
                ids[frame["re"]] = frame["id"]
            assert frame.get("type") != "error", frame
        return [ids[first + i] for i in range(len(texts))]

    def wait_for(self, predicate):
        while True:
            frame = self.read()
            if predicate(frame):
                return frame

    def close(self):
        self.socket.close()


class Browser:
    def __init__(self, url, width=1200, height=800, phone=False):
        options = webdriver.ChromeOptions()
        if phone:
            # A phone's screen (headless windows are never narrower than 500 pixels).
            options.add_experimental_option("mobileEmulation", {
                "deviceMetrics": {"width": width, "height": height, "pixelRatio": 2, "touch": True}})
        options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
        for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=%d,%d" % (width, height), "--lang=en-US"]:
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
        self.driver = webdriver.Chrome(service=Service(driver), options=options)
        self.driver.set_page_load_timeout(TIMEOUT)
        self.driver.get(url)
        self.wait(lambda d: d.find_element(By.ID, "server-name").text not in ("", "Connecting…"), "the greeting")

    def wait(self, condition, what):
        try:
            return WebDriverWait(self.driver, TIMEOUT, poll_frequency=0.05).until(condition)
        except TimeoutException:
            raise AssertionError("timed out waiting for " + what)

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def el(self, element_id):
        return self.driver.find_element(By.ID, element_id)

    def login(self, name, password="", register=False):
        self.el("login-name").clear()
        self.el("login-name").send_keys(name)
        if password:
            self.el("login-password").send_keys(password)
        if register:
            self.el("login-register").click()
        self.el("login-submit").click()
        self.wait(lambda d: d.find_element(By.ID, "chat-view").is_displayed(), "the chat after login")
        self.wait(lambda d: d.find_element(By.ID, "title").text.startswith("#"), "the first room")

    def type(self, text):
        box = self.el("compose-input")
        box.send_keys(text)
        box.send_keys(Keys.ENTER)

    def texts(self):
        return self.js("return [...document.querySelectorAll('#messages .line[data-id] .text')].map(e => e.textContent)")

    def ids(self):
        return self.js("return [...document.querySelectorAll('#messages .line[data-id]')].map(e => Number(e.dataset.id))")

    def wait_text(self, text):
        self.wait(lambda d: text in self.texts(), repr(text) + " on screen")

    def stored_ids(self, key):
        """Every message id the page holds for a conversation (rendered or not), in order."""
        return self.js("return window.chatState.conversations.get(arguments[0]).messages.map(m => m.id)", key)

    def open_room(self, room):
        self.js("document.querySelector('button.conversation[data-key=\"#%s\"]').click()" % room)
        self.wait(lambda d: d.find_element(By.ID, "title").text == "#" + room, "#" + room + " open")

    def console_errors(self):
        return [entry for entry in self.driver.get_log("browser") if entry["level"] == "SEVERE"]

    def quit(self):
        self.driver.quit()


def scroll_to_the_beginning(browser, key):
    """Scrolls up like a reader until the room's first message is loaded."""
    for _ in range(400):
        if browser.js("return !window.chatState.conversations.get(arguments[0]).hasOlder", key) and \
                browser.js("return document.querySelector('#messages').scrollTop") == 0:
            return
        browser.js("document.querySelector('#messages').scrollTop = 0;"
                   "document.querySelector('#messages').dispatchEvent(new Event('scroll'))")
        browser.wait(lambda d: not browser.js("return window.chatState.conversations.get(arguments[0]).loadingOlder", key),
                     "an older page")
    raise AssertionError("never reached the beginning")


def run(server_binary, screenshots):
    folder = tempfile.mkdtemp(prefix="chat-browser-")
    server = Server(server_binary, folder)
    server.start()
    browsers = []
    natives = []
    try:
        # History that was there before anyone opened the page: 1,200 messages, one unique word.
        carol = Native(server.port, "carol")
        natives.append(carol)
        carol.join("lobby")
        early = carol.say_many(["early message %d" % i for i in range(1200)])
        needle_id = carol.say("the word zanzibar is said once")

        # Two browsers and a native client in one room.
        alice = Browser(server.url)
        browsers.append(alice)
        alice.login("alice")
        alice.wait_text("the word zanzibar is said once")
        bob = Browser(server.url)
        browsers.append(bob)
        bob.login("bob", password="correct horse", register=True)
        bob.wait(lambda d: "bob" == d.find_element(By.ID, "me-name").text, "bob registered (no longer a guest)")

        alice.type("hello from alice")
        bob.wait_text("hello from alice")
        heard = carol.wait_for(lambda f: f.get("type") == "message" and f.get("text") == "hello from alice")
        assert heard["from"] == "alice"
        carol.say("hello browsers")
        alice.wait_text("hello browsers")
        bob.wait_text("hello browsers")
        alice.type("/me waves")
        bob.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#messages .line.action"), "the /me line")
        assert bob.js("return document.querySelector('#messages .line.action .nick').textContent") == "* alice"
        # Who is here, kept current by presence.
        alice.el("members-button").click()
        alice.wait(lambda d: {"alice", "bob", "carol"} <= set(
            e.text for e in d.find_elements(By.CSS_SELECTOR, "#member-items li")), "everyone in the member list")
        print("ok: two browsers and a native client talk in one room")

        # Scroll-back: every stored message, in order, once, with a capped DOM.
        scroll_to_the_beginning(alice, "#lobby")
        ids = alice.stored_ids("#lobby")
        assert ids == sorted(ids) and len(ids) == len(set(ids)), "stored in order, once"
        assert ids[:len(early)] == early, "the whole history came back by scrolling"
        rendered = alice.js("return document.querySelectorAll('#messages .line[data-id]').length")
        assert rendered <= 400, "the page renders a window, not %d messages" % rendered
        assert "The beginning of #lobby." in alice.js("return document.querySelector('#messages').textContent")
        print("ok: scroll-back loaded %d messages, %d rendered at most" % (len(ids), rendered))

        # A mention and a direct message: badges on the other side.
        alice.type("/join side")
        alice.wait(lambda d: d.find_element(By.ID, "title").text == "#side", "#side")
        alice.type("a word said only in the side room: quokka")
        alice.wait_text("a word said only in the side room: quokka")
        # alice's tab is hidden and she allowed notifications (the browser's side is stubbed: a
        # headless browser has no desktop to show them on).
        alice.js("""window.__notes = [];
            window.Notification = function (title, options) { window.__notes.push([title, options.body]); this.close = () => {}; };
            window.Notification.permission = 'granted';
            Object.defineProperty(document, 'hidden', {get: () => true, configurable: true});""")
        bob.type("alice: look at this")
        alice.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "button[data-key='#lobby'] .mention-badge"), "a mention badge")
        bob.type("no mention here")
        bob.type("/msg alice a private word")
        alice.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "button[data-key='@bob'] .badge"), "the DM's unread badge")
        alice.wait(lambda d: len(alice.js("return window.__notes")) == 2, "two notifications")
        assert alice.js("return window.__notes") == [["bob in #lobby", "alice: look at this"], ["bob", "a private word"]]
        alice.js("Object.defineProperty(document, 'hidden', {get: () => false, configurable: true})")
        alice.js("document.querySelector(\"button[data-key='@bob']\").click()")
        alice.wait_text("a private word")
        alice.type("a private answer")
        bob.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "button[data-key='@alice']"), "the DM in bob's sidebar")
        bob.js("document.querySelector(\"button[data-key='@alice']\").click()")
        bob.wait_text("a private answer")
        found = carol.request({"type": "search", "query": "private"}).get("messages", [])
        assert not any("private" in m["text"] for m in found), "a third user's search never finds the DMs"
        print("ok: mentions, direct messages and unread badges")

        # Search, and a click that opens the room at that point of its history.
        bob.el("search-input").send_keys("zanzibar", Keys.ENTER)
        bob.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#search-items button.result"), "search results")
        bob.driver.find_element(By.CSS_SELECTOR, "#search-items button.result").click()
        bob.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#messages .line.highlight[data-id='%d']" % needle_id),
                 "the found message highlighted in its room")
        # And one far back in the history: the page loads older pages until it is there.
        bob.el("search-input").clear()
        bob.el("search-input").send_keys('"early message 3"', Keys.ENTER)
        bob.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#search-items button.result[data-id='%d']" % early[3]),
                 "the old result")
        bob.driver.find_element(By.CSS_SELECTOR, "#search-items button.result[data-id='%d']" % early[3]).click()
        bob.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#messages .line.highlight[data-id='%d']" % early[3]),
                 "the old message highlighted")
        # A result in a room bob is not in: the click joins it, then shows the message.
        bob.el("search-input").clear()
        bob.el("search-input").send_keys("quokka", Keys.ENTER)
        bob.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#search-items button.result"), "the side room's result")
        bob.driver.find_element(By.CSS_SELECTOR, "#search-items button.result").click()
        bob.wait(lambda d: d.find_element(By.ID, "title").text == "#side", "#side opened")
        bob.wait(lambda d: any("quokka" in e.text for e in d.find_elements(By.CSS_SELECTOR, "#messages .line.highlight")),
                 "the side room's message highlighted")
        bob.open_room("lobby")
        print("ok: search, and jumping to results")

        # XSS: markup in a message is text, and only http(s) links are links.
        hostile = ['<img src=x onerror="window.__xss=1">', "<script>window.__xss=1</script>",
                   "javascript:window.__xss=1", '<a href="javascript:window.__xss=1">click</a>']
        alice.open_room("lobby")
        for text in hostile:
            carol.say(text)
        for text in hostile:
            alice.wait_text(text)
        assert alice.js("return window.__xss === undefined")
        assert alice.js("return document.querySelectorAll('#messages img, #messages script').length") == 0
        hrefs = alice.js("return [...document.querySelectorAll('#messages a')].map(a => a.href)")
        assert all(h.startswith("http://") or h.startswith("https://") for h in hrefs), hrefs
        carol.say("see https://example.com/a?b=c, then")
        alice.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#messages a[href='https://example.com/a?b=c']"), "a safe link")
        link = alice.driver.find_element(By.CSS_SELECTOR, "#messages a[href='https://example.com/a?b=c']")
        assert link.get_attribute("rel") == "noopener noreferrer nofollow"
        print("ok: hostile text rendered inert")

        # The server is killed and restarted: the page reconnects by itself and fills the gap.
        alice.open_room("lobby")
        server.kill()
        alice.wait(lambda d: d.find_element(By.ID, "status").is_displayed(), "the reconnecting notice")
        server.start()
        natives.remove(carol)
        carol = Native(server.port, "carol")
        natives.append(carol)
        carol.join("lobby")
        missed = carol.say_many(["while you were away %d" % i for i in range(5)])
        for text in ["while you were away %d" % i for i in range(5)]:
            alice.wait_text(text)
            bob.wait(lambda d: text in bob.js(
                "return window.chatState.conversations.get('#lobby').messages.map(m => m.text)"), "bob's copy of " + text)
        alice.wait(lambda d: not d.find_element(By.ID, "status").is_displayed(), "the notice gone")
        for browser in (alice, bob):
            ids = browser.stored_ids("#lobby")
            assert len(ids) == len(set(ids)), "no message twice after the reconnect"
            assert set(missed) <= set(ids), "nothing missed"
        alice.type("back again")
        carol.wait_for(lambda f: f.get("text") == "back again")
        print("ok: reconnect after kill -9 and restart, no gaps, no duplicates")

        # Light and dark follow the system's preference.
        light = alice.js("return getComputedStyle(document.body).backgroundColor")
        alice.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
        dark = alice.js("return getComputedStyle(document.body).backgroundColor")
        alice.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
        assert light == "rgb(255, 255, 255)" and dark == "rgb(22, 24, 29)", (light, dark)
        print("ok: light and dark themes")

        if screenshots:
            alice.open_room("lobby")
            alice.js("document.querySelector('#messages').scrollTop = 1e9")
            alice.driver.save_screenshot(os.path.join(screenshots, "web-desktop.png"))
            alice.driver.execute_cdp_cmd("Emulation.setEmulatedMedia",
                                         {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
            alice.driver.save_screenshot(os.path.join(screenshots, "web-dark.png"))
            alice.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})

        # A phone-sized screen: one column; the conversations slide in from a button.
        phone = Browser(server.url, 390, 844, phone=True)
        browsers.append(phone)
        phone.login("dave")
        phone.wait_text("back again")
        assert phone.el("menu-button").is_displayed()
        left = phone.js("return document.querySelector('#sidebar').getBoundingClientRect().right")
        assert left <= 0, "the sidebar is off screen until asked for"
        assert phone.js("return window.innerWidth") == 390
        width = phone.js("return document.documentElement.scrollWidth")
        assert width <= 390, "nothing wider than the screen (%d)" % width
        compose = phone.js("return document.querySelector('#compose').getBoundingClientRect().right")
        assert compose <= 390, "the message box fits the screen"
        if screenshots:
            phone.driver.save_screenshot(os.path.join(screenshots, "web-phone.png"))
        phone.el("menu-button").click()
        phone.wait(lambda d: phone.js("return document.querySelector('#sidebar').getBoundingClientRect().left") >= 0,
                   "the sidebar open")
        # Keyboard only: the sidebar's room button takes focus and Enter opens it.
        phone.js("document.querySelector(\"button[data-key='#lobby']\").focus()")
        phone.driver.switch_to.active_element.send_keys(Keys.ENTER)
        phone.wait(lambda d: phone.js("return document.querySelector('#sidebar').getBoundingClientRect().right") <= 0,
                   "the sidebar closed after choosing")
        print("ok: the phone-sized layout")

        for browser in browsers:
            errors = [e for e in browser.console_errors() if "favicon" not in e["message"]]
            assert not errors, errors
        # A server with a password: the page asks for it, and a wrong one is refused.
        locked = Server(server_binary, folder, password="let me in")
        locked.start()
        try:
            guest = Browser(locked.url)
            browsers.append(guest)
            assert guest.el("server-password-row").is_displayed()
            guest.el("login-name").send_keys("erin")
            guest.el("login-server-password").send_keys("wrong")
            guest.el("login-submit").click()
            guest.wait(lambda d: "password" in d.find_element(By.ID, "login-error").text.lower(), "the refusal")
            assert guest.el("login-view").is_displayed()
            guest.el("login-server-password").clear()
            guest.el("login-server-password").send_keys("let me in")
            guest.el("login-submit").click()
            guest.wait(lambda d: d.find_element(By.ID, "chat-view").is_displayed(), "the chat with the right password")
        finally:
            locked.stop()
        print("ok: the server password")

        for browser in browsers:
            errors = [e for e in browser.console_errors() if "favicon" not in e["message"]]
            assert not errors, errors
        print("ok: no errors in the browsers' consoles")
        return 0
    except Exception:
        traceback.print_exc()
        for browser in browsers:
            try:
                for entry in browser.driver.get_log("browser"):
                    print("console:", entry["message"])
            except Exception:
                pass
        return 1
    finally:
        for browser in browsers:
            try:
                browser.quit()
            except Exception:
                pass
        for native in natives:
            native.close()
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    # Stopped by the test runner (SIGTERM): still close the browsers and stop the server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(2))
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--screenshots")
    arguments = parser.parse_args()
    sys.exit(run(os.path.abspath(arguments.server), arguments.screenshots))
