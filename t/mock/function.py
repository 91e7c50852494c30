#!/usr/bin/env python3
"""Mock AWS Lambda function endpoint for the Test::Nginx suite.

Verifies the AWS Signature V4 of every request with botocore (an
implementation this project did not write) and answers according to the
path. Python 3 standard library + botocore only.

    python3 t/mock/function.py --port 1990 [--host 127.0.0.1]

Prints `mock function listening on HOST:PORT` on stdout once listening; logs
one line per request (method, target, verdict) to stderr.

Endpoints (any method):
  /httptrigger*     200 "aws lambda invoked\\n" (like APISIX's test server)
  /status/<code>    that status, body "status <code>\\n", X-Mock, 2 Set-Cookie
  /sleep/<ms>       sleeps, then 200 "slept <ms>\\n"
  /big/<n>          200 with n bytes of 'x' and a Content-Length
  /chunked/<n>      the same, chunked
  /close            reads the request, closes without answering
  /garbage          answers "this is not http\\r\\n\\r\\n" and closes
  /headers-only     Content-Length: 100, 10 bytes of body, closes
  anything else     200 text/plain describing the request (see describe())
"""

import argparse
import hashlib
import hmac
import http
import itertools
import os
import re
import socket
import sys
import threading
import time
from urllib.parse import unquote
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

import http.client

# Tests send requests with more headers than http.server's default limit of 100,
# which API Gateway and Lambda function URLs accept.
http.client._MAXHEADERS = 1000

# access key -> secret key
TEST_KEYS = {
    "AKIDEXAMPLE": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    "KEY1": "KeySecret",
    "ASIATEMPEXAMPLE": "tempSecretKeyExample",
}


def load_keys(env=None):
    """The fixed test keys plus MOCK_CREDENTIALS="ak:sk,ak2:sk2"."""
    env = os.environ if env is None else env
    keys = dict(TEST_KEYS)
    for pair in env.get("MOCK_CREDENTIALS", "").split(","):
        pair = pair.strip()
        if not pair:
            continue
        ak, sep, sk = pair.partition(":")
        if sep and ak:
            keys[ak] = sk
    return keys


KEYS = load_keys()
LOG_LOCK = threading.Lock()


def log(msg):
    with LOG_LOCK:
        try:
            sys.stderr.write(msg + "\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass


# --------------------------------------------------------------------------
# signature verification
# --------------------------------------------------------------------------


class ReceivedSigV4(SigV4Auth):
    """botocore's SigV4 with the signed header set taken from the request.

    AWS computes the canonical request over exactly the headers the client
    named in SignedHeaders (all received values of each), not over
    botocore's own selection of headers.
    """

    def __init__(self, credentials, service, region, signed_names, received):
        super().__init__(credentials, service, region)
        self._signed_names = signed_names
        self._received = received

    def headers_to_sign(self, request):
        header_map = HTTPHeaders()
        for name in self._signed_names:
            for rname, value in self._received:
                if rname.lower() == name:
                    header_map[name] = value
        return header_map


_AUTH_RE = re.compile(r"AWS4-HMAC-SHA256\s+(.*)\Z", re.S)
_AMZ_DATE_RE = re.compile(r"\d{8}T\d{6}Z\Z")


def _as_text(value):
    """Header bytes arrive decoded as latin-1: give botocore the UTF-8 text."""
    raw = value.encode("latin-1", "replace")
    return raw.decode("utf-8", "surrogateescape")


def parse_authorization(value):
    """-> dict(access_key, date, region, service, signed_headers, signature)
    or None when malformed."""
    m = _AUTH_RE.match(value.strip())
    if not m:
        return None
    fields = {}
    for part in m.group(1).split(","):
        key, sep, val = part.strip().partition("=")
        if not sep or key in fields:
            return None
        fields[key] = val.strip()
    if set(fields) != {"Credential", "SignedHeaders", "Signature"}:
        return None
    scope = fields["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request" or not all(scope[:4]):
        return None
    signed = fields["SignedHeaders"].split(";")
    if not all(signed):
        return None
    if not re.fullmatch(r"[0-9a-f]{64}", fields["Signature"]):
        return None
    return {
        "access_key": scope[0],
        "date": scope[1],
        "region": scope[2],
        "service": scope[3],
        "signed_headers": signed,
        "signed_headers_raw": fields["SignedHeaders"],
        "signature": fields["Signature"],
    }


class Verdict:
    """The outcome of verify(): verdict (ok, none, mismatch, unknown-key,
    malformed), the SignedHeaders text, a debug text for the log, and the
    canonical request / string to sign when they could be computed."""

    def __init__(self, verdict, signed_headers="", debug="", canonical_request=None,
                 string_to_sign=None):
        self.verdict = verdict
        self.signed_headers = signed_headers
        self.debug = debug
        self.canonical_request = canonical_request
        self.string_to_sign = string_to_sign

    def __repr__(self):
        return "Verdict(%r, %r)" % (self.verdict, self.signed_headers)


def verify(method, target, headers, body, keys=None):
    """Verify the SigV4 signature of a received request, as AWS does.

    method, target: as on the request line (the target raw, not decoded).
    headers: list of (name, value) as received, repeated fields repeated;
    values as http.server gives them (bytes decoded as latin-1).
    body: the body bytes.  Returns a Verdict.
    """
    keys = KEYS if keys is None else keys
    auths = [v for n, v in headers if n.lower() == "authorization"]
    if not auths:
        return Verdict("none")
    if len(auths) > 1:
        return Verdict("malformed", "", "more than one Authorization header")
    auth = parse_authorization(auths[0])
    if auth is None:
        return Verdict("malformed", "", "cannot parse Authorization: %r" % auths[0])
    signed_text = auth["signed_headers_raw"]
    names = auth["signed_headers"]
    if "host" not in names:
        return Verdict("malformed", signed_text, "host is not a signed header")
    dates = [v for n, v in headers if n.lower() == "x-amz-date"]
    if len(dates) != 1 or not _AMZ_DATE_RE.match(dates[0].strip()):
        return Verdict("malformed", signed_text, "no valid X-Amz-Date: %r" % dates)
    amz_date = dates[0].strip()
    secret = keys.get(auth["access_key"])
    if secret is None:
        return Verdict("unknown-key", signed_text,
                       "unknown access key %r" % auth["access_key"])

    received = [(n, _as_text(v)) for n, v in headers]
    present = {n.lower() for n, _ in received}
    problems = []
    missing = [n for n in names if n not in present]
    if missing:
        problems.append("signed headers missing from the request: %s" % ",".join(missing))
    if auth["date"] != amz_date[:8]:
        problems.append("credential date %s is not the X-Amz-Date day" % auth["date"])
    body_hash = hashlib.sha256(body).hexdigest()
    for n, v in received:
        if n.lower() == "x-amz-content-sha256" and v.strip() != body_hash:
            problems.append("x-amz-content-sha256 %s is not the body's %s"
                            % (v.strip(), body_hash))

    text_target = _as_text(target)
    if text_target.startswith(("http://", "https://")):
        url = text_target
    else:
        host = next((v for n, v in received if n.lower() == "host"), "localhost")
        url = "http://" + host.strip() + text_target
    request = AWSRequest(method=method, url=url, data=body)
    # The path goes to botocore raw, and botocore encodes it once more as
    # AWS does for every service but S3.  The query, AWS decodes and encodes
    # again (RFC 3986, UTF-8) before sorting: hand botocore the decoded
    # parameters, which it encodes and sorts (the way it signs its own).
    query = url.partition("?")[2].partition("#")[0]
    request.params = [
        (unquote(k), unquote(v))
        for k, _, v in (pair.partition("=") for pair in query.split("&") if pair)
    ]
    for n, v in received:
        if n.lower() in names:
            request.headers[n] = v
    request.context["timestamp"] = amz_date
    signer = ReceivedSigV4(
        Credentials(auth["access_key"], secret),
        auth["service"],
        auth["region"],
        names,
        received,
    )
    try:
        canonical = signer.canonical_request(request)
        string_to_sign = signer.string_to_sign(request, canonical)
        expected = signer.signature(string_to_sign, request)
        signed_again = signer.signed_headers(signer.headers_to_sign(request))
    except Exception as exc:  # bad bytes, odd URLs: never crash
        return Verdict("malformed", signed_text, "cannot compute the signature: %r" % exc)
    if signed_again != signed_text:
        problems.append("SignedHeaders %r is not sorted, lowercase and unique" % signed_text)
    if hmac.compare_digest(expected, auth["signature"]) and not problems:
        return Verdict("ok", signed_text, "", canonical, string_to_sign)
    debug = (
        "signature mismatch: got %s, expected %s%s\n"
        "--- canonical request ---\n%s\n--- string to sign ---\n%s"
        % (auth["signature"], expected,
           "".join("\n" + p for p in problems), canonical, string_to_sign)
    )
    return Verdict("mismatch", signed_text, debug, canonical, string_to_sign)


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------

_CONN_SERIAL = itertools.count(1)
_CHUNK = 64 * 1024


class BadRequest(Exception):
    pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # errors on unparsable request lines get a status line too
    default_request_version = "HTTP/1.1"
    server_version = "mock-function"
    sys_version = ""

    def version_string(self):
        return self.server_version
    timeout = 120  # idle keep-alive connections

    def setup(self):
        super().setup()
        self.conn_serial = next(_CONN_SERIAL)

    # BaseHTTPRequestHandler calls do_<METHOD>; answer every method the same
    def __getattr__(self, name):
        if name.startswith("do_"):
            return self.serve
        raise AttributeError(name)

    def log_message(self, fmt, *args):
        log("mock: %s - %s" % (self.address_string(), fmt % args))

    def log_request(self, code="-", size="-"):
        pass  # serve() logs its own line

    # -- helpers --------------------------------------------------------------

    def read_body(self):
        te = [v for n, v in self.headers.items() if n.lower() == "transfer-encoding"]
        if te and te[-1].strip().lower() == "chunked":
            return self.read_chunked()
        lengths = [v.strip() for n, v in self.headers.items() if n.lower() == "content-length"]
        if not lengths:
            return b""
        if len(set(lengths)) != 1 or not lengths[0].isdigit():
            raise BadRequest("bad Content-Length %r" % lengths)
        n = int(lengths[0])
        data = self.rfile.read(n)
        if len(data) != n:
            raise BadRequest("body truncated: %d of %d bytes" % (len(data), n))
        return data

    def read_chunked(self):
        body = bytearray()
        while True:
            line = self.rfile.readline(65537)
            if not line.endswith(b"\n"):
                raise BadRequest("bad chunk size line")
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise BadRequest("bad chunk size %r" % size_text) from None
            if size == 0:
                while True:  # trailers
                    t = self.rfile.readline(65537)
                    if t in (b"\r\n", b"\n", b""):
                        return bytes(body)
            data = self.rfile.read(size)
            if len(data) != size:
                raise BadRequest("chunk truncated")
            body += data
            if self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise BadRequest("no CRLF after chunk")

    def write(self, data):
        self.wfile.write(data)

    def send_head(self, code, headers, reason=None):
        if reason is None:
            try:
                reason = http.HTTPStatus(code).phrase
            except ValueError:
                reason = "Unknown"
        lines = ["HTTP/1.1 %d %s" % (code, reason),
                 "Server: " + self.version_string(),
                 "Date: " + self.date_time_string()]
        lines += ["%s: %s" % (n, v) for n, v in headers]
        self.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def respond(self, code, body, headers, include_length=True):
        no_body = self.command == "HEAD" or code in (204, 304) or 100 <= code < 200
        headers = list(headers)
        if include_length and not (code in (204, 304) or 100 <= code < 200):
            headers.append(("Content-Length", str(len(body))))
        self.send_head(code, headers)
        if not no_body:
            self.write(body)

    # -- the request ----------------------------------------------------------

    def serve(self):
        # the raw request target exactly as on the request line (self.path
        # has leading slashes collapsed by http.server)
        words = self.requestline.split()
        target = words[1] if len(words) >= 2 else self.path
        method = self.command
        received = list(self.headers.items())
        try:
            body = self.read_body()
        except BadRequest as exc:
            log("mock: %s %s bad request: %s" % (method, target, exc))
            self.close_connection = True
            self.send_error(400, str(exc))
            return
        result = verify(method, target, received, body)
        verdict, signed = result.verdict, result.signed_headers
        log("mock: %s %s %s conn=%d" % (method, target, verdict, self.conn_serial))
        if result.debug:
            log(result.debug)

        path = target.partition("?")[0]
        if path.startswith("/httptrigger"):
            self.respond(200, b"aws lambda invoked\n",
                         [("Content-Type", "text/plain"), ("Connection", "Keep-Alive")])
        elif (m := re.fullmatch(r"/status/(\d{3})", path)):
            code = int(m.group(1))
            self.respond(code, ("status %d\n" % code).encode(),
                         [("Content-Type", "text/plain"), ("X-Mock", "yes"),
                          ("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; Path=/"),
                          ("Connection", "keep-alive")])
        elif (m := re.fullmatch(r"/sleep/(\d{1,9})", path)):
            ms = int(m.group(1))
            time.sleep(ms / 1000.0)
            self.respond(200, ("slept %d\n" % ms).encode(), [("Content-Type", "text/plain")])
        elif (m := re.fullmatch(r"/big/(\d{1,12})", path)):
            self.send_big(int(m.group(1)), chunked=False)
        elif (m := re.fullmatch(r"/chunked/(\d{1,12})", path)):
            self.send_big(int(m.group(1)), chunked=True)
        elif path == "/close":
            self.close_connection = True
        elif path == "/garbage":
            self.write(b"this is not http\r\n\r\n")
            self.close_connection = True
        elif path == "/headers-only":
            self.send_head(200, [("Content-Type", "text/plain"), ("Content-Length", "100")])
            self.write(b"x" * 10)
            self.close_connection = True
        else:
            self.respond(200, self.describe(method, target, received, body, verdict, signed),
                         [("Content-Type", "text/plain")])

    def send_big(self, n, chunked):
        headers = [("Content-Type", "application/octet-stream")]
        headers.append(("Transfer-Encoding", "chunked") if chunked else ("Content-Length", str(n)))
        self.send_head(200, headers)
        if self.command == "HEAD":
            return
        block = b"x" * _CHUNK
        left = n
        while left > 0:
            k = min(left, _CHUNK)
            piece = block if k == _CHUNK else block[:k]
            if chunked:
                self.write(b"%x\r\n" % k + piece + b"\r\n")
            else:
                self.write(piece)
            left -= k
        if chunked:
            self.write(b"0\r\n\r\n")

    def describe(self, method, target, received, body, verdict, signed):
        path, _, query = target.partition("?")
        out = [
            b"method: " + method.encode("latin-1"),
            b"target: " + target.encode("latin-1"),
            b"path: " + path.encode("latin-1"),
            b"query: " + query.encode("latin-1"),
            b"signature: " + verdict.encode(),
            b"signed_headers: " + signed.encode("latin-1", "replace"),
        ]
        for name, value in received:
            out.append(b"header: " + name.lower().encode("latin-1") + b": "
                       + value.encode("latin-1", "replace"))
        out.append(b"body_length: %d" % len(body))
        try:
            body.decode("utf-8")
            out.append(b"body: " + body)
        except UnicodeDecodeError:
            out.append(b"body_hex: " + body.hex().encode())
        out.append(b"conn: %d" % self.conn_serial)
        return b"\n".join(out) + b"\n"

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (ConnectionError, socket.timeout, TimeoutError):
            self.close_connection = True
        except Exception as exc:  # never let a bad request kill anything
            log("mock: internal error: %r" % exc)
            self.close_connection = True


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        log("mock: error on connection from %s: %r" % (client_address, sys.exc_info()[1]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=1990)
    ap.add_argument("--host", default="127.0.0.1")
    args = ap.parse_args(argv)
    server = Server((args.host, args.port), Handler)
    host, port = server.server_address[:2]
    print("mock function listening on %s:%d" % (host, port), flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
