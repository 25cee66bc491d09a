"""ossfs (the fsspec filesystem for OSS that pandas and Dask use) against a running
`derive serve` (Tests/Interop/fixture.yaml, DERIVE_SECRET=secret).

Usage: ossfs_check.py ENDPOINT. Prints each check and 'ossfs: N calls checked, M failed';
exits 1 on any failure.
"""
import sys

import ossfs

ENDPOINT = sys.argv[1]
results = []


def check(name, condition, detail=''):
    results.append(bool(condition))
    print(('ok   ' if condition else 'FAIL ') + 'ossfs: ' + name + ('' if condition else '  ' + str(detail)[:400]))


def attempt(name, call, condition):
    try:
        result = call()
    except Exception as e:  # noqa: BLE001 - any error is a failed check
        check(name, False, repr(e))
        return None
    check(name, condition(result), result)
    return result


fs = ossfs.OSSFileSystem(endpoint=ENDPOINT, key='AKIDEXAMPLE', secret='secret')


def write(path, data):
    with fs.open(path, 'wb') as f:
        f.write(data)


def read(path):
    with fs.open(path, 'rb') as f:
        return f.read()


attempt('open for write', lambda: write('/photos/fs/a.csv', b'x,y\n1,2\n'), lambda r: True)
attempt('open for read', lambda: read('/photos/fs/a.csv'), lambda data: data == b'x,y\n1,2\n')
write('/photos/fs/b.csv', b'b')
write('/photos/fs/sub/c.txt', b'c')
attempt('ls', lambda: sorted(fs.ls('/photos/fs', detail=False)),
        lambda names: [n.strip('/') for n in names] == ['photos/fs/a.csv', 'photos/fs/b.csv', 'photos/fs/sub'])
attempt('ls with details (sizes, types)', lambda: {e['name'].strip('/'): (e['type'], e['size']) for e in fs.ls('/photos/fs', detail=True)},
        lambda info: info.get('photos/fs/a.csv') == ('file', 8) and info.get('photos/fs/sub', ('',))[0] == 'directory')
attempt('glob', lambda: sorted(fs.glob('/photos/fs/*.csv')), lambda names: [n.strip('/') for n in names] == ['photos/fs/a.csv', 'photos/fs/b.csv'])
attempt('exists and info', lambda: (fs.exists('/photos/fs/b.csv'), fs.info('/photos/fs/b.csv')['size']), lambda r: r == (True, 1))
attempt('rm', lambda: fs.rm('/photos/fs/b.csv'), lambda r: True)
fs.invalidate_cache()
attempt('... and it is gone', lambda: fs.exists('/photos/fs/b.csv'), lambda exists: not exists)
attempt('rm recursive', lambda: fs.rm('/photos/fs', recursive=True), lambda r: True)
fs.invalidate_cache()
attempt('... and the folder is empty', lambda: fs.find('/photos/fs'), lambda names: len(names) == 0)

# Attack 7 (#12): ossfs lists with '+' for spaces; rm, find and glob must touch the named keys only.
write('/drop/fs7/tmp x/1', b'1')
write('/drop/fs7/tmp+x/keep', b'keep')
write('/drop/fs7/a b/y', b'y')
fs.invalidate_cache()
attempt('find lists keys with spaces and pluses', lambda: sorted(n.strip('/') for n in fs.find('/drop/fs7')),
        lambda names: names == ['drop/fs7/a b/y', 'drop/fs7/tmp x/1', 'drop/fs7/tmp+x/keep'])
attempt('glob under a folder with a space', lambda: [n.strip('/') for n in fs.glob('/drop/fs7/a b/*')],
        lambda names: names == ['drop/fs7/a b/y'])
attempt('rm recursive of "tmp x"', lambda: fs.rm('/drop/fs7/tmp x', recursive=True), lambda r: True)
fs.invalidate_cache()
attempt('... removes "tmp x/1" and keeps "tmp+x/keep"',
        lambda: (fs.exists('/drop/fs7/tmp x/1'), read('/drop/fs7/tmp+x/keep')), lambda r: r == (False, b'keep'))
fs.rm('/drop/fs7', recursive=True)

failed = results.count(False)
print('ossfs: %d calls checked, %d failed' % (len(results), failed))
sys.exit(1 if failed else 0)
