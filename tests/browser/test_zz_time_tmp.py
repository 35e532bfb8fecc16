import threading
import time

from werkzeug.serving import make_server


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/html")])
    return [b"<!doctype html><title>x</title><p>hi"]
def test_t(new_page):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    page = new_page()
    page.goto(base + "/")
    for mode in ["load", "commit", "load"]:
        t = time.time()
        for _ in range(10): page.goto(base + "/", wait_until=mode)
        print("trivial goto", mode, round((time.time() - t) / 10 * 1000), "ms")
    t = time.time()
    for _ in range(10): page.evaluate("1+1")
    print("evaluate roundtrip", round((time.time() - t) / 10 * 1000), "ms")
    page.set_content("<p>x</p>")
    t = time.time()
    for _ in range(10): page.set_content("<p>x</p>")
    print("set_content", round((time.time() - t) / 10 * 1000), "ms")
    server.shutdown()
