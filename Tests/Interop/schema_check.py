"""Validates manifests against the JSON Schema `derive schema` prints, with the reference
Python implementation (jsonschema), as an editor would: every manifest given must pass, and
known-bad manifests must be rejected. Usage: schema_check.py SCHEMA.json MANIFEST.yaml..."""
import json
import sys

import jsonschema
import yaml

schema = json.load(open(sys.argv[1], encoding="utf-8"))
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
failed = 0


def report(ok, what):
    global failed
    print(("ok   " if ok else "FAIL ") + what)
    failed += 0 if ok else 1


for path in sys.argv[2:]:
    document = yaml.safe_load(open(path, encoding="utf-8"))
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    report(not errors, "schema accepts " + path + "".join("\n     " + e.message for e in errors))

good = """
version: 1
x-defaults: &public {acl: public-read}
buckets:
  photos: {path: photos}
  site: {<<: *public, path: site, website: {index: index.html, error: 404.html}}
styles:
  hero:
    - resize: {w: 400}
    - watermark: {text: "© 2026 Lake Studio", size: 24, g: se, type: "DejaVu Sans"}
    - format: webp
    - auto-orient
derivatives:
  - {from: photos/*.jpg, styles: [hero], to: "site/{name}.webp", acl: public-read}
  - {name: hero image, from: photos/*.jpg, process: "image/resize,w_{w}", matrix: {w: [1.5, true, 80]}, to: "site/{name}-{w}.{hash:8}.jpg"}
limits: {bytes: 10_000_000, render_seconds: 30}
"""
report(not list(validator.iter_errors(yaml.safe_load(good))), "schema accepts list styles, x- anchors and website")

bad = {
    "an unknown top-level key": "version: 1\nbuckts: {}\n",
    "a missing version": "buckets: {}\n",
    "version 2": "version: 2\n",
    "an unknown bucket key": "version: 1\nbuckets:\n  site: {path: s, acll: private}\n",
    "a bad bucket ACL": "version: 1\nbuckets:\n  site: {path: s, acl: public}\n",
    "an upper-case bucket name": "version: 1\nbuckets:\n  Site: {path: s}\n",
    "a website index with a slash": "version: 1\nbuckets:\n  site: {path: s, website: {index: a/index.html}}\n",
    "an unknown rule key": "version: 1\nderivatives:\n  - {from: a/*.jpg, to: b/x, styls: [t]}\n",
    "a rule without to": "version: 1\nderivatives:\n  - {from: a/*.jpg, process: image/resize,w_1}\n",
    "a limit out of range": "version: 1\nlimits: {render_seconds: 100000}\n",
    "an unknown action in a list style": "version: 1\nstyles:\n  s:\n    - rezise: {w: 1}\n",
    "two actions in one list item": "version: 1\nstyles:\n  s:\n    - {resize: {w: 1}, format: png}\n",
    "a rule name with a slash": "version: 1\nderivatives:\n  - {name: g/thumb, from: a/*.jpg, to: b/x}\n",
    "a protocol-relative url": "version: 1\nbuckets:\n  site: {path: s, url: //evil.example}\n",
    "a hash of 3 digits": "version: 1\nderivatives:\n  - {from: a/*.jpg, to: \"b/{name}.{hash:3}.jpg\"}\n",
}
for what, text in bad.items():
    report(bool(list(validator.iter_errors(yaml.safe_load(text)))), "schema rejects " + what)

sys.exit(1 if failed else 0)
