#!/usr/bin/env python3
"""`ckpt scan` on fixtures: exit 0 for clean files, 3 when a dangerous global is named, 1 when a
file cannot be read; JSON flags the dangerous global; nothing in any file is ever run."""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results import Results  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--fixtures", required=True)
    a = ap.parse_args()
    expected = json.load(open(os.path.join(a.fixtures, "expected.json")))
    hostile = expected["__hostile__"]
    results = Results()
    check = results.check

    def scan(*files, js=False):
        cmd = [a.ckpt, "scan", *[os.path.join(a.fixtures, f) for f in files]] + (["--json"] if js else [])
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60)

    for f in ("state_dict.pth", "training_checkpoint.pth", "inference_package.pth", "legacy_state_dict.pth"):
        r = scan(f)
        check(r.returncode == 0, f"{f}: exit {r.returncode}, expected 0: {r.stderr}")
    for f in ("os_system.pth", "os_system_legacy.pth"):
        marker = hostile[f]["marker"]
        if os.path.exists(marker):
            os.remove(marker)
        r = scan(f, js=True)
        check(r.returncode == 3, f"{f}: exit {r.returncode}, expected 3")
        rep = json.loads(r.stdout)
        dangerous = [g["name"] for g in rep["globals"] if g["class"] == "dangerous"]
        check(dangerous == ["posix.system"], f"{f}: dangerous globals {dangerous}")
        check(rep["dangerous"] is True and rep["weights_only_loadable"] is False, f"{f}: verdict {rep}")
        check(not os.path.exists(marker), f"{f}: the payload ran (marker exists)")
    # Every hostile input that names a dangerous global is flagged; the others are not.
    for f, info in hostile.items():
        if info.get("expect") != "ok":
            continue
        r = scan(f)
        want = 3 if info.get("dangerous") else 0
        check(r.returncode == want, f"{f}: exit {r.returncode}, expected {want}: {r.stdout[:200]}")
    # `ckpt info` says the same in its text summary.
    for f, want in (("os_system.pth", "Security: DANGEROUS: posix.system"),
                    ("state_dict.pth", "Security: no dangerous globals; torch.load(weights_only=True) of PyTorch >= 2.6 would accept it")):
        r = subprocess.run([a.ckpt, "info", os.path.join(a.fixtures, f)], capture_output=True, text=True, timeout=60)
        check(r.returncode == 0 and want in r.stdout, f"info {f}: {want!r} not in the summary")
    # A summary that says "unknown" names what is unknown (a model's own class, which Python would import).
    rep = json.loads(scan("full_model.pth", js=True).stdout)
    rep = rep[0] if isinstance(rep, list) else rep
    unknown = [g["name"] for g in rep.get("globals", []) if g["class"] == "unknown"]
    r = subprocess.run([a.ckpt, "info", os.path.join(a.fixtures, "full_model.pth")], capture_output=True, text=True, timeout=60)
    want = f"{len(unknown)} unknown, {', '.join(unknown[:3])}: Python would import"
    check(bool(unknown) and r.returncode == 0 and want in r.stdout, f"info full_model.pth: {want!r} not in {r.stdout[-400:]!r}")
    r = scan("state_dict.pth", "os_system.pth")
    check(r.returncode == 3, f"mixed: exit {r.returncode}, expected 3")
    # A broken file beside a dangerous one: the danger decides (3); beside clean ones, 1.
    r = scan("truncated.pth", "os_system.pth")
    check(r.returncode == 3, f"unreadable and dangerous: exit {r.returncode}, expected 3")
    check(r.stderr.startswith("ckpt: ") and "truncated.pth" in r.stderr, f"error line: {r.stderr!r}")
    r = scan("truncated.pth", "state_dict.pth")
    check(r.returncode == 1, f"unreadable file: exit {r.returncode}, expected 1")
    # Files that do not read, but name a dangerous global before the fault (Python runs it then
    # fails): exit 3, the global listed, the error given.
    for f, info in hostile.items():
        if info.get("expect") != "error" or not info.get("dangerous"):
            continue
        r = scan(f, js=True)
        check(r.returncode == 3, f"{f}: exit {r.returncode}, expected 3: {r.stderr[:200]}")
        rep = json.loads(r.stdout) if r.stdout.strip() else {}
        dangerous = [g["name"] for g in rep.get("globals", []) if g["class"] == "dangerous"]
        check(info["global"] in dangerous and rep.get("error"), f"{f}: report {rep}")
    # safetensors holds no pickle: no protocol, and torch.load does not read it.
    st = os.path.join(a.fixtures, "weights.safetensors")
    info = subprocess.run([a.ckpt, "info", "--json", st], capture_output=True, text=True, timeout=60)
    text = subprocess.run([a.ckpt, "info", st], capture_output=True, text=True, timeout=60)
    check(info.returncode == 0 and json.loads(info.stdout)["pickle_protocol"] is None and "protocol" not in text.stdout,
          f"safetensors: pickle protocol reported: {info.stdout[:300]} {text.stdout[:300]}")
    check_weights_only_verdict(a, hostile, check)
    check_torchscript_words(a, check)
    check_built_inputs(a, check)
    check_namespace(a, check)
    return results.finish()


def torch_zip(path, records):
    import zipfile
    with zipfile.ZipFile(path, "w") as z:
        for name, data in records:
            z.writestr(name, data)


_JUDGE = r"""
import importlib, json, pickle, sys, types
answers = []
for kind, *args in json.load(sys.stdin):
    if kind == "resolve":  # an import and a getattr: nothing is unpickled
        o = getattr(importlib.import_module(args[0]), args[1])
        answers.append("module" if isinstance(o, types.ModuleType) else type(o).__name__)
    else:  # "unpickle": a harmless pickle built by the test
        try:
            pickle.loads(bytes.fromhex(args[0]))
            answers.append("reads")
        except Exception as e:
            answers.append(type(e).__name__)
print(json.dumps(answers))
"""


def python_says(probes):
    """Asks a throwaway Python (the judge) every probe at once, ("resolve", module, name) or
    ("unpickle", hex), and returns its answers in order: one interpreter start, not one per probe."""
    r = subprocess.run([sys.executable, "-c", _JUDGE], input=json.dumps(probes), capture_output=True, text=True,
                       timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"the judge failed: {r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def check_built_inputs(a, check):
    """Inputs built here as bytes (never unpickled in this process): globals that are a module
    object, text Python refuses, an unknown byte order, a mobile export's bytecode.pkl."""
    import tempfile
    tmp = tempfile.mkdtemp(prefix="ckpt-scan-")

    def scan_json(path):
        r = subprocess.run([a.ckpt, "scan", "--json", path], capture_output=True, text=True, timeout=60)
        return r, (json.loads(r.stdout) if r.stdout.strip() else {})

    # GLOBAL mod name; {'zz': 5}; BUILD: loading sets zz on that module itself (torch.os is os).
    # Python is asked only what each name resolves to (an import and getattr, nothing unpickled).
    pairs = [("torch", "os"), ("posixpath", "os"), ("torch", "sys"), ("collections", "_sys"), ("argparse", "_os"),
             ("torch.serialization", "pickle"), ("torch._utils", "torch"), ("builtins", "__dict__")]
    head = b"\x80\x02}X\x04\x00\x00\x00name"
    texts = ((b"X\x03\x00\x00\x00\xff\xfe\xfd", False), (b"X\x03\x00\x00\x00\xed\xa0\x80", True))
    unicode0 = b"(dVname\nV\\U0011FFFF\ns."
    answers = python_says([("resolve", mod, name) for mod, name in pairs]
                          + [("unpickle", (head + value + b"s.").hex()) for value, _ in texts]
                          + [("unpickle", unicode0.hex())])
    kinds, verdicts, unicode0_verdict = answers[:len(pairs)], answers[len(pairs):-1], answers[-1]
    for (mod, name), kind in zip(pairs, kinds):
        check(kind in ("module", "dict"), f"{mod}.{name}: Python resolves it to a {kind!r}, not a module or namespace")
        path = os.path.join(tmp, f"{mod}.{name}.pth")
        pkl = b"\x80\x02c" + mod.encode() + b"\n" + name.encode() + b"\n}X\x02\x00\x00\x00zzK\x05sb."
        torch_zip(path, [("archive/data.pkl", pkl), ("archive/version", "3\n")])
        r, rep = scan_json(path)
        flagged = [g for g in rep.get("globals", []) if g["name"] == f"{mod}.{name}" and g["class"] == "dangerous"]
        check(r.returncode == 3 and flagged, f"{mod}.{name}: exit {r.returncode}, report {rep}")
    # pip.main(['install']): an installer runs the build code of what it installs.
    path = os.path.join(tmp, "pip.main.pth")
    torch_zip(path, [("archive/data.pkl", b"\x80\x02cpip\nmain\n(X\x07\x00\x00\x00installl\x85R."),
                     ("archive/version", "3\n")])
    r, rep = scan_json(path)
    check(r.returncode == 3 and "pip.main" in [g["name"] for g in rep.get("globals", []) if g["class"] == "dangerous"],
          f"pip.main: exit {r.returncode}, report {rep}")

    # A str whose bytes are not UTF-8: Python raises UnicodeDecodeError; a lone surrogate it
    # accepts ('surrogatepass'). Both pickles are harmless: Python unpickles them in a child.
    for (value, reads), verdict in zip(texts, verdicts):
        pkl = head + value + b"s."
        check(verdict == ("reads" if reads else "UnicodeDecodeError"), f"Python on {value!r}: {verdict}")
        path = os.path.join(tmp, "text.pth")
        torch_zip(path, [("archive/data.pkl", pkl), ("archive/version", "3\n")])
        r = subprocess.run([a.ckpt, "info", path], capture_output=True, text=True, timeout=60)
        offset = open(path, "rb").read().find(pkl) + len(head)  # offsets are the file's
        if reads:
            check(r.returncode == 0, f"lone surrogate: exit {r.returncode}: {r.stderr}")
        else:
            check(r.returncode == 1 and all(w in r.stderr for w in ("archive/data.pkl", f"offset {offset} (BINUNICODE)", "UTF-8")),
                  f"not UTF-8: exit {r.returncode}, {r.stderr!r}")
    # Protocol 0 UNICODE past U+10FFFF: Python refuses it.
    pkl = unicode0
    check(unicode0_verdict == "UnicodeDecodeError", f"Python on UNICODE past U+10FFFF: {unicode0_verdict}")
    path = os.path.join(tmp, "unicode0.pth")
    torch_zip(path, [("archive/data.pkl", pkl), ("archive/version", "3\n")])
    r = subprocess.run([a.ckpt, "info", path], capture_output=True, text=True, timeout=60)
    check(r.returncode == 1 and "UNICODE" in r.stderr, f"UNICODE past U+10FFFF: exit {r.returncode}, {r.stderr!r}")

    # byteorder 'middle': torch.load (2.1 and later) raises "Unknown endianness type: middle"; torch
    # 1.13 ignores the record and runs the pickle. The record is an anomaly, and the pickle behind it
    # is scanned: a fake record must not hide a dangerous global.
    path = os.path.join(tmp, "middle.pth")
    torch_zip(path, [("archive/data.pkl", b"\x80\x02}."), ("archive/byteorder", "middle"), ("archive/version", "3\n")])
    r = subprocess.run([a.ckpt, "scan", "--json", path], capture_output=True, text=True, timeout=60)
    doc = json.loads(r.stdout) if r.returncode == 0 else {}
    anomalies = (doc[0] if isinstance(doc, list) else doc).get("anomalies", [])
    check(any("archive/byteorder" in x and "middle" in x for x in anomalies),
          f"byteorder middle: an anomaly: exit {r.returncode}, {r.stdout[:400]!r} {r.stderr!r}")
    path = os.path.join(tmp, "middle_system.pth")
    torch_zip(path, [("archive/data.pkl", b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R."),
                     ("archive/byteorder", "middle"), ("archive/version", "3\n")])
    r = subprocess.run([a.ckpt, "scan", path], capture_output=True, text=True, timeout=60)
    check(r.returncode == 3 and "posix.system" in r.stdout,
          f"byteorder middle does not hide posix.system: exit {r.returncode}, {r.stdout!r} {r.stderr!r}")

    # A mobile export whose bytecode.pkl calls os.system: flagged as data.pkl's globals are.
    path = os.path.join(tmp, "mobile.ptl")
    torch_zip(path, [("m/bytecode.pkl", b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00id\x85R."),
                     ("m/constants.pkl", b"\x80\x02)."), ("m/data.pkl", b"\x80\x02}."), ("m/version", "8\n")])
    r, rep = scan_json(path)
    check(r.returncode == 3 and "os.system" in [g["name"] for g in rep.get("globals", []) if g["class"] == "dangerous"],
          f"bytecode.pkl os.system: exit {r.returncode}, report {rep}")


def check_namespace(a, check):
    """argparse.Namespace (the args= of nearly every training script) only sets the attributes it
    was saved with: a known harmless standard class, as OrderedDict is, so a checkpoint that keeps
    its arguments is not called unknown. torch reads the same attributes back."""
    import argparse as argparse_module
    import tempfile
    import torch
    tmp = tempfile.mkdtemp(prefix="ckpt-scan-ns-")
    path = os.path.join(tmp, "with_args.pth")
    args = argparse_module.Namespace(lr=0.01, batch_size=8, arch="smallnet")
    torch.save({"model_state_dict": torch.nn.Linear(2, 2).state_dict(), "args": args, "epoch": 3}, path)
    back = torch.load(path, weights_only=False)["args"]
    check(type(back) is argparse_module.Namespace and vars(back) == vars(args), f"torch reads back {back!r}")
    r = subprocess.run([a.ckpt, "scan", "--json", path], capture_output=True, text=True, timeout=60)
    rep = json.loads(r.stdout) if r.stdout.strip() else {}
    rep = rep[0] if isinstance(rep, list) else rep
    ns = [g for g in rep.get("globals", []) if g["name"] == "argparse.Namespace"]
    check(r.returncode == 0 and ns and ns[0]["class"] == "understood",
          f"argparse.Namespace: understood, exit 0: exit {r.returncode}, {ns}")
    check(not [g for g in rep.get("globals", []) if g["class"] == "unknown"], f"no unknown globals: {rep.get('globals')}")
    for argv in (["scan", path], ["info", path]):
        r = subprocess.run([a.ckpt, *argv], capture_output=True, text=True, timeout=60)
        check(r.returncode == 0 and "unknown" not in r.stdout, f"ckpt {argv[0]}: nothing unknown: {r.stdout!r}")


def check_weights_only_verdict(a, hostile, check):
    """Whether torch.load(weights_only=True) takes each file, judged by the PyTorch here. The
    verdict is PyTorch 2.6's (its default): with torch >= 2.6 it must agree both ways. Older torch
    accepts less (no Python floats in 1.13, fewer globals) and loads TorchScript through
    torch.jit.load, so there: what it accepts, other than TorchScript, the verdict accepts too."""
    import glob
    import warnings
    import torch
    warnings.simplefilter("ignore")
    version = tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2])
    files = sorted(glob.glob(os.path.join(a.fixtures, "*")))
    corpus = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "corpus", "files")
    if os.path.isdir(corpus):
        files += sorted(os.path.join(corpus, f) for f in os.listdir(corpus) if not f.startswith("ADVERSARIAL"))
    compared = 0
    for path in files:
        name = os.path.basename(path)
        if not os.path.isfile(path) or name in hostile or name.endswith((".json", ".png", ".npy", ".csv", ".txt")):
            continue
        r = subprocess.run([a.ckpt, "scan", "--json", path], capture_output=True, text=True, timeout=60)
        if r.returncode not in (0, 3):
            continue  # no verdict for a file that does not read
        rep = json.loads(r.stdout)
        try:
            torch.load(path, weights_only=True, map_location="cpu")
            accepted, why = True, ""
        except Exception as e:  # noqa: BLE001 -- any refusal is a refusal
            accepted, why = False, str(e).strip().splitlines()[-1][:160] if str(e).strip() else type(e).__name__
        ours = rep["weights_only_loadable"]
        if version >= (2, 6):
            check(ours == accepted, f"{name}: weights_only verdict {ours}, torch {torch.__version__} "
                                    f"{'accepts' if accepted else 'refuses: ' + why}; blockers {rep['weights_only_blockers']}")
        elif accepted and "torchscript" not in json.dumps(rep.get("weights_only_blockers", [])).lower():
            check(ours, f"{name}: torch {torch.__version__} accepts it with weights_only=True, the verdict refuses: "
                        f"{rep['weights_only_blockers']}")
        compared += 1
    check(compared >= 20, f"only {compared} files had a weights_only verdict to compare")



def _archive_classes(path):
    """The TorchScript classes (__torch__.*) an archive's data.pkl names, read with pickletools:
    nothing is unpickled, nothing run."""
    import pickletools
    import zipfile
    with zipfile.ZipFile(path) as z:
        name = next(n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl")
        data = z.read(name)
    found, strings = set(), []
    for op, arg, _ in pickletools.genops(data):
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
            strings.append(arg)
        elif op.name == "GLOBAL":
            found.add(arg.replace(" ", "."))
        elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
            found.add(strings[-2] + "." + strings[-1])
    return {g for g in found if g.startswith("__torch__.")}


def check_torchscript_words(a, check):
    """The summary line for TorchScript archives, judged by torch: torch.jit.load of an archive
    whose class's Python module is nowhere to import loads it and imports no module (its classes
    are compiled from the archive's code), so the line does not say Python would import them; it
    counts the archive's classes as pickletools lists them; it gives the archive as the reason
    torch.load(weights_only=True) refuses it, with no stray comma, however many classes there are."""
    import re
    import tempfile
    import textwrap
    import torch
    work = tempfile.mkdtemp(prefix="ckpt-scan-ts-")
    mod = os.path.join(work, "foo_user_module.py")
    with open(mod, "w") as f:
        f.write(textwrap.dedent("""
            import torch
            class Foo(torch.nn.Module):
                def forward(self, x):
                    return x + 1
        """))
    script = os.path.join(work, "foo.pt")
    subprocess.run([sys.executable, "-c", "import sys, torch; sys.path.insert(0, %r); import foo_user_module as m; "
                    "torch.jit.save(torch.jit.script(m.Foo()), %r)" % (work, script)], check=True, timeout=300)
    os.remove(mod)
    probe = subprocess.run([sys.executable, "-c", "import sys, torch; m = torch.jit.load(%r); "
                            "print(float(m(torch.tensor(1.0))), 'foo_user_module' in sys.modules)" % script],
                           capture_output=True, text=True, timeout=300, cwd=work)
    check(probe.returncode == 0 and probe.stdout.split() == ["2.0", "False"],
          f"torch.jit.load reads foo.pt without its module: {probe.stdout} {probe.stderr[-300:]}")
    files = [script] + [os.path.join(a.fixtures, f) for f in ("scripted.pt", "gated_scripted.pt", "frozen.pt")]
    for path in files:
        name = os.path.basename(path)
        r = subprocess.run([a.ckpt, "scan", path], capture_output=True, text=True, timeout=60)
        line = r.stdout.splitlines()[0] if r.stdout else ""
        classes = _archive_classes(path)
        m = re.search(r"\((\d+) TorchScript class(es)?, which torch\.jit\.load compiles from the archive's own code", line)
        check(r.returncode == 0 and m is not None and int(m.group(1)) == len(classes),
              f"scan {name}: the {len(classes)} TorchScript classes counted as compiled from the archive: {line}")
        check("would import" not in line and "unknown" not in line,
              f"scan {name}: no 'Python would import' for TorchScript classes: {line}")
        check(re.search(r",\s*[(,;]|\(\s*,|,\s*$", line) is None and "and 1 more" not in line,
              f"scan {name}: a stray comma or a hidden reason: {line}")
        check(line.endswith("would refuse it: it is a TorchScript archive, which torch.load refuses with "
                            "weights_only=True (torch.jit.load reads it)"),
              f"scan {name}: the archive given as the reason: {line}")
    shutil_rmtree(work)


def shutil_rmtree(path):
    import shutil
    shutil.rmtree(path, ignore_errors=True)

if __name__ == "__main__":
    sys.exit(main())
