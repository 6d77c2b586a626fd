"""cgprof's SigV4 against botocore's, byte for byte: the same requests
(AWS's test-suite cases and codeguru-profiler-shaped ones) signed by the
test_sigv4 driver and by botocore.auth.SigV4Auth at the same instant."""
import os
import subprocess
import tempfile
import unittest

from cgtest import BUILD

DRIVER = os.path.join(BUILD, "tests", "unit", "test_sigv4")

try:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
except ImportError:  # pragma: no cover
    SigV4Auth = None

AK = "AKIDEXAMPLE"
SK = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+token=="


def botocore_sign(method, host, path, query, headers, body, region, service,
                  amz_date, token):
    url = "https://" + host + path + ("?" + query if query else "")
    req = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    req.context["timestamp"] = amz_date
    auth = SigV4Auth(Credentials(AK, SK, token), service, region)
    auth._modify_request_before_signing(req)
    cr = auth.canonical_request(req)
    sts = auth.string_to_sign(req, cr)
    sig = auth.signature(sts, req)
    auth._inject_signature_to_request(req, sig)
    return cr, sts, req.headers["Authorization"]


def cgprof_sign(method, host, path, query, headers, body, region, service,
                amz_date, token):
    with tempfile.NamedTemporaryFile() as f:
        f.write(body or b"")
        f.flush()
        args = [DRIVER, "sign", method, path, query or "-", region, service,
                amz_date, AK, SK, token or "-", f.name if body else "-",
                "Host:" + host]
        args += ["%s:%s" % kv for kv in headers]
        out = subprocess.run(args, capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise AssertionError("driver failed: " + out.stderr)
    cr, sts, auth = out.stdout.rstrip("\n").split("\n----\n")
    return cr, sts, auth


CASES = [
    # (method, path, query, headers, body, service, token)
    ("GET", "/", None, [], None, "service", None),
    ("POST", "/", None, [], None, "service", None),
    ("GET", "/", None, [], None, "service", TOKEN),
    ("GET", "/", "Param2=value2&Param1=value1", [], None, "service", None),
    ("GET", "/", "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
     "=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", [], None,
     "service", None),
    ("POST", "/", None, [("Content-Type", "application/x-www-form-urlencoded")],
     b"Param1=value1", "service", None),
    ("GET", "/", None, [("My-Header1", " value1"), ("My-Header2", ' "a   b   c"')], None,
     "service", None),
    ("GET", "//example//", None, [], None, "service", None),
    ("GET", "/example1/example2/../..", None, [], None, "service", None),
    ("GET", "/example%20space/", None, [], None, "service", None),
    ("GET", "/", "b=2&a=1&a=0", [("X-Amz-Meta", "z")], None, "service", None),
    # What cgprof sends.
    ("POST", "/profilingGroups/my-group_1/configureAgent", None,
     [("Content-Type", "application/json")],
     b'{"fleetInstanceId":"host-1","metadata":{"ComputePlatform":"UNKNOWN"}}',
     "codeguru-profiler", None),
    ("POST", "/profilingGroups/my-group_1/agentProfile",
     "profileToken=0f8fad5b-d9cb-469f-a165-70867728950e",
     [("Content-Type", "application/json")], b'{"start":1,"end":2,"callgraph":{}}',
     "codeguru-profiler", TOKEN),
    ("POST", "/profilingGroups/g/agentProfile",
     "profileToken=0f8fad5b-d9cb-469f-a165-70867728950e",
     [("Content-Type", "application/json"), ("User-Agent", "cgprof/0.1")], b"{}" * 5000,
     "codeguru-profiler", TOKEN),
]


@unittest.skipIf(SigV4Auth is None, "botocore (python3-botocore) not installed")
class SigV4Botocore(unittest.TestCase):
    def setUp(self):
        if not os.access(DRIVER, os.X_OK):
            self.skipTest("%s not built (make unit-bin)" % DRIVER)

    def test_same_as_botocore(self):
        for i, (method, path, query, headers, body, service, token) in enumerate(CASES):
            for region, host, date in (("us-east-1", "example.amazonaws.com", "20150830T123600Z"),
                                       ("eu-west-2", "codeguru-profiler.eu-west-2.amazonaws.com",
                                        "20261125T010203Z"),
                                       ("us-west-2", "127.0.0.1:8443", "20261231T235959Z")):
                with self.subTest(case=i, region=region):
                    want = botocore_sign(method, host, path, query, headers, body, region,
                                         service, date, token)
                    got = cgprof_sign(method, host, path, query, headers, body, region,
                                      service, date, token)
                    self.assertEqual(got[0], want[0], "canonical request")
                    self.assertEqual(got[1], want[1], "string to sign")
                    self.assertEqual(got[2], want[2], "Authorization")


if __name__ == "__main__":
    unittest.main()
