#!/usr/bin/env python3
"""`ckpt scan` on Python 3.11's enum pickles: getattr(EnumClass, 'MEMBER') only looks a value up, so a
training_args.bin or a DeepSpeed optimizer state that holds enums exits 0 and lists builtins.getattr as an
attribute lookup; getattr whose result is called, or that looks up in os, still exits 3. torch judges
what the files are: it loads the enum files it wrote (and refuses them with weights_only=True, as the
report says); the dangerous forms are hand-written and never unpickled."""
import argparse
import dataclasses
import enum
import json
import os
import pickletools
import subprocess
import sys
import tempfile
import zipfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results import Results  # noqa: E402


class IntervalStrategy(enum.Enum):
    NO = 'no'
    STEPS = 'steps'


class ZeroStageEnum(enum.IntEnum):
    disabled = 0
    gradients = 2


@dataclasses.dataclass
class TrainingArguments:
    output_dir: str = 'out'
    learning_rate: float = 5e-5
    evaluation_strategy: IntervalStrategy = IntervalStrategy.STEPS


def glob(module, name):
    return b'c' + module + b'\n' + name + b'\n'


def text(s):
    return b'\x8c' + bytes([len(s)]) + s


def lookup(module, cls, name):
    return glob(b'__builtin__', b'getattr') + glob(module, cls) + text(name) + b'\x86R'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    ap.add_argument('--fixtures', required=False)
    a = ap.parse_args()
    results = Results()
    check = results.check
    d = tempfile.mkdtemp(prefix='ckpt-getattr-')

    def scan(path, js=False):
        return subprocess.run([a.ckpt, 'scan', path] + (['--json'] if js else []), capture_output=True, text=True,
                              timeout=60)

    enum_files = {'training_args.bin': TrainingArguments(),
                  'zero_optim_states.pt': {'zero_stage': ZeroStageEnum.gradients, 'stages': [ZeroStageEnum.disabled],
                                           'by_strategy': {IntervalStrategy.NO: 1}}}
    for name, obj in enum_files.items():
        path = os.path.join(d, name)
        torch.save(obj, path)
        # What this test is about: this Python writes each enum member as a getattr call.
        with zipfile.ZipFile(path) as z:
            data = z.read(next(n for n in z.namelist() if n.endswith('data.pkl')))
        named = [arg for op, arg, _ in pickletools.genops(data) if op.name == 'GLOBAL']
        check('__builtin__ getattr' in named, name, 'Python %s wrote no getattr: %s' % (sys.version, named))
        # torch reads back the very members (a lookup), and its safe loader refuses the file.
        back = torch.load(path)
        check(back == obj, name, 'torch.load gives %r' % (back,))
        try:
            torch.load(path, weights_only=True)
            refused = False
        except Exception:
            refused = True
        check(refused, name, 'torch.load(weights_only=True) accepted it')
        r = scan(path)
        check(r.returncode == 0, name, 'exit %d, expected 0: %s%s' % (r.returncode, r.stdout, r.stderr))
        check('attribute lookup' in r.stdout and 'enum' in r.stdout, name, 'text: ' + r.stdout)
        summary = r.stdout.splitlines()[0] if r.stdout else ''
        check('no dangerous globals' in summary and 'getattr only looks up attributes' in summary, name,
              'summary: ' + summary)
        r = scan(path, js=True)
        j = json.loads(r.stdout)
        g = [x for x in j['globals'] if x['name'] == 'builtins.getattr']
        check(len(g) == 1 and g[0]['class'] == 'attribute lookup' and not g[0]['weights_only'], name, r.stdout)
        check(j['dangerous'] is False and j['weights_only_loadable'] is False, name, r.stdout)

    root = b'\x80\x02}' + text(b'k')
    dangerous = {
        # getattr(os, 'system')('x'), os reached as torch.os
        'os_system.pkl': root + lookup(b'torch', b'os', b'system') + text(b'x') + b'\x85Rs.',
        # a plain enum-like lookup whose result is called, then dropped
        'called.pkl': b'\x80\x02' + lookup(b'mylib', b'Tools', b'run') + text(b'x') + b'\x85R0' + b'}' + text(b'k') +
                      lookup(b'mylib', b'Color', b'RED') + b's.',
        'dunder.pkl': root + lookup(b'mylib', b'Color', b'__globals__') + b's.',
    }
    for name, data in dangerous.items():
        pickletools.dis(data, out=open(os.devnull, 'w'))  # well-formed opcodes (disassembled, never loaded)
        path = os.path.join(d, name)
        with open(path, 'wb') as f:
            f.write(data)
        r = scan(path)
        check(r.returncode == 3, name, 'exit %d, expected 3: %s%s' % (r.returncode, r.stdout, r.stderr))
        check('DANGEROUS' in r.stdout and 'more than an enum member' in r.stdout, name, r.stdout)
    # A batch: one dangerous file outranks the clean enum file.
    r = subprocess.run([a.ckpt, 'scan', os.path.join(d, 'training_args.bin'), os.path.join(d, 'called.pkl')],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 3, 'batch', 'exit %d, expected 3' % r.returncode)
    return results.finish()


if __name__ == '__main__':
    sys.exit(main())
