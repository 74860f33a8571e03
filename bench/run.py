#!/usr/bin/env python3
"""Run the benchmarks side by side with PyTorch and write bench/RESULTS.md.

Usage:  /usr/bin/python3 bench/run.py [--ckpt build/release/bin/ckpt] [--gui build/release/bin/checkpoint-studio]
                                      [--data bench/data] [--trials 5] [--quick]

Every row is whole-process wall time (median of the trials, after one warm-up run so the page
cache is warm) and peak resident memory (the largest over the trials, from wait4's rusage), for
Checkpoint Studio's command and for /usr/bin/python3 doing the same with torch, in the same run.
`cp` and `cat > /dev/null` of the file are the byte-moving limits. Run bench/generate.py first.
"""
import argparse
import collections
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY = '/usr/bin/python3'


class Mem(collections.namedtuple('Mem', 'anon file peak')):
    """Peak memory of a process, MiB: private (RssAnon: what it allocated), mapped file pages
    (RssFile: the page cache a mapping shows, which the kernel drops when it needs the memory),
    both sampled from /proc/PID/status every 2 ms, and the peak RSS of both together (wait4)."""

    @property
    def sampled(self):
        return self.anon + self.file >= self.peak / 2  # else the process was over before a sample caught it

    @property
    def private(self):
        """Private memory where the samples caught it; else the peak of all (an upper bound)."""
        return self.anon if self.sampled else self.peak


def evict(paths):
    """Drops the files from the page cache (posix_fadvise DONTNEED), for cold-cache rows."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def measure(argv, trials, env=None, stdout=subprocess.DEVNULL, cold=None):
    """(median seconds, Mem of the largest over the trials, last returncode, stderr) over `trials`
    runs after one warm-up; with `cold` (files), no warm-up and those files evicted before each run."""
    def once():
        if cold:
            evict(cold)
        peak = {'RssAnon': 0, 'RssFile': 0}
        done = threading.Event()
        start = time.perf_counter()
        p = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE, env=env)

        def sample():
            while not done.is_set():
                try:
                    with open('/proc/%d/status' % p.pid) as f:
                        for line in f:
                            key = line.split(':', 1)[0]
                            if key in peak:
                                peak[key] = max(peak[key], int(line.split()[1]))
                except (OSError, ValueError):
                    pass
                done.wait(0.002)
        sampler = threading.Thread(target=sample)
        sampler.start()
        err = p.stderr.read().decode(errors='replace')  # before wait4: a full pipe would stall it
        _, status, usage = os.wait4(p.pid, 0)
        elapsed = time.perf_counter() - start
        done.set()
        sampler.join()
        p.returncode = os.waitstatus_to_exitcode(status)
        p.stderr.close()
        return elapsed, Mem(peak['RssAnon'] / 1024.0, peak['RssFile'] / 1024.0, usage.ru_maxrss / 1024.0), \
            p.returncode, err
    if not cold:
        once()
    times, mems, rc, err = [], [], 0, ''
    for _ in range(trials):
        t, mem, rc, err = once()
        times.append(t)
        mems.append(mem)
    return statistics.median(times), Mem(*(max(m[i] for m in mems) for i in range(3))), rc, err


def machine():
    cpu = ''
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    mem = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / (1 << 30)
    torch_version = subprocess.run([PY, '-c', 'import torch; print(torch.__version__)'], capture_output=True,
                                   text=True).stdout.strip()
    return '%s, %d cores, %.0f GiB memory, %s %s; PyTorch %s (Debian python3-torch)' % (
        cpu or platform.processor(), os.cpu_count(), mem, platform.system(), platform.release(), torch_version)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--ckpt', default=os.path.join(ROOT, 'build', 'release', 'bin', 'ckpt'))
    ap.add_argument('--gui', default=os.path.join(ROOT, 'build', 'release', 'bin', 'checkpoint-studio'))
    ap.add_argument('--data', default=os.path.join(HERE, 'data'))
    ap.add_argument('--trials', type=int, default=5)
    ap.add_argument('--quick', action='store_true', help='3 trials, heavy rows once')
    ap.add_argument('--out', default=os.path.join(HERE, 'RESULTS.md'))
    ap.add_argument('--only', action='append', default=[],
                    help='only the rows whose case or file contains this text (repeatable): a short run')
    a = ap.parse_args()
    want = lambda case, name: not a.only or any(o in case or o in name for o in a.only)  # noqa: E731
    trials = 3 if a.quick else a.trials
    heavy = 1 if a.quick else max(1, trials // 2)
    data = lambda name: os.path.join(a.data, name)  # noqa: E731
    ops = os.path.join(HERE, 'torch_ops.py')
    tmp = tempfile.mkdtemp(prefix='ckpt-bench-')
    have_convert = 'convert' in subprocess.run([a.ckpt, '--help'], capture_output=True, text=True).stdout
    rows = []

    def row(case, name, ours, theirs, n, target=None, check=None, note='', file=None, ours_ok=(0,), cold=None):
        if not want(case, name):
            return
        if not os.path.exists(data(file or name)):
            rows.append((case, name, None, None, None, None, target, 'file missing: run bench/generate.py'))
            return
        t1, m1, rc1, e1 = measure(ours, n, cold=cold) if ours else (None, None, 0, '')
        t2, m2, rc2, e2 = measure(theirs, n, cold=cold) if theirs else (None, None, 0, '')
        problem = (e1.strip().splitlines() or ['?'])[-1] if rc1 not in ours_ok else (e2.strip().splitlines() or ['?'])[-1] if rc2 else ''
        met = check(t1, m1, t2, m2) if check and not problem else None
        rows.append((case, name, (t1, m1), (t2, m2), t2 / t1 if t1 and t2 else None, met, target, problem or note))
        print('%-34s %-14s %s' % (case, name, rows[-1][2:6]), flush=True)

    # Opening: ckpt info --json against torch.load + listing.
    for name in ('seed_checkpoint.pth', 'sd_100m.pth', 'sd_1g.pth', 'sd_4g.pth', 'sd_20k.pth', 'train_1g.pth'):
        target, check = None, None
        if name in ('sd_1g.pth', 'sd_4g.pth'):
            # Private memory: the file pages a mapping shows are page cache, and with large folios a
            # few touches of a warm file show 100 MiB of it.
            target = '>= 30x faster, private memory < 32 MiB'
            check = lambda t1, m1, t2, m2: t2 / t1 >= 30 and m1.private < 32  # noqa: E731
        if name == 'sd_20k.pth':
            target = '>= 10x faster'
            check = lambda t1, m1, t2, m2: t2 / t1 >= 10  # noqa: E731
        row('ckpt info --json', name, [a.ckpt, 'info', '--json', data(name)], [PY, ops, 'list', data(name)],
            heavy if name in ('sd_4g.pth',) else trials, target, check)
    # The same from a cold page cache (each run after the file is dropped from it): what opening a
    # checkpoint just downloaded or not read for a while costs, against torch.load's cold read.
    for name in ('sd_1g.pth', 'train_1g.pth'):
        row('ckpt info --json, cold cache', name, [a.ckpt, 'info', '--json', data(name)],
            [PY, ops, 'list', data(name)], heavy, cold=[data(name)])
    # The tensor table as JSON, one row per tensor: the structure-heavy file, against torch.load + listing.
    row('ckpt tensors --json', 'sd_20k.pth', [a.ckpt, 'tensors', '--json', data('sd_20k.pth')],
        [PY, ops, 'list', data('sd_20k.pth')], trials)
    # Opening cost grows with tensors, not bytes.
    # A few milliseconds each: the two files are opened alternately, 21 times each, and the
    # medians compared, so that drift and noise fall on both alike.
    if want('open: 4 GiB vs 100 MiB', 'sd_4g') and os.path.exists(data('sd_100m.pth')) and \
            os.path.exists(data('sd_4g.pth')):
        samples = {'sd_100m.pth': [], 'sd_4g.pth': []}
        for _ in range(21):
            for name in samples:
                samples[name].append(measure([a.ckpt, 'info', '--json', data(name)], 1)[0])
        small, big = statistics.median(samples['sd_100m.pth']), statistics.median(samples['sd_4g.pth'])
        rows.append(('open: 4 GiB vs 100 MiB, 64 tensors each', 'sd_4g / sd_100m', (big, None), (small, None),
                     None, abs(big - small) / small <= 0.2, 'within 20%',
                     'ckpt %.1f ms vs %.1f ms (%+.0f%%), medians of 21 alternating runs' %
                     (big * 1000, small * 1000, 100 * (big - small) / small)))

    # Statistics over every tensor.
    for name in ('sd_100m.pth', 'sd_1g.pth'):
        # The same float64 passes either way: about the same speed. What differs is memory: torch.load
        # copies every tensor into private memory, ckpt reads them from the mapped file.
        row('statistics (ckpt tensors --stats)', name, [a.ckpt, 'tensors', '--stats', '--json', data(name)],
            [PY, ops, 'stats', data(name)], heavy, 'private memory < 1/4 of torch\'s' if name == 'sd_1g.pth' else None,
            (lambda t1, m1, t2, m2: m1.private < m2.private / 4) if name == 'sd_1g.pth' else None)

    # A re-zipped file: four 1 GiB storages deflated to ~4 MiB. Each is inflated when its numbers are
    # needed and let go after, so a pass holds one at a time; torch.load inflates all four.
    row('statistics, deflated records (ckpt tensors --stats)', 'deflated_4x1g.pth',
        [a.ckpt, 'tensors', '--stats', '--json', data('deflated_4x1g.pth')],
        [PY, ops, 'stats', data('deflated_4x1g.pth')], heavy, 'private memory < 1.5 GiB (one storage held)',
        lambda t1, m1, t2, m2: m1.private < 1536)

    # A hostile safetensors header: 96 MB of 8,000,000 __metadata__ entries. Python's side is
    # json.loads of the header, what reading it as a dict takes (torch does not read safetensors).
    row('open a 96 MB header of 8M metadata entries (ckpt info --json)', 'st_meta_8m.safetensors',
        [a.ckpt, 'info', '--json', data('st_meta_8m.safetensors')],
        [PY, '-c', 'import json, struct, sys; f = open(sys.argv[1], "rb"); '
                   'json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))', data('st_meta_8m.safetensors')],
        heavy, 'private memory < 4x the header (384 MiB)', lambda t1, m1, t2, m2: m1.private < 384)

    # The same header in the window: the Metadata view lists the kept entries up to its row budget
    # and counts the rest, as the structure tree does (each row is three Qt items).
    if os.path.exists(a.gui):
        gui_env = ['env', 'QT_QPA_PLATFORM=offscreen', 'CKPT_TIMINGS=1', 'CKPT_QUIT_WHEN_IDLE=1',
                   'XDG_CONFIG_HOME=' + os.path.join(tmp, 'config')]
        row('GUI: open a 96 MB header of 8M metadata entries', 'st_meta_8m.safetensors',
            gui_env + [a.gui, data('st_meta_8m.safetensors')], None, heavy,
            'private memory < 8x the header (768 MiB)', lambda t1, m1, t2, m2: m1.private < 768)

    # Comparing two checkpoints of a run: every figure of every tensor, in float64.
    row('diff (ckpt diff --json)', 'sd_1g vs sd_1g_tuned',
        [a.ckpt, 'diff', '--json', data('sd_1g.pth'), data('sd_1g_tuned.pth')],
        [PY, ops, 'diff', data('sd_1g.pth'), data('sd_1g_tuned.pth')], heavy, file='sd_1g_tuned.pth',
        ours_ok=(0, 1))  # 1: the weights differ, as they do

    # Conversions.
    out1, out2 = os.path.join(tmp, 'ours.pth'), os.path.join(tmp, 'theirs.pth')
    if have_convert:
        row('strip optimizer (convert --to inference)', 'train_1g.pth',
            [a.ckpt, 'convert', data('train_1g.pth'), '--to', 'inference', '-o', out1, '--force'],
            [PY, ops, 'strip', data('train_1g.pth'), out2], heavy, '>= 3x faster', lambda t1, m1, t2, m2: t2 / t1 >= 3)
        row('cast float16 (convert --dtype float16)', 'sd_1g.pth',
            [a.ckpt, 'convert', data('sd_1g.pth'), '--to', 'state-dict', '--dtype', 'float16', '-o', out1, '--force'],
            [PY, ops, 'half', data('sd_1g.pth'), out2], heavy)
        row('convert --to state-dict, deflated records', 'deflated_4x1g.pth',
            [a.ckpt, 'convert', data('deflated_4x1g.pth'), '--to', 'state-dict', '-o', out1, '--force'],
            [PY, ops, 'save', data('deflated_4x1g.pth'), out2], heavy, 'private memory < 1.5 GiB (one storage held)',
            lambda t1, m1, t2, m2: m1.private < 1536, note='PyTorch: torch.load, then torch.save of the same weights')
        # One 1 GiB tensor to safetensors: each tensor's bytes stream from the mapped file (a cast in
        # 4 MiB chunks), so no copy of the tensor is held; torch.load holds the tensor (and the cast).
        out_st, theirs_st = os.path.join(tmp, 'ours.safetensors'), os.path.join(tmp, 'theirs.safetensors')
        row('convert --to safetensors, one 1 GiB tensor', 'big_1g.pth',
            [a.ckpt, 'convert', data('big_1g.pth'), '--to', 'safetensors', '-o', out_st, '--force'],
            [PY, ops, 'safetensors', data('big_1g.pth'), theirs_st], heavy, 'private memory < 64 MiB',
            lambda t1, m1, t2, m2: m1.private < 64, note='PyTorch: torch.load, then the header and numpy tofile')
        row('convert --to safetensors --dtype float16, one 1 GiB tensor', 'big_1g.pth',
            [a.ckpt, 'convert', data('big_1g.pth'), '--to', 'safetensors', '--dtype', 'float16', '-o', out_st, '--force'],
            [PY, ops, 'safetensors_half', data('big_1g.pth'), theirs_st], heavy, 'private memory < 64 MiB',
            lambda t1, m1, t2, m2: m1.private < 64, note='PyTorch: torch.load, .half(), then the header and numpy tofile')
        # A LoRA merge with a cast: each merged weight is made when the plan counts its cast and
        # again when it is written, let go after each (one 16 MiB weight held at a time); torch
        # holds the base, merges in place, and holds the float16 copy while it saves.
        row('convert --merge-lora --dtype float16, 24 x 16 MiB weights, r=16', 'lora_base_400m.pth',
            [a.ckpt, 'convert', data('lora_base_400m.pth'), '--to', 'state-dict', '--merge-lora', data('lora_r16'),
             '--dtype', 'float16', '-o', out1, '--force'],
            [PY, ops, 'lora_half', data('lora_base_400m.pth'), data('lora_r16'), out2], heavy,
            'private memory < 160 MiB (one merged weight held)', lambda t1, m1, t2, m2: m1.private < 160,
            note='PyTorch: torch.load of both, W += scaling * (B @ A), .half(), torch.save')
    else:
        rows.append(('strip optimizer (convert --to inference)', 'train_1g.pth', None, None, None, None, '>= 3x faster',
                     'not measured: ckpt convert is not built yet'))
    if want('baseline', 'train_1g.pth') and os.path.exists(data('train_1g.pth')):
        t, m, _, _ = measure(['cp', data('train_1g.pth'), out2], heavy)
        rows.append(('baseline: cp', 'train_1g.pth', (t, m), None, None, None, None, ''))
        t, m, _, _ = measure(['sh', '-c', 'cat "$1" > /dev/null', 'sh', data('train_1g.pth')], heavy)
        rows.append(('baseline: cat > /dev/null', 'train_1g.pth', (t, m), None, None, None, None, ''))
        strip = [r for r in rows if r[0].startswith('strip') and r[2]]
        cp = [r for r in rows if r[0] == 'baseline: cp'][0][2][0]
        if strip:
            ours = strip[0][2][0]
            rows.append(('strip optimizer vs cp', 'train_1g.pth', (ours, None), (cp, None), None, ours <= 2.5 * cp,
                         'within 2.5x of cp', '%.2fx the time of cp (verification included)' % (ours / cp)))
    # Prediction on the seed's inference package: whole process, and the forward pass in-process.
    row10 = ','.join(['0.5'] * 10)
    row('ckpt predict (whole process)', 'seed_inference.pth',
        [a.ckpt, 'predict', data('seed_inference.pth'), '--input', row10, '--json'],
        [PY, ops, 'predict', data('seed_inference.pth'), row10], trials)
    if want('predict: one forward pass', 'seed_inference.pth') and os.path.exists(data('seed_inference.pth')):
        import json as _json
        ours = [_json.loads(subprocess.run([a.ckpt, 'predict', data('seed_inference.pth'), '--input', row10, '--json'],
                                           capture_output=True, text=True).stdout)['latency_ms'] for _ in range(trials)]
        theirs = [_json.loads(subprocess.run([PY, ops, 'predict', data('seed_inference.pth'), row10],
                                             capture_output=True, text=True).stdout)['latency_ms'] for _ in range(trials)]
        mo, mt = statistics.median(ours) / 1000, statistics.median(theirs) / 1000
        rows.append(('predict: one forward pass, in-process', 'seed_inference.pth', (mo, None), (mt, None), mt / mo,
                     None, None, 'ckpt %.3f ms, PyTorch %.3f ms' % (mo * 1000, mt * 1000)))

    # The GUI: time to the tree and to all statistics, printed by the app under CKPT_TIMINGS=1.
    if want('GUI', 'sd_1g.pth') and os.path.exists(a.gui) and os.path.exists(data('sd_1g.pth')):
        # A settings folder of its own: the view a user left open last does not change the figures.
        env = dict(os.environ, QT_QPA_PLATFORM='offscreen', CKPT_TIMINGS='1', CKPT_QUIT_WHEN_IDLE='1',
                   XDG_CONFIG_HOME=os.path.join(tmp, 'config'))
        # One warm-up launch (fonts, page cache), then the median of the trials.
        samples = {}
        stderr_tail = ''
        for i in range(trials + 1):
            p = subprocess.run([a.gui, data('sd_1g.pth')], capture_output=True, text=True, env=env, timeout=600)
            stderr_tail = p.stderr[-200:]
            for line in p.stderr.splitlines():
                if line.startswith('ckpt-timing ') and '=' in line and ' at=' not in line:
                    key, value = line[len('ckpt-timing '):].split('=', 1)
                    if i > 0 and key in ('tree', 'statistics', 'max-stall'):
                        samples.setdefault(key, []).append(float(value) / 1000.0)
        timings = {k: statistics.median(v) for k, v in samples.items()}
        load = [r for r in rows if r[0] == 'ckpt info --json' and r[1] == 'sd_1g.pth' and r[3]]
        torch_load = load[0][3][0] if load else None
        if 'tree' in timings:
            rows.append(('GUI: start to tree shown', 'sd_1g.pth', (timings['tree'], None), (torch_load, None),
                         torch_load / timings['tree'] if torch_load else None,
                         timings['tree'] < torch_load / 10 if torch_load else None, '< 1/10 of torch.load',
                         'until the tree is first painted'))
        if 'statistics' in timings:
            rows.append(('GUI: start to all statistics shown', 'sd_1g.pth', (timings['statistics'], None), None, None,
                         None, None, 'longest event-loop gap meanwhile %.0f ms' % (1000 * timings.get('max-stall', 0))))
        if not timings:
            rows.append(('GUI', 'sd_1g.pth', None, None, None, None, None, 'no timings printed: ' + stderr_tail))

    shutil.rmtree(tmp, ignore_errors=True)
    write(a.out, rows, trials, heavy, os.path.relpath(a.ckpt, ROOT))
    return 0


# What holds back a row that misses its target, as measured with perf on this machine.
LIMITS = {
    'sd_20k': 'the work per tensor, 6-9 µs of it (callgrind: 443M instructions for 20,000 tensors). Reading '
              'makes some 25 values per tensor, kept by the pickle memo until the end as Python\'s unpickler '
              'keeps them (83 MiB); a quarter of the wall time is the kernel zeroing the pages they take, the '
              'rest the pickle run, tensor checks and the streamed JSON. Runs of one binary vary with how '
              'readily the kernel finds huge pages. A value tree that is not one heap object per pickle value '
              'would be the next step.',
    'open: 4 GiB': 'both take a few milliseconds, mostly process start; the difference is noise, not bytes '
                   '(neither reads a tensor byte).',
    'strip optimizer': 'writing and reading back every kept byte: the copy into the page cache and two CRC-32 '
                       'passes (the zip\'s, and the verification of the file read back).',
    'GUI': 'Qt start and the file\'s first paint.',
}


def fmt_time(v):
    if v is None:
        return '—'
    return '%.3f ms' % (v * 1000) if v < 0.01 else ('%.3f s' % v if v < 10 else '%.1f s' % v)


def fmt_mem(v):
    if v is None:
        return '—'
    if not v.sampled:
        return 'peak %.0f MiB' % v.peak
    return '%.0f / %.0f MiB' % (v.anon, v.file)


def load_note():
    one, five, _ = os.getloadavg()
    return ('load average %.1f (1 min), %.1f (5 min) on %d cores when written; figures taken under load '
            'vary from run to run' % (one, five, os.cpu_count()))


def write(path, rows, trials, heavy, binary):
    lines = ['# Benchmarks', '',
             'Written by `bench/run.py` on %s.' % datetime.datetime.now().strftime('%Y-%m-%d %H:%M'), '',
             'Machine: %s. Binaries: `%s` and the GUI beside it.' % (machine(), binary), '',
             'Whole-process wall time (median of %d trials, %d for the heaviest rows, after a warm-up run: warm '
             'page cache, except the rows marked cold cache, where the file is dropped from the page cache '
             'before each run) and peak memory, Checkpoint Studio and PyTorch (`/usr/bin/python3` with torch, '
             'import included) in the same run. Ratio = PyTorch time / ours.' % (trials, heavy), '',
             'Memory is "private / file": the peak of private memory (RssAnon: what the process allocated) and '
             'of the file pages it has mapped (RssFile: page cache the kernel drops when memory is needed), '
             'sampled from /proc every 2 ms; "peak" (the two together, from wait4) where the process ended '
             'before a sample could catch it.', '',
             'Load: %s.' % load_note(), '',
             '| case | file | Checkpoint Studio | memory | PyTorch | memory | ratio | target | met | note |',
             '|---|---|---|---|---|---|---|---|---|---|']
    for case, name, ours, theirs, ratio, met, target, note in rows:
        lines.append('| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |' % (
            case, name, fmt_time(ours[0]) if ours else '—', fmt_mem(ours[1]) if ours else '—',
            fmt_time(theirs[0]) if theirs else '—', fmt_mem(theirs[1]) if theirs else '—',
            '%.1fx' % ratio if ratio else '—', target or '', {True: 'yes', False: '**no**', None: ''}[met],
            note.replace('|', '\\|')))
    missed = [r for r in rows if r[5] is False]
    if missed:
        lines += ['', '## Targets not met, and what limits them', '']
        for case, name, *_ in missed:
            why = next((v for k, v in LIMITS.items() if case.startswith(k) or name.startswith(k)), 'not analysed yet')
            lines.append('- **%s** (%s): %s' % (case, name, why))
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    print('wrote ' + path)


if __name__ == '__main__':
    sys.exit(main())
