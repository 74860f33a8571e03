#!/usr/bin/env python3
"""`ckpt scan` judges a global of Python's standard library, NumPy or PyTorch by an allow-list: one this
tool does not know to be harmless is dangerous (uuid._get_command_stdout runs a command, numpy.memmap
and logging.FileHandler write files, torch.nn.modules.activation.F is a module a BUILD can change), while
PyTorch's classes (a full pickled model's layers, optimizers, distributions) and the containers of a
training checkpoint stay not dangerous. Python 2 names are mapped as Python 3's unpickler maps them,
for protocol < 3 only. Reasons are printed with control characters escaped.

The hostile pickles are written here byte by byte and never unpickled; torch 1.13's
torch.load(weights_only=True), which calls nothing it does not allow, judges that each is refused. The
legitimate files are written by torch.save from objects made here, and loaded back by torch."""
import _compat_pickle
import argparse
import collections
import datetime
import decimal
import fractions
import json
import os
import pickle
import sys
import tempfile
import warnings

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results import Results  # noqa: E402
from scanrun import refused_by_torch, scanner  # noqa: E402

STDLIB_REASON = 'is a function of the standard library that this tool does not know to be safe: Python would call it'


def text(s):
    b = s.encode()
    return b'X' + len(b).to_bytes(4, 'little') + b


def stack_global(module, name):
    return text(module) + text(name) + b'\x93'


def call(module, name, *args, proto=4):
    """{'k': module.name(*args)}: args are str."""
    head = b'\x80' + bytes([proto])
    g = stack_global(module, name) if proto >= 4 else b'c' + module.encode() + b'\n' + name.encode() + b'\n'
    return head + b'}' + text('k') + g + b'(' + b''.join(text(a) for a in args) + b'tRs.'


# Each runs a command, loads code, or writes or reads a file or the network when called (the security
# review's findings); none is in the old deny-list's modules.
DANGEROUS_CALLS = [
    ('uuid', '_get_command_stdout', 'sh', '-c', 'id'),
    ('_xxsubinterpreters', 'run_string', 'x'),
    ('_testcapi', 'run_in_subinterp', 'import os'),
    ('dataclasses', '_create_fn', 'f', 'x'),
    ('typing', 'get_type_hints', 'x'),
    ('torch._utils', '_import_dotted_name', 'os.system'),
    ('_frozen_importlib_external', '_write_atomic', '/tmp/x.py', 'x'),
    ('_frozen_importlib', '_load', 'x'),
    ('_imp', 'create_dynamic', 'x'),
    ('torch.utils.model_zoo', 'load_url', 'http://example.invalid/x.pth'),
    ('torch', 'save', 'x', '/tmp/x'),
    ('torch', 'from_file', '/etc/passwd'),
    ('numpy', 'save', '/tmp/x', 'x'),
    ('numpy', 'savetxt', '/tmp/x', 'x'),
    ('numpy', 'memmap', '/tmp/x', 'uint8', 'w+'),
    ('numpy', 'genfromtxt', 'http://example.invalid/x'),
    ('numpy', 'fromfile', '/etc/passwd'),
    ('logging', 'FileHandler', '/tmp/x', 'w'),
    ('logging.handlers', 'SysLogHandler', 'x'),
    ('_pyio', 'open', '/tmp/x', 'w'),
    ('wave', 'open', '/tmp/x', 'wb'),
    ('_sqlite3', 'connect', '/tmp/x'),
    ('_dbm', 'open', '/tmp/x', 'c'),
    ('zipapp', 'create_archive', '/tmp', '/tmp/x'),
    ('torch.multiprocessing.reductions', 'rebuild_storage_filename', 'x', 'y'),
    ('winreg', 'SetValue', 'x'),
    ('_winapi', 'CreateProcess', 'calc.exe'),
    ('atexit', 'register', 'x'),
    ('_signal', 'alarm', 'x'),
    ('faulthandler', '_sigsegv'),
    # torch.nn.modules re-exports modules and functions: not layers.
    ('torch.nn.modules.activation', 'F'),
    ('torch.nn.modules._functions', 'dist'),
    ('torch.nn.modules.module', 'functools'),
    ('torch.nn.modules.container', 'operator'),
    ('torch.nn.modules.module', '_global_forward_hooks'),
    ('torch.nn.modules.module', 'register_module_forward_hook', 'x'),
    ('torch.nn.modules.loss', '_Reduction'),
    ('torch.nn.modules.rnn', '_VF'),
    # Classes of PyTorch's modules that act when made.
    ('torch.distributed', 'TCPStore', 'example.invalid', '1'),
    ('torch.utils.tensorboard', 'SummaryWriter', '/tmp/x'),
    ('torch.utils.data.communication.eventloop', 'SpawnProcessForDataPipeline', 'x'),
    ('torch.library', 'Library', 'aten', 'IMPL'),
]

# Python 2 names a protocol 0-2 pickle may use; Python 3 maps them onto modules that serve, open or
# connect.
PY2_CALLS = [
    ('BaseHTTPServer', 'HTTPServer'), ('SimpleHTTPServer', 'test'), ('xmlrpclib', 'ServerProxy'),
    ('dumbdbm', 'open'), ('anydbm', 'open'), ('_winreg', 'SetValue'), ('_socket', 'fromfd'),
    ('_multiprocessing', 'Connection'), ('whichdb', 'whichdb'), ('urllib', 'urlretrieve'),
]


def py3_name(module, name):
    """What pickle.Unpickler.find_class looks up for a protocol < 3 pickle (its fix_imports rule)."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = torch.nn.TransformerEncoderLayer(8, 2)  # keeps torch.nn.functional.relu
        self.act = torch.nn.GELU()
        self.lin = torch.nn.utils.weight_norm(torch.nn.Linear(8, 8))
        self.lstm = torch.nn.LSTM(8, 8)
        self.bn = torch.nn.BatchNorm1d(8)


def legitimate_objects():
    net = Net()
    opt = torch.optim.Adam(net.parameters())
    return {
        'full_model.pt': net,
        'training_state.pt': {
            'model': net, 'optimizer': opt, 'scheduler': torch.optim.lr_scheduler.StepLR(opt, 3),
            'dist': torch.distributions.Normal(torch.zeros(2), torch.ones(2)),
            'counts': collections.Counter('abca'), 'by_key': collections.defaultdict(list, a=[1]),
            'queue': collections.deque([1, 2]), 'when': datetime.timedelta(hours=1),
            'tz': datetime.timezone.utc, 'lr': decimal.Decimal('0.1'), 'frac': fractions.Fraction(1, 3),
            'np': np.arange(4, dtype=np.float32), 'np_type': np.float32, 'err': ValueError('x'),
            'dtype': torch.float16, 'span': slice(1, 5), 'r': range(3),
            'rng': np.random.RandomState(0), 'generator': np.random.default_rng(0),
            'best': torch.max(torch.ones(2, 2), 1),
        },
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    ap.add_argument('--fixtures', required=False)
    a = ap.parse_args()
    results = Results()
    check = results.check
    d = tempfile.mkdtemp(prefix='ckpt-stdlib-')

    scan, scan_json = scanner(a.ckpt)

    # 1 and 2: dangerous globals of the standard library, NumPy and PyTorch.
    for module, name, *args in DANGEROUS_CALLS:
        where = '%s.%s' % (module, name)
        path = os.path.join(d, where + '.pkl')
        with open(path, 'wb') as f:
            f.write(call(module, name, *args))
        why = refused_by_torch(path)
        check(why is not None, where, 'torch.load(weights_only=True) accepted it')
        rc, j = scan_json(path)
        g = [x for x in j['globals'] if x['name'] == where]
        check(rc == 3 and j['dangerous'] and len(g) == 1 and g[0]['class'] == 'dangerous', where,
              'exit %d: %s' % (rc, json.dumps(j)[:400]))
        if module.split('.')[0] not in ('torch', 'numpy'):
            r = scan(path)
            check(STDLIB_REASON.encode() in r.stdout, where, r.stdout.decode(errors='replace'))

    # 3: Python 2 names, mapped for protocol 2 as Python 3 maps them.
    for module, name in PY2_CALLS:
        where = 'py2 %s.%s' % (module, name)
        path = os.path.join(d, '%s.%s.pkl' % (module, name))
        with open(path, 'wb') as f:
            f.write(call(module, name, 'x', proto=2))
        check(refused_by_torch(path) is not None, where, 'torch.load(weights_only=True) accepted it')
        rc, j = scan_json(path)
        want = '%s.%s' % py3_name(module, name)
        g = [x for x in j['globals'] if x['name'] == want]
        check(rc == 3 and len(g) == 1 and g[0]['class'] == 'dangerous', where,
              'exit %d, expected %s dangerous: %s' % (rc, want, json.dumps(j)[:400]))
    # The mapping is Python's, for protocol < 3 only: a harmless name (a set) shows whether it applies.
    for proto, want in ((2, 'builtins.set'), (3, '__builtin__.set')):
        data = b'\x80' + bytes([proto]) + b'c__builtin__\nset\n.'
        try:
            found = pickle.loads(data)  # written here: a global that names the set type, nothing called
            python = '%s.%s' % (found.__module__, found.__qualname__)
        except ModuleNotFoundError:
            python = '__builtin__.set'
        check(python == want, 'python proto %d' % proto, python)
        path = os.path.join(d, 'set_proto%d.pkl' % proto)
        with open(path, 'wb') as f:
            f.write(data)
        _, j = scan_json(path)
        check([x['name'] for x in j['globals']] == [want], 'proto %d mapping' % proto, json.dumps(j))

    # 4: a reason that quotes a name is printed with its control characters escaped.
    forged = '_get\r\x1b[2K\x1b[1Aclean.pt: no dangerous globals'
    path = os.path.join(d, 'forged.pkl')
    with open(path, 'wb') as f:
        f.write(call('uuid', forged, 'x'))
    r = scan(path)
    check(r.returncode == 3, 'forged name', 'exit %d' % r.returncode)
    check(b'\x1b' not in r.stdout and b'\r' not in r.stdout, 'forged name', repr(r.stdout))

    # Legitimate files torch writes: nothing dangerous; PyTorch's layers stay understood.
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for name, obj in legitimate_objects().items():
            path = os.path.join(d, name)
            torch.save(obj, path)
            torch.load(path)  # written just above
            rc, j = scan_json(path)
            bad = [x['name'] for x in j['globals'] if x['class'] == 'dangerous']
            check(rc == 0 and not bad, name, 'exit %d, dangerous: %s' % (rc, bad))
            classes = {x['name']: x['class'] for x in j['globals']}
            if name == 'full_model.pt':
                check(classes.get('torch.nn.modules.linear.Linear') == 'understood', name, json.dumps(classes))
                check(classes.get('torch.nn.functional.relu') == 'unknown', name, json.dumps(classes))
    return results.finish()


if __name__ == '__main__':
    sys.exit(main())
