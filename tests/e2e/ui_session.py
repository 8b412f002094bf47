"""The web UI's logins and sessions over raw HTTP(S), for e2e/test_api.sh
(so they run under valgrind too; the pages themselves: e2e/test_ui.sh).

Environment: API_PORT, KEY (the API key), LINK (a one-time login link, or
empty), SCHEME (http or https), CA (the certificate to trust for https).
Prints "ui ok", or "FAIL: ..." and exits 1.
"""
import http.client
import os
import re
import ssl
import sys

port, key, link = int(os.environ["API_PORT"]), os.environ["KEY"], os.environ.get("LINK", "")
scheme = os.environ.get("SCHEME", "http")


def req(method, path, headers=None, body=None):
    if scheme == "https":
        ctx = ssl.create_default_context(cafile=os.environ["CA"])
        ctx.check_hostname = False
        c = http.client.HTTPSConnection("127.0.0.1", port, timeout=30, context=ctx)
    else:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    h = {"Host": "127.0.0.1:%d" % port}
    h.update(headers or {})
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    return r.status, r, r.read().decode()


def want(cond, what):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)


st, r, _ = req("GET", "/")
want(st == 303 and r.getheader("Location") == "/login", "/ without a session: %d" % st)
st, r, page = req("GET", "/login")
want(st == 200 and "frame-ancestors 'none'" in (r.getheader("Content-Security-Policy") or ""),
     "the login page: %d" % st)
form = {"Content-Type": "application/x-www-form-urlencoded"}
st, r, _ = req("POST", "/login", form, "key=" + "0" * 64)
want(st == 401 and r.getheader("Set-Cookie") is None, "a wrong key at the login form: %d" % st)
st, r, _ = req("POST", "/login", dict(form, Origin="http://evil.example"), "key=" + key)
want(st == 403 and r.getheader("Set-Cookie") is None, "a login form posted from another site: %d" % st)
st, r, _ = req("POST", "/login", form, "key=" + key)
cookie = r.getheader("Set-Cookie") or ""
want(st == 303 and re.match(r"sova_session_%d=[0-9a-f]{64}; Path=/; HttpOnly; SameSite=Strict" % port, cookie),
     "login with the key: %d %s" % (st, cookie))
want(("; Secure" in cookie) == (scheme == "https"), "Secure only over TLS: %s" % cookie)
jar = {"Cookie": cookie.split(";")[0]}
st, r, page = req("GET", "/", jar)
m = re.search(r'name="sova-csrf" content="([0-9a-f]{64})"', page)
want(st == 200 and m, "the app with the session: %d" % st)
csrf = m.group(1)
st, _, _ = req("GET", "/api/v1/status", jar)
want(st == 200, "status with the session: %d" % st)
js = dict(jar, **{"Content-Type": "application/json"})
st, _, body = req("POST", "/api/v1/limits", js, "{}")
want(st == 403 and "X-Sova-CSRF" in body, "a session POST without its CSRF token: %d %s" % (st, body))
st, _, _ = req("POST", "/api/v1/limits", dict(js, **{"X-Sova-CSRF": "f" * 64}), "{}")
want(st == 403, "a session POST with a wrong CSRF token: %d" % st)
st, _, _ = req("POST", "/api/v1/limits", dict(js, **{"X-Sova-CSRF": csrf}), "{}")
want(st == 200, "a session POST with its CSRF token: %d" % st)
if link:
    path = link[link.index("/login"):]
    st, r, _ = req("GET", path)
    want(st == 303 and "sova_session_" in (r.getheader("Set-Cookie") or ""), "the one-time link: %d" % st)
    st, r, _ = req("GET", path)
    want(st == 403 and r.getheader("Set-Cookie") is None, "the link a second time: %d" % st)
st, _, _ = req("POST", "/logout", jar)
want(st == 403, "log out without the CSRF token: %d" % st)
st, _, _ = req("POST", "/logout", dict(jar, **{"X-Sova-CSRF": csrf}))
want(st == 204, "log out: %d" % st)
st, _, _ = req("GET", "/api/v1/status", jar)
want(st == 401, "the session after log out: %d" % st)
st, r, _ = req("GET", "/ui/app.js")
want(st == 200 and r.getheader("Content-Type").startswith("text/javascript"), "app.js: %d" % st)
st, _, _ = req("GET", "/ui/../api-key")
want(st in (400, 404), "a path out of /ui/: %d" % st)
st, _, _ = req("GET", "/index.html")
want(st == 303, "index.html without a session: %d" % st)
print("ui ok")
