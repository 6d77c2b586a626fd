"""Test-side helpers for the fake endpoint: a throwaway CA and server
certificate made with the openssl CLI, and starting/stopping server.py,
metadata.py and proxy.py as subprocesses on 127.0.0.1."""
import base64
import hashlib
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_pki(d, name="ca"):
    """CA + a server certificate for 127.0.0.1/localhost signed by it.
    Returns dict(ca=, cert=, key=, pin=) paths and the key's sha256 pin."""
    os.makedirs(d, exist_ok=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key",
            "-out", name + ".pem", "-days", "2", "-subj", "/CN=cgprof test CA " + name,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + "-server.key",
            "-out", name + "-server.csr", "-subj", "/CN=127.0.0.1", cwd=d)
    ext = os.path.join(d, name + "-ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", name + "-server.csr", "-CA", name + ".pem", "-CAkey",
            name + ".key", "-CAcreateserial", "-out", name + "-server.pem", "-days", "2",
            "-extfile", ext, cwd=d)
    der = subprocess.run(["openssl", "x509", "-in", os.path.join(d, name + "-server.pem"),
                          "-pubkey", "-noout"], capture_output=True, check=True).stdout
    spki = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=der,
                          capture_output=True, check=True).stdout
    pin = base64.b64encode(hashlib.sha256(spki).digest()).decode()
    return {"ca": os.path.join(d, name + ".pem"), "cert": os.path.join(d, name + "-server.pem"),
            "key": os.path.join(d, name + "-server.key"), "pin": pin}


def make_expired_server(d, pki, name="expired"):
    """A server certificate for 127.0.0.1 signed by pki's CA that expired
    yesterday (the openssl CLI of Debian 12 cannot back-date one).
    Returns a pki-like dict with cert/key replaced."""
    import datetime
    import ipaddress
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID
    with open(os.path.join(os.path.dirname(pki["ca"]), os.path.basename(pki["ca"])[:-4] + ".key"),
              "rb") as f:
        ca_key = serialization.load_pem_private_key(f.read(), None)
    with open(pki["ca"], "rb") as f:
        ca = x509.load_pem_x509_certificate(f.read())
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=3))
            .not_valid_after(now - datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    os.makedirs(d, exist_ok=True)
    out = dict(pki, cert=os.path.join(d, name + ".pem"), key=os.path.join(d, name + ".key"))
    with open(out["cert"], "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(out["key"], "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption()))
    return out


def wait_port(d, proc, timeout=20):
    path = os.path.join(d, "port")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path) as f:
                return int(f.read())
        if proc.poll() is not None:
            raise RuntimeError("server exited: %s" % proc.stderr.read())
        time.sleep(0.05)
    raise RuntimeError("server did not start")


class Loopback:
    """One of the stand-ins (server.py, metadata.py, proxy.py) in a
    subprocess that keeps its state in dir: its port once it listens, its
    request log, stop()."""

    def __init__(self, d):
        os.makedirs(d, exist_ok=True)
        self.dir = d
        self.port = 0
        self.proc = None

    def spawn(self, script, *args):
        self.proc = subprocess.Popen([PY, os.path.join(HERE, script), "--dir", self.dir, *args],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        self.port = wait_port(self.dir, self.proc)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def log(self):
        try:
            with open(os.path.join(self.dir, "log.jsonl")) as f:
                return [json.loads(l) for l in f if l.strip()]
        except FileNotFoundError:
            return []


class Endpoint(Loopback):
    """server.py in a subprocess; stop() and start() again on the same port
    simulate an endpoint that goes down and comes back."""

    def __init__(self, d, pki, access_key, secret, region="us-east-1", max_tls="1.3"):
        super().__init__(d)
        self.pki = pki
        self.args = ["--access-key", access_key, "--secret", secret, "--region", region,
                     "--max-tls", max_tls]

    def start(self):
        try:
            os.unlink(os.path.join(self.dir, "port"))
        except FileNotFoundError:
            pass
        self.spawn("server.py", "--cert", self.pki["cert"], "--key", self.pki["key"],
                   "--port", str(self.port), *self.args)
        return self

    @property
    def url(self):
        return "https://127.0.0.1:%d" % self.port

    def control(self, **kw):
        tmp = os.path.join(self.dir, "control.json.tmp")
        with open(tmp, "w") as f:
            json.dump(kw, f)
        os.replace(tmp, os.path.join(self.dir, "control.json"))

    def profiles(self):
        d = os.path.join(self.dir, "profiles")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []


class Metadata(Loopback):
    def __init__(self, d, access_key, secret, token="session-token-from-metadata",
                 expires_in=3600, auth_token=""):
        super().__init__(d)
        self.spawn("metadata.py", "--access-key", access_key, "--secret", secret,
                   "--token", token, "--expires-in", str(expires_in), "--auth-token", auth_token)


def clean_env(home, **extra):
    """An environment with no AWS settings of the caller's, HOME in a temp
    dir (no real ~/.aws), metadata off unless a test turns it on, and
    proxies off so nothing leaves 127.0.0.1."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_") and k.lower() not in
           ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    env.update(HOME=home, AWS_EC2_METADATA_DISABLED="true", NO_PROXY="127.0.0.1,localhost")
    env.update(extra)
    return env


class Proxy(Loopback):
    """proxy.py (CONNECT to loopback only) in a subprocess."""

    def __init__(self, d):
        super().__init__(d)
        self.spawn("proxy.py")
