"""The object API of #12 driven by Alibaba's oss2 SDK against a running `derive serve`
(Tests/Interop/fixture.yaml's buckets, DERIVE_SECRET=secret).

Usage: oss2_object_api.py ENDPOINT WORK. Prints each check and 'oss2 object API: N calls checked,
M failed'; exits 1 on any failure.
"""
import hashlib
import os
import sys
import tempfile

import oss2

ENDPOINT, WORK = sys.argv[1], sys.argv[2]
auth = oss2.Auth('AKIDEXAMPLE', 'secret')
photos = oss2.Bucket(auth, ENDPOINT, 'photos')
drop = oss2.Bucket(auth, ENDPOINT, 'drop')
pubr = oss2.Bucket(auth, ENDPOINT, 'pubr')
anon_pubr = oss2.Bucket(oss2.AnonymousAuth(), ENDPOINT, 'pubr')
results = []


def check(name, condition, detail=''):
    results.append(bool(condition))
    print(('ok   ' if condition else 'FAIL ') + name + ('' if condition else '  ' + str(detail)))


def error_of(call):
    try:
        call()
        return None
    except oss2.exceptions.OssError as e:
        return e


def attempt(name, call, condition):
    """Runs call(); checks condition(result); an exception is a failure with its text."""
    try:
        result = call()
    except Exception as e:  # noqa: BLE001 - any SDK error is a failed check
        check(name, False, repr(e)[:300])
        return None
    check(name, condition(result), result)
    return result


# Objects to list: a small tree in photos.
for key in ['list/a.txt', 'list/b/1.txt', 'list/b/2.txt', 'list/c.txt', 'list/d/e/f.txt', 'list/z.txt']:
    photos.put_object(key, key.encode())

r = attempt('list_objects prefix + delimiter: keys and common prefixes',
            lambda: photos.list_objects(prefix='list/', delimiter='/'),
            lambda r: [o.key for o in r.object_list] == ['list/a.txt', 'list/c.txt', 'list/z.txt']
            and r.prefix_list == ['list/b/', 'list/d/'] and not r.is_truncated)
r = attempt('list_objects max_keys + marker: truncated page, next_marker',
            lambda: photos.list_objects(prefix='list/', max_keys=2),
            lambda r: [o.key for o in r.object_list] == ['list/a.txt', 'list/b/1.txt'] and r.is_truncated
            and r.next_marker == 'list/b/1.txt')
attempt('list_objects from the marker',
        lambda: photos.list_objects(prefix='list/', marker='list/b/1.txt', max_keys=2),
        lambda r: [o.key for o in r.object_list] == ['list/b/2.txt', 'list/c.txt'])
attempt('list_objects sizes, ETags and times',
        lambda: photos.list_objects(prefix='list/a.txt'),
        lambda r: r.object_list[0].size == 10 and r.object_list[0].etag == hashlib.md5(b'list/a.txt').hexdigest().upper()
        and r.object_list[0].last_modified > 0)
attempt('list_objects_v2 with continuation tokens and fetch_owner',
        lambda: photos.list_objects_v2(prefix='list/', max_keys=4, fetch_owner=True),
        lambda r: len(r.object_list) == 4 and r.is_truncated and r.next_continuation_token
        and r.object_list[0].owner is not None
        and [o.key for o in photos.list_objects_v2(prefix='list/', continuation_token=r.next_continuation_token).object_list]
        == ['list/d/e/f.txt', 'list/z.txt'])
attempt('list_objects_v2 start_after and delimiter',
        lambda: photos.list_objects_v2(prefix='list/', delimiter='/', start_after='list/b/'),
        lambda r: [o.key for o in r.object_list] == ['list/c.txt', 'list/z.txt'] and r.prefix_list == ['list/d/'])
attempt('ObjectIterator pages through every key',
        lambda: [o.key for o in oss2.ObjectIterator(photos, prefix='list/', max_keys=2)],
        lambda keys: keys == ['list/a.txt', 'list/b/1.txt', 'list/b/2.txt', 'list/c.txt', 'list/d/e/f.txt', 'list/z.txt'])
attempt('ObjectIteratorV2 with a delimiter',
        lambda: [o.key for o in oss2.ObjectIteratorV2(photos, prefix='list/', delimiter='/', max_keys=1)],
        lambda keys: keys == ['list/a.txt', 'list/b/', 'list/c.txt', 'list/d/', 'list/z.txt'])
attempt('anonymous list of a public bucket hides private keys',
        lambda: [o.key for o in oss2.ObjectIterator(anon_pubr)],
        lambda keys: 'photo.jpg' in keys and not any(k.startswith('secret/') or k.startswith('private/') for k in keys))
e = error_of(lambda: oss2.Bucket(oss2.AnonymousAuth(), ENDPOINT, 'photos').list_objects())
check('anonymous list of a private bucket -> 403', e is not None and e.status == 403, e)

# Deletes.
attempt('delete_object -> 204', lambda: photos.delete_object('list/z.txt'), lambda r: r.status == 204)
check('... and the object is gone', error_of(lambda: photos.get_object('list/z.txt')) is not None)
attempt('delete_object of a missing key -> 204', lambda: photos.delete_object('list/never.txt'), lambda r: r.status == 204)
attempt('batch_delete_objects deletes and names the keys',
        lambda: photos.batch_delete_objects(['list/a.txt', 'list/c.txt', 'list/missing.txt']),
        lambda r: sorted(r.deleted_keys) == ['list/a.txt', 'list/c.txt', 'list/missing.txt']
        and [o.key for o in photos.list_objects(prefix='list/', delimiter='/').object_list] == [])
built = open(os.path.join(WORK, 'pubr', 'private', 'photo.jpg'), 'rb').read()
e = error_of(lambda: pubr.delete_object('private/photo.jpg'))
check('delete_object of a built derivative -> 403, kept', e is not None and e.status == 403
      and open(os.path.join(WORK, 'pubr', 'private', 'photo.jpg'), 'rb').read() == built, e)

# Copies.
kitten = photos.get_object('cats/kitten.jpg').read()
attempt('copy_object within a bucket', lambda: photos.copy_object('photos', 'cats/kitten.jpg', 'copies/k.jpg'),
        lambda r: r.status == 200 and photos.get_object('copies/k.jpg').read() == kitten)
attempt('copy_object across buckets (signed)', lambda: drop.copy_object('photos', 'cats/kitten.jpg', 'from-photos.jpg'),
        lambda r: drop.get_object('from-photos.jpg').read() == kitten)
e = error_of(lambda: pubr.copy_object('photos', 'cats/kitten.jpg', 'private/photo.jpg'))
check('copy_object onto a built derivative -> 403', e is not None and e.status == 403, e)
# Attack 9: a signed put_object or save-as over a build output is refused like every other writer.
e = error_of(lambda: pubr.put_object('private/photo.jpg', b'evil'))
check('signed put_object onto a built derivative -> 403, kept', e is not None and e.status == 403
      and open(os.path.join(WORK, 'pubr', 'private', 'photo.jpg'), 'rb').read() == built, e)
saveas_target = oss2.utils.b64encode_as_string('private/photo.jpg').replace('=', '').replace('+', '-').replace('/', '_')
e = error_of(lambda: pubr.process_object('photo.jpg', 'image/resize,w_10|sys/saveas,o_' + saveas_target))
check('signed save-as onto a built derivative -> 403, kept', e is not None and e.status == 403
      and open(os.path.join(WORK, 'pubr', 'private', 'photo.jpg'), 'rb').read() == built, e)
# Headers asking for what the manifest declares (or serve cannot do) are refused, nothing written.
e = error_of(lambda: drop.put_object('payroll.csv', b'alice,100000', headers={'x-oss-object-acl': 'private'}))
check('put_object with x-oss-object-acl: private in a public-read-write bucket -> 501, not written',
      e is not None and e.status == 501 and not drop.object_exists('payroll.csv'), e)
e = error_of(lambda: drop.put_object('payroll.csv', b'x', headers={'x-oss-object-acl': 'bogus'}))
check('put_object with x-oss-object-acl: bogus -> 400 InvalidArgument', e is not None and e.status == 400 and e.code == 'InvalidArgument', e)
e = error_of(lambda: drop.put_object('tagged.txt', b'x', headers={'x-oss-tagging': 'a=b'}))
check('put_object with x-oss-tagging -> 501', e is not None and e.status == 501 and not drop.object_exists('tagged.txt'), e)
e = error_of(lambda: drop.put_object('kms.txt', b'x', headers={'x-oss-server-side-encryption': 'KMS'}))
check('put_object with server-side encryption -> 501', e is not None and e.status == 501 and not drop.object_exists('kms.txt'), e)
e = error_of(lambda: drop.put_object('cold.txt', b'x', headers={'x-oss-storage-class': 'Archive'}))
check('put_object with storage class Archive -> 501', e is not None and e.status == 501 and not drop.object_exists('cold.txt'), e)
attempt('put_object with storage class Standard and x-oss-object-acl: default -> 200',
        lambda: drop.put_object('standard.txt', b'x', headers={'x-oss-storage-class': 'Standard', 'x-oss-object-acl': 'default'}),
        lambda r: r.status == 200 and drop.get_object('standard.txt').read() == b'x')
e = error_of(lambda: photos.copy_object('photos', 'cats/nope.jpg', 'copies/n.jpg'))
check('copy_object of a missing source -> 404 NoSuchKey', e is not None and e.status == 404 and e.code == 'NoSuchKey', e)

# Appends.
attempt('append_object position 0 creates an appendable object',
        lambda: photos.append_object('logs/app.log', 0, b'one '), lambda r: r.next_position == 4)
attempt('append_object at the next position', lambda: photos.append_object('logs/app.log', 4, b'two'),
        lambda r: r.next_position == 7 and photos.get_object('logs/app.log').read() == b'one two')
e = error_of(lambda: photos.append_object('logs/app.log', 2, b'x'))
check('append_object at a wrong position -> 409 PositionNotEqualToLength', e is not None and e.status == 409
      and e.code == 'PositionNotEqualToLength', e)

# Multipart.
part1, part2 = os.urandom(150 * 1024), os.urandom(1000)
upload_id = photos.init_multipart_upload('mp/data.bin').upload_id
r1 = photos.upload_part('mp/data.bin', upload_id, 1, part1)
r2 = photos.upload_part('mp/data.bin', upload_id, 2, part2)
attempt('list_parts', lambda: photos.list_parts('mp/data.bin', upload_id),
        lambda r: [p.part_number for p in r.parts] == [1, 2] and r.parts[0].size == len(part1))
attempt('list_multipart_uploads', lambda: photos.list_multipart_uploads(),
        lambda r: upload_id in [u.upload_id for u in r.upload_list])
check('parts are not objects until complete', error_of(lambda: photos.get_object('mp/data.bin')) is not None)
expected = hashlib.md5(hashlib.md5(part1).digest() + hashlib.md5(part2).digest()).hexdigest().upper() + '-2'
attempt('complete_multipart_upload: the object and OSS ETag rule',
        lambda: photos.complete_multipart_upload('mp/data.bin', upload_id,
                                                 [oss2.models.PartInfo(1, r1.etag), oss2.models.PartInfo(2, r2.etag)]),
        lambda r: r.etag == expected and photos.get_object('mp/data.bin').read() == part1 + part2)
other = photos.init_multipart_upload('mp/aborted.bin').upload_id
attempt('abort_multipart_upload', lambda: photos.abort_multipart_upload('mp/aborted.bin', other), lambda r: r.status == 204)
e = error_of(lambda: photos.upload_part('mp/aborted.bin', other, 1, b'x'))
check('upload_part to an aborted upload -> 404 NoSuchUpload', e is not None and e.code == 'NoSuchUpload', e)
e = error_of(lambda: photos.upload_part('cats/kitten.jpg', 'FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF', 1, b'x'))
check('upload_part with an unknown uploadId leaves the object intact', e is not None and e.status == 404
      and photos.get_object('cats/kitten.jpg').read() == kitten, e)
copy_id = photos.init_multipart_upload('mp/copy.bin').upload_id
attempt('upload_part_copy with a byte range',
        lambda: photos.upload_part_copy('photos', 'cats/kitten.jpg', (0, 999), 'mp/copy.bin', copy_id, 1),
        lambda r: r.etag == hashlib.md5(kitten[:1000]).hexdigest().upper())
photos.abort_multipart_upload('mp/copy.bin', copy_id)

with tempfile.TemporaryDirectory() as scratch:
    big = os.path.join(scratch, 'big.bin')
    payload = os.urandom(700 * 1024)
    with open(big, 'wb') as f:
        f.write(payload)
    attempt('resumable_upload over the multipart threshold',
            lambda: oss2.resumable_upload(photos, 'mp/resumable.bin', big, multipart_threshold=200 * 1024, part_size=200 * 1024,
                                          store=oss2.ResumableStore(root=scratch)),
            lambda r: r.etag.endswith('-4') and photos.get_object('mp/resumable.bin').read() == payload)

# ACLs and bucket info.
attempt('get_object_acl of an object without its own ACL -> default', lambda: photos.get_object_acl('cats/kitten.jpg'),
        lambda r: r.acl == 'default')
attempt('get_object_acl of a press object -> public-read', lambda: photos.get_object_acl('press/p.jpg'),
        lambda r: r.acl == 'public-read')
attempt('get_object_acl of a built derivative -> its recorded private', lambda: pubr.get_object_acl('private/photo.jpg'),
        lambda r: r.acl == 'private')
attempt('get_bucket_acl', lambda: drop.get_bucket_acl(), lambda r: r.acl == 'public-read-write')
attempt('get_bucket_info', lambda: photos.get_bucket_info(),
        lambda r: r.name == 'photos' and r.acl.grant == 'private' and r.location == 'oss-cn-hangzhou')
e = error_of(lambda: photos.put_object_acl('cats/kitten.jpg', oss2.OBJECT_ACL_PUBLIC_READ))
check('put_object_acl fails cleanly (ACLs are the manifest\'s), object intact', e is not None and e.status == 501
      and 'manifest' in e.message and photos.get_object('cats/kitten.jpg').read() == kitten
      and photos.get_object_acl('cats/kitten.jpg').acl == 'default', e)
e = error_of(lambda: photos.put_bucket_acl(oss2.BUCKET_ACL_PUBLIC_READ))
check('put_bucket_acl fails cleanly', e is not None and e.status == 501 and photos.get_bucket_acl().acl == 'private', e)

# Attack 7 (#12): oss2 sends a query's spaces as '+' (requests' form encoding): they must be spaces.
drop.put_object('tmp x/1', b'1')
drop.put_object('tmp+x/keep', b'keep')
attempt('ObjectIterator + delete over "tmp x/" leaves "tmp+x/keep"',
        lambda: [drop.delete_object(o.key) for o in oss2.ObjectIterator(drop, prefix='tmp x/')],
        lambda r: drop.object_exists('tmp+x/keep') and not drop.object_exists('tmp x/1'))
for key in ['pg/a b/y', 'pg/a%', 'pg/a+b']:
    drop.put_object(key, b'x')
attempt('ObjectIterator max_keys=1 (V1 markers) over "a b/y", "a%", "a+b"',
        lambda: [o.key for o in oss2.ObjectIterator(drop, prefix='pg/', max_keys=1)],
        lambda keys: keys == ['pg/a b/y', 'pg/a%', 'pg/a+b'])
attempt('ObjectIteratorV2 over the same keys',
        lambda: [o.key for o in oss2.ObjectIteratorV2(drop, prefix='pg/', max_keys=1)],
        lambda keys: keys == ['pg/a b/y', 'pg/a%', 'pg/a+b'])
attempt('header-signed response-content-disposition with spaces verifies',
        lambda: photos.get_object('cats/kitten.jpg', params={'response-content-disposition': 'attachment; filename="a b.txt"'}),
        lambda r: r.headers.get('Content-Disposition') == 'attachment; filename="a b.txt"')
# x-oss-forbid-overwrite on copy and on multipart complete.
drop.put_object('fo/keep.txt', b'original')
drop.put_object('fo/other.txt', b'other')
e = error_of(lambda: drop.copy_object('drop', 'fo/other.txt', 'fo/keep.txt', headers={'x-oss-forbid-overwrite': 'true'}))
check('copy_object with x-oss-forbid-overwrite over an object -> 409 FileAlreadyExists, kept',
      e is not None and e.status == 409 and e.code == 'FileAlreadyExists' and drop.get_object('fo/keep.txt').read() == b'original', e)
upload = drop.init_multipart_upload('fo/late.txt').upload_id
part = drop.upload_part('fo/late.txt', upload, 1, b'MP')
drop.put_object('fo/late.txt', b'meanwhile')
e = error_of(lambda: drop.complete_multipart_upload('fo/late.txt', upload, [oss2.models.PartInfo(1, part.etag)],
                                                     headers={'x-oss-forbid-overwrite': 'true'}))
check('complete_multipart_upload with x-oss-forbid-overwrite over an object -> 409, kept',
      e is not None and e.status == 409 and drop.get_object('fo/late.txt').read() == b'meanwhile', e)
# An appendable object says so on HEAD.
drop.append_object('fo/ap.log', 0, b'abc')
attempt('head_object of an appendable object: Appendable, next position',
        lambda: drop.head_object('fo/ap.log'),
        lambda r: r.object_type == 'Appendable' and r.headers.get('x-oss-next-append-position') == '3')

failed = results.count(False)
print('oss2 object API: %d calls checked, %d failed' % (len(results), failed))
sys.exit(1 if failed else 0)
