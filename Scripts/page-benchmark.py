#!/usr/bin/env python3
"""The browser client's figures (docs/performance.md, "Web"): first render and bytes of a cold
page load, and a room of 5,000 messages read back to its beginning by scrolling (DOM size and
the longest main-thread task on the way). Headless Chromium against the given chat-server.

    python3 Scripts/page-benchmark.py --server .build/release/chat-server [--runs 5]
Prints one JSON object.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import shutil

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "Tests", "Browser"))
from browser_test import Browser, Native, Server, scroll_to_the_beginning  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--server", required=True)
parser.add_argument("--runs", type=int, default=5)
parser.add_argument("--messages", type=int, default=5000)
arguments = parser.parse_args()

folder = tempfile.mkdtemp(prefix="chat-page-bench-")
server = Server(os.path.abspath(arguments.server), folder)
server.start()
result = {}
try:
    # Cold loads: a new browser each time (nothing cached).
    renders, transferred = [], []
    for _ in range(arguments.runs):
        browser = Browser(server.url)
        timing = browser.js("""
            const paint = performance.getEntriesByName('first-contentful-paint')[0];
            const navigation = performance.getEntriesByType('navigation')[0];
            const resources = performance.getEntriesByType('resource');
            return {fcp: paint ? paint.startTime : null,
                    bytes: navigation.encodedBodySize + resources.reduce((s, r) => s + r.encodedBodySize, 0),
                    files: 1 + resources.length};""")
        renders.append(timing["fcp"])
        transferred.append(timing["bytes"])
        browser.quit()
    result["first_contentful_paint_ms"] = {"median": statistics.median(renders), "max": max(renders), "runs": renders}
    result["page_bytes"] = transferred[0]

    # A long room, read back to its beginning by scrolling.
    writer = Native(server.port, "writer")
    writer.join("lobby")
    for start in range(0, arguments.messages, 500):
        writer.say_many(["message number %d of a long history" % n for n in range(start, min(arguments.messages, start + 500))])
    reader = Browser(server.url)
    reader.js("""window.__longest = 0; window.__maxNodes = 0;
        new PerformanceObserver(l => l.getEntries().forEach(e => window.__longest = Math.max(window.__longest, e.duration)))
            .observe({type: 'longtask', buffered: false});
        new MutationObserver(() => window.__maxNodes = Math.max(window.__maxNodes,
            document.querySelectorAll('#messages .line').length)).observe(document.body, {childList: true, subtree: true});""")
    reader.login("reader")
    reader.wait_text("message number %d of a long history" % (arguments.messages - 1))
    started = reader.js("return performance.now()")
    scroll_to_the_beginning(reader, "#lobby")
    elapsed = reader.js("return performance.now()") - started
    loaded = len(reader.stored_ids("#lobby"))
    result["scrollback"] = {
        "messages": loaded, "seconds": elapsed / 1000,
        "max_rendered_lines": reader.js("return window.__maxNodes"),
        "longest_task_ms": reader.js("return window.__longest"),
        "heap_mb": reader.js("return performance.memory ? performance.memory.usedJSHeapSize / 1048576 : null"),
    }
    reader.quit()
    writer.close()
finally:
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)
print(json.dumps(result))
