"""Alibaba's current Python SDK (alibabacloud-oss-v2, V4 signatures by default) against a
running `derive serve` (Tests/Interop/fixture.yaml, DERIVE_SECRET=secret).

Usage: v2_sdk_check.py ENDPOINT. Prints each check and 'alibabacloud-oss-v2: N calls checked,
M failed'; exits 1 on any failure.
"""
import hashlib
import os
import sys

import alibabacloud_oss_v2 as oss
import requests

ENDPOINT = sys.argv[1]
results = []


def check(name, condition, detail=''):
    results.append(bool(condition))
    print(('ok   ' if condition else 'FAIL ') + 'v2: ' + name + ('' if condition else '  ' + str(detail)[:400]))


def attempt(name, call, condition):
    try:
        result = call()
    except Exception as e:  # noqa: BLE001 - any SDK error is a failed check
        check(name, False, repr(e))
        return None
    check(name, condition(result), vars(result) if hasattr(result, '__dict__') else result)
    return result


def error_of(call):
    try:
        call()
        return None
    except Exception as e:  # noqa: BLE001
        return e


def status_of(error):
    """The HTTP status of an SDK error (the V2 SDK wraps the service error in an OperationError)."""
    inner = error.unwrap() if hasattr(error, 'unwrap') else error
    return getattr(inner, 'status_code', None)


cfg = oss.config.load_default()
cfg.credentials_provider = oss.credentials.StaticCredentialsProvider('AKIDEXAMPLE', 'secret')
cfg.region = 'cn-hangzhou'
cfg.endpoint = ENDPOINT
cfg.use_path_style = True
client = oss.Client(cfg)

body = b'hello from the V2 SDK'
attempt('put_object', lambda: client.put_object(oss.PutObjectRequest(bucket='photos', key='v2/hello.txt', body=body)),
        lambda r: r.status_code == 200 and r.etag == '"%s"' % hashlib.md5(body).hexdigest().upper())
attempt('get_object', lambda: client.get_object(oss.GetObjectRequest(bucket='photos', key='v2/hello.txt')),
        lambda r: r.body.read() == body)
# Attack 9: acl='private' on a put into a public-read-write bucket was 200 and the object public.
e = error_of(lambda: client.put_object(oss.PutObjectRequest(bucket='drop', key='v2/payroll.csv', body=b'alice,100000', acl='private')))
check('put_object with acl=private in a public-read-write bucket -> 501', e is not None and status_of(e) == 501, repr(e))
check('... and nothing was written', not client.is_object_exist(bucket='drop', key='v2/payroll.csv'))
attempt('get_object with process', lambda: client.get_object(oss.GetObjectRequest(bucket='photos', key='cats/kitten.jpg',
                                                                                 process='image/resize,w_64/format,png')),
        lambda r: r.body.read()[:4] == b'\x89PNG')
attempt('head_object', lambda: client.head_object(oss.HeadObjectRequest(bucket='photos', key='v2/hello.txt')),
        lambda r: r.content_length == len(body))
# Ranges outside the object (attack 10): ignored as OSS does, or RFC 9110's answers with range_behavior='standard'.
attempt('get_object with a range past the end -> the whole object (200)',
        lambda: client.get_object(oss.GetObjectRequest(bucket='photos', key='v2/hello.txt', range_header='bytes=100-200')),
        lambda r: r.status_code == 200 and r.body.read() == body)
e = error_of(lambda: client.get_object(oss.GetObjectRequest(bucket='photos', key='v2/hello.txt', range_header='bytes=100-200',
                                                             range_behavior='standard')))
check("get_object with a range past the end and range_behavior='standard' -> 416", e is not None and status_of(e) == 416, repr(e))
attempt("get_object with a range ending past the end and range_behavior='standard' -> 206, clamped",
        lambda: client.get_object(oss.GetObjectRequest(bucket='photos', key='v2/hello.txt', range_header='bytes=6-200',
                                                       range_behavior='standard')),
        lambda r: r.status_code == 206 and r.body.read() == body[6:])

for index in range(5):
    client.put_object(oss.PutObjectRequest(bucket='photos', key='v2/page/%d.txt' % index, body=b'x' * index))
paginator = client.list_objects_v2_paginator()
keys, pages = [], 0
try:
    for page in paginator.iter_page(oss.ListObjectsV2Request(bucket='photos', prefix='v2/page/', max_keys=2)):
        pages += 1
        keys += [o.key for o in page.contents or []]
    check('list_objects_v2 paginator: 5 keys in 3 pages', keys == ['v2/page/%d.txt' % i for i in range(5)] and pages == 3, (keys, pages))
except Exception as e:  # noqa: BLE001
    check('list_objects_v2 paginator', False, repr(e))

attempt('copy_object', lambda: client.copy_object(oss.CopyObjectRequest(bucket='drop', key='v2-copy.txt', source_bucket='photos',
                                                                        source_key='v2/hello.txt')),
        lambda r: r.status_code == 200
        and client.get_object(oss.GetObjectRequest(bucket='drop', key='v2-copy.txt')).body.read() == body)
attempt('delete_object', lambda: client.delete_object(oss.DeleteObjectRequest(bucket='photos', key='v2/hello.txt')),
        lambda r: r.status_code == 204)
e = error_of(lambda: client.get_object(oss.GetObjectRequest(bucket='photos', key='v2/hello.txt')))
check('... and the object is gone (404)', e is not None and status_of(e) == 404, repr(e))

part1, part2 = os.urandom(120 * 1024), os.urandom(10)
try:
    upload_id = client.initiate_multipart_upload(oss.InitiateMultipartUploadRequest(bucket='photos', key='v2/multi.bin')).upload_id
    etags = []
    for number, part in ((1, part1), (2, part2)):
        etags.append(client.upload_part(oss.UploadPartRequest(bucket='photos', key='v2/multi.bin', upload_id=upload_id,
                                                               part_number=number, body=part)).etag)
    done = client.complete_multipart_upload(oss.CompleteMultipartUploadRequest(
        bucket='photos', key='v2/multi.bin', upload_id=upload_id,
        complete_multipart_upload=oss.CompleteMultipartUpload(parts=[oss.UploadPart(part_number=n, etag=t) for n, t in ((1, etags[0]), (2, etags[1]))])))
    expected = '"%s-2"' % hashlib.md5(hashlib.md5(part1).digest() + hashlib.md5(part2).digest()).hexdigest().upper()
    check('multipart upload: initiate, 2 parts, complete (OSS ETag)', done.etag == expected
          and client.get_object(oss.GetObjectRequest(bucket='photos', key='v2/multi.bin')).body.read() == part1 + part2, done.etag)
except Exception as e:  # noqa: BLE001
    check('multipart upload', False, repr(e))

try:
    uploader = client.uploader(part_size=100 * 1024, parallel_num=2)
    data = os.urandom(350 * 1024)
    path = os.path.join(os.environ.get('TMPDIR', '/tmp'), 'derive-v2-upload-%d.bin' % os.getpid())
    with open(path, 'wb') as f:
        f.write(data)
    uploader.upload_file(oss.PutObjectRequest(bucket='photos', key='v2/uploader.bin'), filepath=path)
    os.remove(path)
    check('uploader (multipart, parallel parts)', client.get_object(oss.GetObjectRequest(bucket='photos', key='v2/uploader.bin')).body.read() == data)
except Exception as e:  # noqa: BLE001
    check('uploader', False, repr(e))

try:
    signed = client.presign(oss.GetObjectRequest(bucket='photos', key='cats/kitten.jpg', process='image/resize,w_50'))
    r = requests.get(signed.url)
    check('presign GET with process (V4 URL)', r.status_code == 200 and len(r.content) > 100, (r.status_code, r.text[:200]))
    put = client.presign(oss.PutObjectRequest(bucket='drop', key='v2-presigned.txt'))
    r = requests.put(put.url, data=b'presigned', headers=put.signed_headers or {})
    check('presign PUT (V4 URL)', r.status_code == 200
          and client.get_object(oss.GetObjectRequest(bucket='drop', key='v2-presigned.txt')).body.read() == b'presigned',
          (r.status_code, r.text[:300]))
except Exception as e:  # noqa: BLE001
    check('presign', False, repr(e))

# Attack 7 (#12): append_file reopens an existing appendable object from HEAD's next position.
def append_twice():
    with client.append_file('drop', 'v2-append.log') as f:
        f.write(b'one ')
    with client.append_file('drop', 'v2-append.log') as f:
        f.write(b'two')
    return client.get_object(oss.GetObjectRequest(bucket='drop', key='v2-append.log')).body.read()


attempt('append_file on an existing appendable object', append_twice, lambda data: data == b'one two')
attempt('head_object says Appendable', lambda: client.head_object(oss.HeadObjectRequest(bucket='drop', key='v2-append.log')),
        lambda r: r.object_type == 'Appendable' and r.next_append_position == 7)

failed = results.count(False)
print('alibabacloud-oss-v2: %d calls checked, %d failed' % (len(results), failed))
sys.exit(1 if failed else 0)
