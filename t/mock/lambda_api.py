"""The Lambda Invoke API of the mock function endpoint (t/mock/function.py).

    POST /2015-03-31/functions/<FunctionName>/invocations[?Qualifier=q]

Answers as AWS Lambda does: 403 unless the SigV4 signature verifies (botocore,
in function.py) and is scoped to service "lambda"; 400 when the payload is not
JSON; 413 over 6 MB (1 MB for Event); 202 for X-Amz-Invocation-Type: Event,
204 for DryRun; X-Amz-Log-Result (base64) with X-Amz-Log-Type: Tail;
X-Amz-Executed-Version; Lambda's JSON errors with x-amzn-ErrorType.

Every API Gateway event received is checked against the shapes AWS documents
(check_event); the functions below answer with what they saw.

Functions (the name part of FunctionName, which may be an ARN):
  echo          proxy response: 200, or 422 when the event's shape is wrong;
                body JSON {"format", "problems", "event", "qualifier",
                "invocation_type", "signature"}
  echo-body     proxy response whose body is the event's body, decoded, sent
                back base64-encoded (binary round trip) with the request's
                content-type
  raw-echo      returns the payload unchanged (not a proxy response)
  cookies       proxy response with two cookies and a multi-value header
                (`cookies` for a 2.0 event, multiValueHeaders for 1.0); the 2.0
                answer also has multiValueHeaders, which 2.0 ignores
  untyped       proxy response without headers (no content-type)
  forged-log    answers like echo; its log tail has a line that looks like an
                nginx log entry
  plain         returns {"hello": "world"} (not a proxy response)
  fail          a function error: X-Amz-Function-Error: Unhandled
  throttle      429 TooManyRequestsException with Retry-After: 7
  unavailable   503 ServiceUnavailableException with Retry-After: 5, as an AWS
                front end answers when overloaded
  updating      409 ResourceConflictException
  malformed     200 with a payload that is not JSON
  badproxy      {"statusCode": "abc"}
  sleep-<ms>    sleeps, then answers like echo
  one-line-sig  (only reached with a wrong signature) the signature mismatch
                message on one line, canonical request after a space; every
                other name gets Lambda's form, which puts the canonical request
                and the string to sign after blank lines
  anything else 404 ResourceNotFoundException

InvokeWithResponseStream (see invoke_stream below):

    POST /2021-11-15/functions/<FunctionName>/response-streaming-invocations

answers 200 with an event stream (application/vnd.amazon.eventstream framing,
written by encode_frame: prelude, headers, CRCs) sent chunked: PayloadChunk
events, then InvokeComplete (LogResult with X-Amz-Log-Type: Tail). The HTTP
Content-Type is the function's stream content type, as Lambda sends it.
Functions:
  stream-http     the HTTP integration prelude (201, text/event-stream, x-function,
                  two cookies), 8 NULs, then three server-sent events; each event
                  is its own PayloadChunk and HTTP chunk
  stream-split    the same bytes, split at awkward points: the prelude's JSON and
                  its NULs across PayloadChunks, the frames across HTTP chunks
                  of 7 bytes
  stream-plain    no prelude: three chunks "chunk <i>\n", content type text/plain
  stream-echo     no prelude: the payload received, then the signature verdict,
                  in two chunks (content type application/json)
  stream-fail     the prelude, one event, then (0.3 s later) InvokeComplete with
                  ErrorCode Unhandled and ErrorDetails
  stream-fail-early  InvokeComplete with ErrorCode at once, nothing written
  stream-exception   the prelude, one event, then (0.3 s later) a ServiceException
                  exception
  stream-stall-<ms>  the prelude and one event, then nothing for <ms>, then the rest
  stream-late-<ms>   nothing for <ms>, then as stream-http
  stream-big-<n>     no prelude: <n> events of 16 KiB (event i is "%07d\n" % i
                     repeated), application/octet-stream, cut into HTTP chunks
                     of 10000 bytes
Writes without a pause between them go out in one send (function.py), so an
answer without pauses reaches the gateway at once.
  throttle, nosuch, ...  the Invoke API's errors, as above
"""

import base64
import binascii
import json
import re
import struct
import threading
import time
from urllib.parse import unquote

PATH_RE = re.compile(r"/2015-03-31/functions/([^/?]+)/invocations")
STREAM_PATH_RE = re.compile(r"/2021-11-15/functions/([^/?]+)/response-streaming-invocations")
SYNC_LIMIT = 6 * 1024 * 1024
ASYNC_LIMIT = 1024 * 1024

# function name -> invocations that reached the function
INVOCATIONS = {}
# an event's requestContext.requestId -> invocations that carried it
REQUEST_IDS = {}
_LOCK = threading.Lock()

_CLF_TIME = re.compile(r"^\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}$")


def reset():
    with _LOCK:
        INVOCATIONS.clear()
        REQUEST_IDS.clear()


def repeated():
    """How many request ids (one per client request) reached a function twice or more."""
    with _LOCK:
        return sum(1 for n in REQUEST_IDS.values() if n > 1)


def stats():
    with _LOCK:
        return dict(INVOCATIONS)


def _error(status, error_type, message, extra=None, headers=()):
    body = {"Type": "User", "message": message}
    body.update(extra or {})
    return status, [("Content-Type", "application/json"),
                    ("x-amzn-ErrorType", error_type + ":http://internal.amazon.com/coral/")] \
        + list(headers), json.dumps(body).encode()


def _signature_mismatch(raw_name, query, headers):
    """AWS quotes the canonical request, security token included."""
    canonical = "\n".join(
        ["POST", "/2015-03-31/functions/%s/invocations" % raw_name, query]
        + ["%s:%s" % (n.lower(), v) for n, v in headers if n.lower() != "authorization"])
    if function_of(raw_name)[0] == "one-line-sig":
        return ("The request signature we calculated does not match the signature you "
                "provided. The Canonical String for this request should have been\n'%s'"
                % canonical)
    date = next((v for n, v in headers if n.lower() == "x-amz-date"), "")
    return ("The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. Consult the service "
            "documentation for details.\n\nThe Canonical String for this request should "
            "have been\n'%s'\n\nThe String-to-Sign should have been\n'AWS4-HMAC-SHA256\n%s\n"
            "%s/us-east-1/lambda/aws4_request\n%s'\n"
            % (canonical, date, date[:8], "0" * 64))


def _scope_service(headers):
    auth = next((v for n, v in headers if n.lower() == "authorization"), "")
    m = re.search(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request", auth)
    # the scope is date/region/service
    return (m.group(2), m.group(1)) if m else (None, None)


def function_of(raw_name):
    """(name, region or None, qualifier or None) of a FunctionName path label."""
    parts = unquote(raw_name).split(":")
    region = None
    if parts[0] == "arn" and len(parts) >= 7:
        region, parts = parts[3], parts[6:]
    elif len(parts) >= 3 and parts[1] == "function":
        parts = parts[2:]
    return parts[0], region, (parts[1] if len(parts) > 1 else None)


# -- event shapes -----------------------------------------------------------

def _is_str_map(value, nullable=False):
    if value is None:
        return nullable
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items())


def _is_list_map(value):
    if value is None:
        return True
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, list) and v and all(isinstance(x, str) for x in v)
        for k, v in value.items())


def _check_body(event, problems):
    body, b64 = event.get("body"), event.get("isBase64Encoded")
    if not isinstance(b64, bool):
        problems.append("isBase64Encoded is not a boolean")
    if body is not None and not isinstance(body, str):
        problems.append("body is neither a string nor null")
    if b64 and isinstance(body, str):
        try:
            base64.b64decode(body, validate=True)
        except ValueError:
            problems.append("isBase64Encoded but body is not base64")


def _need(obj, key, kind, problems, where=""):
    if not isinstance(obj.get(key), kind):
        problems.append("%s%s missing or not %s" % (where, key, kind.__name__))


def check_v2(event):
    """Problems with a payload format 2.0 event (HTTP API, function URL)."""
    p = []
    if event.get("version") != "2.0":
        p.append('version is not "2.0"')
    for key in ("routeKey", "rawPath", "rawQueryString"):
        _need(event, key, str, p)
    if isinstance(event.get("rawPath"), str) and not event["rawPath"].startswith("/"):
        p.append("rawPath does not start with /")
    if not _is_str_map(event.get("headers")):
        p.append("headers is not a map of strings")
    elif any(k != k.lower() for k in event["headers"]):
        p.append("header names are not lowercase")
    elif "cookie" in event["headers"]:
        p.append("the cookie header is not moved to cookies")
    cookies = event.get("cookies")
    if cookies is not None and not (isinstance(cookies, list) and cookies
                                    and all(isinstance(c, str) for c in cookies)):
        p.append("cookies is not a non-empty list of strings")
    for key in ("queryStringParameters", "pathParameters"):
        if key in event and not _is_str_map(event[key], nullable=True):
            p.append("%s is not a map of strings or null" % key)
    for key in ("httpMethod", "multiValueHeaders"):
        if key in event:
            p.append("%s belongs to the 1.0 format" % key)
    rc = event.get("requestContext")
    if not isinstance(rc, dict):
        return p + ["requestContext missing"]
    for key in ("accountId", "apiId", "domainName", "domainPrefix", "requestId", "routeKey",
                "stage", "time"):
        _need(rc, key, str, p, "requestContext.")
    _need(rc, "timeEpoch", int, p, "requestContext.")
    if isinstance(rc.get("time"), str) and not _CLF_TIME.match(rc["time"]):
        p.append("requestContext.time is not dd/Mon/yyyy:HH:MM:SS +zzzz")
    http = rc.get("http")
    if not isinstance(http, dict):
        return p + ["requestContext.http missing"]
    for key in ("method", "path", "protocol", "sourceIp", "userAgent"):
        _need(http, key, str, p, "requestContext.http.")
    _check_body(event, p)
    return p


def check_v1(event):
    """Problems with a REST API proxy integration (1.0) event."""
    p = []
    for key in ("resource", "path", "httpMethod"):
        _need(event, key, str, p)
    if not _is_str_map(event.get("headers"), nullable=True):
        p.append("headers is not a map of strings or null")
    if not _is_list_map(event.get("multiValueHeaders")):
        p.append("multiValueHeaders is not a map of string lists or null")
    elif event.get("headers"):
        for name, value in event["headers"].items():
            if (event.get("multiValueHeaders") or {}).get(name, [None])[-1] != value:
                p.append("headers[%s] is not the last of multiValueHeaders" % name)
    if not _is_str_map(event.get("queryStringParameters"), nullable=True):
        p.append("queryStringParameters is not a map of strings or null")
    if not _is_list_map(event.get("multiValueQueryStringParameters")):
        p.append("multiValueQueryStringParameters is not a map of string lists or null")
    for key in ("pathParameters", "stageVariables"):
        if not _is_str_map(event.get(key), nullable=True):
            p.append("%s is not a map of strings or null" % key)
    for key in ("version", "rawPath", "cookies"):
        if key in event:
            p.append("%s belongs to the 2.0 format" % key)
    rc = event.get("requestContext")
    if not isinstance(rc, dict):
        return p + ["requestContext missing"]
    for key in ("accountId", "apiId", "stage", "requestId", "requestTime", "path",
                "resourcePath", "httpMethod", "protocol", "domainName"):
        _need(rc, key, str, p, "requestContext.")
    _need(rc, "requestTimeEpoch", int, p, "requestContext.")
    if isinstance(rc.get("requestTime"), str) and not _CLF_TIME.match(rc["requestTime"]):
        p.append("requestContext.requestTime is not dd/Mon/yyyy:HH:MM:SS +zzzz")
    if rc.get("httpMethod") != event.get("httpMethod"):
        p.append("requestContext.httpMethod differs from httpMethod")
    identity = rc.get("identity")
    if not isinstance(identity, dict) or not isinstance(identity.get("sourceIp"), str):
        p.append("requestContext.identity.sourceIp missing")
    _check_body(event, p)
    return p


def check_event(event):
    """(format, problems): "v2", "v1" or "raw" (not an API Gateway event)."""
    if not isinstance(event, dict):
        return "raw", []
    if event.get("version") == "2.0" or "rawPath" in event:
        return "v2", check_v2(event)
    if "httpMethod" in event or "resource" in event:
        return "v1", check_v1(event)
    return "raw", []


def _event_body(event):
    body = event.get("body") or ""
    return base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()


# -- the API ----------------------------------------------------------------

def invoke(raw_name, query, headers, body, verdict, log):
    """(status, headers, body) for an Invoke API call."""
    checked = _checked_call(raw_name, query, headers, body, verdict, log)
    if checked[0] != "ok":
        return checked[1]
    _, name, qualifier, invocation_type, event, header = checked
    return _answer(name, qualifier, invocation_type, event, header, body, verdict, log)


def _checked_call(raw_name, query, headers, body, verdict, log, streaming=False):
    """("error", (status, headers, body)), or ("ok", name, qualifier, invocation type,
    event, lowercase headers) for a call that reaches the function."""
    checked = _check_call(raw_name, query, headers, body, verdict, log, streaming)
    return checked if checked[0] == "ok" else ("error", checked)


def _check_call(raw_name, query, headers, body, verdict, log, streaming):
    header = {n.lower(): v for n, v in headers}
    service, region = _scope_service(headers)
    if verdict == "none":
        return _error(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
    if verdict == "unknown-key":
        return _error(403, "UnrecognizedClientException",
                      "The security token included in the request is invalid.")
    if verdict == "expired":
        return _error(403, "ExpiredTokenException", "The security token included in the request is expired")
    if verdict != "ok":
        return _error(403, "InvalidSignatureException",
                      _signature_mismatch(raw_name, query, headers))
    name, arn_region, name_qualifier = function_of(raw_name)
    if service != "lambda":
        return _error(403, "InvalidSignatureException",
                      "Credential should be scoped to correct service: 'lambda'. ")
    if arn_region and region != arn_region:
        return _error(403, "InvalidSignatureException",
                      "Credential should be scoped to a valid region, not '%s'. " % region)
    qualifier = dict(p.partition("=")[::2] for p in query.split("&") if p).get("Qualifier")
    if qualifier and name_qualifier and unquote(qualifier) != name_qualifier:
        return _error(400, "InvalidParameterValueException",
                      "The derived qualifier from the function name does not match the "
                      "specified qualifier.")
    qualifier = unquote(qualifier) if qualifier else name_qualifier
    invocation_type = header.get("x-amz-invocation-type", "RequestResponse")
    if streaming and invocation_type not in ("RequestResponse", "DryRun"):
        return _error(400, "ValidationException",
                      "1 validation error detected: Value '%s' at 'invocationType' failed "
                      "to satisfy constraint: Member must satisfy enum value set: "
                      "[RequestResponse, DryRun]" % invocation_type)
    limit = ASYNC_LIMIT if invocation_type == "Event" else SYNC_LIMIT
    if len(body) > limit:
        return _error(413, "RequestTooLargeException",
                      "Request must be smaller than %d bytes for the InvokeFunction operation"
                      % limit)
    try:
        event = json.loads(body or b"{}")
    except ValueError as exc:
        return _error(400, "InvalidRequestContentException",
                      "Could not parse request body into json: %s" % exc)
    known = name in ("echo", "echo-body", "raw-echo", "cookies", "untyped", "forged-log",
                     "plain", "fail", "throttle", "unavailable", "updating", "malformed",
                     "badproxy") or re.fullmatch(r"sleep-\d{1,6}", name)
    if streaming:
        known = name in STREAM_FUNCTIONS or re.fullmatch(r"stream-(stall|late|big)-\d{1,6}", name) \
            or name in ("throttle", "unavailable", "updating")
    if not known:
        return _error(404, "ResourceNotFoundException",
                      "Function not found: arn:aws:lambda:%s:123456789012:function:%s"
                      % (region, name))
    if name == "throttle":
        return _error(429, "TooManyRequestsException", "Rate Exceeded.",
                      {"Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"},
                      [("Retry-After", "7")])
    if name == "unavailable":
        return _error(503, "ServiceUnavailableException", "Service Unavailable",
                      headers=[("Retry-After", "5")])
    if name == "updating":
        return _error(409, "ResourceConflictException",
                      "The operation cannot be performed at this time. An update is in "
                      "progress for resource")
    if invocation_type == "DryRun":
        return 204, [], b""
    context = event.get("requestContext") if isinstance(event, dict) else None
    request_id = context.get("requestId") if isinstance(context, dict) else None
    with _LOCK:
        INVOCATIONS[name] = INVOCATIONS.get(name, 0) + 1
        if isinstance(request_id, str):
            REQUEST_IDS[request_id] = REQUEST_IDS.get(request_id, 0) + 1
    if invocation_type == "Event":
        return 202, [], b""
    return "ok", name, qualifier, invocation_type, event, header


def _answer(name, qualifier, invocation_type, event, header, body, verdict, log):
    out = [("Content-Type", "application/json"),
           ("X-Amz-Executed-Version", qualifier or "$LATEST")]
    if header.get("x-amz-log-type") == "Tail":
        tail = "START RequestId: mock Version: $LATEST\nmock log line from %s\n" % name
        if name == "forged-log":
            tail += "2026/01/01 00:00:00 [alert] forged\n"
        tail += "END RequestId: mock\n"
        out.append(("X-Amz-Log-Result", base64.b64encode(tail.encode()).decode()))
    fmt, problems = check_event(event)
    if problems:
        log("mock: %s event problems: %s" % (fmt, "; ".join(problems)))

    if name.startswith("sleep-"):
        time.sleep(int(name[6:]) / 1000.0)
    if name in ("echo", "forged-log") or name.startswith("sleep-"):
        result = {
            "statusCode": 422 if problems else 200,
            "headers": {"content-type": "application/json", "x-function": name},
            "body": json.dumps({"format": fmt, "problems": problems, "event": event,
                                "qualifier": qualifier, "invocation_type": invocation_type,
                                "signature": verdict}, sort_keys=True),
        }
    elif name == "echo-body":
        ctype = (event.get("headers") or {}).get("content-type", "application/octet-stream")
        result = {"statusCode": 422 if problems else 200,
                  "headers": {"content-type": ctype},
                  "body": base64.b64encode(_event_body(event)).decode(),
                  "isBase64Encoded": True}
    elif name == "raw-echo":
        return 200, out, body
    elif name == "cookies":
        if fmt == "v1":
            result = {"statusCode": 200, "headers": {"X-Single": "s"},
                      "multiValueHeaders": {"Set-Cookie": ["a=1; Path=/", "b=2; Path=/"],
                                            "X-Multi": ["1", "2"]},
                      "body": "cookies"}
        else:
            result = {"statusCode": 200, "headers": {"x-single": "s", "x-multi": "1,2"},
                      "multiValueHeaders": {"X-Multi": ["ignored"], "X-Only-Multi": ["ignored"]},
                      "cookies": ["a=1; Path=/", "b=2; Path=/"], "body": "cookies"}
    elif name == "untyped":
        result = {"statusCode": 200, "body": "no content-type"}
    elif name == "plain":
        result = {"hello": "world"}
    elif name == "fail":
        out.append(("X-Amz-Function-Error", "Unhandled"))
        result = {"errorType": "Error", "errorMessage": "boom from the function",
                  "trace": ["Error: boom", "    at handler (index.js:1:1)"]}
    elif name == "malformed":
        return 200, out, b"{not json"
    else:  # badproxy
        result = {"statusCode": "abc", "body": "x"}
    return 200, out, json.dumps(result).encode()


# -- InvokeWithResponseStream ---------------------------------------------------

STREAM_FUNCTIONS = ("stream-http", "stream-split", "stream-plain", "stream-echo",
                    "stream-fail", "stream-fail-early", "stream-exception")
HTTP_INTEGRATION = "application/vnd.awslambda.http-integration-response"


def _string_header(name, value):
    """An event-stream header of type 7 (string)."""
    name, value = name.encode(), value.encode()
    return struct.pack("B", len(name)) + name + b"\x07" + struct.pack(">H", len(value)) + value


def encode_frame(headers, payload):
    """One event-stream message: the prelude (total length, headers length, CRC32 of
    both), the headers, the payload and the CRC32 of all that precedes it."""
    head = b"".join(_string_header(n, v) for n, v in headers)
    total = 12 + len(head) + len(payload) + 4
    prelude = struct.pack(">II", total, len(head))
    prelude += struct.pack(">I", binascii.crc32(prelude))
    message = prelude + head + payload
    return message + struct.pack(">I", binascii.crc32(message))


def event_frame(event_type, payload, content_type="application/octet-stream"):
    return encode_frame([(":event-type", event_type), (":content-type", content_type),
                         (":message-type", "event")], payload)


def complete_frame(error_code=None, error_details=None, log_result=None):
    done = {}
    if error_code:
        done["ErrorCode"] = error_code
        done["ErrorDetails"] = error_details or ""
    if log_result:
        done["LogResult"] = log_result
    return event_frame("InvokeComplete", json.dumps(done).encode(), "application/json")


def exception_frame(exception_type, message):
    return encode_frame([(":exception-type", exception_type),
                         (":content-type", "application/json"),
                         (":message-type", "exception")],
                        json.dumps({"message": message}).encode())


def http_prelude(name):
    return json.dumps({"statusCode": 201,
                       "headers": {"content-type": "text/event-stream", "x-function": name},
                       "cookies": ["a=1; Path=/", "b=2; Path=/"]}).encode() + b"\0" * 8


SSE_EVENTS = [b"data: one\n\n", b"data: two\n\n", b"data: three\n\n"]
FAIL_AFTER = 0.3  # seconds


def invoke_stream(raw_name, query, headers, body, verdict, log):
    """(status, headers, writes) for an InvokeWithResponseStream call: writes is a list
    of (bytes, seconds to wait before writing them), each one HTTP chunk, or the body
    of an error."""
    checked = _checked_call(raw_name, query, headers, body, verdict, log, streaming=True)
    if checked[0] != "ok":
        return checked[1]
    _, name, qualifier, _invocation_type, event, header = checked
    fmt, problems = check_event(event)
    if problems:
        log("mock: %s event problems: %s" % (fmt, "; ".join(problems)))
    tail = None
    if header.get("x-amz-log-type") == "Tail":
        tail = base64.b64encode(("START RequestId: mock Version: $LATEST\nmock log line "
                                 "from %s\nEND RequestId: mock\n" % name).encode()).decode()
    failure = ("Unhandled", json.dumps({"errorType": "Error",
                                        "errorMessage": "boom mid-stream"}))
    content_type = HTTP_INTEGRATION
    frames = []  # (frame bytes, delay before it)
    if name == "stream-plain":
        content_type = "text/plain"
        frames = [(event_frame("PayloadChunk", b"chunk %d\n" % i), 0) for i in range(3)]
    elif name == "stream-echo":
        content_type = "application/json"
        frames = [(event_frame("PayloadChunk", body), 0),
                  (event_frame("PayloadChunk", ("\nsignature: %s format: %s problems: %d\n"
                                                % (verdict, fmt, len(problems))).encode()), 0)]
    elif name.startswith("stream-big-"):
        # <n> events of 16 KiB: event i is "%07d\n" % i repeated, the frames cut
        # across HTTP chunks of 10000 bytes, sent without pauses
        content_type = "application/octet-stream"
        stream = b"".join(event_frame("PayloadChunk", (b"%07d\n" % i) * 2048)
                          for i in range(int(name[len("stream-big-"):])))
        stream += complete_frame(log_result=tail)
        return 200, [("Content-Type", content_type)], \
            [(stream[i:i + 10000], 0) for i in range(0, len(stream), 10000)]
    elif name == "stream-fail-early":
        return 200, [("Content-Type", HTTP_INTEGRATION),
                     ("X-Amz-Executed-Version", qualifier or "$LATEST")], \
            [(complete_frame(*failure, tail), 0)]
    else:
        payload = http_prelude(name)
        if name == "stream-split":
            # The JSON cut in the middle, the NULs cut 3/5, the body mid-event.
            whole = payload + b"".join(SSE_EVENTS)
            cuts = [0, 10, len(payload) - 5, len(payload) + 4, len(whole)]
            frames = [(event_frame("PayloadChunk", whole[a:b]), 0)
                      for a, b in zip(cuts, cuts[1:])]
        else:
            events = SSE_EVENTS if name == "stream-http" or name.startswith(
                ("stream-stall-", "stream-late-")) else SSE_EVENTS[:1]
            frames = [(event_frame("PayloadChunk", payload), 0)]
            frames += [(event_frame("PayloadChunk", e), 0) for e in events]
        if name.startswith("stream-stall-"):
            frames[2] = (frames[2][0], int(name[len("stream-stall-"):]) / 1000.0)
        if name.startswith("stream-late-"):
            frames[0] = (frames[0][0], int(name[len("stream-late-"):]) / 1000.0)
    # The failures come after a pause, so that the head and the first event have
    # reached the client (the answer streams) when they do.
    if name == "stream-fail":
        frames.append((complete_frame(*failure, tail), FAIL_AFTER))
    elif name == "stream-exception":
        frames.append((exception_frame("ServiceException", "the stream broke"), FAIL_AFTER))
    else:
        frames.append((complete_frame(log_result=tail), 0))
    if name == "stream-split":
        stream = b"".join(f for f, _ in frames)
        writes = [(stream[i:i + 7], 0) for i in range(0, len(stream), 7)]
    else:
        writes = frames
    out = [("Content-Type", content_type), ("X-Amz-Executed-Version", qualifier or "$LATEST")]
    return 200, out, writes
