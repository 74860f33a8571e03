#!/usr/bin/env python3
"""`ckpt scan` reports what torch.load would allocate for sizes a file declares rather than holds: a
storage or tensor class called on a size (torch.ByteStorage(2**40): 1 TiB from a few bytes), a legacy
stream's storage declared past its record (torch allocates it before reading the record), a legacy
tensor that spans past its storage (torch grows the storage). These are anomalies, not dangerous
(nothing runs; exit 0), with the size in bytes in `security.allocations`.

torch 1.13 is the judge: each file is loaded with torch.load(weights_only=True) in a child process (one
for the whole test, importing torch once) whose address space is limited (RLIMIT_AS) below the size,
and the allocator's error gives the bytes torch tried to allocate, which must be the tool's figure. Files torch does not allocate for (the zip
format's storages are its records, which torch refuses to resize; a small storage call; a sound legacy
file) have no finding."""
import argparse
import collections
import io
import json
import os
import pickle
import re
import select
import struct
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results import Results  # noqa: E402
from scanrun import scanner  # noqa: E402

LIMIT = 6 << 30  # address space of the loading child: torch imports in it, every size here is larger


class Call:
    """Pickles as func(*args): a call a hostile file asks for (written here, never loaded here)."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


class Stor:
    """A legacy storage persistent id: ('storage', FloatStorage, key, 'cpu', numel, None)."""

    def __init__(self, numel, key='0'):
        self.numel, self.key = numel, key


class LegacyPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Stor):
            return 'storage', torch.FloatStorage, obj.key, 'cpu', obj.numel, None
        return None


def legacy_stream(obj, record_numel=None):
    """torch < 1.6's stream as torch.serialization._legacy_save lays it out: magic, protocol, sys_info,
    the pickle, the storage keys, then each storage's element count and bytes. `obj` may be a pickle's
    bytes already; no record when `record_numel` is None."""
    b = io.BytesIO()
    for x in (0x1950a86a20f9469cfc6c, 1001,
              dict(protocol_version=1001, little_endian=True, type_sizes=dict(short=2, int=4, long=4))):
        pickle.dump(x, b, protocol=2)
    if isinstance(obj, bytes):
        b.write(obj)
    else:
        LegacyPickler(b, protocol=2).dump(obj)
    pickle.dump([] if record_numel is None else ['0'], b, protocol=2)
    if record_numel is not None:
        b.write(struct.pack('<q', record_numel) + b'\0' * (4 * record_numel))
    return b.getvalue()


def pickled_int(n):
    if 0 <= n < 2 ** 31:
        return b'J' + struct.pack('<i', n)
    raw = n.to_bytes((n.bit_length() + 8) // 8, 'little', signed=True)
    return b'\x8a' + bytes([len(raw)]) + raw


def newobj(cls, *sizes, size_object=False):
    """{'k': cls.__new__(cls, *sizes)} as protocol 2 pickles it (GLOBAL, args, NEWOBJ): what a class's
    __reduce_ex__ gives, written by hand because Python's pickler checks the class of what it saves.
    With size_object, the one argument is torch.Size(sizes), itself made by NEWOBJ."""
    def global_(c):
        return b'c' + c.__module__.encode() + b'\n' + c.__name__.encode() + b'\n'
    args = b''.join(pickled_int(n) for n in sizes)
    if size_object:
        args = global_(torch.Size) + b'((' + args + b'tt\x81'
    return b'\x80\x02}X\x01\x00\x00\x00k' + global_(cls) + b'(' + args + b't\x81s.'


def tensor_on(stor, size):
    return Call(torch._utils._rebuild_tensor_v2, stor, 0, size, (1,) * len(size), False, collections.OrderedDict())


class Judge:
    """torch 1.13 in one child process whose address space is limited to LIMIT (RLIMIT_AS): it
    imports torch once and torch.loads each file it is sent, saying what torch.load raised. What a
    failed load took is freed with it, and every size judged here is past LIMIT on its own."""

    CODE = (
        'import json, resource, sys, traceback, torch\n'
        'resource.setrlimit(resource.RLIMIT_AS, (%d, %d))\n'
        'for line in sys.stdin:\n'
        '    path, weights_only = json.loads(line)\n'
        '    said = ""\n'
        '    try:\n'
        '        torch.load(path, weights_only=weights_only)\n'
        '    except BaseException as e:\n'
        '        said = "".join(traceback.format_exception_only(type(e), e))\n'
        '    print(json.dumps(said), flush=True)\n') % (LIMIT, LIMIT)

    def __init__(self):
        self.child = subprocess.Popen([sys.executable, '-c', self.CODE], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True)

    def load(self, path, weights_only=True):
        """What torch.load(path, weights_only=...) raised, as Python prints it; '' when it loaded."""
        self.child.stdin.write(json.dumps([path, weights_only]) + '\n')
        self.child.stdin.flush()
        ready, _, _ = select.select([self.child.stdout], [], [], 300)
        line = self.child.stdout.readline() if ready else ''
        if not line:
            self.child.kill()
            raise RuntimeError('torch.load of %s: the judging process %s' % (
                path, 'ended' if ready else 'did not answer in 300 s'))
        return json.loads(line)

    def allocation(self, path, weights_only=True):
        """The bytes torch 1.13's torch.load(weights_only=True) (or a full torch.load: only of files
        written here, that name nothing but storage and tensor classes) tries to allocate for the
        file and cannot under LIMIT, or None with what it said when it fails otherwise or loads it.
        Python's own MemoryError (bytes(n)) says no size: -1."""
        said = self.load(path, weights_only).strip()
        m = re.search(r"can't allocate memory: you tried to allocate (\d+) bytes", said)
        if not m and said.endswith('MemoryError'):
            return -1, ''
        return (int(m.group(1)), '') if m else (None, (said.splitlines() or ['loaded'])[-1][-300:])

    def close(self):
        self.child.stdin.close()
        self.child.wait(timeout=60)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    ap.add_argument('--fixtures', required=False)
    a = ap.parse_args()
    results = Results()
    check = results.check
    d = tempfile.mkdtemp(prefix='ckpt-alloc-')

    scan, _ = scanner(a.ckpt)
    judge = Judge()
    torch_allocation = judge.allocation

    def write(name, data):
        path = os.path.join(d, name)
        with open(path, 'wb') as f:
            f.write(data)
        return path

    # Calls of a storage or tensor class on a size, and legacy streams that declare or span past their record.
    big = {
        'ByteStorage_1TiB.pkl': pickle.dumps({'k': Call(torch.ByteStorage, 2 ** 40)}, protocol=2),
        'FloatStorage.pkl': pickle.dumps({'k': Call(torch.FloatStorage, 2 ** 31)}, protocol=2),
        'UntypedStorage.pkl': pickle.dumps({'k': Call(torch.storage.UntypedStorage, 2 ** 33)}, protocol=2),
        'TypedStorage.pkl': pickle.dumps({'k': Call(torch.storage.TypedStorage, 2 ** 31)}, protocol=2),
        'FloatTensor.pkl': pickle.dumps({'k': Call(torch.FloatTensor, 2 ** 16, 2 ** 15)}, protocol=2),
        'Tensor.pkl': pickle.dumps({'k': Call(torch.Tensor, 2 ** 16, 2 ** 16)}, protocol=2),
        'LongTensor.pkl': pickle.dumps([Call(torch.LongTensor, 2 ** 31)], protocol=2),
        'legacy_declared.pt': legacy_stream({'w': tensor_on(Stor(2 ** 31), (4,))}, 4),
        'legacy_spanned.pt': legacy_stream({'w': tensor_on(Stor(4), (2 ** 31,))}, 4),
    }
    for name, data in big.items():
        path = write(name, data)
        want, why = torch_allocation(path)
        if not check(want is not None and want > LIMIT, name, 'torch did not try to allocate: %s' % why):
            continue
        r = scan(path, '--json')
        j = json.loads(r.stdout)
        got = [x['bytes'] for x in j.get('allocations', [])]
        check(r.returncode == 0 and not j['dangerous'], name, 'exit %d (nothing runs: not dangerous)' % r.returncode)
        check(got == [want], name, 'allocations %s, torch tried %d bytes' % (got, want))
        check(any(str(want) in x for x in j['anomalies']), name, 'no anomaly gives %d bytes: %s' % (want, j['anomalies']))
        t = scan(path)
        check(t.returncode == 0 and str(want).encode() in t.stdout and b'would ' in t.stdout, name + ' text',
              t.stdout.decode(errors='replace'))
        if name == 'ByteStorage_1TiB.pkl':
            check(b'torch.ByteStorage(1099511627776) would allocate 1 TiB' in t.stdout, name + ' text',
                  t.stdout.decode(errors='replace'))

    # A storage the pickle makes itself (torch.ByteStorage(1), not a record) handed to a tensor that
    # spans past it: torch's set_ grows it to the span, in every container. A full torch.load of a
    # zip or legacy file stops at the call first (it reads torch.ByteStorage as a StorageType there).
    def on_made(storage, offset, size, stride):
        return Call(torch._utils._rebuild_tensor_v2, storage, offset, size, stride, False, collections.OrderedDict())

    made = Call(torch.ByteStorage, 1)
    zip_made = os.path.join(d, 'made_spanned.pt')
    torch.save({'w': on_made(made, 0, (2 ** 33,), (1,))}, zip_made)
    spans = {
        'made_spanned.pkl': (write('made_spanned.pkl', pickle.dumps({'w': on_made(made, 0, (2 ** 33,), (1,))},
                                                                     protocol=2)), 1, True),
        'made_spanned.pt': (zip_made, 1, False),
        'made_spanned_legacy.pt': (write('made_spanned_legacy.pt', legacy_stream(
            {'w': on_made(made, 2 ** 32, (2, 3), (2 ** 31, 1))})), 1, False),
        'made_typed_spanned.pkl': (write('made_typed_spanned.pkl', pickle.dumps(
            {'w': on_made(Call(torch.storage.TypedStorage, 1), 0, (2 ** 31,), (1,))}, protocol=2)), 4, True),
        # Two tensors on one storage: torch grows it for the first, then again for the larger.
        'made_shared.pkl': (write('made_shared.pkl', pickle.dumps(
            {'a': on_made(made, 0, (2 ** 30,), (1,)), 'w': on_made(made, 0, (2 ** 33,), (1,))}, protocol=2)), 1, True),
    }
    for name, (path, element, full) in spans.items():
        want, why = torch_allocation(path)
        if not check(want is not None and want > LIMIT, name, 'torch did not try to allocate: %s' % why):
            continue
        full_want, why = torch_allocation(path, weights_only=False)
        check((full_want == want) if full else (full_want is None and 'not callable' in why), name + ': a full torch.load',
              'tried %s bytes: %s' % (full_want, why))
        r = scan(path, '--json')
        j = json.loads(r.stdout)
        got = [x['bytes'] for x in j.get('allocations', [])]
        check(r.returncode == 0 and not j['dangerous'], name, 'exit %d (nothing runs: not dangerous)' % r.returncode)
        check(got == [want], name, 'allocations %s, torch tried %d bytes' % (got, want))
        said = ' '.join(x['what'] for x in j.get('allocations', []))
        check(("tensor 'w' spans %d elements" % (want // element)) in said and
              ('torch.load(weights_only=True) too' in said) == full, name, said)
        # info reads the file and says which tensor spans how far past what storage, never its values.
        r = subprocess.run([a.ckpt, 'info', path], capture_output=True, timeout=120)
        out = (r.stdout + r.stderr).decode(errors='replace')
        check(r.returncode == 0 and ("tensor 'w': spans %d elements of a storage of 1 element; its storage is not "
                                     "in the file" % (want // element)) in out and 'calling torch.' in out,
              name + ': info names the tensor, its span and the storage', 'exit %d: %s' % (r.returncode, out[-600:]))

    # Calls torch runs into an allocation that the class's name alone does not show: a tensor class on
    # a torch.Size, and NEWOBJ (cls.__new__(cls, n), run by a full torch.load, refused by weights_only)
    # of the classes whose __new__ allocates. The judge is torch.load itself (weights_only=False for
    # NEWOBJ: these files, written here, name nothing else).
    calls = {
        'Tensor_Size.pkl': (pickle.dumps({'k': Call(torch.Tensor, Call(torch.Size, (2 ** 16, 2 ** 16)))}, protocol=2), True),
        'IntTensor_Size.pkl': (pickle.dumps({'k': Call(torch.IntTensor, Call(torch.Size, (2 ** 15, 2 ** 16)))},
                                            protocol=2), True),
        'new_UntypedStorage.pkl': (newobj(torch.storage.UntypedStorage, 2 ** 33), False),
        'new_ByteStorage.pkl': (newobj(torch.ByteStorage, 2 ** 33), False),
        'new_Tensor.pkl': (newobj(torch.Tensor, 2 ** 16, 2 ** 16), False),
        'new_FloatTensor_Size.pkl': (newobj(torch.FloatTensor, 2 ** 16, 2 ** 16, size_object=True), False),
        'new_UntypedStorage_legacy.pt': (legacy_stream(newobj(torch.storage.UntypedStorage, 2 ** 33)), False),
        'new_bytes.pkl': (newobj(bytes, 2 ** 33), False),
    }
    for name, (data, weights_only) in calls.items():
        path = write(name, data)
        want, why = torch_allocation(path, weights_only)
        if name == 'new_bytes.pkl' and want == -1:
            want = 2 ** 33  # Python says no size: bytes(n) is n bytes
        if not check(want is not None and want > LIMIT, name, 'torch did not try to allocate: %s' % why):
            continue
        r = scan(path, '--json')
        j = json.loads(r.stdout)
        got = [x['bytes'] for x in j.get('allocations', [])]
        check(r.returncode == 0 and not j['dangerous'], name, 'exit %d (nothing runs: not dangerous)' % r.returncode)
        check(got == [want], name, 'allocations %s, torch tried %d bytes' % (got, want))
        check(any(str(want) in x for x in j['anomalies']), name, 'no anomaly gives %d bytes: %s' % (want, j['anomalies']))
        if not weights_only:
            check(torch_allocation(path)[0] is None, name + ': weights_only refuses NEWOBJ', 'it allocated')
            check(all('(NEWOBJ)' in x['what'] for x in j['allocations']), name, j['allocations'])

    # NEWOBJ that allocates nothing: TypedStorage.__new__ and bytearray.__new__ (their __init__ would),
    # and a legacy typed storage class in a legacy stream, which a full torch.load reads as a StorageType.
    for name, data in {'new_TypedStorage.pkl': newobj(torch.storage.TypedStorage, 2 ** 31),
                       'new_bytearray.pkl': newobj(bytearray, 2 ** 33),
                       'new_ByteStorage_legacy.pt': legacy_stream(newobj(torch.ByteStorage, 2 ** 33))}.items():
        path = write(name, data)
        want, why = torch_allocation(path, weights_only=False)
        check(want is None, name, 'torch tried to allocate %s bytes' % want)
        r = scan(path, '--json')
        j = json.loads(r.stdout)
        check(r.returncode == 0 and j.get('allocations') == [], name, 'exit %d, %s' % (r.returncode, j.get('allocations')))

    # Python's own bytearray(n): n zero bytes, which Python fails to allocate with a MemoryError
    # rather than torch's message. torch 1.13's weights_only refuses builtins.bytearray (later
    # versions take it), so the judge is a full torch.load of this file written here, which calls
    # nothing but bytearray.
    path = write('bytearray_1TiB.pkl', pickle.dumps({'k': Call(bytearray, 2 ** 40)}, protocol=3))
    said = judge.load(path, weights_only=False)
    if check('MemoryError' in said, 'bytearray_1TiB.pkl: torch.load tries to allocate it', said[-300:]):
        r = scan(path, '--json')
        j = json.loads(r.stdout)
        check(r.returncode == 0 and [x['bytes'] for x in j.get('allocations', [])] == [2 ** 40],
              'bytearray_1TiB.pkl: scan reports 2**40 bytes', 'exit %d, %s' % (r.returncode, j.get('allocations')))

    # No allocation past what the file holds: a small storage call, a sound legacy stream, and a zip
    # file whose tensor spans past its record (torch refuses to resize a record: no allocation).
    zip_path = os.path.join(d, 'zip_spanned.pt')
    torch.save({'w': Call(torch._utils._rebuild_tensor_v2, torch.zeros(4).storage(), 0, (2 ** 31,), (1,), False,
                          collections.OrderedDict())}, zip_path)
    small = {
        'small_storage.pkl': write('small_storage.pkl', pickle.dumps({'k': Call(torch.FloatStorage, 2)}, protocol=2)),
        'legacy_sound.pt': write('legacy_sound.pt', legacy_stream({'w': tensor_on(Stor(4), (4,))}, 4)),
        'zip_spanned.pt': zip_path,
    }
    for name, path in small.items():
        want, why = torch_allocation(path)
        check(want is None, name, 'torch tried to allocate %s bytes' % want)
        if name == 'zip_spanned.pt':
            check('not resizable' in why, name, 'torch: %s' % why)
        r = scan(path, '--json')
        j = json.loads(r.stdout)
        check(r.returncode == 0 and j.get('allocations') == [], name, 'exit %d, %s' % (r.returncode, j.get('allocations')))
    judge.close()
    return results.finish()


if __name__ == '__main__':
    sys.exit(main())
