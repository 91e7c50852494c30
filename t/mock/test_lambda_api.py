"""Tests of the mock's Invoke API: its event checks accept the examples AWS documents
and refuse broken events, so that t/90-invoke.t can trust them.

    python3 -m unittest t/mock/test_lambda_api.py
"""

import base64
import copy
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lambda_api  # noqa: E402

# The function URL request payload example of the Lambda developer guide
# ("Invoking Lambda function URLs", request payload format).
V2_EXAMPLE = {
    "version": "2.0",
    "routeKey": "$default",
    "rawPath": "/my/path",
    "rawQueryString": "parameter1=value1&parameter1=value2&parameter2=value",
    "cookies": ["cookie1", "cookie2"],
    "headers": {"header1": "value1", "header2": "value1,value2"},
    "queryStringParameters": {"parameter1": "value1,value2", "parameter2": "value"},
    "requestContext": {
        "accountId": "123456789012",
        "apiId": "<urlid>",
        "authentication": None,
        "authorizer": {"iam": {"accessKey": "AKIA...", "accountId": "111122223333",
                               "callerId": "AIDA...", "cognitoIdentity": None,
                               "principalOrgId": None, "userArn": "arn:aws:iam::111122223333:user/example-user",
                               "userId": "AIDA..."}},
        "domainName": "<url-id>.lambda-url.us-west-2.on.aws",
        "domainPrefix": "<url-id>",
        "http": {"method": "POST", "path": "/my/path", "protocol": "HTTP/1.1",
                 "sourceIp": "123.123.123.123", "userAgent": "agent"},
        "requestId": "id",
        "routeKey": "$default",
        "stage": "$default",
        "time": "12/Mar/2020:19:03:58 +0000",
        "timeEpoch": 1583348638390,
    },
    "body": "Hello from client!",
    "pathParameters": None,
    "isBase64Encoded": False,
    "stageVariables": None,
}

# The REST API proxy integration input example of the API Gateway developer guide,
# shortened (same fields and types).
V1_EXAMPLE = {
    "resource": "/my/path",
    "path": "/my/path",
    "httpMethod": "GET",
    "headers": {"header1": "value1", "header2": "value2"},
    "multiValueHeaders": {"header1": ["value1"], "header2": ["value1", "value2"]},
    "queryStringParameters": {"parameter1": "value1", "parameter2": "value"},
    "multiValueQueryStringParameters": {"parameter1": ["value1", "value2"],
                                        "parameter2": ["value"]},
    "requestContext": {
        "accountId": "123456789012", "apiId": "id", "authorizer": {"claims": None, "scopes": None},
        "domainName": "id.execute-api.us-east-1.amazonaws.com", "domainPrefix": "id",
        "extendedRequestId": "request-id", "httpMethod": "GET",
        "identity": {"accessKey": None, "sourceIp": "192.0.2.1", "user": None,
                     "userAgent": "user-agent", "userArn": None},
        "path": "/my/path", "protocol": "HTTP/1.1", "requestId": "id=",
        "requestTime": "04/Mar/2020:19:15:17 +0000", "requestTimeEpoch": 1583349317135,
        "resourceId": None, "resourcePath": "/my/path", "stage": "$default",
    },
    "pathParameters": None,
    "stageVariables": None,
    "body": "Hello from Lambda!",
    "isBase64Encoded": False,
}


class EventChecks(unittest.TestCase):
    def test_documented_examples_pass(self):
        # the v1 example's header2 is "value2", the last of its multi-values
        self.assertEqual(lambda_api.check_event(V2_EXAMPLE), ("v2", []))
        self.assertEqual(lambda_api.check_event(V1_EXAMPLE), ("v1", []))

    def test_broken_v2_events_fail(self):
        cases = {
            "version is not \"2.0\"": lambda e: e.update(version="1.0", rawPath="/"),
            "rawQueryString missing or not str": lambda e: e.pop("rawQueryString"),
            "headers is not a map of strings": lambda e: e["headers"].update(n=1),
            "the cookie header is not moved to cookies": lambda e: e["headers"].update(cookie="a=1"),
            "requestContext.timeEpoch missing or not int": lambda e: e["requestContext"].update(timeEpoch="1"),
            "requestContext.time is not dd/Mon/yyyy:HH:MM:SS +zzzz":
                lambda e: e["requestContext"].update(time="2020-03-12T19:03:58Z"),
            "requestContext.http.sourceIp missing or not str":
                lambda e: e["requestContext"]["http"].pop("sourceIp"),
            "isBase64Encoded but body is not base64": lambda e: e.update(isBase64Encoded=True, body="%%"),
            "httpMethod belongs to the 1.0 format": lambda e: e.update(httpMethod="GET"),
        }
        for problem, breaks in cases.items():
            event = copy.deepcopy(V2_EXAMPLE)
            breaks(event)
            self.assertIn(problem, lambda_api.check_v2(event), problem)

    def test_broken_v1_events_fail(self):
        cases = {
            "headers[header2] is not the last of multiValueHeaders":
                lambda e: e["headers"].update(header2="value1"),
            "multiValueQueryStringParameters is not a map of string lists or null":
                lambda e: e.update(multiValueQueryStringParameters={"a": "b"}),
            "requestContext.httpMethod differs from httpMethod":
                lambda e: e.update(httpMethod="POST"),
            "requestContext.identity.sourceIp missing": lambda e: e["requestContext"].pop("identity"),
            "body is neither a string nor null": lambda e: e.update(body={"a": 1}),
            "cookies belongs to the 2.0 format": lambda e: e.update(cookies=["a"]),
        }
        for problem, breaks in cases.items():
            event = copy.deepcopy(V1_EXAMPLE)
            breaks(event)
            self.assertIn(problem, lambda_api.check_v1(event), problem)


class Invoke(unittest.TestCase):
    def call(self, name, body=b"{}", verdict="ok", headers=(), query=""):
        auth = ("Authorization", "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/lambda/"
                "aws4_request, SignedHeaders=host, Signature=00")
        return lambda_api.invoke(name, query, [auth] + list(headers), body, verdict,
                                 lambda _msg: None)

    def test_errors_as_lambda_sends_them(self):
        status, headers, _ = self.call("echo", verdict="none")
        self.assertEqual(status, 403)
        self.assertIn(("x-amzn-ErrorType",
                       "MissingAuthenticationTokenException:http://internal.amazon.com/coral/"),
                      headers)
        self.assertEqual(self.call("nosuch")[0], 404)
        status, headers, _ = self.call("throttle")
        self.assertEqual((status, dict(headers).get("Retry-After")), (429, "7"))
        status, headers, _ = self.call("unavailable")
        self.assertEqual((status, dict(headers).get("Retry-After")), (503, "5"))
        self.assertEqual(self.call("raw-echo", body=b"not json")[0], 400)
        self.assertEqual(self.call("echo", body=b" " * (6 * 1024 * 1024 + 1))[0], 413)
        wrong_region = self.call("arn%3Aaws%3Alambda%3Aeu-west-1%3A123456789012%3Afunction%3Aecho")
        self.assertEqual(wrong_region[0], 403)

    def test_signature_mismatch_forms(self):
        token = ("X-Amz-Security-Token", "TOKEN")
        date = ("X-Amz-Date", "20260101T000000Z")
        message = lambda body: json.loads(body)["message"]  # noqa: E731
        status, _, body = self.call("echo", headers=[token, date], verdict="mismatch")
        self.assertEqual(status, 403)
        self.assertIn("for details.\n\nThe Canonical String for this request should have "
                      "been\n'POST\n", message(body))
        self.assertIn("x-amz-security-token:TOKEN", message(body))
        self.assertIn("\n\nThe String-to-Sign should have been\n'AWS4-HMAC-SHA256\n"
                      "20260101T000000Z\n20260101/", message(body))
        _, _, body = self.call("one-line-sig", headers=[token], verdict="mismatch")
        self.assertIn("you provided. The Canonical String", message(body))
        self.assertIn("x-amz-security-token:TOKEN", message(body))

    def test_response_shapes(self):
        v2 = json.dumps(V2_EXAMPLE).encode()
        result = json.loads(self.call("cookies", body=v2)[2])
        self.assertEqual(result["headers"]["x-multi"], "1,2")
        self.assertIn("X-Only-Multi", result["multiValueHeaders"])
        result = json.loads(self.call("untyped", body=v2)[2])
        self.assertEqual((result["statusCode"], result.get("headers")), (200, None))

    def test_invocation_types_and_tail(self):
        self.assertEqual(self.call("echo", headers=[("X-Amz-Invocation-Type", "Event")])[0], 202)
        self.assertEqual(self.call("echo", headers=[("X-Amz-Invocation-Type", "DryRun")])[0], 204)
        _, headers, _ = self.call("echo", headers=[("X-Amz-Log-Type", "Tail")])
        tail = dict(headers)["X-Amz-Log-Result"]
        self.assertIn(b"mock log line from echo", base64.b64decode(tail))
        _, headers, _ = self.call("forged-log", headers=[("X-Amz-Log-Type", "Tail")])
        tail = base64.b64decode(dict(headers)["X-Amz-Log-Result"])
        self.assertIn(b"\n2026/01/01 00:00:00 [alert] forged\n", tail)

    def test_echo_reports_problems(self):
        status, _, body = self.call("echo", body=json.dumps(V2_EXAMPLE).encode())
        self.assertEqual((status, json.loads(body)["statusCode"]), (200, 200))
        broken = dict(V2_EXAMPLE, rawQueryString=None)
        result = json.loads(self.call("echo", body=json.dumps(broken).encode())[2])
        self.assertEqual(result["statusCode"], 422)


class InvokeStream(unittest.TestCase):
    """The InvokeWithResponseStream answers, read back with botocore's own event-stream
    parser: the mock's frame encoder is held to an implementation it did not write."""

    def call(self, name, headers=(), body=None):
        auth = ("Authorization", "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/lambda/"
                "aws4_request, SignedHeaders=host, Signature=00")
        body = json.dumps(V2_EXAMPLE).encode() if body is None else body
        return lambda_api.invoke_stream(name, "", [auth] + list(headers), body, "ok",
                                        lambda _msg: None)

    def messages(self, writes):
        from botocore.eventstream import EventStreamBuffer
        buf = EventStreamBuffer()
        out = []
        for data, _delay in writes:
            buf.add_data(data)
            out.extend(buf)
        return out

    def payload(self, messages):
        return b"".join(m.payload for m in messages
                        if m.headers.get(":event-type") == "PayloadChunk")

    def test_frames_parse_with_botocore(self):
        status, headers, writes = self.call("stream-http", [("X-Amz-Log-Type", "Tail")])
        self.assertEqual(status, 200)
        self.assertEqual(dict(headers)["Content-Type"], lambda_api.HTTP_INTEGRATION)
        messages = self.messages(writes)
        self.assertEqual([m.headers[":message-type"] for m in messages], ["event"] * 5)
        prelude, _, body = self.payload(messages).partition(b"\0" * 8)
        self.assertEqual(json.loads(prelude)["statusCode"], 201)
        self.assertEqual(body, b"".join(lambda_api.SSE_EVENTS))
        done = json.loads(messages[-1].payload)
        self.assertEqual(messages[-1].headers[":event-type"], "InvokeComplete")
        self.assertIn(b"mock log line from stream-http", base64.b64decode(done["LogResult"]))

    def test_split_is_the_same_stream(self):
        whole = self.payload(self.messages(self.call("stream-http")[2]))
        _, _, writes = self.call("stream-split")
        self.assertTrue(all(len(data) <= 7 for data, _ in writes))
        messages = self.messages(writes)
        self.assertGreater(len(messages), 4)
        self.assertEqual(self.payload(messages), whole.replace(b"stream-http", b"stream-split"))

    def test_failures(self):
        messages = self.messages(self.call("stream-fail")[2])
        done = json.loads(messages[-1].payload)
        self.assertEqual(done["ErrorCode"], "Unhandled")
        self.assertEqual(json.loads(done["ErrorDetails"])["errorMessage"], "boom mid-stream")
        messages = self.messages(self.call("stream-fail-early")[2])
        self.assertEqual(len(messages), 1)
        messages = self.messages(self.call("stream-exception")[2])
        self.assertEqual(messages[-1].headers[":message-type"], "exception")
        self.assertEqual(messages[-1].headers[":exception-type"], "ServiceException")
        _, _, writes = self.call("stream-stall-250")
        self.assertEqual([d for _, d in writes], [0, 0, 0.25, 0, 0])
        _, _, writes = self.call("stream-late-250")
        self.assertEqual([d for _, d in writes], [0.25, 0, 0, 0, 0])
        _, _, writes = self.call("stream-fail")
        self.assertEqual([d for _, d in writes], [0, 0, lambda_api.FAIL_AFTER])

    def test_big(self):
        _, headers, writes = self.call("stream-big-3")
        payload = self.payload(self.messages(writes))
        self.assertEqual(payload, b"".join((b"%07d\n" % i) * 2048 for i in range(3)))

    def test_api_errors(self):
        self.assertEqual(self.call("stream-http", [("X-Amz-Invocation-Type", "Event")])[0], 400)
        self.assertEqual(self.call("stream-http", [("X-Amz-Invocation-Type", "DryRun")])[0], 204)
        self.assertEqual(self.call("echo")[0], 404)
        self.assertEqual(self.call("throttle")[0], 429)


if __name__ == "__main__":
    unittest.main()
