"""Drives a running `derive serve` with Alibaba's own Python SDK (oss2) and checks every answer.

Usage: oss2_check.py ENDPOINT   (the server must serve Tests/Interop/fixture.yaml's buckets,
with DERIVE_SECRET=secret). Prints 'N passed, M failed' and exits 1 on any failure.
"""
import io
import os
import re
import struct
import subprocess
import sys
import time
import zlib
from unittest import mock

import oss2
import requests

ENDPOINT = sys.argv[1]
AK, SK = 'AKIDEXAMPLE', 'secret'
results = []


def check(name, condition, detail=''):
    results.append(bool(condition))
    print(('ok   ' if condition else 'FAIL ') + name + ('' if condition else '  ' + str(detail)))


def size(data):
    """Width and height of a JPEG, PNG or WebP from its bytes (no imaging library needed)."""
    if data[:8] == b'\x89PNG\r\n\x1a\n':
        return struct.unpack('>II', data[16:24])
    if data[:4] == b'RIFF' and data[8:12] == b'WEBP':
        if data[12:16] == b'VP8 ':
            w, h = struct.unpack('<HH', data[26:30])
            return w & 0x3FFF, h & 0x3FFF
        if data[12:16] == b'VP8L':
            bits = struct.unpack('<I', data[21:25])[0]
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    i = 2
    while i < len(data):
        marker, length = data[i + 1], struct.unpack('>H', data[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            h, w = struct.unpack('>HH', data[i + 5:i + 9])
            return w, h
        i += 2 + length
    return None


v1 = oss2.Bucket(oss2.Auth(AK, SK), ENDPOINT, 'photos')
v4 = oss2.Bucket(oss2.AuthV4(AK, SK), ENDPOINT, 'photos', region='cn-hangzhou')
drop = oss2.Bucket(oss2.Auth(AK, SK), ENDPOINT, 'drop')
anonymous = oss2.Bucket(oss2.AnonymousAuth(), ENDPOINT, 'photos')

# Signed URLs, V1 and V4, with a process string and with a style.
for label, bucket in (('V1', v1), ('V4', v4)):
    url = bucket.sign_url('GET', 'cats/kitten.jpg', 60, params={'x-oss-process': 'image/resize,w_120'})
    r = requests.get(url)
    check(label + ' sign_url process -> 200, 120 px wide', r.status_code == 200 and size(r.content)[0] == 120, (r.status_code, r.text[:200]))
    url = bucket.sign_url('GET', 'cats/kitten.jpg', 60, params={'x-oss-process': 'style/thumb'})
    r = requests.get(url)
    check(label + ' sign_url style -> 200, 100 px wide', r.status_code == 200 and size(r.content)[0] == 100, (r.status_code, r.text[:200]))

# get_object with process= (header-signed), V1 and V4.
for label, bucket in (('V1', v1), ('V4', v4)):
    data = bucket.get_object('cats/kitten.jpg', process='image/resize,w_64/format,png').read()
    check(label + ' get_object process= -> PNG 64 px', data[:4] == b'\x89PNG' and size(data)[0] == 64, size(data))

# put_object, then read back; into a public-read-write bucket anonymously too.
v1.put_object('uploads/hello.txt', b'hello derive')
check('put_object then get_object', v1.get_object('uploads/hello.txt').read() == b'hello derive')
oss2.Bucket(oss2.AnonymousAuth(), ENDPOINT, 'drop').put_object('anon.txt', b'anon')
check('anonymous put into public-read-write', drop.get_object('anon.txt').read() == b'anon')

# process_object with sys/saveas.
target = oss2.utils.b64encode_as_string('thumbs/kitten-80.jpg').replace('=', '').replace('+', '-').replace('/', '_')
result = v1.process_object('cats/kitten.jpg', 'image/resize,w_80|sys/saveas,o_' + target)
saved = v1.get_object('thumbs/kitten-80.jpg').read()
check('process_object saveas', result.status == 200 and result.object == 'thumbs/kitten-80.jpg' and result.fileSize == len(saved)
      and size(saved)[0] == 80, (result.status, result.object, result.fileSize))

# Anonymous GET of a private object.
try:
    anonymous.get_object('cats/kitten.jpg')
    check('anonymous private -> 403', False)
except oss2.exceptions.AccessDenied as e:
    check('anonymous private -> 403 AccessDenied', e.status == 403 and e.code == 'AccessDenied', e)

# Anonymous GET of a public object works.
check('anonymous public-read object', anonymous.get_object('press/p.jpg').read()[:2] == b'\xff\xd8')

# Expired URL.
with mock.patch('oss2.auth.time.time', return_value=time.time() - 7200):
    url = v1.sign_url('GET', 'cats/kitten.jpg', 60)
r = requests.get(url)
check('expired URL -> 403', r.status_code == 403 and '<Code>AccessDenied</Code>' in r.text and 'expired' in r.text, r.text[:300])

# A tampered process parameter.
url = v1.sign_url('GET', 'cats/kitten.jpg', 60, params={'x-oss-process': 'image/resize,w_100'})
r = requests.get(url.replace('w_100', 'w_900'))
check('tampered process -> 403 SignatureDoesNotMatch', r.status_code == 403 and '<Code>SignatureDoesNotMatch</Code>' in r.text
      and '<StringToSign>' in r.text, r.text[:300])

# A missing key.
try:
    v1.get_object('cats/missing.jpg')
    check('missing key -> 404', False)
except oss2.exceptions.NoSuchKey as e:
    check('missing key -> 404 NoSuchKey', e.status == 404 and e.code == 'NoSuchKey', e)

# A bad process string.
for process, ec in (('image/resize,w_0', '0040-00000312'), ('image/slim,1', '0040-00000213')):
    try:
        v1.get_object('cats/kitten.jpg', process=process)
        check('bad process ' + process + ' -> 400', False)
    except oss2.exceptions.OssError as e:
        check('bad process ' + process + ' -> 400 ' + ec, e.status == 400 and e.code == 'InvalidArgument' and e.ec == ec, (e.status, e.code, e.ec))

# HEAD of a private object, anonymously: the error travels in x-oss-err.
try:
    anonymous.head_object('cats/kitten.jpg')
    check('anonymous HEAD -> 403', False)
except oss2.exceptions.OssError as e:
    check('anonymous HEAD -> 403 with the error decoded', e.status == 403 and e.code == 'AccessDenied', (e.status, e.code))

# Bad input never takes the server down: malformed paths, escapes, huge bodies, garbage bytes.
import socket
from urllib.parse import urlparse
host, port = urlparse(ENDPOINT).hostname, urlparse(ENDPOINT).port
for raw in (b'GET /photos/%ZZ HTTP/1.1\r\nHost: x\r\n\r\n', b'GET /photos/..%2F..%2Fetc%2Fpasswd HTTP/1.1\r\nHost: x\r\n\r\n',
            b'\x00\xff garbage\r\n\r\n', b'PUT /drop/big HTTP/1.1\r\nHost: x\r\nContent-Length: 30000000\r\n\r\n' + b'x' * 65536):
    try:
        with socket.create_connection((host, port), timeout=5) as s:
            s.sendall(raw)
            s.recv(4096)
    except OSError:
        pass
r = requests.get(ENDPOINT + '/photos/..%2F..%2Fetc%2Fpasswd')
check('escaping key -> 400 InvalidObjectName', r.status_code == 400 and 'InvalidObjectName' in r.text, r.status_code)
check('still serving after bad input', anonymous.get_object('press/p.jpg').read()[:2] == b'\xff\xd8')

# ---- Issue #11: every point of "what was seen" as the SDK sees it.
WORK = sys.argv[2] if len(sys.argv) > 2 else None
pubr = oss2.Bucket(oss2.AnonymousAuth(), ENDPOINT, 'pubr')
anon_drop = oss2.Bucket(oss2.AnonymousAuth(), ENDPOINT, 'drop')


def b64(text):
    return oss2.utils.b64encode_as_string(text).replace('=', '').replace('+', '-').replace('/', '_')


def error_of(call):
    try:
        call()
        return None
    except oss2.exceptions.OssError as e:
        return e


def stamp(key):
    return 'image/watermark,image_%s,t_100,g_nw,x_0,y_0/crop,w_600,h_450/format,png' % b64(key)


# 1. A private object is not readable through a watermark; forbidden and missing answer alike.
stolen = error_of(lambda: anonymous.get_object('press/p.jpg', process=stamp('cats/kitten.jpg')))
missing = error_of(lambda: anonymous.get_object('press/p.jpg', process=stamp('cats/none.jpg')))
check('#11.1 anonymous watermark of a private object refused', stolen is not None and stolen.status == 400 and stolen.code == 'WatermarkError',
      stolen)
check('#11.1 forbidden and missing watermark answer alike', stolen is not None and missing is not None
      and (stolen.status, stolen.code, stolen.ec) == (missing.status, missing.code, missing.ec), (stolen, missing))
saveas = error_of(lambda: anonymous.process_object('press/p.jpg', stamp('cats/kitten.jpg') + '|sys/saveas,o_%s,b_%s' % (b64('stolen.png'), b64('drop'))))
check('#11.1 anonymous saveas of a private watermark refused', saveas is not None and error_of(lambda: drop.get_object('stolen.png')) is not None,
      saveas)
signed_stamp = v1.get_object('press/p.jpg', process=stamp('cats/kitten.jpg')).read()
check('#11.1 signed watermark of a private object works', size(signed_stamp) == (600, 450), size(signed_stamp))

# 3. Keys are bytes: a combining mark after '/' neither escapes nor dodges a private prefix.
def raw(request):
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(request)
        return s.recv(65536).split(b' ', 2)[1]


check('#11.3 PUT /drop/../<combining mark> -> 400', raw(b'PUT /drop/../%CC%81escaped.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx') == b'400')
if WORK:
    import os
    check('#11.3 nothing written above the bucket', not os.path.exists(os.path.join(WORK, '\u0301escaped.txt')))
check('#11.3 GET /pubr/../<combining mark> -> 400', raw(b'GET /pubr/../%CC%81escaped.txt HTTP/1.1\r\nHost: x\r\n\r\n') == b'400')
r = requests.get(ENDPOINT + '/pubr/secret/%CC%81x.jpg')
check('#11.3 secret/<combining mark>x.jpg stays private', r.status_code == 403, r.status_code)
r = requests.get(ENDPOINT + '/pubr/secret%2Fx.jpg')
check('#11.3 %2F is a separator: secret%2Fx.jpg is private', r.status_code == 403, r.status_code)

# 5. The object ACL wins on writes: a private object in a public-read-write bucket.
e = error_of(lambda: anon_drop.put_object('locked/keep.txt', b'overwritten'))
check('#11.5 anonymous PUT over a private object -> 403', e is not None and e.status == 403, e)
e = error_of(lambda: anon_drop.process_object('anon.txt', 'image/resize,w_10|sys/saveas,o_%s' % b64('locked/keep.txt')))
check('#11.5 anonymous saveas over a private object refused', e is not None and drop.get_object('locked/keep.txt').read() == b'keep', e)

# 6. A rule's acl: private is enforced for its output in a public-read bucket.
e = error_of(lambda: pubr.get_object('private/photo.jpg'))
check('#11.6 recorded private output -> 403 anonymously', e is not None and e.status == 403, e)
signed_pubr = oss2.Bucket(oss2.Auth(AK, SK), ENDPOINT, 'pubr')
out = signed_pubr.get_object('private/photo.jpg')
check('#11.6 signed read of it, x-oss-object-acl private', out.headers.get('x-oss-object-acl') == 'private' and size(out.read())[0] == 64,
      out.headers.get('x-oss-object-acl'))

# 7. Integrity headers.
import base64
import hashlib
e = error_of(lambda: drop.put_object('md5.txt', b'mine', headers={'Content-MD5': base64.b64encode(hashlib.md5(b'other').digest()).decode()}))
check('#11.7 Content-MD5 of other bytes -> 400 InvalidDigest', e is not None and e.status == 400 and e.code == 'InvalidDigest', e)
check('#11.7 nothing stored', error_of(lambda: drop.get_object('md5.txt')) is not None)
v4drop = oss2.Bucket(oss2.AuthV4(AK, SK), ENDPOINT, 'drop', region='cn-hangzhou')
# oss2 always signs UNSIGNED-PAYLOAD; make it sign a payload hash as other V4 clients do.
original = oss2.auth.ProviderAuthV4._ProviderAuthV4__make_signature


def signing_payload(digest):
    def sign(self, req, *args, **kwargs):
        req.headers['x-oss-content-sha256'] = digest
        return original(self, req, *args, **kwargs)
    return mock.patch.object(oss2.auth.ProviderAuthV4, '_ProviderAuthV4__make_signature', sign)


with signing_payload(hashlib.sha256(b'other').hexdigest()):
    e = error_of(lambda: v4drop.put_object('sha.txt', b'mine'))
check('#11.7 V4 x-oss-content-sha256 of other bytes -> 403', e is not None and e.status == 403 and e.code == 'SignatureDoesNotMatch', e)
check('#11.7 nothing stored (V4)', error_of(lambda: drop.get_object('sha.txt')) is not None)
with signing_payload(hashlib.sha256(b'mine').hexdigest()):
    v4drop.put_object('sha.txt', b'mine')
check('#11.7 matching x-oss-content-sha256 stored', drop.get_object('sha.txt').read() == b'mine')

# 8. A V4 URL dated 300 days ahead.
import datetime as dt
with mock.patch('oss2.auth.datetime') as clock:
    clock.utcnow.return_value = dt.datetime.utcnow() + dt.timedelta(days=300)
    url = v4.sign_url('GET', 'cats/kitten.jpg', 604800)
r = requests.get(url)
check('#11.8 future-dated V4 URL -> 403 RequestTimeTooSkewed', r.status_code == 403 and 'RequestTimeTooSkewed' in r.text, r.text[:300])

# 9. Keys that cannot be files are 400s that name no path.
drop.put_object('src.jpg', b'x')
for key in ('src.jpg/x', 'dir/'):
    e = error_of(lambda: drop.put_object(key, b'x'))
    check('#11.9 PUT %s -> 400 InvalidObjectName' % key, e is not None and e.status == 400 and e.code == 'InvalidObjectName'
          and (WORK is None or WORK not in str(e.details)), e)

# Follow-up of #11: keep-alive after a rendered answer, ETags and If-None-Match on rendered
# answers, repeated Content-MD5, temporary names, CopyObject.
import http.client
import os
from urllib.parse import urlparse
host = urlparse(ENDPOINT)
connection = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
connection.request('GET', '/pubr/photo.jpg?x-oss-process=image%2Fresize%2Cw_44')
first = connection.getresponse()
first_body, first_etag = first.read(), first.getheader('ETag')
connection.request('GET', '/pubr/photo.jpg')
try:
    second = connection.getresponse()
    second.read()
    check('#11b.1 keep-alive: a second request on the connection after a rendered answer', second.status == 200, second.status)
except (http.client.HTTPException, OSError) as error:
    check('#11b.1 keep-alive: a second request on the connection after a rendered answer', False, error)
check('#11b.1 rendered answer has an OSS-like ETag (MD5 of its bytes)',
      first_etag == '"%s"' % hashlib.md5(first_body).hexdigest().upper(), first_etag)
processed = pubr.get_object('photo.jpg', process='image/resize,w_44')
check('#11b.1 oss2 get_object(process=) sees the same ETag', processed.etag == (first_etag or '').strip('"'), processed.etag)
r = requests.get(ENDPOINT + '/pubr/photo.jpg?x-oss-process=image%2Fresize%2Cw_44', headers={'If-None-Match': first_etag})
check('#11b.1 If-None-Match on a rendered answer -> 304', r.status_code == 304, r.status_code)
plain_etag = pubr.head_object('photo.jpg').etag
r = requests.get(ENDPOINT + '/pubr/photo.jpg', headers={'If-None-Match': '"%s"' % plain_etag})
check('#11b.1 If-None-Match on a plain object -> 304', r.status_code == 304, r.status_code)

connection = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
connection.putrequest('PUT', '/drop/dup.txt')
connection.putheader('Content-Length', '4')
connection.putheader('Content-MD5', base64.b64encode(hashlib.md5(b'mine').digest()).decode())
connection.putheader('Content-MD5', base64.b64encode(hashlib.md5(b'evil').digest()).decode())
connection.endheaders(b'mine')
answer = connection.getresponse()
text = answer.read().decode(errors='replace')
check('#11b.3 two different Content-MD5 headers -> 400 InvalidDigest', answer.status == 400 and 'InvalidDigest' in text, (answer.status, text[:200]))

if WORK is not None:
    with open(os.path.join(WORK, 'drop', '.half.txt.4242.7.derive-tmp'), 'wb') as f:
        f.write(b'half')
    e = error_of(lambda: drop.get_object('.half.txt.4242.7.derive-tmp'))
    check('#11b.2 a left temporary file is no object (signed GET -> NoSuchKey)', e is not None and e.status == 404, e)
    e = error_of(lambda: anon_drop.head_object('.half.txt.4242.7.derive-tmp'))
    check('#11b.2 ... nor for HEAD', e is not None and e.status == 404, e)
e = error_of(lambda: anon_drop.copy_object('photos', 'cats/kitten.jpg', 'copied.jpg'))
check('#12 anonymous CopyObject of a private source is refused (403), nothing stored', e is not None and e.status == 403
      and error_of(lambda: drop.get_object('copied.jpg')) is not None, e)
drop.put_object('acl.txt', b'kept')
e = error_of(lambda: drop.put_object_acl('acl.txt', oss2.OBJECT_ACL_PUBLIC_READ))
check('#11b.7 put_object_acl is refused (501) and leaves the object alone',
      e is not None and e.status == 501 and drop.get_object('acl.txt').read() == b'kept', e)
e = error_of(lambda: drop.append_object('acl.txt', 4, b'more'))
check('#12 append_object to a normal object is 409 ObjectNotAppendable, the object unchanged',
      e is not None and e.status == 409 and e.code == 'ObjectNotAppendable' and drop.get_object('acl.txt').read() == b'kept', e)

# Issue #12 (first half): sub-resources, object semantics, V4 signed headers, errors.
import hashlib, os, tempfile
body = bytes(range(256)) * 125          # 32 000 bytes
v1.put_object('r/range.bin', body)
got = v1.get_object('r/range.bin', byte_range=(0, 99))
check('#12 get_object byte_range=(0,99) -> 206, 100 bytes', got.status == 206 and got.read() == body[:100], got.status)
got = v1.get_object('r/range.bin', byte_range=(31990, None))
check('#12 get_object byte_range=(31990,) -> the last 10 bytes', got.read() == body[-10:])
got = v1.get_object('r/range.bin', byte_range=(40000, 40010))
check('#12 byte range past the end -> ignored as OSS does (200, whole object)', got.status == 200 and got.read() == body, got.status)
got = v1.get_object('r/range.bin', byte_range=(31990, 40000))
check('#12 byte range ending past the end -> ignored (200, whole object)', got.status == 200 and got.read() == body, got.status)
e = error_of(lambda: v1.get_object('r/range.bin', byte_range=(40000, 40010), headers={'x-oss-range-behavior': 'standard'}))
check('#12 byte range past the end with x-oss-range-behavior: standard -> 416 InvalidRange',
      e is not None and e.status == 416 and e.code == 'InvalidRange', e)
got = v1.get_object('r/range.bin', byte_range=(31990, 40000), headers={'x-oss-range-behavior': 'standard'})
check('#12 byte range ending past the end with standard behaviour -> 206, clamped', got.status == 206 and got.read() == body[31990:], got.status)
r = requests.get(v1.sign_url('GET', 'r/range.bin', 60), headers={'Range': 'bytes=abc'})
check('#12 an invalid Range header is ignored (200, whole object)', r.status_code == 200 and r.content == body, r.status_code)
with tempfile.TemporaryDirectory() as folder:
    target = os.path.join(folder, 'range.bin')
    oss2.resumable_download(v1, 'r/range.bin', target, multiget_threshold=4096, part_size=4096, num_threads=3,
                            store=oss2.ResumableDownloadStore(root=folder))
    check('#12 resumable_download with 4 KB parts', open(target, 'rb').read() == body)
head = v1.head_object('r/range.bin')
etag, modified = head.headers.get('ETag'), head.headers.get('Last-Modified')
check('#12 ETag is the quoted upper-case MD5', etag == '"%s"' % hashlib.md5(body).hexdigest().upper(), etag)
check('#12 Last-Modified is an HTTP date', modified is not None and modified.endswith('GMT'), modified)
e = error_of(lambda: v1.get_object('r/range.bin', headers={'If-None-Match': etag}))
check('#12 If-None-Match -> 304', e is not None and e.status == 304, e)
e = error_of(lambda: v1.get_object('r/range.bin', headers={'If-Modified-Since': modified}))
check('#12 If-Modified-Since (its own time) -> 304', e is not None and e.status == 304, e)
e = error_of(lambda: v1.get_object('r/range.bin', headers={'If-Match': '"00000000000000000000000000000000"'}))
check('#12 If-Match of another ETag -> 412 PreconditionFailed', e is not None and e.status == 412 and e.code == 'PreconditionFailed', e)
e = error_of(lambda: v1.get_object('r/range.bin', headers={'If-Unmodified-Since': 'Mon, 01 Jan 2001 00:00:00 GMT'}))
check('#12 If-Unmodified-Since in the past -> 412', e is not None and e.status == 412, e)
check('#12 If-Match of its ETag -> 200', v1.get_object('r/range.bin', headers={'If-Match': etag}).read() == body)

stored = {'Content-Type': 'application/x-derive', 'Cache-Control': 'max-age=60', 'Content-Disposition': 'attachment; filename="m.bin"',
          'Content-Encoding': 'identity', 'Expires': 'Wed, 21 Oct 2037 07:28:00 GMT', 'x-oss-meta-author': 'ann'}
v1.put_object('m/meta.bin', b'metadata', headers=stored)
head = v1.head_object('m/meta.bin')
check('#12 put headers and x-oss-meta-* come back on HEAD', all(head.headers.get(k) == v for k, v in stored.items()), dict(head.headers))
got = v1.get_object('m/meta.bin')
check('#12 ... and on GET', got.headers.get('Content-Type') == 'application/x-derive' and got.headers.get('x-oss-meta-author') == 'ann'
      and got.read() == b'metadata', dict(got.headers))
url = v1.sign_url('GET', 'm/meta.bin', 60, params={'response-content-type': 'text/plain', 'response-content-disposition': 'inline'})
r = requests.get(url)
check('#12 signed response-content-type/-disposition override', r.headers.get('Content-Type') == 'text/plain'
      and r.headers.get('Content-Disposition') == 'inline', dict(r.headers))
r = requests.get(ENDPOINT + '/drop/anon.txt?response-content-type=text%2Fhtml')
check('#12 anonymous response-* is ignored', r.status_code == 200 and r.headers.get('Content-Type') != 'text/html', dict(r.headers))
for name, kind in (('a.avif', 'image/avif'), ('a.heic', 'image/heic'), ('a.bmp', 'image/bmp'), ('a.tiff', 'image/tiff'),
                   ('a.html', 'text/html'), ('a.json', 'application/json'), ('a.svg', 'image/svg+xml'), ('a.pdf', 'application/pdf')):
    requests.put(ENDPOINT + '/drop/types/' + name, data=b'x')
    r = requests.get(ENDPOINT + '/drop/types/' + name)
    check('#12 Content-Type by extension: ' + name, r.headers.get('Content-Type') == kind, r.headers.get('Content-Type'))
drop.put_object('f/once.txt', b'first')
e = error_of(lambda: drop.put_object('f/once.txt', b'second', headers={'x-oss-forbid-overwrite': 'true'}))
check('#12 x-oss-forbid-overwrite -> 409 FileAlreadyExists, object kept', e is not None and e.status == 409
      and e.code == 'FileAlreadyExists' and drop.get_object('f/once.txt').read() == b'first', e)

# V4 presigned PUT with signed headers, and a V4 header signature with an additional header.
headers = {'Content-Type': 'image/jpeg', 'x-oss-meta-source': 'presigned'}
url = v4.sign_url('PUT', 'v4/put.jpg', 60, headers=headers, slash_safe=True)
r = requests.put(url, data=b'v4 body', headers=headers)
check('#12 V4 sign_url PUT with Content-Type and x-oss-meta-*', r.status_code == 200, (r.status_code, r.text[:300]))
head = v1.head_object('v4/put.jpg')
check('#12 ... stored with its headers', head.headers.get('Content-Type') == 'image/jpeg' and head.headers.get('x-oss-meta-source') == 'presigned',
      dict(head.headers))
r = requests.put(url, data=b'v4 body', headers={'Content-Type': 'image/png', 'x-oss-meta-source': 'presigned'})
check('#12 ... another Content-Type -> 403 SignatureDoesNotMatch', r.status_code == 403 and 'SignatureDoesNotMatch' in r.text, r.status_code)
signing = oss2.auth.ProviderAuthV4._sign_request
def with_additional(self, req, bucket_name, key, in_additional_headers=None):
    return signing(self, req, bucket_name, key, in_additional_headers={'content-disposition'})
with mock.patch.object(oss2.auth.ProviderAuthV4, '_sign_request', with_additional):
    v4.put_object('v4/additional.txt', b'additional', headers={'Content-Disposition': 'inline'})
    got = v4.get_object('v4/additional.txt', headers={'Content-Disposition': 'inline'}).read()
check('#12 V4 header signature with AdditionalHeaders=content-disposition', got == b'additional')

meta = v1.get_object_meta('r/range.bin')
check('#12 get_object_meta: ETag, size, time', meta.etag == hashlib.md5(body).hexdigest().upper() and meta.content_length == len(body)
      and meta.last_modified > 0, (meta.etag, meta.content_length))
check('#12 object_exists true and false', v1.object_exists('r/range.bin') and not v1.object_exists('r/none.bin'))

# Operations not implemented fail cleanly (501) and leave the object intact.
drop.put_object('n/intact.txt', b'intact')
for label, call in (('put_object_tagging', lambda: drop.put_object_tagging('n/intact.txt', oss2.models.Tagging())),
                    ('put_symlink', lambda: drop.put_symlink('n/intact.txt', 'n/intact.txt')),
                    ('get_object_tagging', lambda: drop.get_object_tagging('n/intact.txt')),
                    ('restore_object', lambda: drop.restore_object('n/intact.txt'))):
    e = error_of(call)
    check('#12 %s -> 501 NotImplemented, object intact' % label, e is not None and e.status == 501
          and drop.get_object('n/intact.txt').read() == b'intact', e)

r = requests.get(ENDPOINT + '/press/p.jpg', headers={'Host': 'PHOTOS.localhost'})
check('#12 Host: PHOTOS.localhost is bucket photos', r.status_code == 200 and r.content[:2] == b'\xff\xd8', r.status_code)
r = requests.get(ENDPOINT + '/pubr/' + 'k' * 100000)
check('#12 a ~100 KB URL -> OSS XML', r.status_code == 400 and '<Code>InvalidObjectName</Code>' in r.text
      and len(r.headers.get('x-oss-request-id', '')) == 24, (r.status_code, r.text[:200]))

# `derive sign` makes what oss2's sign_url(..., slash_safe=True) makes, byte for byte (oss2's
# default writes '/' in the key as %2F: another spelling of the same URL, with the same signature).
DERIVE = os.environ.get('DERIVE_BIN')
if DERIVE and WORK:
    for _ in range(3):
        made = subprocess.run([DERIVE, 'sign', 'photos/cats/kitten.jpg', '--process', 'resize,w_100', '--expires', '60',
                               '--endpoint', ENDPOINT, '--manifest', WORK + '/derive.yaml'],
                              env=dict(os.environ, DERIVE_SECRET=SK), capture_output=True, text=True)
        ours = made.stdout.strip()
        expires = int(re.search(r'Expires=(\d+)', ours).group(1)) if 'Expires=' in ours else 0
        with mock.patch('time.time', return_value=float(expires - 60)):
            theirs = v1.sign_url('GET', 'cats/kitten.jpg', 60, params={'x-oss-process': 'image/resize,w_100'}, slash_safe=True)
            default = v1.sign_url('GET', 'cats/kitten.jpg', 60, params={'x-oss-process': 'image/resize,w_100'})
        if ours == theirs:
            break
    check('derive sign == oss2 sign_url(slash_safe=True), byte for byte', ours == theirs, (ours, theirs, made.stderr))
    check("oss2's default differs only in '/' -> %2F", default == theirs.replace('/photos/cats/', '/photos/cats%2F'), (default, theirs))
    r = requests.get(ours)
    check('derive sign URL -> 200, 100 px wide', r.status_code == 200 and size(r.content)[0] == 100, (r.status_code, r.text[:200]))
else:
    check('DERIVE_BIN and the work folder given (derive sign vs oss2)', False, (DERIVE, WORK))

passed, failed = results.count(True), results.count(False)
print('%d passed, %d failed' % (passed, failed))
sys.exit(1 if failed else 0)
