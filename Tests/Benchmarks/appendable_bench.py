"""Appendable objects under load (bench-serve's last section; attack 10, finding C).

  prefill WORK N   makes N appendable objects in WORK/drop/full/ and the record file serve 0.x
                   kept (serve-appendable.json), which derive serve carries over at start-up
  measure URL      signed (V1, the fixture's AKIDEXAMPLE / DERIVE_SECRET), over one keep-alive
                   connection to the bucket `drop`: 1000 AppendObjects creating aa/0..999, 1000 more appends to those keys,
                   one DeleteMultipleObjects of the 1000, then the same batch delete of 1000
                   plain PUT objects for comparison. Prints the time of each step.
"""
import base64, email.utils, hashlib, hmac, http.client, json, os, sys, time, urllib.parse

def prefill(work, count):
    folder = os.path.join(work, 'drop', 'full')
    os.makedirs(folder, exist_ok=True)
    records = {}
    for n in range(count):
        path = os.path.join(folder, str(n))
        with open(path, 'wb') as f:
            f.write(b'x')
        records['drop\0full/%d' % n] = {'inode': os.stat(path).st_ino, 'size': 1}
    state = os.path.join(work, '.derive', 'derive')
    os.makedirs(state, exist_ok=True)
    with open(os.path.join(state, 'serve-appendable.json'), 'w') as f:
        json.dump(records, f)

def measure(url):
    parsed = urllib.parse.urlparse(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=600)

    secret = os.environ.get('DERIVE_SECRET', 'secret').encode()

    def send(method, path, body=b'', headers=None):
        headers = dict(headers or {})
        headers['Date'] = email.utils.formatdate(usegmt=True)
        # Every query parameter used here is a sub-resource, so the resource is the path as sent.
        text = '\n'.join([method, headers.get('Content-MD5', ''), headers.get('Content-Type', ''), headers['Date'], path])
        signature = base64.b64encode(hmac.new(secret, text.encode(), hashlib.sha1).digest()).decode()
        headers['Authorization'] = 'OSS AKIDEXAMPLE:' + signature
        connection.request(method, path, body=body, headers=headers)
        answer = connection.getresponse()
        data = answer.read()
        if answer.status >= 300:
            raise SystemExit('%s %s -> %d %s' % (method, path, answer.status, data[:300]))
        return data

    def timed(label, count, work):
        start = time.monotonic()
        work()
        elapsed = time.monotonic() - start
        print('  %-44s %7.2f s  (%.1f ms each)' % (label, elapsed, elapsed * 1000 / count))

    def batch_delete(prefix):
        body = ('<?xml version="1.0" encoding="UTF-8"?><Delete><Quiet>true</Quiet>'
                + ''.join('<Object><Key>%s%d</Key></Object>' % (prefix, n) for n in range(1000)) + '</Delete>').encode()
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        send('POST', '/drop/?delete', body, {'Content-MD5': md5, 'Content-Type': 'application/xml'})

    timed('1000 appends, each a new appendable object', 1000,
          lambda: [send('POST', '/drop/aa/%d?append&position=0' % n, b'0123456789') for n in range(1000)])
    timed('1000 appends to those objects', 1000,
          lambda: [send('POST', '/drop/aa/%d?append&position=10' % n, b'0123456789') for n in range(1000)])
    timed('DeleteMultipleObjects of the 1000 appendable', 1000, lambda: batch_delete('aa/'))
    for n in range(1000):
        send('PUT', '/drop/nn/%d' % n, b'0123456789')
    timed('DeleteMultipleObjects of 1000 plain objects', 1000, lambda: batch_delete('nn/'))

if __name__ == '__main__':
    if sys.argv[1] == 'prefill':
        prefill(sys.argv[2], int(sys.argv[3]))
    else:
        measure(sys.argv[2])
