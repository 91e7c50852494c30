"""Tests of the mock function endpoint (t/mock/function.py).

    python3 -m unittest t/mock/test_function.py        (from the project root)

Requests are signed with botocore's own SigV4Auth and sent to a mock
started on an ephemeral port; the verdicts must be ok / mismatch / none /
unknown-key / malformed / expired as AWS would decide. The AWS signing
test-suite vectors (from the aws-sigv4 crate's package, found with `cargo
metadata`, or $AWS_SIGNING_SUITE_DIR) check verify() against canonical requests that
botocore did not produce.  The credential servers (--imds-port,
--ecs-port, --sts-port) are checked with raw requests, with botocore's own
IMDS and container clients, and with botocore's STS client against moto
(skipped when moto[server] is not installed).
"""

import datetime
import hashlib
import http.client
import importlib.util
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import unittest

from botocore import UNSIGNED
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
import botocore.session
import botocore.utils

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import function  # noqa: E402  (t/mock/function.py)

AK, SK = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def find_suite():
    """The AWS SigV4 test suite that ships inside the aws-sigv4 crate this project is
    locked to (as tests/sigv4_suite.rs finds it); $AWS_SIGNING_SUITE_DIR overrides."""
    given = os.environ.get("AWS_SIGNING_SUITE_DIR") or os.environ.get("AWS_SIGNING_TEST_SUITE")
    if given:
        return given
    try:
        out = subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--locked",
             "--manifest-path", os.path.join(ROOT, "Cargo.toml")],
            check=True, capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        return "(not found: cargo metadata failed: %s)" % e
    for package in json.loads(out)["packages"]:
        if package["name"] == "aws-sigv4":
            return os.path.join(os.path.dirname(package["manifest_path"]),
                                "aws-signing-test-suite", "v4")
    return "(not found: aws-sigv4 is not a dependency)"


SUITE = find_suite()


class Mock:
    """The mock as a subprocess on an ephemeral port (args: more options)."""

    def __init__(self, env=None, args=()):
        self.log = open(os.devnull, "w") if not os.environ.get("MOCK_LOG") \
            else open(os.environ["MOCK_LOG"], "a")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "function.py"), "--port", "0"] + list(args),
            stdout=subprocess.PIPE, stderr=self.log, env=env, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("mock function listening on "):
            self.stop()
            raise RuntimeError("mock did not start: %r" % line)
        self.host, _, port = line.split()[-1].rpartition(":")
        self.port = int(port)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.log.close()


def read_all(sock, timeout=10):
    sock.settimeout(timeout)
    out = b""
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            break
        if not data:
            break
        out += data
    return out


def parse_response(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = [tuple(x.split(": ", 1)) for x in lines[1:]]
    return status, headers, body


def describe(body):
    """The describe() body as a list of (key, value), in order."""
    out = []
    for line in body.decode("utf-8", "replace").split("\n"):
        if line:
            k, _, v = line.partition(": ")
            out.append((k, v))
    return out


class MockTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mock = Mock()
        cls.hostport = "%s:%d" % (cls.mock.host, cls.mock.port)

    @classmethod
    def tearDownClass(cls):
        cls.mock.stop()

    def connect(self):
        return socket.create_connection((self.mock.host, self.mock.port), timeout=10)

    def sign(self, method, target, headers=(), body=b"", ak=AK, sk=SK, token=None,
             service="lambda", region="us-east-1"):
        """Sign with botocore's own SigV4Auth; returns the header list to send
        (Host included, as botocore signs it from the URL)."""
        req = AWSRequest(method=method, url="http://" + self.hostport + target, data=body)
        for n, v in headers:
            req.headers[n] = v  # appends: repeated fields stay repeated
        SigV4Auth(Credentials(ak, sk, token), service, region).add_auth(req)
        return [("Host", self.hostport)] + list(req.headers.items())

    def send(self, method, target, headers, body=b"", extra=()):
        """One request on a fresh connection (Connection: close added, not
        signed); returns (status, headers, body)."""
        lines = ["%s %s HTTP/1.1" % (method, target)]
        lines += ["%s: %s" % hv for hv in list(headers) + list(extra)]
        if body:
            lines.append("Content-Length: %d" % len(body))
        lines.append("Connection: close")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body
        with self.connect() as s:
            s.sendall(data)
            return parse_response(read_all(s))

    def verdict(self, *args, **kw):
        status, _, body = self.send(*args, **kw)
        self.assertEqual(status, 200)
        return dict(describe(body))["signature"]


class TestSignature(MockTestCase):
    def test_ok_get_with_query(self):
        target = "/echo/path?b=2&a=1&a=0"
        h = self.sign("GET", target)
        status, _, body = self.send("GET", target, h)
        self.assertEqual(status, 200)
        d = dict(describe(body))
        self.assertEqual(d["signature"], "ok")
        self.assertEqual(d["signed_headers"], "host;x-amz-date")
        self.assertEqual(d["target"], target)
        self.assertEqual(d["path"], "/echo/path")
        self.assertEqual(d["query"], "b=2&a=1&a=0")

    def test_ok_post_with_body_and_signed_content_type(self):
        body = b'{"hello": "world"}'
        h = self.sign("POST", "/generic", [("Content-Type", "application/json")], body)
        status, _, rbody = self.send("POST", "/generic", h, body)
        d = dict(describe(rbody))
        self.assertEqual(d["signature"], "ok")
        self.assertEqual(d["signed_headers"], "content-type;host;x-amz-date")
        self.assertEqual(d["body_length"], str(len(body)))
        self.assertEqual(d["body"], body.decode())

    def test_ok_with_signed_content_sha256(self):
        body = b"payload"
        sha = hashlib.sha256(body).hexdigest()
        h = self.sign("POST", "/echo", [("X-Amz-Content-SHA256", sha)], body)
        self.assertEqual(self.verdict("POST", "/echo", h, body), "ok")
        # a content hash that is not the body's: AWS rejects it
        h = self.sign("POST", "/echo", [("X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD")], body)
        self.assertEqual(self.verdict("POST", "/echo", h, body), "mismatch")

    def test_ok_session_token(self):
        h = self.sign("GET", "/echo", ak="ASIATEMPEXAMPLE", sk="tempSecretKeyExample",
                      token="tempSessionTokenExample")
        status, _, body = self.send("GET", "/echo", h)
        d = describe(body)
        self.assertEqual(dict(d)["signature"], "ok")
        self.assertIn(("header", "x-amz-security-token: tempSessionTokenExample"), d)
        self.assertEqual(dict(d)["signed_headers"], "host;x-amz-date;x-amz-security-token")
        # the environment's pair of t/ too
        h = self.sign("GET", "/echo", ak="ASIAENVEXAMPLE", sk="envSecretKeyExample",
                      token="envSessionTokenExample")
        self.assertEqual(self.verdict("GET", "/echo", h), "ok")

    def test_session_token_must_be_the_issued_one(self):
        temp = dict(ak="ASIATEMPEXAMPLE", sk="tempSecretKeyExample")
        # another token, correctly signed: AWS rejects it
        h = self.sign("GET", "/echo", token="TOKEN/+=", **temp)
        self.assertEqual(self.verdict("GET", "/echo", h), "mismatch")
        # a temporary key without its token
        h = self.sign("GET", "/echo", **temp)
        self.assertEqual(self.verdict("GET", "/echo", h), "mismatch")
        # the right token, sent but not signed: AWS accepts it
        h = self.sign("GET", "/echo", **temp)
        self.assertEqual(self.verdict("GET", "/echo", h, extra=[
            ("X-Amz-Security-Token", "tempSessionTokenExample")]), "ok")
        # twice
        h = self.sign("GET", "/echo", token="tempSessionTokenExample", **temp)
        self.assertEqual(self.verdict("GET", "/echo", h, extra=[
            ("X-Amz-Security-Token", "tempSessionTokenExample")]), "mismatch")
        # a token with a long-term key
        h = self.sign("GET", "/echo", token="some-token")
        self.assertEqual(self.verdict("GET", "/echo", h), "mismatch")
        # verify(check_token=False) ignores tokens (the suite vectors)
        h = self.sign("GET", "/echo", token="some-token")
        self.assertEqual(function.verify("GET", "/echo", h, b"", check_token=False).verdict,
                         "ok")

    def test_expired(self):
        keys = {"ASIAEXP": ("expSecret", "expToken", 1000.0)}
        h = self.sign("GET", "/echo", ak="ASIAEXP", sk="expSecret", token="expToken")
        self.assertEqual(function.verify("GET", "/echo", h, b"", keys=keys, now=999.0).verdict,
                         "ok")
        res = function.verify("GET", "/echo", h, b"", keys=keys, now=1000.0)
        self.assertEqual(res.verdict, "expired")
        self.assertEqual(res.access_key, "ASIAEXP")
        # a wrong signature is a mismatch, expired or not
        h = self.sign("GET", "/echo", ak="ASIAEXP", sk="other", token="expToken")
        self.assertEqual(function.verify("GET", "/echo", h, b"", keys=keys, now=2000.0).verdict,
                         "mismatch")

    def test_key1(self):
        h = self.sign("GET", "/echo", ak="KEY1", sk="KeySecret", service="execute-api",
                      region="eu-west-1")
        self.assertEqual(self.verdict("GET", "/echo", h), "ok")

    def test_none(self):
        self.assertEqual(self.verdict("GET", "/echo", [("Host", self.hostport)]), "none")
        status, _, body = self.send("GET", "/echo", [("Host", self.hostport)])
        self.assertEqual(dict(describe(body))["signed_headers"], "")

    def test_unknown_key(self):
        h = self.sign("GET", "/echo", ak="AKIDUNKNOWN", sk="whatever")
        self.assertEqual(self.verdict("GET", "/echo", h), "unknown-key")

    def test_wrong_secret(self):
        h = self.sign("GET", "/echo", sk="not-the-secret")
        self.assertEqual(self.verdict("GET", "/echo", h), "mismatch")

    def test_tampered_body(self):
        h = self.sign("POST", "/echo", body=b"hello")
        self.assertEqual(self.verdict("POST", "/echo", h, b"hello"), "ok")
        self.assertEqual(self.verdict("POST", "/echo", h, b"hellO"), "mismatch")

    def test_tampered_path_and_query(self):
        h = self.sign("GET", "/echo/a?x=1")
        self.assertEqual(self.verdict("GET", "/echo/a?x=1", h), "ok")
        self.assertEqual(self.verdict("GET", "/echo/b?x=1", h), "mismatch")
        self.assertEqual(self.verdict("GET", "/echo/a?x=2", h), "mismatch")
        self.assertEqual(self.verdict("POST", "/echo/a?x=1", h), "mismatch")

    def test_query_bytes_that_are_not_utf8(self):
        # botocore signs a query in the URL as it is written, so an encoded query
        # signs its bytes; the verifier decodes to bytes, not text.
        target = "/echo?k=%FF%C3%28&e=%C3%A9&%fe=1"
        h = self.sign("GET", "/echo?%FE=1&e=%C3%A9&k=%FF%C3%28")
        self.assertEqual(self.verdict("GET", target, h), "ok")
        # U+FFFD in place of the bytes is another query
        h = self.sign("GET", "/echo?%FE=1&e=%C3%A9&k=%EF%BF%BD%EF%BF%BD%28")
        self.assertEqual(self.verdict("GET", target, h), "mismatch")

    def test_tampered_signed_header(self):
        h = self.sign("GET", "/echo", [("X-Custom", "one")])
        self.assertEqual(self.verdict("GET", "/echo", h), "ok")
        h2 = [(n, "two" if n == "X-Custom" else v) for n, v in h]
        self.assertEqual(self.verdict("GET", "/echo", h2), "mismatch")
        # a signed header that is missing
        h3 = [(n, v) for n, v in h if n != "X-Custom"]
        self.assertEqual(self.verdict("GET", "/echo", h3), "mismatch")

    def test_unsigned_headers_do_not_matter(self):
        h = self.sign("GET", "/echo")
        extra = [("X-Forwarded-For", "1.2.3.4"), ("User-Agent", "test")]
        self.assertEqual(self.verdict("GET", "/echo", h, extra=extra), "ok")

    def test_whitespace_in_signed_values_is_trimmed(self):
        h = self.sign("GET", "/echo", [("X-Space", "a  b")])
        h2 = [(n, "  a b   " if n == "X-Space" else v) for n, v in h]
        self.assertEqual(self.verdict("GET", "/echo", h2), "ok")

    def test_multi_value_headers(self):
        h = self.sign("GET", "/echo", [("X-Multi", "b"), ("X-Multi", "a"), ("X-Multi", "c")])
        self.assertEqual([v for n, v in h if n == "X-Multi"], ["b", "a", "c"])
        status, _, body = self.send("GET", "/echo", h)
        d = describe(body)
        self.assertEqual(dict(d)["signature"], "ok")
        self.assertEqual([v for k, v in d if k == "header" and v.startswith("x-multi:")],
                         ["x-multi: b", "x-multi: a", "x-multi: c"])
        # AWS joins the values in received order: another order is another signature
        h2 = [(n, v) for n, v in h if n != "X-Multi"] + [("X-Multi", x) for x in "abc"]
        self.assertEqual(self.verdict("GET", "/echo", h2), "mismatch")
        # one value dropped
        h3 = [(n, v) for n, v in h if (n, v) != ("X-Multi", "c")]
        self.assertEqual(self.verdict("GET", "/echo", h3), "mismatch")
        # the same values folded into one field: the same canonical value
        h4 = [(n, v) for n, v in h if n != "X-Multi"] + [("X-Multi", "b,a,c")]
        self.assertEqual(self.verdict("GET", "/echo", h4), "ok")

    def test_double_encoded_path(self):
        # space, UTF-8 (e-acute, U+1234) and reserved characters, percent-encoded
        # once on the wire; SigV4 for lambda/execute-api encodes the path again
        target = "/echo/a%20b/%C3%A9%E1%88%B4/%21%2A%27%28%29%3A%40%2B%24%2C%3B%3D?q=%20x&r=%2F"
        h = self.sign("POST", target, body=b"x")
        status, _, body = self.send("POST", target, h, b"x")
        d = dict(describe(body))
        self.assertEqual(d["signature"], "ok")
        self.assertEqual(d["target"], target)
        # the canonical request the mock computed has the path encoded twice
        res = function.verify("POST", target,
                              [(n, v) for n, v in h], b"x")
        self.assertEqual(res.verdict, "ok")
        path = res.canonical_request.split("\n")[1]
        self.assertEqual(
            path,
            "/echo/a%2520b/%25C3%25A9%25E1%2588%25B4/"
            "%2521%252A%2527%2528%2529%253A%2540%252B%2524%252C%253B%253D")
        # a client that signs the path encoded only once (as S3 does) is rejected
        once = AWSRequest(method="POST", url="http://" + self.hostport + target, data=b"x")
        S3SigV4Auth(Credentials(AK, SK), "lambda", "us-east-1").add_auth(once)
        h5 = [("Host", self.hostport)] + list(once.headers.items())
        self.assertEqual(self.verdict("POST", target, h5, b"x"), "mismatch")
        # ... while the same S3 signer over a path with nothing to encode agrees
        plain = AWSRequest(method="POST", url="http://" + self.hostport + "/echo/plain",
                           data=b"x")
        S3SigV4Auth(Credentials(AK, SK), "lambda", "us-east-1").add_auth(plain)
        h6 = [("Host", self.hostport)] + list(plain.headers.items())
        self.assertEqual(self.verdict("POST", "/echo/plain", h6, b"x"), "ok")

    def test_dot_segments_and_double_slashes(self):
        target = "/echo/./a/../b//c"
        h = self.sign("GET", target)
        status, _, body = self.send("GET", target, h)
        d = dict(describe(body))
        self.assertEqual(d["target"], target)
        self.assertEqual(d["signature"], "ok")

    def test_malformed(self):
        base = self.sign("GET", "/echo")
        auth = next(v for n, v in base if n == "Authorization")
        rest = [(n, v) for n, v in base if n != "Authorization"]
        for bad in ["AWS4-HMAC-SHA256 junk",
                    "Basic dXNlcjpwYXNz",
                    auth.replace("Credential=" + AK + "/", "Credential="),
                    auth.replace("SignedHeaders=host;x-amz-date", "SignedHeaders=x-amz-date"),
                    auth[:-10]]:
            self.assertEqual(self.verdict("GET", "/echo", rest + [("Authorization", bad)]),
                             "malformed", bad)
        no_date = [(n, v) for n, v in base if n != "X-Amz-Date"]
        self.assertEqual(self.verdict("GET", "/echo", no_date), "malformed")
        two = base + [("Authorization", auth)]
        self.assertEqual(self.verdict("GET", "/echo", two), "malformed")

    def test_credential_date_must_match(self):
        h = self.sign("GET", "/echo")
        h2 = [(n, v.replace("Credential=%s/2" % AK, "Credential=%s/1" % AK))
              if n == "Authorization" else (n, v) for n, v in h]
        self.assertEqual(self.verdict("GET", "/echo", h2), "mismatch")

    def test_env_credentials(self):
        keys = function.load_keys({"MOCK_CREDENTIALS": "AK2:SK2, AK3:s:k3 ,bad"})
        self.assertEqual(keys["AK2"], "SK2")
        self.assertEqual(keys["AK3"], "s:k3")
        self.assertEqual(keys["KEY1"], "KeySecret")
        self.assertNotIn("bad", keys)
        env = dict(os.environ, MOCK_CREDENTIALS="AKENV:secret-from-env")
        mock = Mock(env)
        try:
            old = self.hostport
            self.hostport = "%s:%d" % (mock.host, mock.port)
            h = self.sign("GET", "/echo", ak="AKENV", sk="secret-from-env")
            with socket.create_connection((mock.host, mock.port)) as s:
                s.sendall(("GET /echo HTTP/1.1\r\n" + "".join(
                    "%s: %s\r\n" % hv for hv in h) + "Connection: close\r\n\r\n").encode())
                _, _, body = parse_response(read_all(s))
            self.assertEqual(dict(describe(body))["signature"], "ok")
        finally:
            self.hostport = old
            mock.stop()


def load_vector(name):
    with open(os.path.join(SUITE, name, "header-signed-request.txt"), "rb") as f:
        raw = f.read()
    head, _, body = raw.partition(b"\n\n")
    request_line, _, header_bytes = head.partition(b"\n")
    words = request_line.split(b" ")
    method = words[0].decode()
    if words[-1].startswith(b"HTTP/"):
        target = b" ".join(words[1:-1])
    else:
        target = b" ".join(words[1:])
    # the same header parser http.server uses
    msg = http.client.parse_headers(io.BytesIO(header_bytes.replace(b"\n", b"\r\n")
                                               + b"\r\n\r\n"))
    return method, target.decode("latin-1"), list(msg.items()), body


class TestSigningSuiteVectors(unittest.TestCase):
    """verify() accepts the suite's signed requests and rebuilds the suite's
    canonical requests (normalized-path vectors: lambda and execute-api
    normalize paths; the *-unnormalized ones are S3 behaviour). A missing
    suite fails: set AWS_SIGNING_SUITE_DIR where cargo cannot find it."""

    @classmethod
    def setUpClass(cls):
        if not os.path.isdir(SUITE):
            raise AssertionError("AWS signing test suite not found at " + SUITE)

    def vectors(self):
        for name in sorted(os.listdir(SUITE)):
            path = os.path.join(SUITE, name)
            if not os.path.isfile(os.path.join(path, "header-signed-request.txt")):
                continue
            ctx_file = os.path.join(path, "context.json")
            ctx = {}
            if os.path.isfile(ctx_file):
                with open(ctx_file) as f:
                    ctx = json.load(f)
            yield name, path, ctx

    def test_vectors(self):
        keys = dict(function.KEYS, ANOTREAL="unknown")
        seen = 0
        for name, path, ctx in self.vectors():
            if ctx.get("normalize", True) is False:
                continue
            with self.subTest(vector=name):
                method, target, headers, body = load_vector(name)
                res = function.verify(method, target, headers, body, keys=keys,
                                      check_token=False)
                with open(os.path.join(path, "header-canonical-request.txt"),
                          encoding="utf-8") as f:
                    expected_cr = f.read()
                if not ctx:
                    # migrated old-format vectors: no context.json, and the
                    # secret of ANOTREAL and the date of its canonical
                    # request are not given consistently; check the path
                    self.assertEqual(res.canonical_request.split("\n")[1],
                                     expected_cr.split("\n")[1])
                else:
                    self.assertEqual(res.verdict, "ok", res.debug)
                    self.assertEqual(res.canonical_request, expected_cr)
                seen += 1
        self.assertGreater(seen, 25)

    def test_unnormalized_vectors_differ(self):
        # S3-style signatures over an unnormalized path are not valid for lambda
        keys = dict(function.KEYS)
        for name, path, ctx in self.vectors():
            if ctx.get("normalize", True) is not False:
                continue
            method, target, headers, body = load_vector(name)
            normalized = function.verify(method, target, headers, body, keys=keys,
                                         check_token=False)
            if name.startswith("get-space"):
                continue  # normalizing changes nothing there
            with self.subTest(vector=name):
                self.assertEqual(normalized.verdict, "mismatch")


class TestEndpoints(MockTestCase):
    def test_httptrigger(self):
        status, headers, body = self.send("POST", "/httptrigger", [("Host", "x")], b"{}")
        self.assertEqual(status, 200)
        self.assertEqual(body, b"aws lambda invoked\n")
        self.assertIn(("Content-Length", "19"), headers)
        self.assertIn(("Connection", "Keep-Alive"), headers)

    def test_status(self):
        status, headers, body = self.send("GET", "/status/418", [("Host", "x")])
        self.assertEqual(status, 418)
        self.assertEqual(body, b"status 418\n")
        self.assertIn(("X-Mock", "yes"), headers)
        self.assertEqual([v for n, v in headers if n == "Set-Cookie"],
                         ["a=1; Path=/", "b=2; Path=/"])
        self.assertIn(("Connection", "keep-alive"), headers)
        status, headers, body = self.send("GET", "/status/204", [("Host", "x")])
        self.assertEqual((status, body), (204, b""))

    def test_sleep(self):
        t0 = time.monotonic()
        status, _, body = self.send("GET", "/sleep/200", [("Host", "x")])
        self.assertGreaterEqual(time.monotonic() - t0, 0.19)
        self.assertEqual((status, body), (200, b"slept 200\n"))

    def test_big(self):
        status, headers, body = self.send("GET", "/big/200000", [("Host", "x")])
        self.assertEqual(status, 200)
        self.assertIn(("Content-Length", "200000"), headers)
        self.assertEqual(body, b"x" * 200000)

    def test_streams(self):
        c = http.client.HTTPConnection(self.mock.host, self.mock.port, timeout=10)
        t0 = time.monotonic()
        c.request("GET", "/stream/3/100?tag=t")
        r = c.getresponse()
        self.assertEqual(r.getheader("Transfer-Encoding"), "chunked")
        self.assertEqual(r.read(), b"chunk 0\nchunk 1\nchunk 2\n")
        self.assertGreaterEqual(time.monotonic() - t0, 0.19)
        c.request("GET", "/sse/2/0")
        r = c.getresponse()
        self.assertEqual(r.getheader("Content-Type"), "text/event-stream")
        self.assertEqual(r.read(), b"data: event 0\n\ndata: event 1\n\n")
        # the generated body: piece k is k (8 bytes) then bytes (k + i) % 251
        c.request("GET", "/stream-big/140000?tag=big&sha256=1&length=1")
        r = c.getresponse()
        self.assertEqual(r.getheader("Content-Length"), "140000")
        body = r.read()
        self.assertEqual(len(body), 140000)
        self.assertEqual(body[65536:65544], (1).to_bytes(8, "big"))
        self.assertEqual(body[65544:65547], bytes([1, 2, 3]))
        c.request("GET", "/_streams?tag=big")
        record = json.loads(c.getresponse().read())
        self.assertEqual((record["sent"], record["done"], record["closed"]),
                         (140000, True, False))
        self.assertEqual(record["sha256"], hashlib.sha256(body).hexdigest())
        c.request("GET", "/_streams")
        self.assertEqual(sorted(json.loads(c.getresponse().read())), ["big", "t"])
        c.close()

    def test_streams_that_break(self):
        for path in ("/cut/1000", "/reset/1000"):
            c = http.client.HTTPConnection(self.mock.host, self.mock.port, timeout=10)
            c.request("GET", path)
            r = c.getresponse()
            with self.assertRaises((http.client.IncompleteRead, ConnectionError)):
                r.read()
            c.close()
        c = http.client.HTTPConnection(self.mock.host, self.mock.port, timeout=10)
        t0 = time.monotonic()
        c.request("GET", "/stall/200")
        self.assertEqual(c.getresponse().read(), b"before\nafter\n")
        self.assertGreaterEqual(time.monotonic() - t0, 0.19)
        c.close()

    def test_chunked(self):
        c = http.client.HTTPConnection(self.mock.host, self.mock.port, timeout=10)
        c.request("GET", "/chunked/150000")
        r = c.getresponse()
        self.assertEqual(r.getheader("Transfer-Encoding"), "chunked")
        self.assertIsNone(r.getheader("Content-Length"))
        self.assertEqual(r.read(), b"x" * 150000)
        c.close()

    def test_close(self):
        with self.connect() as s:
            s.sendall(b"POST /close HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
            self.assertEqual(read_all(s), b"")

    def test_garbage(self):
        with self.connect() as s:
            s.sendall(b"GET /garbage HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(read_all(s), b"this is not http\r\n\r\n")

    def test_headers_only(self):
        with self.connect() as s:
            s.sendall(b"GET /headers-only HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, body = parse_response(read_all(s))
        self.assertEqual(status, 200)
        self.assertIn(("Content-Length", "100"), headers)
        self.assertEqual(body, b"x" * 10)

    def test_describe_format(self):
        with self.connect() as s:
            s.sendall(b"PUT /raw/request/target?raw=query HTTP/1.1\r\nHost: h\r\n"
                      b"X-B: 1\r\nx-b: 2\r\nContent-Length: 11\r\n"
                      b"Connection: close\r\n\r\nhello world")
            status, headers, body = parse_response(read_all(s))
        self.assertEqual(status, 200)
        self.assertIn(("Content-Type", "text/plain"), headers)
        conn = dict(describe(body))["conn"]
        self.assertEqual(body.decode(), (
            "method: PUT\n"
            "target: /raw/request/target?raw=query\n"
            "path: /raw/request/target\n"
            "query: raw=query\n"
            "signature: none\n"
            "signed_headers: \n"
            "header: host: h\n"
            "header: x-b: 1\n"
            "header: x-b: 2\n"
            "header: content-length: 11\n"
            "header: connection: close\n"
            "body_length: 11\n"
            "body: hello world\n"
            "conn: %s\n" % conn))

    def test_binary_body(self):
        _, _, body = self.send("POST", "/echo", [("Host", "x")], b"\xff\x00ab")
        d = dict(describe(body))
        self.assertEqual(d["body_hex"], "ff006162")
        self.assertNotIn("body", d)

    def test_raw_space_is_400_and_mock_survives(self):
        for bad in [b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"\x00\x01\x02\r\n\r\n",
                    b"GET / HTTP/1.1\r\nConnection: close\r\nbad header line\r\n\r\n",
                    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
                    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"]:
            with self.connect() as s:
                s.sendall(bad)
                raw = read_all(s)
            self.assertTrue(raw.startswith(b"HTTP/1.1 400") or raw.startswith(b"HTTP/1.1 200"),
                            (bad, raw[:80]))
        self.assertEqual(self.send("GET", "/", [("Host", "x")])[0], 200)
        with self.connect() as s:
            s.sendall(b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertTrue(read_all(s).startswith(b"HTTP/1.1 400"))

    def test_keepalive_connection_serial(self):
        c = http.client.HTTPConnection(self.mock.host, self.mock.port, timeout=10)
        conns = []
        for _ in range(3):
            c.request("GET", "/echo")
            conns.append(dict(describe(c.getresponse().read()))["conn"])
        c.close()
        self.assertEqual(len(set(conns)), 1)
        c2 = http.client.HTTPConnection(self.mock.host, self.mock.port, timeout=10)
        c2.request("GET", "/echo")
        other = dict(describe(c2.getresponse().read()))["conn"]
        c2.close()
        self.assertNotEqual(other, conns[0])

    def test_300_concurrent_keepalive_connections(self):
        n = 300
        barrier = threading.Barrier(n, timeout=30)
        results = []
        lock = threading.Lock()

        def client():
            try:
                c = http.client.HTTPConnection(self.mock.host, self.mock.port, timeout=30)
                c.connect()
                barrier.wait()
                got = []
                for _ in range(2):
                    c.request("GET", "/sleep/100")
                    r = c.getresponse()
                    got.append((r.status, r.read()))
                c.close()
                ok = got == [(200, b"slept 100\n")] * 2
            except Exception as exc:  # recorded, checked below
                ok = repr(exc)
            with lock:
                results.append(ok)

        threads = [threading.Thread(target=client) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(results.count(True), n, [r for r in results if r is not True][:5])


class TestConnectionCounts(MockTestCase):
    """GET /_conns: connections that carried a function request, and those still open."""

    def conns(self):
        status, _, body = self.send("GET", "/_conns", [("Host", "x")])
        self.assertEqual(status, 200)
        return json.loads(body)

    def wait_open(self, want):
        deadline = time.monotonic() + 5
        while True:
            got = self.conns()
            if got["open"] == want or time.monotonic() > deadline:
                return got

    def test_counts(self):
        # control requests (each on its own connection) are not counted
        self.assertEqual(self.conns(), {"accepted": 0, "open": 0})
        kept = []
        for _ in range(3):
            c = http.client.HTTPConnection(self.mock.host, self.mock.port, timeout=10)
            for _ in range(2):  # two requests, one connection
                c.request("GET", "/httptrigger")
                self.assertEqual(c.getresponse().read(), b"aws lambda invoked\n")
            kept.append(c)
        self.assertEqual(self.wait_open(3), {"accepted": 3, "open": 3})
        kept.pop().close()
        self.assertEqual(self.wait_open(2), {"accepted": 3, "open": 2})
        # a connection the mock closes itself counts as closed too
        with self.connect() as s:
            s.sendall(b"GET /close HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(read_all(s), b"")
        self.assertEqual(self.wait_open(2), {"accepted": 4, "open": 2})
        # /_reset starts the count of accepted connections again; open stays
        status, _, _ = self.send("POST", "/_reset", [("Host", "x")])
        self.assertEqual(status, 200)
        self.assertEqual(self.conns(), {"accepted": 0, "open": 2})
        for c in kept:
            c.close()
        self.assertEqual(self.wait_open(0), {"accepted": 0, "open": 0})


class TestStale(MockTestCase):
    """POST /_stale on: a connection closes upon its second request, unanswered."""

    def test_stale_mode(self):
        status, _, _ = self.send("POST", "/_stale", [("Host", "x")], b"on")
        self.assertEqual(status, 200)
        try:
            c = http.client.HTTPConnection(self.mock.host, self.mock.port, timeout=10)
            c.request("GET", "/httptrigger")
            self.assertEqual(c.getresponse().read(), b"aws lambda invoked\n")
            c.request("POST", "/httptrigger", body=b"x")
            with self.assertRaises((http.client.RemoteDisconnected, ConnectionResetError)):
                c.getresponse()
            c.close()
            _, _, body = self.send("GET", "/_stats", [("Host", "x")])
            self.assertEqual(json.loads(body)["stale_closes"], 1)
            status, _, _ = self.send("POST", "/_stale", [("Host", "x")], b"maybe")
            self.assertEqual(status, 400)
        finally:
            self.send("POST", "/_reset", [("Host", "x")])
        # off after /_reset: two requests on one connection
        c = http.client.HTTPConnection(self.mock.host, self.mock.port, timeout=10)
        for _ in range(2):
            c.request("GET", "/httptrigger")
            r = c.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
        c.close()


HAVE_MOTO = importlib.util.find_spec("moto") is not None
ECS_TOKEN = "test-container-authorization-token"


def http_request(port, method, path, headers=(), body=b"", timeout=10):
    """One request on a fresh connection -> (status, headers dict, body);
    (None, None, b"") when the server closed the connection without answering."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.putrequest(method, path, skip_accept_encoding=True)
        for n, v in headers:
            c.putheader(n, v)
        if body:
            c.putheader("Content-Length", str(len(body)))
        c.endheaders(body or None)
        try:
            r = c.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError):
            return None, None, b""
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


class CredentialServersTestCase(MockTestCase):
    """A mock with every credential server (STS only with moto)."""

    @classmethod
    def setUpClass(cls):
        args = ["--imds-port", "0", "--ecs-port", "0", "--ecs-token", ECS_TOKEN]
        if HAVE_MOTO:
            args += ["--sts-port", "0"]
        cls.mock = Mock(args=args)
        cls.hostport = "%s:%d" % (cls.mock.host, cls.mock.port)
        _, _, body = http_request(cls.mock.port, "GET", "/_servers")
        cls.servers = json.loads(body)

    def setUp(self):
        self.control("POST", "/_reset")

    def control(self, method, path, obj=None, raw=None):
        body = raw if raw is not None else (json.dumps(obj).encode() if obj is not None else b"")
        status, _, rbody = http_request(self.mock.port, method, path, body=body)
        return status, json.loads(rbody) if rbody else None

    def stats(self):
        return self.control("GET", "/_stats")[1]

    def imds(self, method, path, headers=()):
        return http_request(self.servers["imds_port"], method, path, headers)

    def imds_token(self, ttl="60"):
        status, headers, body = self.imds("PUT", "/latest/api/token",
                                          [("X-aws-ec2-metadata-token-ttl-seconds", ttl)])
        self.assertEqual(status, 200)
        self.assertEqual(headers["x-aws-ec2-metadata-token-ttl-seconds"], ttl)
        return body.decode()

    def ecs(self, path="/creds", token=ECS_TOKEN):
        return http_request(self.servers["ecs_port"], "GET", path,
                            [("Authorization", token)] if token is not None else [])

    def signed_verdict(self, ak, sk, token):
        return self.verdict("GET", "/echo", self.sign("GET", "/echo", ak=ak, sk=sk, token=token))

    def assertExpiresIn(self, iso, seconds, slack=5):
        when = datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
        self.assertAlmostEqual(when - time.time(), seconds, delta=slack)


class TestImds(CredentialServersTestCase):
    ROLE = "/latest/meta-data/iam/security-credentials/"

    def test_imdsv1_is_refused(self):
        for path in (self.ROLE, self.ROLE + "mock-instance-role", "/latest/meta-data/placement/region"):
            self.assertEqual(self.imds("GET", path)[0], 401, path)
        self.assertEqual(self.imds("GET", self.ROLE,
                                   [("X-aws-ec2-metadata-token", "not-a-token")])[0], 401)
        self.assertEqual(self.stats()["imds_unauthorized"], 4)

    def test_token_rules(self):
        put = "/latest/api/token"
        self.assertEqual(self.imds("PUT", put)[0], 400)  # no TTL
        for bad in ("0", "21601", "x", ""):
            self.assertEqual(self.imds("PUT", put, [("X-aws-ec2-metadata-token-ttl-seconds",
                                                     bad)])[0], 400, bad)
        self.assertEqual(self.imds("PUT", put, [("X-aws-ec2-metadata-token-ttl-seconds", "60"),
                                                ("X-Forwarded-For", "1.2.3.4")])[0], 403)
        self.assertEqual(self.imds("GET", put)[0], 405)
        self.assertEqual(self.stats()["imds_token_refused"], 7)
        self.imds_token("21600")
        # a token stops working when its TTL has passed
        token = self.imds_token("1")
        self.assertEqual(self.imds("GET", self.ROLE, [("X-aws-ec2-metadata-token", token)])[0],
                         200)
        time.sleep(1.1)
        self.assertEqual(self.imds("GET", self.ROLE, [("X-aws-ec2-metadata-token", token)])[0],
                         401)
        self.assertEqual(self.stats()["imds_token"], 2)

    def test_credentials(self):
        tok = [("X-aws-ec2-metadata-token", self.imds_token())]
        status, _, body = self.imds("GET", self.ROLE, tok)
        self.assertEqual((status, body), (200, b"mock-instance-role"))
        self.assertEqual(self.imds("GET", self.ROLE.rstrip("/"), tok)[2], body)
        status, headers, body = self.imds("GET", self.ROLE + "mock-instance-role", tok)
        self.assertEqual(status, 200)
        doc = json.loads(body)
        self.assertEqual(sorted(doc), ["AccessKeyId", "Code", "Expiration", "LastUpdated",
                                       "SecretAccessKey", "Token", "Type"])
        self.assertEqual((doc["Code"], doc["Type"], doc["AccessKeyId"], doc["SecretAccessKey"],
                          doc["Token"]),
                         ("Success", "AWS-HMAC", "ASIAIMDSEXAMPLE1", "imdsSecretKeyExample1",
                          "imdsSessionTokenExample1"))
        self.assertExpiresIn(doc["Expiration"], 3600)
        self.assertExpiresIn(doc["LastUpdated"], 0)
        # the extended API: the same, plus the account
        ext = "/latest/meta-data/iam/security-credentials-extended/"
        self.assertEqual(self.imds("GET", ext, tok)[2], b"mock-instance-role")
        status, _, body = self.imds("GET", ext + "mock-instance-role", tok)
        self.assertEqual(json.loads(body)["AccountId"], "123456789012")
        self.assertEqual(json.loads(body)["AccessKeyId"], "ASIAIMDSEXAMPLE1")
        # the rest
        self.assertEqual(self.imds("GET", self.ROLE + "other-role", tok)[0], 404)
        self.assertEqual(self.imds("GET", "/latest/meta-data/placement/region", tok)[2],
                         b"us-east-1")
        self.assertEqual(self.imds("GET", "/latest/meta-data/ami-id", tok)[0], 404)
        st = self.stats()
        self.assertEqual((st["imds_role"], st["imds_credentials"], st["imds_extended"],
                          st["imds_not_found"]), (3, 2, 2, 2))
        # signed with what IMDS served: ok, and only with its token
        self.assertEqual(self.signed_verdict("ASIAIMDSEXAMPLE1", "imdsSecretKeyExample1",
                                             "imdsSessionTokenExample1"), "ok")
        self.assertEqual(self.signed_verdict("ASIAIMDSEXAMPLE1", "imdsSecretKeyExample1",
                                             None), "mismatch")

    def test_botocore_imds_client(self):
        fetcher = botocore.utils.InstanceMetadataFetcher(
            timeout=5, num_attempts=1, env={},
            base_url="http://127.0.0.1:%d" % self.servers["imds_port"],
            config={"ec2_metadata_v1_disabled": True})
        creds = fetcher.retrieve_iam_role_credentials()
        self.assertEqual((creds["role_name"], creds["access_key"], creds["secret_key"],
                          creds["token"]),
                         ("mock-instance-role", "ASIAIMDSEXAMPLE1", "imdsSecretKeyExample1",
                          "imdsSessionTokenExample1"))
        self.assertExpiresIn(creds["expiry_time"], 3600)
        self.assertEqual(self.stats()["imds_token"], 1)


class TestContainerCredentials(CredentialServersTestCase):
    def test_authorization(self):
        self.assertEqual(self.ecs(token=None)[0], 401)
        self.assertEqual(self.ecs(token="wrong")[0], 401)
        status, headers, body = self.ecs()
        self.assertEqual(status, 200)
        doc = json.loads(body)
        self.assertEqual(sorted(doc), ["AccessKeyId", "Expiration", "RoleArn",
                                       "SecretAccessKey", "Token"])
        self.assertEqual((doc["AccessKeyId"], doc["SecretAccessKey"], doc["Token"]),
                         ("ASIAECSEXAMPLE1", "ecsSecretKeyExample1", "ecsSessionTokenExample1"))
        self.assertExpiresIn(doc["Expiration"], 3600)
        st = self.stats()
        self.assertEqual((st["ecs_unauthorized"], st["ecs_credentials"]), (2, 1))
        self.assertEqual(self.signed_verdict("ASIAECSEXAMPLE1", "ecsSecretKeyExample1",
                                             "ecsSessionTokenExample1"), "ok")

    def test_rolling_expiration(self):
        self.assertEqual(self.control("POST", "/_creds", {
            "source": "ecs", "access_key": "ASIAROLL1", "secret_key": "rollSecret1",
            "token": "rollToken1", "expires_in": 4, "rolling": True})[0], 200)
        time.sleep(2)
        doc = json.loads(self.ecs()[2])
        # expires 4 s after this answer (set + 6 s), not after the /_creds call (set + 4 s)
        self.assertExpiresIn(doc["Expiration"], 4, slack=1.5)
        time.sleep(3)
        self.assertEqual(self.signed_verdict("ASIAROLL1", "rollSecret1", "rollToken1"), "ok")

    def test_garbage_and_down(self):
        status, _, body = self.ecs("/garbage")
        self.assertEqual(status, 200)
        self.assertRaises(ValueError, json.loads, body)
        self.assertEqual(self.ecs("/garbage", token="wrong")[0], 401)
        self.assertEqual(self.ecs("/down"), (None, None, b""))
        st = self.stats()
        self.assertEqual((st["ecs_garbage"], st["ecs_down"], st["ecs_unauthorized"]), (1, 1, 1))

    def test_botocore_container_client(self):
        fetcher = botocore.utils.ContainerMetadataFetcher()
        doc = fetcher.retrieve_full_uri(
            "http://127.0.0.1:%d/v2/credentials" % self.servers["ecs_port"],
            headers={"Authorization": ECS_TOKEN})
        self.assertEqual(doc["AccessKeyId"], "ASIAECSEXAMPLE1")


class TestControl(CredentialServersTestCase):
    def test_rotation_and_expiry(self):
        status, res = self.control("POST", "/_creds", {
            "source": "ecs", "access_key": "ASIAROTATED1", "secret_key": "rotatedSecret1",
            "token": "rotatedToken1", "expires_in": 2})
        self.assertEqual(status, 200)
        self.assertEqual(res["access_key"], "ASIAROTATED1")
        doc = json.loads(self.ecs()[2])
        self.assertEqual((doc["AccessKeyId"], doc["SecretAccessKey"], doc["Token"]),
                         ("ASIAROTATED1", "rotatedSecret1", "rotatedToken1"))
        self.assertExpiresIn(doc["Expiration"], 2, slack=2)
        # both the new pair and the one served before are valid
        self.assertEqual(self.signed_verdict("ASIAROTATED1", "rotatedSecret1", "rotatedToken1"),
                         "ok")
        self.assertEqual(self.signed_verdict("ASIAECSEXAMPLE1", "ecsSecretKeyExample1",
                                             "ecsSessionTokenExample1"), "ok")
        time.sleep(2.1)
        self.assertEqual(self.signed_verdict("ASIAROTATED1", "rotatedSecret1", "rotatedToken1"),
                         "expired")
        st = self.stats()
        self.assertEqual(st["signed"]["ASIAROTATED1"], {"ok": 1, "expired": 1})
        # form parameters too, for IMDS; the other source is unchanged
        status, res = self.control("POST", "/_creds?source=imds", raw=(
            b"access_key=ASIAIMDSNEW&secret_key=imdsNewSecret&token=imdsNewToken"
            b"&expires_in=3000"))
        self.assertEqual(status, 200)
        creds = botocore.utils.InstanceMetadataFetcher(
            timeout=5, num_attempts=1, env={},
            base_url="http://127.0.0.1:%d" % self.servers["imds_port"],
        ).retrieve_iam_role_credentials()
        self.assertEqual(creds["access_key"], "ASIAIMDSNEW")
        self.assertExpiresIn(creds["expiry_time"], 3000)
        self.assertEqual(json.loads(self.ecs()[2])["AccessKeyId"], "ASIAROTATED1")
        # reset: the defaults again, counters cleared, pairs still known
        self.assertEqual(self.control("POST", "/_reset")[0], 200)
        self.assertEqual(json.loads(self.ecs()[2])["AccessKeyId"], "ASIAECSEXAMPLE1")
        st = self.stats()
        self.assertEqual((st["ecs_credentials"], st["signed"]), (1, {}))
        self.assertEqual(self.signed_verdict("ASIAIMDSNEW", "imdsNewSecret", "imdsNewToken"),
                         "ok")

    def test_failures_and_delay(self):
        for fail, want in (("garbage", 200), ("error", 500), ("down", None)):
            self.assertEqual(self.control("POST", "/_creds",
                                          {"source": "ecs", "fail": fail})[0], 200)
            status, _, body = self.ecs()
            self.assertEqual(status, want, fail)
            if status == 200:
                self.assertRaises(ValueError, json.loads, body)
        self.assertEqual(self.stats()["ecs_failed"], 3)
        self.control("POST", "/_creds", {"source": "ecs", "fail": None, "delay_ms": 300})
        t0 = time.monotonic()
        self.assertEqual(self.ecs()[0], 200)
        self.assertGreaterEqual(time.monotonic() - t0, 0.29)
        # IMDS fails on the credentials document only
        self.control("POST", "/_creds", {"source": "imds", "fail": "error"})
        tok = [("X-aws-ec2-metadata-token", self.imds_token())]
        self.assertEqual(self.imds("GET", TestImds.ROLE, tok)[0], 200)
        self.assertEqual(self.imds("GET", TestImds.ROLE + "mock-instance-role", tok)[0], 500)
        self.assertEqual(self.stats()["imds_failed"], 1)

    def test_bad_requests(self):
        for obj in ({"source": "nope"}, {"source": "ecs", "access_key": "A"},
                    {"source": "ecs", "fail": "sometimes"}, {"source": "ecs", "expires_in": "x"},
                    {"source": "ecs", "colour": "blue"}):
            self.assertEqual(self.control("POST", "/_creds", obj)[0], 400, obj)
        self.assertEqual(self.control("POST", "/_creds", raw=b"{not json")[0], 400)
        self.assertEqual(self.control("GET", "/_creds")[0], 405)
        self.assertEqual(self.control("POST", "/_stats")[0], 405)
        # other /_ paths are described like any path
        status, _, body = http_request(self.mock.port, "GET", "/_other")
        self.assertEqual(dict(describe(body))["path"], "/_other")

    def test_servers_and_secrets(self):
        self.assertEqual(self.servers["ecs_token"], ECS_TOKEN)
        self.assertIsInstance(self.servers["imds_port"], int)
        secrets = set(self.control("GET", "/_secrets")[1]["secrets"])
        for want in ("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "tempSessionTokenExample",
                     "imdsSecretKeyExample1", "ecsSessionTokenExample1", ECS_TOKEN):
            self.assertIn(want, secrets)
        self.assertNotIn("ASIAECSEXAMPLE1", secrets)


@unittest.skipUnless(HAVE_MOTO, "moto[server] is not installed")
class TestSts(CredentialServersTestCase):
    def client(self, **kw):
        return botocore.session.get_session().create_client(
            "sts", region_name="us-east-1",
            endpoint_url="http://127.0.0.1:%d" % self.servers["sts_port"], **kw)

    def test_assume_role_signed_with_static_keys(self):
        sts = self.client(aws_access_key_id=AK, aws_secret_access_key=SK)
        res = sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/test",
                              RoleSessionName="t-session", ExternalId="ext-1")
        creds = res["Credentials"]
        self.assertTrue(creds["AccessKeyId"].startswith("ASIA"))
        ak, sk, token = creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]
        # the verifier knows moto's pair
        self.assertEqual(self.signed_verdict(ak, sk, token), "ok")
        self.assertEqual(self.signed_verdict(ak, sk, None), "mismatch")
        self.assertEqual(self.signed_verdict(ak, sk, token + "x"), "mismatch")
        self.assertEqual(self.signed_verdict(ak, "wrong", token), "mismatch")
        calls = self.stats()["sts"]
        self.assertEqual(len(calls), 1)
        self.assertEqual({k: calls[0][k] for k in ("action", "role_arn", "session_name",
                                                   "external_id", "access_key", "signed_by",
                                                   "signature", "status")},
                         {"action": "AssumeRole", "role_arn": "arn:aws:iam::123456789012:role/test",
                          "session_name": "t-session", "external_id": "ext-1", "access_key": ak,
                          "signed_by": AK, "signature": "ok", "status": 200})
        secrets = set(self.control("GET", "/_secrets")[1]["secrets"])
        self.assertLessEqual({sk, token}, secrets)
        # role chaining: signed with the assumed role's temporary credentials
        chained = self.client(aws_access_key_id=ak, aws_secret_access_key=sk,
                              aws_session_token=token).assume_role(
            RoleArn="arn:aws:iam::123456789012:role/next", RoleSessionName="next")
        self.assertEqual(self.stats()["sts"][-1]["signed_by"], ak)
        c = chained["Credentials"]
        self.assertEqual(self.signed_verdict(c["AccessKeyId"], c["SecretAccessKey"],
                                             c["SessionToken"]), "ok")

    def test_assume_role_must_be_signed_correctly(self):
        for kw, code in (({"aws_access_key_id": AK, "aws_secret_access_key": "wrong"},
                          "SignatureDoesNotMatch"),
                         ({"aws_access_key_id": "AKIDUNKNOWN", "aws_secret_access_key": "x"},
                          "InvalidClientTokenId"),
                         ({"aws_access_key_id": "ASIATEMPEXAMPLE",
                           "aws_secret_access_key": "tempSecretKeyExample"},
                          "SignatureDoesNotMatch"),  # without its session token
                         ({"config": Config(signature_version=UNSIGNED)},
                          "MissingAuthenticationToken")):
            with self.assertRaises(ClientError) as ctx:
                self.client(**kw).assume_role(RoleArn="arn:aws:iam::123456789012:role/test",
                                              RoleSessionName="t-session")
            self.assertEqual(ctx.exception.response["Error"]["Code"], code)
        st = self.stats()
        self.assertEqual([c["status"] for c in st["sts"]], [403] * 4)
        self.assertEqual(st["sts_assume_role"], 4)
        # with the session token, the temporary key is accepted
        self.client(aws_access_key_id="ASIATEMPEXAMPLE",
                    aws_secret_access_key="tempSecretKeyExample",
                    aws_session_token="tempSessionTokenExample").assume_role(
            RoleArn="arn:aws:iam::123456789012:role/test", RoleSessionName="t-session")
        self.assertEqual(self.stats()["sts"][-1]["status"], 200)

    def test_assume_role_with_web_identity(self):
        # unsigned, as AWS wants it; moto accepts any token
        res = self.client(config=Config(signature_version=UNSIGNED)).assume_role_with_web_identity(
            RoleArn="arn:aws:iam::123456789012:role/web", RoleSessionName="web-session",
            WebIdentityToken="eyJhbGciOiJSUzI1NiJ9.test-web-identity.sig")
        c = res["Credentials"]
        self.assertEqual(res["AssumedRoleUser"]["Arn"],
                         "arn:aws:sts::123456789012:assumed-role/web/web-session")
        self.assertEqual(self.signed_verdict(c["AccessKeyId"], c["SecretAccessKey"],
                                             c["SessionToken"]), "ok")
        st = self.stats()
        self.assertEqual((st["sts_calls"], st["sts_assume_role_with_web_identity"]), (1, 1))
        call = st["sts"][0]
        self.assertEqual((call["action"], call["signature"], call["access_key"],
                          call["web_identity_token"]),
                         ("AssumeRoleWithWebIdentity", "none", c["AccessKeyId"],
                          "eyJhbGciOiJSUzI1NiJ9.test-web-identity.sig"))
        self.assertIn("eyJhbGciOiJSUzI1NiJ9.test-web-identity.sig",
                      self.control("GET", "/_secrets")[1]["secrets"])
        # moto's pair expires after DurationSeconds (default an hour)
        self.assertAlmostEqual((c["Expiration"] - datetime.datetime.now(
            datetime.timezone.utc)).total_seconds(), 3600, delta=10)

    def test_assume_role_duration_set_by_the_control_api(self):
        self.assertEqual(self.control("POST", "/_creds", {"source": "sts", "expires_in": 10})[0],
                         200)
        self.assertEqual(self.control("POST", "/_creds", {"source": "sts", "delay_ms": 1})[0],
                         400)
        sts = self.client(aws_access_key_id=AK, aws_secret_access_key=SK)
        c = sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/short",
                            RoleSessionName="short")["Credentials"]
        self.assertAlmostEqual((c["Expiration"] - datetime.datetime.now(
            datetime.timezone.utc)).total_seconds(), 10, delta=3)
        self.assertEqual(self.stats()["sts"][-1]["signature"], "ok")


if __name__ == "__main__":
    unittest.main()
