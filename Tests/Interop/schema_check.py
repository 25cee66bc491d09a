"""Validates manifests against the JSON Schema `derive schema` prints, with the reference
Python implementation (jsonschema), as an editor would: every manifest given must pass, and
known-bad manifests must be rejected. Then each case of schema-cases.yaml (beside this file)
is judged by the schema and, with DERIVE_BIN set, by `derive validate`: both must give the
case's verdict. Usage: [DERIVE_BIN=derive] schema_check.py SCHEMA.json MANIFEST.yaml..."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

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



class Core12Loader(yaml.SafeLoader):
    """YAML 1.2's core schema, as the YAML language server (and derive) read it: `yes`, `on`
    and `1_000` are strings, `0o17` and `0x1F` integers."""


Core12Loader.yaml_implicit_resolvers = {}
for tag, expression, first in [
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", list("~nN") + [""]),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    ("tag:yaml.org,2002:float", r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
     list("-+.0123456789")),
]:
    Core12Loader.add_implicit_resolver(tag, re.compile(expression), first)


def core12_int(loader, node):
    text = loader.construct_scalar(node)
    return int(text[2:], 8) if text.startswith("0o") else int(text[2:], 16) if text.startswith("0x") else int(text)


Core12Loader.add_constructor("tag:yaml.org,2002:int", core12_int)


def keys_as_text(value):
    """Mapping keys as JSON has them: strings (`{1: [a]}` has the key "1")."""
    if isinstance(value, dict):
        return {(k if isinstance(k, str) else json.dumps(k)): keys_as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [keys_as_text(v) for v in value]
    return value


cases_file = yaml.safe_load(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "schema-cases.yaml"), encoding="utf-8"))
derive = os.environ.get("DERIVE_BIN")
samples = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Samples", "landscape.jpg")
folder = tempfile.mkdtemp(prefix="schema-cases-")
try:
    for sub in ["src", "2024", "out"]:
        os.makedirs(os.path.join(folder, sub))
    for sub in ["src", "2024"]:
        shutil.copyfile(samples, os.path.join(folder, sub, "a.jpg"))
    for case in cases_file["cases"]:
        text = case.get("manifest") or (cases_file["base"].replace("@BUCKET@", case.get("bucket", ""))
                                        .replace("@RULE@", case.get("rule", "")).replace("@TOP@", case.get("top", ""))
                                        .replace("@FROM@", case.get("from", "src/*.jpg")).replace("@TO@", case.get("to", '"out/{name}.jpg"')))
        expected = "valid" if case["valid"] else "refused"
        document = keys_as_text(yaml.load(text, Loader=Core12Loader))
        schema_says = "refused" if list(validator.iter_errors(document)) else "valid"
        report(schema_says == expected, f"the schema finds {case['what']!r} {expected}")
        if derive:
            with open(os.path.join(folder, "derive.yaml"), "w", encoding="utf-8") as manifest:
                manifest.write(text)
            run = subprocess.run([derive, "validate", "derive.yaml"], cwd=folder, capture_output=True, text=True, timeout=60)
            derive_says = "valid" if run.returncode == 0 else "refused"
            report(derive_says == expected, f"derive validate finds {case['what']!r} {expected}"
                   + ("" if derive_says == expected else "\n     " + run.stderr.strip().replace("\n", "\n     ")))
finally:
    shutil.rmtree(folder)

sys.exit(1 if failed else 0)
