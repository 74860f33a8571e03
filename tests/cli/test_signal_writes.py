#!/usr/bin/env python3
"""Ctrl-C, SIGTERM or SIGHUP while `ckpt export` and `ckpt predict --export-torchscript` write their
file leave its folder as it was (README: the temporary file removed, no partial output under the
final name), and the process ends as the signal does. As cli_convert_review_vs_torch does for
`ckpt convert`: each run is watched until its temporary file (`.NAME.XXXXXX`) appears, then signalled.
The inputs are made here by torch.save, into a temporary folder."""
import argparse
import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import torch  # noqa: E402
from results import Results  # noqa: E402


def default_signals():
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def interrupt(res, what, cmd, folder, output, sig):
    """Runs `cmd` (which writes `output` into the empty `folder`), signals it once the temporary
    file shows, and checks the folder is left empty."""
    name = os.path.basename(output)
    # Signals a background job inherits as ignored (a shell's `&` ignores SIGINT) stay ignored in
    # ckpt, as nohup's do: the child starts with the default actions, as from a terminal.
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=default_signals)
    seen = None
    deadline = time.time() + 240
    while time.time() < deadline and p.poll() is None:
        temps = [n for n in os.listdir(folder) if n.startswith('.' + name + '.')]
        if temps:
            seen = temps[0]
            break
        time.sleep(0.001)
    if seen is None:  # (its error read only now: reading it waits for the process to end)
        res.check(False, '%s, signal %d: the temporary file appears while writing' % (what, sig),
                  'the process ended first (exit %s: %s)' % (p.wait(), p.stderr.read().decode()[-400:]))
        return
    p.send_signal(sig)
    rc = p.wait(timeout=120)
    said = p.stderr.read().decode(errors='replace')
    p.stderr.close()
    left = os.listdir(folder)
    res.check(rc == -sig, '%s: signal %d ends the process as the signal does' % (what, sig), 'exit %s' % rc)
    res.check(left == [], '%s: signal %d leaves the output folder as it was' % (what, sig), repr(left))
    res.check('interrupted: what was being written is removed' in said,
              '%s: signal %d says the unfinished output was removed' % (what, sig), said[-400:])
    return said


def interrupt_made_folder(res, ckpt, src, tmp, levels=2, trailing=''):
    """`convert --out-dir` into `levels` folders it makes (made/l1/l2...): Ctrl-C while the output is
    written removes the file and every folder it made, however deep, and nothing else (`tmp` itself
    stays)."""
    top = os.path.join(tmp, 'made_%d' % levels)
    out_dir = os.path.join(top, *['l%d' % i for i in range(1, levels)]) + trailing
    cmd = [ckpt, 'convert', src, '--to', 'safetensors', '--out-dir', out_dir]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=default_signals)
    seen = False
    deadline = time.time() + 240
    while time.time() < deadline and p.poll() is None:
        try:
            if any(n.startswith('.') for n in os.listdir(out_dir)):
                seen = True
                break
        except FileNotFoundError:
            pass
        time.sleep(0.001)
    if not res.check(seen, 'convert --out-dir: the temporary file appears in the folder it made',
                     'exit %s' % p.poll()):
        p.kill()
        p.wait()
        return
    p.send_signal(signal.SIGINT)
    rc = p.wait(timeout=120)
    said = p.stderr.read().decode(errors='replace')
    p.stderr.close()
    what = 'convert --out-dir, %d new levels%s' % (levels, ' and a trailing /' if trailing else '')
    res.check(rc == -signal.SIGINT, what + ': Ctrl-C ends the process as the signal does', 'exit %s' % rc)
    res.check(not os.path.exists(top) and os.path.isdir(tmp),
              what + ': Ctrl-C removes the folders it made, and only those',
              ('%d folders left, the deepest %s' % (len(list(os.walk(top))), list(os.walk(top))[-1][0])
               if os.path.exists(top) else 'tmp gone'))
    res.check('interrupted: what was being written is removed' in said, what + ': Ctrl-C says so', said[-400:])
    if levels != 2:
        return
    # A folder that was there before stays, even empty.
    before = os.path.join(tmp, 'there_before')
    os.makedirs(before)
    cmd = [ckpt, 'convert', src, '--to', 'safetensors', '--out-dir', before]
    interrupt(res, 'convert --out-dir into a folder that was there', cmd, before,
              os.path.join(before, os.path.splitext(os.path.basename(src))[0] + '_safetensors.safetensors'), signal.SIGINT)
    res.check(os.path.isdir(before), 'convert --out-dir: Ctrl-C leaves a folder that was there before')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    a = ap.parse_args()
    res = Results()
    tmp = tempfile.mkdtemp(prefix='ckpt-signal-writes-')
    try:
        torch.manual_seed(0)
        # ckpt export: one large tensor, written to .npy and .csv.
        src = os.path.join(tmp, 'big.pth')
        torch.save({'w': torch.randn(6144, 8192)}, src)  # 192 MiB of float32
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            for ext in ('npy', 'csv'):
                if ext == 'csv' and sig != signal.SIGTERM:
                    continue  # the text form is slow to make: once is enough
                folder = os.path.join(tmp, 'export_%s_%d' % (ext, sig))
                os.makedirs(folder)
                out = os.path.join(folder, 'w.' + ext)
                interrupt(res, 'export .%s' % ext, [a.ckpt, 'export', src, 'w', '-o', out], folder, out, sig)
        interrupt_made_folder(res, a.ckpt, src, tmp)
        # Deeper than any fixed table of places: every level made is removed.
        interrupt_made_folder(res, a.ckpt, src, tmp, levels=40)
        interrupt_made_folder(res, a.ckpt, src, tmp, levels=7, trailing='/')
        os.remove(src)

        # ckpt predict --export-torchscript: a chain of Linear layers predict reads from the weights.
        sd = collections.OrderedDict()
        width = 2048
        for i in range(10):
            sd['layers.%d.weight' % (2 * i)] = torch.randn(width, width) / width ** 0.5
            sd['layers.%d.bias' % (2 * i)] = torch.zeros(width)
        src = os.path.join(tmp, 'mlp.pth')
        torch.save(sd, src)
        del sd
        for sig in (signal.SIGINT, signal.SIGTERM):
            folder = os.path.join(tmp, 'script_%d' % sig)
            os.makedirs(folder)
            out = os.path.join(folder, 'mlp.pt')
            interrupt(res, 'predict --export-torchscript', [a.ckpt, 'predict', src, '--export-torchscript', out],
                      folder, out, sig)
        # The same run left alone writes the file: the signal, not the input, stopped the others.
        folder = os.path.join(tmp, 'script_whole')
        os.makedirs(folder)
        out = os.path.join(folder, 'mlp.pt')
        r = subprocess.run([a.ckpt, 'predict', src, '--export-torchscript', out], capture_output=True, text=True,
                           timeout=600)
        if res.check(r.returncode == 0, 'predict --export-torchscript left alone writes the file', r.stderr[-400:]):
            m = torch.jit.load(out)
            res.check(os.listdir(folder) == ['mlp.pt'] and
                      torch.equal(m.state_dict()['0.weight'] if '0.weight' in m.state_dict()
                                  else next(iter(m.state_dict().values())), torch.load(src)['layers.0.weight']),
                      'predict --export-torchscript: the module holds the weights', repr(list(m.state_dict())[:3]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return res.finish()


if __name__ == '__main__':
    sys.exit(main())
