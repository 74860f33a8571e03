#!/usr/bin/env python3
"""`ckpt convert --max-shard-size` judged by PyTorch: the source is made here with torch, converted
into shards, and each shard read back by torch (torch.load(weights_only=True) for .bin shards, the
hand parser of the safetensors layout for .safetensors). Which tensor lands in which shard is
computed here from torch's own tensor sizes with huggingface_hub's split_torch_state_dict_into_shards
rule (the README's), independently of ckpt."""

import argparse
import fnmatch
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'fixtures'))
import torch  # noqa: E402
from results import Results  # noqa: E402
from test_convert_vs_torch import read_safetensors, same_tensor  # noqa: E402
from test_signal_writes import default_signals  # noqa: E402

LIMIT = 1000  # bytes: small enough that the source below needs several shards


def source_state_dict():
    torch.manual_seed(0)
    tied = torch.randn(15, 10)
    sd = {
        'a.weight': torch.randn(10, 10),              # 400 bytes
        'a.bias': torch.randn(10),                    # 40
        'b.weight': torch.randn(20, 20),              # 1600: larger than the limit, a shard of its own
        'b.bias': torch.randn(20).half(),             # 40
        'c.weight': tied,                             # 600: the shard would pass 1000, a new one
        'c.t': torch.randn(12, 10).t(),               # 480, not contiguous
        'c.tied': tied,                               # the same tensor: with c.weight, counted once
        'steps': torch.tensor(7, dtype=torch.int64),  # 8
        'big': torch.randn(200, dtype=torch.float64),  # 1600: alone again
        'tail': torch.arange(30, dtype=torch.int32),  # 120
    }
    return sd


def expected_packing(sd, limit, pattern):
    """huggingface_hub's split_torch_state_dict_into_shards, restated: tensors in order; one sharing
    a storage with an earlier one goes with it, uncounted; one larger than the limit alone (placed
    when met); else a new shard when the current one would pass the limit."""
    first_of, followers = {}, []
    shards, current, current_size, total = [], [], 0, 0
    for name, t in sd.items():
        sid = t.storage().data_ptr()
        if sid in first_of:
            followers.append((name, first_of[sid]))
            continue
        first_of[sid] = name
        size = t.numel() * t.element_size()
        total += size
        if size > limit:
            shards.append([name])
            continue
        if current_size + size > limit:
            shards.append(current)
            current, current_size = [], 0
        current.append(name)
        current_size += size
    if current:
        shards.append(current)
    for name, first in followers:
        for s in shards:
            if first in s:
                s.append(name)
    n = len(shards)
    files = {}
    for k, s in enumerate(shards):
        for name in s:
            files[name] = pattern.format(suffix='-%05d-of-%05d' % (k + 1, n))
    return n, files, total


def run(ckpt, *args):
    return subprocess.run([ckpt, *args], capture_output=True, text=True, timeout=300)


def info_tensors(ckpt, path):
    r = run(ckpt, 'info', '--json', path)
    try:
        sd = json.loads(r.stdout)['state_dict']
        return [(t['name'], t['dtype'], t['shape']) for t in sd['tensors']]
    except (ValueError, KeyError, TypeError):
        return 'info --json failed (%d): %s' % (r.returncode, r.stderr.strip())


def folder_bytes(folder):
    """Each file of `folder` by name: its bytes."""
    got = {}
    for f in sorted(os.listdir(folder)):
        with open(os.path.join(folder, f), 'rb') as fh:
            got[f] = fh.read()
    return got


def under_fault(faultshim, spec):
    """The environment that runs ckpt under the fault shim with CKPT_FAULT=spec."""
    return dict(os.environ, LD_PRELOAD=faultshim, CKPT_FAULT=spec,
                ASAN_OPTIONS=os.environ.get('ASAN_OPTIONS', '') + ':verify_asan_link_order=0')


def check_target(res, ckpt, src, sd, work, target, name, load):
    where = 'shards %s' % target
    out = os.path.join(work, target)
    os.mkdir(out)
    stem, ext = os.path.splitext(name)
    n, files, total = expected_packing(sd, LIMIT, stem + '{suffix}' + ext)
    index_path = os.path.join(out, name + '.index.json')
    r = run(ckpt, 'convert', src, '--to', target, '--max-shard-size', str(LIMIT), '-o', os.path.join(out, name))
    if not res.check(r.returncode == 0, where, 'convert failed: %s' % r.stderr.strip()):
        return
    listed = sorted(os.listdir(out))
    res.check(listed == sorted(set(files.values()) | {name + '.index.json'}), where,
              'the folder holds %r; expected the %d shards and the index' % (listed, n))
    with open(index_path) as f:
        index = json.load(f)
    res.check(index.get('metadata', {}).get('total_size') == total, where,
              'total_size %r, torch sums numel*element_size to %d' % (index.get('metadata'), total))
    wm = index.get('weight_map', {})
    res.check(set(wm) == set(sd), where, 'weight_map names %r, the source %r' % (sorted(wm), sorted(sd)))
    res.check(wm == files, where, 'packing: ckpt placed %r, the rule gives %r' % (wm, files))
    res.check(len(set(wm.values())) == n, where, '%d shards, expected %d' % (len(set(wm.values())), n))
    seen = {}
    for shard in sorted(set(wm.values())):
        try:
            tensors = load(os.path.join(out, shard))
        except Exception as e:  # noqa: BLE001 -- any failure to load is the finding
            res.check(False, where, '%s does not load: %s' % (shard, e))
            continue
        res.check(sorted(tensors) == sorted(k for k, v in wm.items() if v == shard), where,
                  '%s holds %r, the index names %r' % (shard, sorted(tensors),
                                                      sorted(k for k, v in wm.items() if v == shard)))
        seen.update(tensors)
    for k, t in sd.items():
        res.check(k in seen and same_tensor(seen[k], t.contiguous()), where, '%s differs from the source' % k)
    # The index opens in ckpt as the source does: the same tensors, in the same order.
    res.check(info_tensors(ckpt, index_path) == info_tensors(ckpt, src), where,
              'info --json of the index %r, of the source %r' % (info_tensors(ckpt, index_path),
                                                                 info_tensors(ckpt, src)))
    # And converted back to one file, torch reads the source's values.
    back = os.path.join(work, target + '_back.pth')
    r = run(ckpt, 'convert', index_path, '--to', 'state-dict', '-o', back)
    if res.check(r.returncode == 0, where, 'converting the index back failed: %s' % r.stderr.strip()):
        again = torch.load(back, weights_only=True)
        res.check(list(again) == list(sd) and all(same_tensor(again[k], sd[k].contiguous()) for k in sd), where,
                  'the index converted back differs from the source')
    # Run again without --force: refused, every file as it was.
    before = {f: os.stat(os.path.join(out, f)).st_mtime_ns for f in os.listdir(out)}
    r = run(ckpt, 'convert', src, '--to', target, '--max-shard-size', str(LIMIT), '-o', os.path.join(out, name))
    after = {f: os.stat(os.path.join(out, f)).st_mtime_ns for f in os.listdir(out)}
    res.check(r.returncode == 1 and 'already exists' in r.stderr and before == after, where,
              'existing shards without --force: exit %d, %s, files changed: %s' % (r.returncode, r.stderr.strip(),
                                                                                  before != after))


def load_bin(path):
    return dict(torch.load(path, weights_only=True))


def load_safetensors(path):
    tensors, meta, _ = read_safetensors(path)
    for k, v in meta.items():
        if k.startswith('alias:'):
            tensors[k[len('alias:'):]] = tensors[v]
    return dict(tensors)


def interrupted(res, ckpt, work):
    """Ctrl-C once the first shard is written and verified (its temporary file done, the second's
    begun): no shard, finished or not, and no index is left."""
    src = os.path.join(work, 'four.pth')
    torch.save({'w%d' % i: torch.randn(4096, 4096) for i in range(4)}, src)  # 4 x 64 MiB
    out = os.path.join(work, 'interrupted')
    os.mkdir(out)
    cmd = [ckpt, 'convert', src, '--to', 'safetensors', '--max-shard-size', '70MB',
           '-o', os.path.join(out, 'model.safetensors')]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=default_signals)
    seen = False
    deadline = time.time() + 240
    while time.time() < deadline and p.poll() is None:
        if any(n.startswith('.model-00002-of-00004.safetensors.') for n in os.listdir(out)):
            seen = True
            break
        time.sleep(0.001)
    if not res.check(seen, 'shards interrupted', 'the second shard was never begun (exit %s)' % p.poll()):
        p.kill()
        p.wait()
        return
    p.send_signal(signal.SIGINT)
    rc = p.wait(timeout=120)
    said = p.stderr.read().decode(errors='replace')
    p.stderr.close()
    res.check(rc == -signal.SIGINT and os.listdir(out) == [], 'shards interrupted',
              'exit %s, left %r: %s' % (rc, os.listdir(out), said[-300:]))
    os.remove(src)


def thousand_shards(res, ckpt, work, faultshim):
    """The most shards a conversion writes (1000, one 4-byte tensor each) with their index, then again
    with --force over that set (a backup link per previous file, 1001 files committed as one set):
    torch reads every tensor of the new set. Under the fault shim (when given), a rename that fails
    midway and a SIGTERM at the index's rename, the last, leave the previous set byte for byte."""
    out = os.path.join(work, 'thousand')
    os.mkdir(out)
    target = os.path.join(out, 'model.safetensors')

    def source(scale):
        sd = {'t%04d' % i: torch.full((1,), float(i) * scale) for i in range(1000)}
        path = os.path.join(work, 'thousand_%d.pth' % scale)
        torch.save(sd, path)
        return sd, path

    def convert(src, env=None):
        p = subprocess.run([ckpt, 'convert', src, '--to', 'safetensors', '--max-shard-size', '4', '-o', target,
                            '--force'], capture_output=True, text=True, timeout=300, env=env,
                           preexec_fn=default_signals)
        return p

    def loaded(sd):
        try:
            wm = json.load(open(target + '.index.json'))['weight_map']
            got = {}
            for f in sorted(set(wm.values())):
                got.update(load_safetensors(os.path.join(out, f)))
        except (OSError, ValueError, KeyError, AssertionError) as e:
            return 'unreadable: %r' % e
        return len(set(wm.values())) == 1000 and sorted(got) == sorted(sd) and \
            all(torch.equal(got[k], v) for k, v in sd.items())

    first, src1 = source(1)
    r = convert(src1)
    res.check(r.returncode == 0 and len(os.listdir(out)) == 1001 and loaded(first) is True, 'shards 1000',
              'exit %d, %d files, %r: %s' % (r.returncode, len(os.listdir(out)), loaded(first), r.stderr[-300:]))
    second, src2 = source(2)
    if faultshim:
        before = folder_bytes(out)
        for spec, rc in (('rename:EACCES:after=500:once', 1), ('rename:SIGTERM:after=1000', -signal.SIGTERM)):
            r = convert(src2, under_fault(faultshim, spec))
            after = folder_bytes(out)
            res.check(r.returncode == rc and after == before, 'shards 1000 --force, ' + spec,
                      'exit %d, %d files (%d before), changed: %r: %s' % (
                          r.returncode, len(after), len(before),
                          sorted(f for f in set(after) | set(before) if after.get(f) != before.get(f))[:5],
                          r.stderr[-300:]))
    r = convert(src2)
    res.check(r.returncode == 0 and len(os.listdir(out)) == 1001 and loaded(second) is True, 'shards 1000 --force',
              'exit %d, %d files, %r: %s' % (r.returncode, len(os.listdir(out)), loaded(second), r.stderr[-300:]))
    os.remove(src1)
    os.remove(src2)


def replaced_set(res, ckpt, work, faultshim):
    """A previous sharded output under the name written: without --force it is refused and kept as it
    was; with --force the new output takes its place and the previous set's files the new one does not
    name are removed (what save_pretrained does over an older save), so no index names a shard that is
    gone and no orphan shard stays. Files of other names, and a sharded input merged beside itself into
    one file, are kept."""
    out = os.path.join(work, 'replaced')
    os.mkdir(out)
    target = os.path.join(out, 'model.safetensors')

    def source(n, name):
        sd = {'t%d' % i: torch.full((100,), float(i + 10 * n)) for i in range(n)}  # 400 bytes each
        path = os.path.join(work, name)
        torch.save(sd, path)
        return sd, path

    def convert(src, *args):
        r = run(ckpt, 'convert', src, '--to', 'safetensors', '-o', target, '--json', *args)
        try:
            said = json.loads(r.stdout)
        except ValueError:
            said = {}
        return r, said

    def loaded():
        index = target + '.index.json'
        got = {}
        if os.path.exists(index):
            for f in sorted(set(json.load(open(index))['weight_map'].values())):
                got.update(load_safetensors(os.path.join(out, f)))
        else:
            got.update(load_safetensors(target))
        return got

    def shard(k, n):
        return 'model-%05d-of-%05d.safetensors' % (k, n)

    three, src3 = source(3, 'three.pth')
    two, src2 = source(2, 'two.pth')
    r, _ = convert(src3, '--max-shard-size', '500')
    res.check(r.returncode == 0 and sorted(os.listdir(out)) == [shard(k, 3) for k in (1, 2, 3)] +
              ['model.safetensors.index.json'], 'shards replaced: the first set',
              'exit %d, %r: %s' % (r.returncode, sorted(os.listdir(out)), r.stderr.strip()))
    # Files beside it that are no shards of this name: never touched.
    others = {'model-00001-of-00003.safetensors.txt': b'notes', 'other-00001-of-00002.safetensors': b'x',
              'model-1-of-3.safetensors': b'y'}
    for name, data in others.items():
        with open(os.path.join(out, name), 'wb') as fh:
            fh.write(data)
    before = folder_bytes(out)
    for args in (['--max-shard-size', '500'], []):
        r, _ = convert(src2, *args)
        res.check(r.returncode == 1 and folder_bytes(out) == before and
                  ('already exists' in r.stderr if args else
                   '%s: the index of a previous sharded output' % (target + '.index.json') in r.stderr and
                   '--force' in r.stderr), 'shards replaced without --force ' + ' '.join(args),
                  'exit %d, files changed: %r: %s' % (r.returncode, folder_bytes(out) != before, r.stderr.strip()))
    # A rename that fails while the new set takes its names: the previous set is all there, as it was.
    if faultshim:
        p = subprocess.run([ckpt, 'convert', src2, '--to', 'safetensors', '-o', target, '--max-shard-size', '500',
                            '--force'], capture_output=True, text=True, timeout=300,
                           env=under_fault(faultshim, 'rename:EIO:after=1:once'))
        res.check(p.returncode == 1 and 'Input/output error' in p.stderr and folder_bytes(out) == before,
                  'shards replaced, a rename fails', 'exit %d, files changed: %r: %s' % (
                      p.returncode, folder_bytes(out) != before, p.stderr.strip()))
        # Without --force, a name of the new set taken by another program's file while the set is
        # written: refused, never replaced, and nothing of ours is left.
        fresh = os.path.join(work, 'replaced_fresh')
        os.mkdir(fresh)
        p = subprocess.run([ckpt, 'convert', src2, '--to', 'safetensors', '--max-shard-size', '500',
                            '-o', os.path.join(fresh, 'model.safetensors')], capture_output=True, text=True,
                           timeout=300, env=under_fault(faultshim, 'rename:taken:after=1:once'))
        try:
            held = open(os.path.join(fresh, shard(2, 2)), 'rb').read()
        except OSError:
            held = None
        res.check(p.returncode == 1 and 'appeared while this one was written; it is kept' in p.stderr and
                  os.listdir(fresh) == [shard(2, 2)] and held == b'taken\n', 'shards: a name taken meanwhile',
                  'exit %d, %r, %r: %s' % (p.returncode, os.listdir(fresh), held, p.stderr.strip()))
    # Two shards over three: the third (and the first two's old names) go, the index names the new two.
    r, said = convert(src2, '--max-shard-size', '500', '--force')
    gone = [os.path.join(out, shard(k, 3)) for k in (1, 2, 3)]
    listed = sorted(os.listdir(out))
    res.check(r.returncode == 0 and listed == sorted([shard(1, 2), shard(2, 2), 'model.safetensors.index.json'] +
                                                     list(others)),
              'shards replaced 2 over 3', 'exit %d, %r: %s' % (r.returncode, listed, r.stderr.strip()))
    res.check(said.get('superseded') == gone and said.get('result', {}).get('removed') == gone and
              said.get('result', {}).get('not_removed') == [], 'shards replaced 2 over 3 --json',
              'superseded %r, result %r' % (said.get('superseded'), said.get('result')))
    got = loaded()
    res.check(sorted(got) == sorted(two) and all(torch.equal(got[k], v) for k, v in two.items()),
              'shards replaced 2 over 3, read back', 'torch reads %r' % sorted(got))
    # One file over the set: its shards and its index go.
    r, said = convert(src3, '--force')
    gone = [os.path.join(out, f) for f in ('model.safetensors.index.json', shard(1, 2), shard(2, 2))]
    listed = sorted(os.listdir(out))
    res.check(r.returncode == 0 and listed == sorted(['model.safetensors'] + list(others)) and
              said.get('result', {}).get('removed') == gone, 'shards replaced by one file',
              'exit %d, %r, removed %r: %s' % (r.returncode, listed, said.get('result', {}).get('removed'),
                                              r.stderr.strip()))
    got = loaded()
    res.check(sorted(got) == sorted(three) and all(torch.equal(got[k], v) for k, v in three.items()),
              'shards replaced by one file, read back', 'torch reads %r' % sorted(got))
    # Shards over that one file: it goes too (loaders would take it before the index), refused
    # without --force.
    before = folder_bytes(out)
    r, _ = convert(src2, '--max-shard-size', '500')
    res.check(r.returncode == 1 and folder_bytes(out) == before and
              '%s: the previous output under this name, which the shards replace' % target in r.stderr,
              'shards over one file without --force', 'exit %d: %s' % (r.returncode, r.stderr.strip()))
    r, said = convert(src2, '--max-shard-size', '500', '--force')
    listed = sorted(os.listdir(out))
    res.check(r.returncode == 0 and listed == sorted([shard(1, 2), shard(2, 2), 'model.safetensors.index.json'] +
                                                     list(others)) and
              said.get('result', {}).get('removed') == [target], 'shards over one file',
              'exit %d, %r, %r: %s' % (r.returncode, listed, said.get('result'), r.stderr.strip()))
    got = loaded()
    res.check(sorted(got) == sorted(two) and all(torch.equal(got[k], v) for k, v in two.items()),
              'shards over one file, read back', 'torch reads %r' % sorted(got))
    for name, data in others.items():
        with open(os.path.join(out, name), 'rb') as fh:
            res.check(fh.read() == data, 'shards replaced: %s kept' % name, 'changed')
    # One shard of that set converted into one file under the set's name: the set holds an input, so
    # none of it is touched (with --force too), and nothing is listed as replaced.
    before = {f: v for f, v in folder_bytes(out).items() if f not in others}
    r = run(ckpt, 'convert', os.path.join(out, shard(1, 2)), '--to', 'safetensors', '-o', target, '--force', '--json')
    try:
        said = json.loads(r.stdout)
    except ValueError:
        said = {}
    after = folder_bytes(out)
    res.check(r.returncode == 0 and all(after.get(f) == v for f, v in before.items()) and 'model.safetensors' in after
              and 'superseded' not in said, 'shards: a lone shard input keeps its set',
              'exit %d, %r, %r: %s' % (r.returncode, sorted(after), said.get('superseded'), r.stderr.strip()))
    # A sharded input merged into one file beside itself: its files are inputs, kept, and no --force
    # is asked for them.
    merge = os.path.join(work, 'merge')
    os.mkdir(merge)
    r = run(ckpt, 'convert', src3, '--to', 'safetensors', '--max-shard-size', '500',
            '-o', os.path.join(merge, 'model.safetensors'))
    set_files = sorted(os.listdir(merge))
    r = run(ckpt, 'convert', os.path.join(merge, 'model.safetensors.index.json'), '--to', 'safetensors',
            '-o', os.path.join(merge, 'model.safetensors'), '--json')
    try:
        said = json.loads(r.stdout)
    except ValueError:
        said = {}
    res.check(r.returncode == 0 and sorted(os.listdir(merge)) == sorted(set_files + ['model.safetensors']) and
              'superseded' not in said, 'shards merged beside the input',
              'exit %d, %r, %r: %s' % (r.returncode, sorted(os.listdir(merge)), said.get('superseded'),
                                      r.stderr.strip()))
    os.remove(src2)
    os.remove(src3)


def killed_leftovers(res, ckpt, work, faultshim):
    """A write killed (SIGKILL: nothing of ours runs) leaves hidden files beside the output: the
    temporary file of one file, the backups of a replaced set. The next conversion to that output
    names each with the bytes they hold, and leaves them (another writer may own them)."""
    out = os.path.join(work, 'killed')
    os.mkdir(out)
    target = os.path.join(out, 'model.safetensors')
    src = os.path.join(work, 'killed.pth')
    torch.save({'t%d' % i: torch.full((100,), float(i)) for i in range(3)}, src)
    def convert(fault, *args):
        return subprocess.run([ckpt, 'convert', src, '--to', 'safetensors', '-o', target, '--force', *args],
                              capture_output=True, text=True, timeout=300,
                              env=under_fault(faultshim, fault) if fault else None)

    def hidden():
        return sorted(f for f in os.listdir(out) if f.startswith('.'))

    for what, fault, args in (('one file killed before its rename', 'rename:kill', []),
                              ('a replaced set killed after its renames', 'unlink:kill', ['--max-shard-size', '500'])):
        first = convert(None, *args)  # what the killed run replaces
        r = convert(fault, *args)
        left = hidden()
        if not res.check(r.returncode == -signal.SIGKILL and left, 'killed leftovers: ' + what,
                         'exit %d, hidden files %r: %s' % (r.returncode, left, r.stderr.strip() or first.stderr)):
            continue
        sizes = sum(os.path.getsize(os.path.join(out, f)) for f in left)
        r = convert(None, *args)
        said = [line for line in r.stdout.splitlines() if 'hidden file' in line]
        res.check(r.returncode == 0 and len(said) == 1 and all(os.path.join(out, f) in said[0] for f in left) and
                  ('%d bytes' % sizes) in said[0] and hidden() == left, 'killed leftovers named: ' + what,
                  'exit %d, hidden %r, said %r: %s' % (r.returncode, hidden(), said, r.stderr.strip()))
        for f in left:
            os.remove(os.path.join(out, f))
    os.remove(src)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    ap.add_argument('--fixtures', required=False)
    ap.add_argument('--faultshim', required=False, help='the fault shim (tests/format/faultshim.c), to fail a rename')
    a = ap.parse_args()
    res = Results()
    sd = source_state_dict()
    with tempfile.TemporaryDirectory() as work:
        src = os.path.join(work, 'source.pth')
        torch.save(sd, src)
        check_target(res, a.ckpt, src, sd, work, 'safetensors', 'model.safetensors', load_safetensors)
        check_target(res, a.ckpt, src, sd, work, 'state-dict', 'pytorch_model.bin', load_bin)

        # A torch shard keeps tied tensors one storage, as torch.save wrote them.
        try:
            loaded = torch.load(os.path.join(work, 'state-dict', expected_packing(
                sd, LIMIT, 'pytorch_model{suffix}.bin')[1]['c.tied']), weights_only=True)
            shared = loaded['c.tied'].data_ptr() == loaded['c.weight'].data_ptr()
        except Exception as e:  # noqa: BLE001 -- reported as the failure it is
            loaded, shared = e, False
        res.check(shared, 'shards tied', 'c.tied and c.weight do not share their storage: %r' % (loaded,)
                  if not shared else '')

        # Everything within one shard: the one file, as transformers writes it, and no index.
        one = os.path.join(work, 'one')
        os.mkdir(one)
        r = run(a.ckpt, 'convert', src, '--to', 'safetensors', '--max-shard-size', '1GB',
                '-o', os.path.join(one, 'model.safetensors'))
        res.check(r.returncode == 0 and os.listdir(one) == ['model.safetensors'], 'shards one',
                  'exit %d, folder %r: %s' % (r.returncode, os.listdir(one), r.stderr.strip()))

        # A shard that would be the input is refused before anything is written.
        clash = os.path.join(work, 'clash')
        os.mkdir(clash)
        n = expected_packing(sd, LIMIT, '{suffix}')[0]
        clash_src = os.path.join(clash, 'pytorch_model-00001-of-%05d.bin' % n)
        torch.save(sd, clash_src)
        r = run(a.ckpt, 'convert', clash_src, '--to', 'state-dict', '--max-shard-size', str(LIMIT),
                '-o', os.path.join(clash, 'pytorch_model.bin'))
        res.check(r.returncode == 1 and 'input' in r.stderr and os.listdir(clash) == [os.path.basename(clash_src)],
                  'shards input', 'exit %d, folder %r: %s' % (r.returncode, os.listdir(clash), r.stderr.strip()))
        res.check(torch.equal(torch.load(clash_src, weights_only=True)['a.weight'], sd['a.weight']), 'shards input',
                  'the input changed')

        # Sizes as transformers reads max_shard_size: 1KB is 1000 bytes (the packing above), 1KiB 1024.
        for size, limit in (('1KB', 1000), ('1KiB', 1024)):
            d = os.path.join(work, 'size_' + size)
            os.mkdir(d)
            r = run(a.ckpt, 'convert', src, '--to', 'safetensors', '--max-shard-size', size,
                    '-o', os.path.join(d, 'model.safetensors'), '--json')
            try:
                got = json.load(open(os.path.join(d, 'model.safetensors.index.json')))['weight_map']
            except (OSError, ValueError, KeyError):
                got = None
            res.check(got == expected_packing(sd, limit, 'model{suffix}.safetensors')[1], 'shards size ' + size,
                      'packing %r: %s' % (got, r.stderr.strip()))
            try:
                said = json.loads(r.stdout)
            except ValueError:
                said = {}
            res.check(said.get('output') == os.path.join(d, 'model.safetensors.index.json') and
                      said.get('shards', {}).get('total_size') == expected_packing(sd, limit, '{suffix}')[2],
                      'shards size %s --json' % size, 'output %r, shards %r' % (said.get('output'), said.get('shards')))
        for bad in ('5Gb', '0', 'GB', '1.5GB', '99999999999999999999'):
            r = run(a.ckpt, 'convert', src, '--to', 'safetensors', '--max-shard-size', bad,
                    '-o', os.path.join(work, 'bad.safetensors'))
            res.check(r.returncode == 1 and '--max-shard-size' in r.stderr and
                      not os.path.exists(os.path.join(work, 'bad.safetensors')), 'shards bad size ' + bad,
                      'exit %d: %s' % (r.returncode, r.stderr.strip()))
        # A quantized model's packed (weight, bias) tuple and its dtype are no tensors a weight_map
        # places: refused, each named with its type, with the ways out; the --drop it names shards.
        torch.manual_seed(3)
        q = torch.ao.quantization.quantize_dynamic(
            torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.ReLU(), torch.nn.Linear(6, 2)).eval(),
            {torch.nn.Linear}, dtype=torch.qint8)
        qsd = {'module.' + k: v for k, v in q.state_dict().items()}
        qsrc = os.path.join(work, 'quantized.pth')
        torch.save(qsd, qsrc)
        qout = os.path.join(work, 'quantized')
        os.mkdir(qout)
        for edit in ([], ['--strip-prefix', 'module.']):
            r = run(a.ckpt, 'convert', qsrc, '--to', 'state-dict', '--max-shard-size', '10', *edit,
                    '-o', os.path.join(qout, 'pytorch_model.bin'))
            shown = '' if edit else 'module.'
            res.check(r.returncode == 1 and os.listdir(qout) == [] and
                      "'%s0._packed_params._packed_params' (a tuple (quantized qint8 tensor, float32 tensor)" % shown
                      in r.stderr and "'%s0._packed_params.dtype' (a dtype, torch.qint8)" % shown in r.stderr and
                      'without --max-shard-size' in r.stderr and "--drop 'module.0._packed_params.*'" in r.stderr,
                      'shards quantized refused %s' % ' '.join(edit), 'exit %d: %s' % (r.returncode, r.stderr.strip()))
        patterns = re.findall(r"--drop '([^']*)'", r.stderr)
        r = run(a.ckpt, 'convert', qsrc, '--to', 'state-dict', '--max-shard-size', '10',
                '-o', os.path.join(qout, 'pytorch_model.bin'), *[x for p in patterns for x in ('--drop', p)])
        got = {}
        try:
            index = json.load(open(os.path.join(qout, 'pytorch_model.bin.index.json')))['weight_map']
            for f in sorted(set(index.values())):
                got.update(load_bin(os.path.join(qout, f)))
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            got = {'error': repr(e)}
        expect = {k: v for k, v in qsd.items() if not any(fnmatch.fnmatchcase(k, p) for p in patterns)}
        res.check(r.returncode == 0 and patterns and sorted(got) == sorted(expect) and
                  all(torch.equal(got[k], v) for k, v in expect.items()), 'shards quantized with the --drop it names',
                  'exit %d, %r: %s' % (r.returncode, sorted(got), r.stderr.strip()))
        interrupted(res, a.ckpt, work)
        thousand_shards(res, a.ckpt, work, a.faultshim)
        replaced_set(res, a.ckpt, work, a.faultshim)
        if a.faultshim:
            killed_leftovers(res, a.ckpt, work, a.faultshim)
        r = run(a.ckpt, 'convert', src, '--to', 'checkpoint', '--max-shard-size', '1KB',
                '-o', os.path.join(work, 'ck.pth'))
        res.check(r.returncode == 1 and not os.path.exists(os.path.join(work, 'ck.pth')), 'shards target',
                  'exit %d: %s' % (r.returncode, r.stderr.strip()))
    return res.finish()


if __name__ == '__main__':
    sys.exit(main())
