"""Anonymous listings over private keys (#12): a `derive serve` whose bucket `pub` holds a.txt,
z.txt and 300 private keys under hidden/, with `serve: list_max_entries: 150`. Each page may walk
past only so many private keys; it then ends truncated with a sealed resume marker (V1) or token
(V2). oss2's ObjectIterator and ObjectIteratorV2 and the V2 SDK's paginator must list exactly the
two public keys, and no marker or token may name a private key.

Usage: hidden_listing_check.py ENDPOINT. Exits 1 on any failure.
"""
import base64
import sys

import alibabacloud_oss_v2 as oss
import oss2

ENDPOINT = sys.argv[1]
results = []


def check(name, condition, detail=''):
    results.append(bool(condition))
    print(('ok   ' if condition else 'FAIL ') + name + ('' if condition else '  ' + str(detail)))


def reveals(text):
    """Whether a marker or token shows a private name, plainly or base64-decoded."""
    if 'hidden' in text:
        return True
    tail = text.split('.')[-1]
    try:
        return b'hidden' in base64.urlsafe_b64decode(tail + '=' * (-len(tail) % 4))
    except Exception:  # noqa: BLE001 - not base64: nothing to decode
        return False


anonymous = oss2.Bucket(oss2.AnonymousAuth(), ENDPOINT, 'pub')
try:
    keys = [o.key for o in oss2.ObjectIterator(anonymous, max_keys=1000)]
    check('oss2 ObjectIterator (anonymous) walks past 300 private keys: a.txt, z.txt', keys == ['a.txt', 'z.txt'], keys)
except oss2.exceptions.OssError as e:
    check('oss2 ObjectIterator (anonymous)', False, repr(e))

markers, pages = [], 0
marker = ''
while pages < 50:
    pages += 1
    result = anonymous.list_objects(marker=marker, max_keys=1000)
    if not result.is_truncated:
        break
    markers.append(result.next_marker)
    marker = result.next_marker
check('ListObjects pages end truncated on their budget (%d pages)' % pages, 2 < pages < 50, pages)
check('no NextMarker names a private key', markers and not any(reveals(m) for m in markers), markers[:3])

try:
    keys = [o.key for o in oss2.ObjectIteratorV2(anonymous, max_keys=1000)]
    check('oss2 ObjectIteratorV2 (anonymous): a.txt, z.txt', keys == ['a.txt', 'z.txt'], keys)
except oss2.exceptions.OssError as e:
    check('oss2 ObjectIteratorV2 (anonymous)', False, repr(e))

cfg = oss.config.load_default()
cfg.credentials_provider = oss.credentials.AnonymousCredentialsProvider()
cfg.region = 'cn-hangzhou'
cfg.endpoint = ENDPOINT
cfg.use_path_style = True
client = oss.Client(cfg)
try:
    keys, tokens = [], []
    for page in client.list_objects_v2_paginator().iter_page(oss.ListObjectsV2Request(bucket='pub', max_keys=1000)):
        keys += [o.key for o in page.contents or []]
        if page.next_continuation_token:
            tokens.append(page.next_continuation_token)
    check('V2 SDK paginator (anonymous): a.txt, z.txt', keys == ['a.txt', 'z.txt'], keys)
    check('no continuation token names a private key', tokens and not any(reveals(t) for t in tokens), tokens[:2])
except Exception as e:  # noqa: BLE001 - any SDK error is a failed check
    check('V2 SDK paginator (anonymous)', False, repr(e))

# A signed caller sees the private keys too.
signed = oss2.Bucket(oss2.Auth('AKIDEXAMPLE', 'secret'), ENDPOINT, 'pub')
keys = [o.key for o in oss2.ObjectIterator(signed, max_keys=1000)]
check('a signed ObjectIterator lists all 302 keys', len(keys) == 302 and keys[0] == 'a.txt' and keys[-1] == 'z.txt', len(keys))

failed = results.count(False)
print('hidden listing: %d calls checked, %d failed' % (len(results), failed))
sys.exit(1 if failed else 0)
