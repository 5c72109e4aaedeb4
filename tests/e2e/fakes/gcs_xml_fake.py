"""A FAKE of the Google Cloud Storage XML API subset object_store calls.

No GCS emulator from the reachable registries speaks the XML API that
object_store's GCS client uses (gcp-storage-emulator and fake-gcs-server
both fail on PUT), so this test harness keeps its own small fake. It is not
GCS: it implements exactly PUT / GET / HEAD / DELETE of objects,
`x-goog-if-generation-match: 0` (create-only), `list-type=2` listing (prefix, delimiter,
`start-after`) and XML multipart uploads, on a folder of plain files (ROOT/BUCKET/KEY).

Requests must carry `Authorization: Bearer <token>`: a JWT (object_store signs
one with a service account's private key) or an OAuth access token (`ya29.…`,
as the metadata server hands out). Test-only admin endpoints:
`POST /_fake/bucket/NAME` creates a bucket, `POST /_fake/deny?ops=put,list`
makes those operations answer 403 (`POST /_fake/deny?ops=` clears it).

Run: python gcs_xml_fake.py --port 45103 --root /tmp/gcs
"""

import argparse
import hashlib
import os
import threading
import time
import urllib.parse
import uuid
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

LOCK = threading.Lock()
DENY = set()
UPLOADS = {}  # upload id -> (bucket, key, {part number: bytes})


def xml_error(code, message):
    return (
        f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
        f"<Message>{escape(message)}</Message></Error>"
    ).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    root = "."

    def log_message(self, fmt, *args):  # quiet
        pass

    # --- helpers -------------------------------------------------------
    def send(self, status, body=b"", headers=None, head=False):
        # a reply to HEAD never has a body, errors included: bytes left on a
        # kept-alive connection would be read as the start of the next reply
        head = head or self.command == "HEAD"
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def fail(self, status, code, message):
        self.send(status, xml_error(code, message), {"Content-Type": "application/xml"})

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def split(self):
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
        parts = u.path.lstrip("/").split("/", 1)
        bucket = urllib.parse.unquote(parts[0])
        key = urllib.parse.unquote(parts[1]) if len(parts) > 1 else ""
        return bucket, key, q

    def authorized(self):
        auth = self.headers.get("Authorization", "")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
        # a self-signed JWT (service account) or an OAuth access token (metadata server, ADC)
        if token.count(".") != 2 and not token.startswith("ya29."):
            self.fail(401, "AuthenticationRequired", "a Bearer token is required")
            return False
        return True

    def denied(self, op):
        if op in DENY:
            self.fail(403, "AccessDenied", f"fake: {op} is denied for this caller")
            return True
        return False

    def bucket_dir(self, bucket):
        d = os.path.join(self.root, bucket)
        if not bucket or not os.path.isdir(d):
            self.fail(404, "NoSuchBucket", "The specified bucket does not exist.")
            return None
        return d

    def meta_headers(self, path, data_len):
        st = os.stat(path)
        with open(path, "rb") as f:
            etag = hashlib.md5(f.read()).hexdigest()
        return {
            "ETag": f'"{etag}"',
            "Last-Modified": formatdate(st.st_mtime, usegmt=True),
            "x-goog-generation": str(int(st.st_mtime_ns // 1000)),
            "Content-Type": "application/octet-stream",
        }

    # --- verbs ---------------------------------------------------------
    def do_POST(self):
        if self.path.startswith("/_fake/"):
            u = urllib.parse.urlsplit(self.path)
            if u.path.startswith("/_fake/bucket/"):
                os.makedirs(os.path.join(self.root, u.path[len("/_fake/bucket/"):]), exist_ok=True)
            elif u.path == "/_fake/deny":
                q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
                DENY.clear()
                DENY.update(o for o in q.get("ops", "").split(",") if o)
            self.body()
            return self.send(200)
        if not self.authorized():
            return
        bucket, key, q = self.split()
        data = self.body()
        if self.denied("put") or (d := self.bucket_dir(bucket)) is None:
            return
        if "uploads" in q:
            uid = uuid.uuid4().hex
            with LOCK:
                UPLOADS[uid] = (bucket, key, {})
            body = (
                "<?xml version='1.0' encoding='UTF-8'?><InitiateMultipartUploadResult>"
                f"<Bucket>{escape(bucket)}</Bucket><Key>{escape(key)}</Key>"
                f"<UploadId>{uid}</UploadId></InitiateMultipartUploadResult>"
            ).encode()
            return self.send(200, body, {"Content-Type": "application/xml"})
        if "uploadId" in q:
            with LOCK:
                up = UPLOADS.pop(q["uploadId"], None)
            if up is None:
                return self.fail(404, "NoSuchUpload", "no such upload")
            _, _, parts = up
            blob = b"".join(parts[n] for n in sorted(parts))
            path = self.write(d, key, blob)
            etag = self.meta_headers(path, len(blob))["ETag"]
            body = (
                "<?xml version='1.0' encoding='UTF-8'?><CompleteMultipartUploadResult>"
                f"<Bucket>{escape(bucket)}</Bucket><Key>{escape(key)}</Key>"
                f"<ETag>{escape(etag)}</ETag></CompleteMultipartUploadResult>"
            ).encode()
            return self.send(200, body, {"Content-Type": "application/xml"})
        self.fail(400, "InvalidArgument", "unsupported POST")

    def write(self, d, key, data):
        path = os.path.join(d, key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.fake-tmp-{uuid.uuid4().hex}"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        return path

    def do_PUT(self):
        if not self.authorized():
            return
        bucket, key, q = self.split()
        data = self.body()
        if self.denied("put") or (d := self.bucket_dir(bucket)) is None:
            return
        if "uploadId" in q:
            with LOCK:
                up = UPLOADS.get(q["uploadId"])
                if up is None:
                    return self.fail(404, "NoSuchUpload", "no such upload")
                up[2][int(q["partNumber"])] = data
            return self.send(200, b"", {"ETag": f'"{hashlib.md5(data).hexdigest()}"'})
        path = os.path.join(d, key)
        with LOCK:
            if self.headers.get("x-goog-if-generation-match") == "0" and os.path.exists(path):
                return self.fail(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold.")
            path = self.write(d, key, data)
        self.send(200, b"", self.meta_headers(path, len(data)))

    def do_GET(self, head=False):
        if not self.authorized():
            return
        bucket, key, q = self.split()
        if (d := self.bucket_dir(bucket)) is None:
            return
        if not key and q.get("list-type") == "2":
            if self.denied("list"):
                return
            return self.list(d, q)
        if self.denied("get"):
            return
        path = os.path.join(d, key)
        if not key or not os.path.isfile(path):
            return self.fail(404, "NoSuchKey", "The specified key does not exist.")
        with open(path, "rb") as f:
            data = f.read()
        headers = self.meta_headers(path, len(data))
        status = 200
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and not head:
            a, _, b = rng[6:].partition("-")
            start = int(a) if a else max(0, len(data) - int(b))
            end = int(b) if (a and b) else len(data) - 1
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data = data[start : end + 1]
            status = 206
        if head:
            self.send_response(200)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            return
        self.send(status, data, headers)

    def do_HEAD(self):
        self.do_GET(head=True)

    def list(self, d, q):
        prefix = q.get("prefix", "")
        delim = q.get("delimiter")
        start_after = q.get("start-after")
        keys = []
        for base, _, files in os.walk(d):
            for f in files:
                if ".fake-tmp-" in f:
                    continue
                k = os.path.relpath(os.path.join(base, f), d).replace(os.sep, "/")
                if k.startswith(prefix) and (start_after is None or k > start_after):
                    keys.append(k)
        keys.sort()
        contents, prefixes = [], set()
        for k in keys:
            rest = k[len(prefix):]
            if delim and delim in rest:
                prefixes.add(prefix + rest.split(delim, 1)[0] + delim)
                continue
            p = os.path.join(d, k)
            st = os.stat(p)
            contents.append(
                f"<Contents><Key>{escape(k)}</Key><Size>{st.st_size}</Size>"
                f"<LastModified>{time.strftime('%Y-%m-%dT%H:%M:%S.000Z', time.gmtime(st.st_mtime))}</LastModified>"
                f"<ETag>\"x\"</ETag></Contents>"
            )
        cps = "".join(f"<CommonPrefixes><Prefix>{escape(p)}</Prefix></CommonPrefixes>" for p in sorted(prefixes))
        body = (
            "<?xml version='1.0' encoding='UTF-8'?><ListBucketResult>"
            f"<Prefix>{escape(prefix)}</Prefix><KeyCount>{len(contents)}</KeyCount>"
            f"{''.join(contents)}{cps}</ListBucketResult>"
        ).encode()
        self.send(200, body, {"Content-Type": "application/xml"})

    def do_DELETE(self):
        if not self.authorized():
            return
        bucket, key, q = self.split()
        if self.denied("delete") or (d := self.bucket_dir(bucket)) is None:
            return
        if "uploadId" in q:
            with LOCK:
                UPLOADS.pop(q["uploadId"], None)
            return self.send(204)
        path = os.path.join(d, key)
        if not os.path.isfile(path):
            return self.fail(404, "NoSuchKey", "The specified key does not exist.")
        os.remove(path)
        self.send(204)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=45103)
    ap.add_argument("--root", required=True)
    a = ap.parse_args()
    os.makedirs(a.root, exist_ok=True)
    Handler.root = a.root
    ThreadingHTTPServer((a.host, a.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
