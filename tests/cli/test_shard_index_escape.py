#!/usr/bin/env python3
"""A shard index whose weight_map names a file outside its folder ('../x', an absolute path):
transformers joins the name to the folder (os.path.join) and loads whatever is there, so
`ckpt scan` calls the index dangerous (exit 3, the reason naming the path) and `ckpt info` says
why it stops (exit 1). The file named is a FIFO: opening it would block or be refused as one,
so a verdict that comes back dangerous shows it was never read."""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results import Results  # noqa: E402


def safetensors(path, name):
    """A one-tensor safetensors file (4 float32 zeros), written as the format lays it out."""
    header = json.dumps({name: {'dtype': 'F32', 'shape': [4], 'data_offsets': [0, 16]}}).encode()
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(header)) + header + bytes(16))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    a = ap.parse_args()
    res = Results()
    check = res.check

    def run(*args):
        return subprocess.run([a.ckpt, *args], capture_output=True, text=True, timeout=60)

    with tempfile.TemporaryDirectory() as top:
        outside_fifo = os.path.join(top, 'x')
        os.mkfifo(outside_fifo)
        elsewhere = os.path.join(top, 'elsewhere')
        os.mkdir(elsewhere)
        absolute_fifo = os.path.join(elsewhere, 'y.bin')
        os.mkfifo(absolute_fifo)
        cases = [('model.safetensors.index.json', '../x'),
                 ('model.safetensors.index.json', absolute_fifo),
                 ('pytorch_model.bin.index.json', 'sub/../../x'),
                 ('pytorch_model.bin.index.json', absolute_fifo)]
        for i, (index_name, bad) in enumerate(cases):
            folder = os.path.join(top, 'model%d' % i)
            os.mkdir(folder)
            good = 'model-00001-of-00002.safetensors'
            safetensors(os.path.join(folder, good), 'a.weight')
            index = os.path.join(folder, index_name)
            with open(index, 'w') as f:
                json.dump({'metadata': {'total_size': 32}, 'weight_map': {'a.weight': good, 'b.weight': bad}}, f)
            where = f'{index_name} naming {bad!r}'
            # Python's own reading of the name: the path a loader opens, outside the folder.
            target = os.path.normpath(os.path.join(folder, bad))
            check(os.path.commonpath([target, folder]) != folder, f'{where}: the case itself stays in the folder')
            for what in (index, folder):  # the index by name, and the Hugging Face folder holding it
                r = run('scan', what)
                check(r.returncode == 3, f'{where}: scan {what}: exit {r.returncode}, expected 3: {r.stdout}{r.stderr}')
                check('DANGEROUS' in r.stdout and 'outside its folder' in r.stdout and f"'{bad}'" in r.stdout,
                      f'{where}: scan text {r.stdout!r}')
                check(target in r.stderr, f'{where}: scan error does not name {target}: {r.stderr!r}')
                r = run('scan', what, '--json')
                rep = json.loads(r.stdout) if r.stdout.strip() else {}
                rep = rep[0] if isinstance(rep, list) and rep else rep
                check(r.returncode == 3 and rep.get('dangerous') is True and rep.get('weights_only_loadable') is False,
                      f'{where}: scan --json {what}: exit {r.returncode}, {rep}')
                check(any('outside its folder' in x and f"'{bad}'" in x for x in rep.get('anomalies', [])),
                      f'{where}: scan --json reasons {rep.get("anomalies")}')
                check(target in rep.get('error', ''), f'{where}: scan --json error {rep.get("error")!r}')
            r = run('info', index)
            check(r.returncode == 1 and r.stdout == '', f'{where}: info: exit {r.returncode}, {r.stdout!r}')
            check(r.stderr.startswith('ckpt: ' + index + ': shard index: ') and f"names '{bad}'" in r.stderr and
                  "outside the index's folder (" + target + ')' in r.stderr and 'not read' in r.stderr,
                  f'{where}: info says {r.stderr!r}')
            # A clean file beside it does not make the batch pass.
            r = run('scan', os.path.join(folder, good), index)
            check(r.returncode == 3, f'{where}: scan with a clean file: exit {r.returncode}')
        # A name that only looks like a path but stays in the folder is no danger: still the error
        # it was (exit 1), not a verdict.
        folder = os.path.join(top, 'inside')
        os.mkdir(folder)
        index = os.path.join(folder, 'model.safetensors.index.json')
        with open(index, 'w') as f:
            json.dump({'weight_map': {'a.weight': 'sub/../w.safetensors'}}, f)
        r = run('scan', index)
        check(r.returncode == 1 and 'not a plain file name' in r.stderr, f'inside: scan exit {r.returncode}, {r.stderr!r}')
        # A fault the reader stops at does not hide an escaping name: transformers opens
        # sorted(set(weight_map.values())), so '../x' first. A bad name before it in the map; a
        # weight_map given twice (Python's json keeps the last, the escaping one).
        for name, text in (
                ('bad name first', json.dumps({'weight_map': {'a.weight': 'sub/model-1.bin', 'b.weight': '../x'}})),
                ('weight_map twice', '{"weight_map": {"a.weight": "model-1.bin"}, "weight_map": {"a.weight": "../x"}}')):
            folder = os.path.join(top, name.replace(' ', '_'))
            os.mkdir(folder)
            index = os.path.join(folder, 'pytorch_model.bin.index.json')
            with open(index, 'w') as f:
                f.write(text)
            judged = json.loads(text)['weight_map']
            check(any(os.path.commonpath([os.path.normpath(os.path.join(folder, v)), folder]) != folder
                      for v in judged.values()), f'{name}: Python\'s json reads an escaping name')
            r = run('scan', index)
            check(r.returncode == 3 and "'../x'" in r.stdout, f'{name}: scan exit {r.returncode}, {r.stdout!r} {r.stderr!r}')
    return res.finish()


if __name__ == '__main__':
    sys.exit(main())
