#!/usr/bin/env python3
"""Mock AWS Lambda function endpoint for the Test::Nginx suite.

Verifies the AWS Signature V4 of every request with botocore (an
implementation this project did not write) and answers according to the
path. Python 3 standard library + botocore; moto[server] for --sts-port.

    python3 t/mock/function.py --port 1990 [--host 127.0.0.1]
        [--imds-port N] [--ecs-port N [--ecs-token TOKEN]] [--sts-port N]

Prints `mock function listening on HOST:PORT` on stdout once listening (and
every extra listener is ready); logs one line per request (method, target,
verdict) to stderr.  Port 0 picks a free port (GET /_servers tells which).

Endpoints (any method):
  /httptrigger*     200 "aws lambda invoked\\n" (like APISIX's test server)
  /status/<code>    that status, body "status <code>\\n", X-Mock, 2 Set-Cookie
  /sleep/<ms>       sleeps, then 200 "slept <ms>\\n"
  /big/<n>          200 with n bytes of 'x' and a Content-Length
  /chunked/<n>      the same, chunked
  /slow-headers/<ms> the status line and one header, then <ms> of nothing, then the rest
  /slow-body/<ms>   the head and 5 of 10 body bytes, then <ms> of nothing, then the rest
  /many-headers/<n> 200 with n headers X-H-<i>: v
  /long-header/<n>  200 with one header X-Long of n bytes
  /close            reads the request, closes without answering
  /garbage          answers "this is not http\\r\\n\\r\\n" and closes
  /headers-only     Content-Length: 100, 10 bytes of body, closes
  Streamed answers (chunked unless said; ?tag=T records the answer's progress
  under T for GET /_streams, ?sha256=1 adds the digest of the body sent, and
  ?sndbuf=N sets the socket's SO_SNDBUF):
  /stream/<n>/<ms>  n chunks "chunk <i>\n", <ms> apart (the first at once)
  /sse/<n>/<ms>     text/event-stream: n events "data: event <i>\n\n", <ms> apart
  /stream-big/<n>   n bytes as fast as the reader takes them, in 64 KiB pieces;
                    piece k is its number k (8 bytes, big-endian) then bytes
                    (k + i) % 251; with ?length=1 a Content-Length instead
  /stall/<ms>       "before\n", then nothing for <ms>, then "after\n"
  /cut/<n>          n bytes of 'x' in chunks, then closes without the last chunk
  /reset/<n>        n bytes of 'x' in chunks, then resets the connection (RST)
  /2015-03-31/functions/<name>/invocations
                    the Lambda Invoke API (POST; see lambda_api.py)
  /2021-11-15/functions/<name>/response-streaming-invocations
                    InvokeWithResponseStream (POST; see lambda_api.py)
  /_<name>          the control API of the credential sources (below)
  anything else     200 text/plain describing the request (see describe())

Signature verdicts: ok; none (no Authorization); malformed; unknown-key;
mismatch (a wrong signature, or an X-Amz-Security-Token that is not the one
issued with the access key, or none for a key issued with one: AWS rejects
both); expired (a correct signature with credentials past their
Expiration).  Known keys: TEST_KEYS, MOCK_CREDENTIALS="ak:sk,ak2:sk2", every
pair the IMDS and container servers hand out, every pair moto's STS issued
(looked up in moto's backend).

Credential sources, extra listeners in this process (so that the verifier
knows every pair they hand out):
  --imds-port N   EC2 IMDSv2.  PUT /latest/api/token with
                  X-aws-ec2-metadata-token-ttl-seconds (1-21600) returns a
                  token (400 without a valid TTL, 403 with X-Forwarded-For);
                  every GET without a valid X-aws-ec2-metadata-token gets 401
                  (no IMDSv1).  GET /latest/meta-data/iam/security-credentials/
                  -> the role name (IMDS_ROLE); .../security-credentials/<role>
                  -> the JSON document EC2 returns (Code, LastUpdated, Type,
                  AccessKeyId, SecretAccessKey, Token, Expiration); the same
                  under .../security-credentials-extended/ (plus AccountId);
                  /latest/meta-data/placement/region and .../availability-zone;
                  404 for anything else.
  --ecs-port N    container credentials (ECS, EKS Pod Identity).  GET on any
                  path -> {AccessKeyId, SecretAccessKey, Token, Expiration,
                  RoleArn}; with --ecs-token, 401 unless Authorization is
                  exactly that token.  /garbage: 200 with invalid JSON;
                  /down: reads the request and closes the connection.
  --sts-port N    moto's STS (moto[server]), in-process; every call is
                  verified like the function's requests, and recorded.
                  POST /_creds source=sts expires_in=N makes AssumeRole* issue
                  credentials for N seconds (DurationSeconds rewritten after
                  the signature check) until /_reset.

Control API on the main port (not signed):
  POST /_creds    JSON {"source": "imds"|"ecs", "access_key", "secret_key",
                  "token", "expires_in" (s, default 3600), "delay_ms" (0),
                  "fail" (null, "garbage", "error" or "down"), "rolling"
                  (true: each answer's pair expires expires_in seconds from
                  that answer)}, or the same
                  as form or query parameters: what that source serves from
                  now on, expiring expires_in seconds from now.  The pair
                  becomes known to the verifier; pairs served before stay
                  known.  Without access_key, only delay_ms / fail change.
  POST /_reset    every source serves its default pair again (ASIAIMDSEXAMPLE1,
                  ASIAECSEXAMPLE1; an hour from now), no delay, no failure;
                  the counters, "signed" and the STS record are cleared.
  GET /_streams   JSON: per ?tag of a streamed answer: sent (bytes written so
                  far), started and ended (time.time()), done (true once the
                  last byte was written), closed (the reader went away first),
                  sha256 (with ?sha256=1, once done); ?tag=T: that record alone
  GET /_stats     JSON: counters per credential endpoint (imds_token,
                  imds_token_refused, imds_unauthorized, imds_role,
                  imds_credentials, imds_extended, imds_not_found, imds_failed,
                  ecs_credentials, ecs_unauthorized, ecs_garbage, ecs_down,
                  ecs_failed, sts_calls, sts_assume_role,
                  sts_assume_role_with_web_identity); "invocations": function
                  name -> calls that reached it (Invoke API);
                  "invocations_repeated": event request ids (requestContext.requestId)
                  that reached a function more than once; "signed": access key ->
                  verdict -> count, of the function's requests; "sts": the STS
                  calls (action, role_arn, session_name, external_id,
                  access_key issued, signed_by, signature).
  GET /_secrets   JSON {"secrets": [...]}: every secret key, session token,
                  container authorization token and web identity token the
                  mock knows (tests check that none reaches a log).
  GET /_servers   JSON {"imds_port", "ecs_port", "sts_port", "ecs_token"}
                  (null for a listener that was not started).
  POST /_stale    body "on", "after" or "off" (off after /_reset): with "on",
                  a connection that has answered a request closes upon the
                  next one, once that request is read and before it is served,
                  as a function whose idle timeout ends a kept-alive connection
                  just as a client reuses it: such requests never reach the
                  endpoint's logic (nor the Invoke API's invocation count).
                  With "after", that request is served (an Invoke counts), but
                  its answer is dropped and the connection closed, as a
                  function that ran and then lost its connection.  /_stats
                  counts these requests as "stale_closes".
  GET /_conns     JSON {"accepted", "open"}: connections to the main port that
                  carried a request other than a control one, since the start
                  or the last /_reset (accepted), and those of them not closed
                  yet (open; /_reset leaves it).  Tests count the connections
                  a client opens and keeps with them.
"""

import argparse
import collections
import datetime
import hashlib
import hmac
import http
import io
import itertools
import json
import os
import re
import secrets
import socket
import struct
import sys
import threading
import time
from urllib.parse import parse_qsl, quote_from_bytes, unquote_to_bytes, urlencode
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import lambda_api
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

import http.client

# Tests send requests with more headers than http.server's default limit of 100,
# which API Gateway and Lambda function URLs accept.
http.client._MAXHEADERS = 1000

# access key -> secret key (long-term keys: no session token), or
# (secret key, session token) for temporary credentials, which AWS accepts
# only with their token
TEST_KEYS = {
    "AKIDEXAMPLE": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    "KEY1": "KeySecret",
    # static temporary credentials (authorization.iam.session_token)
    "ASIATEMPEXAMPLE": ("tempSecretKeyExample", "tempSessionTokenExample"),
    # what t/ passes in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN
    "ASIAENVEXAMPLE": ("envSecretKeyExample", "envSessionTokenExample"),
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
STATE_LOCK = threading.RLock()  # ISSUED, the sources, STATS, STS_CALLS, SECRETS_SEEN

# access key -> (secret key, session token, expiration as a Unix time): every
# pair the IMDS and container servers handed out
ISSUED = {}
# tokens that are secrets without being part of a pair (container
# authorization token, web identity tokens received by STS)
SECRETS_SEEN = set()


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


def _unix_time(when):
    """A datetime (naive: UTC) -> Unix time."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.timestamp()


def moto_pairs():
    """[(access key, secret key, session token, expiration)] of every pair
    moto's STS issued (AssumeRole, AssumeRoleWithWebIdentity).  moto keeps
    each as an AssumedRole (access_key_id, secret_access_key, session_token,
    expiration: a naive UTC datetime) in
    sts_backends[account][partition].assumed_roles (moto/sts/models.py)."""
    models = sys.modules.get("moto.sts.models")
    if models is None:  # moto not loaded: it issued nothing
        return []
    pairs = []
    try:
        backends = models.sts_backends
        for account in list(backends.keys()):
            for partition in list(backends[account].keys()):
                for role in list(backends[account][partition].assumed_roles):
                    pairs.append((role.access_key_id, role.secret_access_key,
                                  role.session_token, _unix_time(role.expiration)))
    except Exception as exc:  # another moto version: say so, do not crash
        log("mock: cannot read moto's STS backend: %r" % (exc,))
    return pairs


def moto_lookup(access_key):
    """(secret key, session token, expiration) of a pair moto issued, or None."""
    for ak, sk, token, expiration in moto_pairs():
        if ak == access_key:
            return sk, token, expiration
    return None


def _known(entry):
    """A keys entry (secret, (secret, token) or (secret, token, expiration))
    -> (secret, token or None, expiration or None)."""
    if isinstance(entry, str):
        return entry, None, None
    entry = tuple(entry)
    return (entry + (None, None))[:3]


def lookup_credentials(access_key, keys=None):
    """(secret key, session token or None, expiration as a Unix time or None)
    of a known access key, or None.  keys: a dict of entries as in TEST_KEYS
    (plus optionally an expiration); None: KEYS, the pairs the credential
    servers handed out, and the pairs moto issued."""
    if keys is not None:
        entry = keys.get(access_key)
        return None if entry is None else _known(entry)
    entry = KEYS.get(access_key)
    if entry is not None:
        return _known(entry)
    with STATE_LOCK:
        entry = ISSUED.get(access_key)
    if entry is not None:
        return entry
    return moto_lookup(access_key)


class Verdict:
    """The outcome of verify(): verdict (ok, none, mismatch, unknown-key,
    malformed, expired), the SignedHeaders text, a debug text for the log,
    the canonical request / string to sign when they could be computed, and
    the access key of the Authorization header when it could be parsed."""

    def __init__(self, verdict, signed_headers="", debug="", canonical_request=None,
                 string_to_sign=None, access_key=None):
        self.verdict = verdict
        self.signed_headers = signed_headers
        self.debug = debug
        self.canonical_request = canonical_request
        self.string_to_sign = string_to_sign
        self.access_key = access_key

    def __repr__(self):
        return "Verdict(%r, %r)" % (self.verdict, self.signed_headers)


def verify(method, target, headers, body, keys=None, check_token=True, now=None):
    """Verify the SigV4 signature of a received request, as AWS does.

    method, target: as on the request line (the target raw, not decoded).
    headers: list of (name, value) as received, repeated fields repeated;
    values as http.server gives them (bytes decoded as latin-1).
    body: the body bytes.  keys: see lookup_credentials().  check_token:
    the X-Amz-Security-Token must be the one issued with the access key
    (none for long-term keys); False ignores it (the AWS suite vectors sign
    tokens with AKIDEXAMPLE).  now: the Unix time expirations are compared
    with.  Returns a Verdict.
    """
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
    known = lookup_credentials(auth["access_key"], keys)
    if known is None:
        return Verdict("unknown-key", signed_text,
                       "unknown access key %r" % auth["access_key"],
                       access_key=auth["access_key"])
    secret, token, expiration = known

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
    if check_token:
        # never the token values themselves: this goes to the log
        tokens = [v.strip() for n, v in received if n.lower() == "x-amz-security-token"]
        if len(tokens) > 1:
            problems.append("more than one X-Amz-Security-Token")
        elif token is None and tokens:
            problems.append("an X-Amz-Security-Token with a long-term access key")
        elif token is not None and not tokens:
            problems.append("no X-Amz-Security-Token with a temporary access key")
        elif token is not None and not hmac.compare_digest(
                tokens[0].encode("utf-8", "surrogateescape"), token.encode("utf-8")):
            problems.append("the X-Amz-Security-Token is not the one issued with the key")

    text_target = _as_text(target)
    if text_target.startswith(("http://", "https://")):
        url = text_target
    else:
        host = next((v for n, v in received if n.lower() == "host"), "localhost")
        url = "http://" + host.strip() + text_target
    # The path goes to botocore raw, and botocore encodes it once more as
    # AWS does for every service but S3.  The query, AWS decodes and encodes
    # again (RFC 3986) before sorting.  SigV4 signs bytes: each name and value
    # is decoded to bytes (text would turn bytes that are not UTF-8 into
    # U+FFFD), encoded with the unreserved set botocore encodes its own
    # parameters with, and botocore sorts the pairs from the URL.
    base, _, query = url.partition("#")[0].partition("?")
    query = "&".join(
        "%s=%s" % (quote_from_bytes(unquote_to_bytes(k), safe="-_.~"),
                   quote_from_bytes(unquote_to_bytes(v), safe="-_.~"))
        for k, _, v in (pair.partition("=") for pair in query.split("&") if pair)
    )
    request = AWSRequest(method=method, url=base + ("?" + query if query else ""),
                         data=body)
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
        if expiration is not None and (time.time() if now is None else now) >= expiration:
            return Verdict("expired", signed_text,
                           "the credentials of %s expired %.1f s ago"
                           % (auth["access_key"],
                              (time.time() if now is None else now) - expiration),
                           canonical, string_to_sign, auth["access_key"])
        return Verdict("ok", signed_text, "", canonical, string_to_sign, auth["access_key"])
    debug = (
        "signature mismatch: got %s, expected %s%s\n"
        "--- canonical request ---\n%s\n--- string to sign ---\n%s"
        % (auth["signature"], expected,
           "".join("\n" + p for p in problems), canonical, string_to_sign)
    )
    return Verdict("mismatch", signed_text, debug, canonical, string_to_sign,
                   auth["access_key"])


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------

_CONN_SERIAL = itertools.count(1)
_CHUNK = 64 * 1024
_PATTERN = bytes(range(251))


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
        self.counted = False
        self.answered = 0  # requests served on this connection (not control ones)
        self.discard = False  # drop what is written (POST /_stale after)

    def finish(self):
        try:
            super().finish()
        finally:
            if self.counted:
                with STATE_LOCK:
                    CONNS["open"] -= 1

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
        if not self.discard:
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
        path, _, query = target.partition("?")
        if path in CONTROL_PATHS:
            log("mock: %s %s control conn=%d" % (method, target, self.conn_serial))
            self.control(method, path, query, body)
            return
        if not self.counted:
            self.counted = True
            with STATE_LOCK:
                CONNS["accepted"] += 1
                CONNS["open"] += 1
        with STATE_LOCK:
            stale = STALE["mode"] if self.answered > 0 else None
            if stale:
                STATS["stale_closes"] += 1
        if stale:
            log("mock: %s %s closed unanswered (stale, %s) conn=%d"
                % (method, target, stale, self.conn_serial))
            self.close_connection = True
            if stale == "on":
                return
            self.discard = True  # served below, the answer dropped
        self.answered += 1
        result = verify(method, target, received, body)
        verdict, signed = result.verdict, result.signed_headers
        log("mock: %s %s %s conn=%d" % (method, target, verdict, self.conn_serial))
        if result.debug:
            log(result.debug)
        if result.access_key is not None:
            with STATE_LOCK:
                SIGNED[result.access_key][verdict] += 1

        if (m := lambda_api.PATH_RE.fullmatch(path)) and method == "POST":
            code, headers, out = lambda_api.invoke(m.group(1), query, received, body, verdict, log)
            self.respond(code, out, headers)
        elif (m := lambda_api.STREAM_PATH_RE.fullmatch(path)) and method == "POST":
            code, headers, out = lambda_api.invoke_stream(m.group(1), query, received, body,
                                                          verdict, log)
            if isinstance(out, list):
                self.send_writes(code, headers, out)
            else:
                self.respond(code, out, headers)
        elif self.serve_stream(path, query):
            pass
        elif path.startswith("/httptrigger"):
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
        elif (m := re.fullmatch(r"/slow-headers/(\d{1,9})", path)):
            # the status line and one header, then nothing for <ms>
            self.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n")
            self.wfile.flush()
            time.sleep(int(m.group(1)) / 1000.0)
            self.write(b"Content-Length: 3\r\n\r\nok\n")
        elif (m := re.fullmatch(r"/slow-body/(\d{1,9})", path)):
            # the head and half the body, then nothing for <ms>
            self.send_head(200, [("Content-Type", "text/plain"), ("Content-Length", "10")])
            self.write(b"01234")
            self.wfile.flush()
            time.sleep(int(m.group(1)) / 1000.0)
            self.write(b"56789")
        elif (m := re.fullmatch(r"/many-headers/(\d{1,6})", path)):
            self.respond(200, b"ok\n", [("X-H-%d" % i, "v") for i in range(int(m.group(1)))])
        elif (m := re.fullmatch(r"/long-header/(\d{1,8})", path)):
            self.respond(200, b"ok\n", [("X-Long", "v" * int(m.group(1)))])
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

    def big_piece(self, k, size):
        """Piece k of /stream-big: its number, then bytes (k + i) % 251."""
        start = k % 251
        body = (_PATTERN[start:] + _PATTERN * (size // 251 + 2))[:size]
        return (k.to_bytes(8, "big") + body)[:size]

    def stream(self, path, query, content_type, pieces, length=None):
        """Writes a streamed answer from `pieces` (bytes, or a float: sleep that many
        seconds), chunked unless `length`; records its progress under ?tag."""
        params = dict(parse_qsl(query))
        tag = params.get("tag")
        record = {"sent": 0, "started": time.time(), "ended": None, "done": False,
                  "closed": False, "sha256": None}
        digest = hashlib.sha256() if params.get("sha256") else None
        if params.get("sndbuf"):
            # a small send buffer, so that "sent" is close to what the reader took
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF,
                                       int(params["sndbuf"]))
        if tag:
            with STATE_LOCK:
                STREAMS[tag] = record
        headers = [("Content-Type", content_type)]
        headers.append(("Content-Length", str(length)) if length is not None
                       else ("Transfer-Encoding", "chunked"))
        try:
            self.send_head(200, headers)
            self.wfile.flush()
            for piece in pieces:
                if isinstance(piece, float):
                    time.sleep(piece)
                    continue
                if piece is None:  # cut here
                    self.close_connection = True
                    return
                data = piece if length is not None else b"%x\r\n%s\r\n" % (len(piece), piece)
                self.wfile.write(data)
                self.wfile.flush()
                with STATE_LOCK:
                    record["sent"] += len(piece)
                if digest:
                    digest.update(piece)
            if length is None:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            record["done"] = True
            if digest:
                record["sha256"] = digest.hexdigest()
        except OSError:
            record["closed"] = True
            self.close_connection = True
        finally:
            record["ended"] = time.time()

    def serve_stream(self, path, query):
        """The streamed answers (see the module doc); False when `path` is none."""
        if (m := re.fullmatch(r"/(stream|sse)/(\d{1,6})/(\d{1,7})", path)):
            kind, n, delay = m.group(1), int(m.group(2)), int(m.group(3)) / 1000.0
            content_type, piece = {
                "stream": ("text/plain", b"chunk %d\n"),
                "sse": ("text/event-stream", b"data: event %d\n\n"),
            }[kind]
            pieces = []
            for i in range(n):
                if i:
                    pieces.append(delay)
                pieces.append(piece % i)
            self.stream(path, query, content_type, pieces)
        elif (m := re.fullmatch(r"/stream-big/(\d{1,12})", path)):
            n = int(m.group(1))
            with_length = "length=1" in query.split("&")

            def pieces():
                k, left = 0, n
                while left > 0:
                    size = min(left, _CHUNK)
                    yield self.big_piece(k, size)
                    k, left = k + 1, left - size
            self.stream(path, query, "application/octet-stream", pieces(),
                        length=n if with_length else None)
        elif (m := re.fullmatch(r"/stall/(\d{1,7})", path)):
            self.stream(path, query, "text/plain",
                        [b"before\n", int(m.group(1)) / 1000.0, b"after\n"])
        elif (m := re.fullmatch(r"/cut/(\d{1,9})", path)):
            n = int(m.group(1))
            pieces = [b"x" * min(_CHUNK, n - i) for i in range(0, n, _CHUNK)]
            self.stream(path, query, "text/plain", pieces + [0.05, None])
        elif (m := re.fullmatch(r"/reset/(\d{1,9})", path)):
            n = int(m.group(1))
            pieces = [b"x" * min(_CHUNK, n - i) for i in range(0, n, _CHUNK)]
            self.stream(path, query, "text/plain", pieces + [0.05, None])
            # SO_LINGER 0: close() sends RST instead of FIN (closed here, before the
            # server's own shutdown() would send a FIN)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()
        else:
            return False
        return True

    def send_json(self, code, obj):
        self.respond(code, json.dumps(obj, indent=1, sort_keys=True).encode() + b"\n",
                     [("Content-Type", "application/json")])

    def control(self, method, path, query, body):
        """The control API of the credential sources (see the module doc)."""
        want = "GET" if path in ("/_stats", "/_secrets", "/_servers", "/_conns",
                                 "/_streams") else "POST"
        if method != want and not (want == "POST" and method == "PUT"):
            self.send_json(405, {"error": "%s wants %s" % (path, want)})
        elif path == "/_creds":
            try:
                fields = parse_fields(query, body)
                if fields.get("source") == "sts":
                    self.set_sts(fields)
                    return
                source = SOURCES.get(fields.pop("source", None))
                if source is None:
                    raise ValueError("source must be one of %s" % ", ".join(sorted(SOURCES)))
                source.update(fields)
            except ValueError as exc:
                self.send_json(400, {"error": str(exc)})
                return
            (ak, _, _, expiration), _, delay_ms, fail = source.snapshot()
            self.send_json(200, {"source": source.name, "access_key": ak,
                                 "expiration": iso8601(expiration), "delay_ms": delay_ms,
                                 "fail": fail})
        elif path == "/_stale":
            mode = body.decode("latin-1").strip()
            if mode not in ("on", "after", "off"):
                self.send_json(400, {"error": "/_stale takes on, after or off"})
                return
            with STATE_LOCK:
                STALE["mode"] = None if mode == "off" else mode
            self.send_json(200, {"stale": mode})
        elif path == "/_reset":
            reset_sources()
            self.send_json(200, {"reset": True})
        elif path == "/_stats":
            self.send_json(200, stats())
        elif path == "/_secrets":
            self.send_json(200, {"secrets": sorted(known_secrets())})
        elif path == "/_conns":
            self.send_json(200, conn_counts())
        elif path == "/_streams":
            tag = dict(parse_qsl(query)).get("tag")
            with STATE_LOCK:
                if tag:
                    self.send_json(200, dict(STREAMS.get(tag, {})))
                else:
                    self.send_json(200, {k: dict(v) for k, v in STREAMS.items()})
        else:  # /_servers
            with STATE_LOCK:
                self.send_json(200, dict(SERVERS))

    def set_sts(self, fields):
        """/_creds for source=sts: expires_in (s) of the pairs AssumeRole* issues."""
        extra = sorted(set(fields) - {"source", "expires_in"})
        if extra:
            raise ValueError("source sts takes only expires_in, not %s" % ", ".join(extra))
        try:
            seconds = int(float(fields["expires_in"]))
        except (KeyError, TypeError, ValueError):
            raise ValueError("expires_in (seconds) is required") from None
        with STATE_LOCK:
            STS_DURATION["seconds"] = seconds
        self.send_json(200, {"source": "sts", "expires_in": seconds})

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

    def send_writes(self, code, headers, writes):
        """A chunked answer: each (bytes, delay in seconds) is one HTTP chunk; the chunks
        between two delays go out in one send."""
        self.send_head(code, list(headers) + [("Transfer-Encoding", "chunked")])
        pending = b""
        for data, delay in writes:
            if delay:
                self.write(pending)
                self.wfile.flush()
                pending = b""
                time.sleep(delay)
            if data:
                pending += b"%x\r\n" % len(data) + data + b"\r\n"
        self.write(pending + b"0\r\n\r\n")
        self.wfile.flush()

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


# --------------------------------------------------------------------------
# credential sources: IMDSv2, container credentials, moto's STS
# --------------------------------------------------------------------------

ACCOUNT_ID = "123456789012"
IMDS_ROLE = "mock-instance-role"
ECS_ROLE_ARN = "arn:aws:iam::%s:role/mock-task-role" % ACCOUNT_ID
IMDS_REGION = "us-east-1"
IMDS_MAX_TTL = 21600
DEFAULT_LIFETIME = 3600
# what each source serves until told otherwise: access key, secret key, token
DEFAULT_PAIRS = {
    "imds": ("ASIAIMDSEXAMPLE1", "imdsSecretKeyExample1", "imdsSessionTokenExample1"),
    "ecs": ("ASIAECSEXAMPLE1", "ecsSecretKeyExample1", "ecsSessionTokenExample1"),
}
FAIL_MODES = ("garbage", "error", "down")
COUNTERS = ("imds_token", "imds_token_refused", "imds_unauthorized", "imds_role",
            "imds_credentials", "imds_extended", "imds_not_found", "imds_failed",
            "ecs_credentials", "ecs_unauthorized", "ecs_garbage", "ecs_down", "ecs_failed",
            "sts_calls", "sts_assume_role", "sts_assume_role_with_web_identity",
            "stale_closes")
CONTROL_PATHS = ("/_creds", "/_reset", "/_stats", "/_secrets", "/_servers", "/_conns",
                 "/_stale", "/_streams")
# GET /_streams: the progress of tagged streamed answers (see the module doc)
STREAMS = {}
# POST /_stale: close a connection upon the request after its first ("on": before
# serving it; "after": after serving it, without the answer)
STALE = {"mode": None}

STATS = collections.Counter({name: 0 for name in COUNTERS})
# connections that carried a request other than a control one (GET /_conns)
CONNS = {"accepted": 0, "open": 0}
SIGNED = collections.defaultdict(collections.Counter)  # access key -> verdict -> n
STS_CALLS = []
IMDS_TOKENS = {}  # token -> expiry (Unix time)
SERVERS = {"imds_port": None, "ecs_port": None, "sts_port": None, "ecs_token": None}
# DurationSeconds the STS layer gives moto for AssumeRole* (None: the caller's)
STS_DURATION = {"seconds": None}


def count(name):
    with STATE_LOCK:
        STATS[name] += 1


def iso8601(unix):
    return datetime.datetime.fromtimestamp(unix, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


class CredentialSource:
    """What the IMDS or the container server hands out: one temporary pair
    and its expiration, and how the source misbehaves (delay, failure)."""

    def __init__(self, name):
        self.name = name
        self.reset()

    def reset(self):
        ak, sk, token = DEFAULT_PAIRS[self.name]
        with STATE_LOCK:
            self.delay_ms = 0
            self.fail = None
            self.rolling = False
            self._serve(ak, sk, token, DEFAULT_LIFETIME)

    def _serve(self, ak, sk, token, expires_in):
        now = time.time()
        expiration = now + expires_in
        self.pair = (ak, sk, token, expiration)
        self.lifetime = expires_in
        self.last_updated = now
        ISSUED[ak] = (sk, token, expiration)

    def served(self):
        """The pair to hand out now: with `rolling`, it expires its lifetime from now."""
        with STATE_LOCK:
            if self.rolling:
                ak, sk, token, _ = self.pair
                expiration = time.time() + self.lifetime
                self.pair = (ak, sk, token, expiration)
                ISSUED[ak] = (sk, token, expiration)
            return self.pair

    def update(self, fields):
        """access_key, secret_key, token, expires_in, delay_ms, fail; those
        not given keep their value.  Raises ValueError."""
        fields = dict(fields)
        pair = [fields.pop(k, None) for k in ("access_key", "secret_key", "token")]
        expires_in = fields.pop("expires_in", DEFAULT_LIFETIME)
        delay_ms = fields.pop("delay_ms", None)
        fail = fields.pop("fail", "keep")
        rolling = fields.pop("rolling", None)
        if fields:
            raise ValueError("unknown fields: %s" % ", ".join(sorted(fields)))
        if any(pair) and not all(isinstance(v, str) and v for v in pair):
            raise ValueError("access_key, secret_key and token go together")
        try:
            expires_in = float(expires_in)
            delay_ms = None if delay_ms is None else int(delay_ms)
        except (TypeError, ValueError):
            raise ValueError("expires_in and delay_ms are numbers") from None
        if fail in ("", "none", "null", None):
            fail = None
        elif fail != "keep" and fail not in FAIL_MODES:
            raise ValueError("fail must be one of %s" % ", ".join(FAIL_MODES))
        with STATE_LOCK:
            if all(pair):
                self._serve(pair[0], pair[1], pair[2], expires_in)
            if delay_ms is not None:
                self.delay_ms = delay_ms
            if fail != "keep":
                self.fail = fail
            if rolling is not None:
                self.rolling = str(rolling).lower() in ("1", "true")

    def snapshot(self):
        with STATE_LOCK:
            return self.pair, self.last_updated, self.delay_ms, self.fail


SOURCES = {name: CredentialSource(name) for name in DEFAULT_PAIRS}


def reset_sources():
    with STATE_LOCK:
        for source in SOURCES.values():
            source.reset()
        STATS.clear()
        STATS.update({name: 0 for name in COUNTERS})
        SIGNED.clear()
        del STS_CALLS[:]
        STS_DURATION["seconds"] = None
        STALE["mode"] = None
        CONNS["accepted"] = 0
    lambda_api.reset()


def parse_fields(query, body):
    """/_creds fields from a JSON body, or form parameters (body, query)."""
    text = body.decode("utf-8", "replace").strip()
    if text.startswith("{"):
        try:
            fields = json.loads(text)
        except ValueError as exc:
            raise ValueError("invalid JSON: %s" % exc) from None
        if not isinstance(fields, dict):
            raise ValueError("a JSON object is expected")
        return fields
    return dict(parse_qsl(query, keep_blank_values=True) + parse_qsl(text, keep_blank_values=True))


def stats():
    with STATE_LOCK:
        out = dict(STATS)
        out["signed"] = {ak: dict(v) for ak, v in SIGNED.items()}
        out["sts"] = [dict(call) for call in STS_CALLS]
    out["invocations"] = lambda_api.stats()
    out["invocations_repeated"] = lambda_api.repeated()
    return out


def conn_counts():
    with STATE_LOCK:
        return dict(CONNS)


def known_secrets():
    """Every secret key, session token and bearer token the mock knows."""
    found = set()
    for entry in list(KEYS.values()):
        sk, token, _ = _known(entry)
        found.update(x for x in (sk, token) if x)
    with STATE_LOCK:
        for sk, token, _ in ISSUED.values():
            found.update(x for x in (sk, token) if x)
        found.update(SECRETS_SEEN)
        found.update(IMDS_TOKENS)
    for _, sk, token, _ in moto_pairs():
        found.update(x for x in (sk, token) if x)
    return found


def credentials_document(name, extended=False):
    """The JSON the source answers: EC2's instance-profile document, or the
    container credentials document."""
    ak, sk, token, expiration = SOURCES[name].served()
    updated = SOURCES[name].snapshot()[1]
    if name == "imds":
        doc = {"Code": "Success", "LastUpdated": iso8601(updated), "Type": "AWS-HMAC",
               "AccessKeyId": ak, "SecretAccessKey": sk, "Token": token,
               "Expiration": iso8601(expiration)}
        if extended:
            doc["AccountId"] = ACCOUNT_ID
    else:
        doc = {"AccessKeyId": ak, "SecretAccessKey": sk, "Token": token,
               "Expiration": iso8601(expiration), "RoleArn": ECS_ROLE_ARN}
    return json.dumps(doc, indent=2).encode() + b"\n"


class SourceHandler(Handler):
    """Base of the IMDS and container servers (HTTP/1.1, keep-alive)."""

    def text(self, code, body, headers=()):
        self.respond(code, body.encode() if isinstance(body, str) else body,
                     [("Content-Type", "text/plain")] + list(headers))

    def serve_credentials(self, name, extended=False):
        _, _, delay_ms, fail = SOURCES[name].snapshot()
        if delay_ms:
            time.sleep(delay_ms / 1000.0)
        if fail is not None:
            count(name + "_failed")
            log("mock: %s: failing with %s" % (name, fail))
        if fail == "down":
            self.close_connection = True
        elif fail == "garbage":
            self.respond(200, b"<html>this is not JSON {", [("Content-Type", "application/json")])
        elif fail == "error":
            self.respond(500, b'{"Code": "InternalError", "Message": "mock failure"}',
                         [("Content-Type", "application/json")])
        else:
            count(name + "_credentials")
            self.respond(200, credentials_document(name, extended),
                         [("Content-Type", "application/json" if name == "ecs" else "text/plain")])

    def serve(self):
        try:
            self.read_body()
        except BadRequest as exc:
            self.close_connection = True
            self.send_error(400, str(exc))
            return
        path = self.path.partition("?")[0]
        log("mock: %s %s %s" % (self.label, self.command, path))
        self.route(path)


_IMDS_CREDS_RE = re.compile(r"/latest/meta-data/iam/security-credentials(-extended)?/?(.*)")


class ImdsHandler(SourceHandler):
    """EC2's instance metadata service, IMDSv2 only."""
    server_version = "EC2ws"
    label = "imds"

    def route(self, path):
        if path == "/latest/api/token":
            return self.token()
        token = self.headers.get("X-aws-ec2-metadata-token")
        with STATE_LOCK:
            valid = token is not None and IMDS_TOKENS.get(token, 0) > time.time()
        if not valid:  # IMDSv1 (no token), or an unknown or expired token
            count("imds_unauthorized")
            return self.text(401, "")
        if self.command not in ("GET", "HEAD"):
            return self.text(405, "")
        m = _IMDS_CREDS_RE.fullmatch(path)
        if m:
            extended, role = bool(m.group(1)), m.group(2)
            if extended:
                count("imds_extended")
            if role == "":
                count("imds_role")
                return self.text(200, IMDS_ROLE)
            if role == IMDS_ROLE:
                return self.serve_credentials("imds", extended)
        elif path == "/latest/meta-data/placement/region":
            return self.text(200, IMDS_REGION)
        elif path == "/latest/meta-data/placement/availability-zone":
            return self.text(200, IMDS_REGION + "a")
        count("imds_not_found")
        return self.text(404, "")

    def token(self):
        ttl = (self.headers.get("X-aws-ec2-metadata-token-ttl-seconds") or "").strip()
        if self.command != "PUT":
            count("imds_token_refused")
            return self.text(405, "")
        if self.headers.get("X-Forwarded-For") is not None:
            count("imds_token_refused")
            return self.text(403, "")
        if not ttl.isdigit() or not 1 <= int(ttl) <= IMDS_MAX_TTL:
            count("imds_token_refused")
            return self.text(400, "")
        token = "imds-" + secrets.token_urlsafe(32)
        with STATE_LOCK:
            IMDS_TOKENS[token] = time.time() + int(ttl)
        count("imds_token")
        return self.text(200, token, [("X-aws-ec2-metadata-token-ttl-seconds", ttl)])


class EcsHandler(SourceHandler):
    """The container credentials endpoint of ECS / EKS Pod Identity."""
    server_version = "mock-container-credentials"
    label = "ecs"

    def route(self, path):
        if path == "/down":
            count("ecs_down")
            self.close_connection = True
            return
        with STATE_LOCK:
            want = SERVERS["ecs_token"]
        if want is not None and self.headers.get_all("Authorization") != [want]:
            count("ecs_unauthorized")
            return self.respond(401, b'{"code": "Unauthorized", "message": "bad token"}',
                                [("Content-Type", "application/json")])
        if path == "/garbage":
            count("ecs_garbage")
            return self.respond(200, b"<html>this is not JSON {",
                                [("Content-Type", "application/json")])
        return self.serve_credentials("ecs")


_STS_ERRORS = {"unknown-key": ("InvalidClientTokenId",
                               "The security token included in the request is invalid."),
               "expired": ("ExpiredToken", "The security token included in the request is expired"),
               "none": ("MissingAuthenticationToken", "Request is missing Authentication Token")}


def sts_app():
    """moto's STS as a WSGI application, behind a layer that verifies the
    signature of each call (AssumeRole must be signed with valid
    credentials, as AWS wants; AssumeRoleWithWebIdentity is not signed) and
    records it for /_stats."""
    from moto.moto_server.werkzeug_app import create_backend_app
    import moto.sts.models  # noqa: F401  (moto_pairs() reads its backend)

    app = create_backend_app("sts")

    def wsgi(environ, start_response):
        length = environ.get("CONTENT_LENGTH") or "0"
        body = environ["wsgi.input"].read(int(length)) if length.isdigit() else b""
        environ["wsgi.input"] = io.BytesIO(body)
        headers = [(k[5:].replace("_", "-").lower(), v) for k, v in environ.items()
                   if k.startswith("HTTP_")]
        for key, name in (("CONTENT_TYPE", "content-type"), ("CONTENT_LENGTH", "content-length")):
            if environ.get(key):
                headers.append((name, environ[key]))
        query = environ.get("QUERY_STRING", "")
        target = environ.get("RAW_URI") or environ.get("REQUEST_URI") or (
            environ.get("PATH_INFO", "/") + ("?" + query if query else ""))
        result = verify(environ["REQUEST_METHOD"], target, headers, body)
        params = dict(parse_qsl(query) + parse_qsl(body.decode("utf-8", "replace")))
        action = params.get("Action", "?")
        log("mock: sts %s %s signed_by=%s" % (action, result.verdict, result.access_key))
        if result.debug:
            log(result.debug)
        if params.get("WebIdentityToken"):
            with STATE_LOCK:
                SECRETS_SEEN.add(params["WebIdentityToken"])
        unsigned_ok = action in ("AssumeRoleWithWebIdentity", "AssumeRoleWithSAML")
        if not (result.verdict == "ok" or (unsigned_ok and result.verdict == "none")):
            code, message = _STS_ERRORS.get(result.verdict, (
                "SignatureDoesNotMatch", "The request signature we calculated does not match "
                "the signature you provided."))
            out = ('<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
                   "<Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error>"
                   "<RequestId>mock-%s</RequestId></ErrorResponse>"
                   % (code, message, secrets.token_hex(8))).encode()
            status = "403 Forbidden"
            start_response(status, [("Content-Type", "text/xml"),
                                    ("Content-Length", str(len(out)))])
        else:
            with STATE_LOCK:
                duration = STS_DURATION["seconds"]
            if duration is not None and action.startswith("AssumeRole"):
                # after the signature check: moto does not verify it
                form = [(k, v) for k, v in parse_qsl(body.decode("utf-8", "replace"),
                                                     keep_blank_values=True)
                        if k != "DurationSeconds"]
                form.append(("DurationSeconds", str(duration)))
                rewritten = urlencode(form).encode()
                environ["wsgi.input"] = io.BytesIO(rewritten)
                environ["CONTENT_LENGTH"] = str(len(rewritten))
            captured = []

            def capture(status, response_headers, exc_info=None):
                captured.append(status)
                return start_response(status, response_headers, exc_info)

            chunks = app(environ, capture)
            try:
                out = b"".join(chunks)
            finally:
                if hasattr(chunks, "close"):
                    chunks.close()
            status = captured[0] if captured else "500"
        issued = re.search(rb"<AccessKeyId>([^<]+)</AccessKeyId>", out)
        with STATE_LOCK:
            STATS["sts_calls"] += 1
            if action in ("AssumeRole", "AssumeRoleWithWebIdentity"):
                STATS["sts_" + re.sub(r"(?<!^)([A-Z])", r"_\1", action).lower()] += 1
                STS_CALLS.append({
                    "action": action,
                    "status": int(status.split()[0]),
                    "role_arn": params.get("RoleArn"),
                    "session_name": params.get("RoleSessionName"),
                    "external_id": params.get("ExternalId"),
                    "duration_seconds": params.get("DurationSeconds"),
                    "web_identity_token": params.get("WebIdentityToken"),
                    "access_key": issued.group(1).decode() if issued else None,
                    "signed_by": result.access_key,
                    "signature": result.verdict,
                })
        return [out]

    return wsgi


def start_sts(host, port):
    """moto's STS on host:port, in a thread (what moto's ThreadedMotoServer
    does, with sts_app() in front).  Returns the server."""
    from werkzeug.serving import make_server

    server = make_server(host, port, sts_app(), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=1990)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--imds-port", type=int, help="start an IMDSv2 server there")
    ap.add_argument("--ecs-port", type=int, help="start a container credentials server there")
    ap.add_argument("--ecs-token", help="the Authorization the container server wants")
    ap.add_argument("--sts-port", type=int, help="start moto's STS there")
    args = ap.parse_args(argv)
    server = Server((args.host, args.port), Handler)
    host, port = server.server_address[:2]
    extra = []
    for name, handler, wanted in (("imds", ImdsHandler, args.imds_port),
                                  ("ecs", EcsHandler, args.ecs_port)):
        if wanted is not None:
            srv = Server((args.host, wanted), handler)
            SERVERS[name + "_port"] = srv.server_address[1]
            threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2},
                             daemon=True).start()
            extra.append(srv)
    if args.ecs_token is not None:
        SERVERS["ecs_token"] = args.ecs_token
        SECRETS_SEEN.add(args.ecs_token)
    if args.sts_port is not None:
        sts = start_sts(args.host, args.sts_port)
        SERVERS["sts_port"] = sts.server_port
        extra.append(sts)
    if extra:
        log("mock: credential servers %s" % json.dumps(
            {k: v for k, v in SERVERS.items() if k.endswith("_port")}, sort_keys=True))
    print("mock function listening on %s:%d" % (host, port), flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
