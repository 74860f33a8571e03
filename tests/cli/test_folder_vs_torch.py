#!/usr/bin/env python3
"""Checkpoint folders opened by name, judged by PyTorch on folders torch 1.13 writes here in the
layouts the frameworks write (looked up in their code; the frameworks are not installed):
- a Hugging Face Trainer checkpoint (Trainer._save_checkpoint): model.safetensors beside
  pytorch_model.bin (safetensors is read, as transformers prefers it), config.json, optimizer.pt,
  scheduler.pt, rng_state.pth, trainer_state.json (TrainerState.save_to_json), training_args.bin;
- a save_pretrained folder with pytorch_model.bin only, and a PEFT adapter folder;
- a DeepSpeed save folder (engine.save_checkpoint: `latest` naming global_step500/ with
  mp_rank_00_model_states.pt and a ZeRO optimizer partition), and its tag folder opened directly;
- a folder holding one checkpoint file;
- hostile folders: `latest` pointing out of the folder (../, absolute, a link), at a missing tag;
  many .pt files; an empty folder; a run folder of checkpoint-N subfolders; a 20 MB trainer_state.
info, tensors, show, scan, diff and convert take the folder; what they show is what torch loads
from the file chosen, and the optimizer, scheduler and trainer state are what torch and json say."""
import argparse
import collections
import json
import shutil
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'fixtures'))
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import deepspeed_layouts  # noqa: E402
from generate_fixtures import write_safetensors  # noqa: E402
from results import Results  # noqa: E402


def run(ckpt, *args):
    return subprocess.run([ckpt, *args], capture_output=True, text=True, timeout=120)


def info_json(ckpt, path):
    r = run(ckpt, 'info', path, '--json')
    return json.loads(r.stdout) if r.returncode == 0 else {'error': r.stderr}


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(6, 12)
        self.head = nn.Linear(12, 3)


class RunsCode:
    def __reduce__(self):
        return (os.system, ('true',))


def listing(sd):
    return {k: (str(v.dtype).replace('torch.', ''), list(v.shape)) for k, v in sd.items()}


def shown_listing(j):
    return {t['name']: (t['dtype'], t['shape']) for t in j.get('state_dict', {}).get('tensors', [])}


def trainer_checkpoint(root, step=500):
    """What Trainer._save_checkpoint leaves in checkpoint-<step>/ (safetensors and .bin both)."""
    folder = os.path.join(root, 'checkpoint-%d' % step)
    os.makedirs(folder)
    torch.manual_seed(1)
    net = Net()
    groups = [{'params': [net.embed.weight, net.head.weight], 'weight_decay': 0.01},
              {'params': [net.embed.bias, net.head.bias], 'weight_decay': 0.0}]
    opt = torch.optim.AdamW(groups, lr=5e-5)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - s / 1000)
    for _ in range(3):
        net.head(net.embed(torch.randn(4, 6))).sum().backward()
        opt.step()
        sched.step()
    sd = collections.OrderedDict((k, v.detach().clone()) for k, v in net.state_dict().items())
    write_safetensors(os.path.join(folder, 'model.safetensors'), sd, {'format': 'pt'})
    # The same model in the other format, but different numbers: which file was read shows.
    torch.save({k: v + 1 for k, v in sd.items()}, os.path.join(folder, 'pytorch_model.bin'))
    with open(os.path.join(folder, 'config.json'), 'w') as f:
        json.dump({'architectures': ['Net'], 'hidden_size': 12, 'model_type': 'net'}, f, indent=2)
    torch.save(opt.state_dict(), os.path.join(folder, 'optimizer.pt'))
    torch.save(sched.state_dict(), os.path.join(folder, 'scheduler.pt'))
    torch.save({'python': None, 'cpu': torch.get_rng_state()}, os.path.join(folder, 'rng_state.pth'))
    torch.save({'output_dir': 'out', 'learning_rate': 5e-5}, os.path.join(folder, 'training_args.bin'))
    state = {'best_metric': 0.4123, 'best_model_checkpoint': 'out/checkpoint-400', 'epoch': 1.5,
             'eval_steps': 100, 'global_step': step, 'is_hyper_param_search': False,
             'is_local_process_zero': True, 'is_world_process_zero': True,
             'log_history': [
                 {'epoch': 0.3, 'grad_norm': 1.2, 'learning_rate': 4e-5, 'loss': 2.5, 'step': 100},
                 {'epoch': 0.3, 'eval_loss': 2.7, 'eval_runtime': 1.0, 'step': 100},
                 {'epoch': 0.6, 'grad_norm': 1.1, 'learning_rate': 3e-5, 'loss': 1.75, 'step': 200},
                 {'epoch': 0.6, 'eval_loss': 1.9, 'eval_runtime': 1.0, 'step': 200},
                 {'epoch': 1.5, 'grad_norm': 0.9, 'learning_rate': 1e-5, 'loss': 0.625, 'step': 500},
             ],
             'logging_steps': 100, 'max_steps': 1000, 'num_train_epochs': 3, 'save_steps': 500,
             'total_flos': 1234.0, 'train_batch_size': 8, 'trial_name': None, 'trial_params': None}
    with open(os.path.join(folder, 'trainer_state.json'), 'w') as f:
        f.write(json.dumps(state, indent=2, sort_keys=True) + '\n')  # as save_to_json writes it
    return folder, sd, opt.state_dict(), sched.state_dict(), state


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    ap.add_argument('--fixtures')
    args = ap.parse_args()
    ckpt = os.path.abspath(args.ckpt)
    res = Results()
    with tempfile.TemporaryDirectory() as tmp:
        # --- Hugging Face Trainer checkpoint ----------------------------------------------------
        folder, sd, osd, ssd, state = trainer_checkpoint(tmp)
        j = info_json(ckpt, folder)
        res.check('error' not in j, 'trainer folder opens', j.get('error', ''))
        fj = j.get('folder', {})
        res.check(fj.get('layout') == 'Hugging Face', 'trainer folder: layout', str(fj.get('layout')))
        res.check(fj.get('model_file', '').endswith('model.safetensors'), 'safetensors preferred over .bin',
                  fj.get('model_file', ''))
        res.check(shown_listing(j) == listing(sd), 'trainer folder: state dict is the safetensors file\'s',
                  '%s vs %s' % (shown_listing(j), listing(sd)))
        parts = {p['name']: p for p in fj.get('parts', [])}
        for name in ('config.json', 'optimizer.pt', 'scheduler.pt', 'rng_state.pth', 'trainer_state.json',
                     'training_args.bin', 'pytorch_model.bin'):
            res.check(name in parts, 'trainer folder lists ' + name, str(list(parts)))
        # The optimizer's one line, judged by the optimizer torch saved.
        steps = [int(s['step']) for s in osd['state'].values()]
        summary = parts.get('optimizer.pt', {}).get('summary', '')
        res.check('AdamW' in summary and '%d groups' % len(osd['param_groups']) in summary and
                  'step %d' % max(steps) in summary and '%d parameter states' % len(osd['state']) in summary,
                  'optimizer.pt summary', summary)
        summary = parts.get('scheduler.pt', {}).get('summary', '')
        res.check('last_epoch %d' % ssd['last_epoch'] in summary and
                  ('learning rate %.6g' % ssd['_last_lr'][0]) in summary, 'scheduler.pt summary',
                  summary + ' vs ' + str(ssd['last_epoch']) + ' ' + str(ssd['_last_lr']))
        ts = fj.get('trainer_state', {})
        res.check(ts.get('global_step') == state['global_step'] and ts.get('epoch') == state['epoch'] and
                  ts.get('best_metric') == state['best_metric'] and
                  ts.get('best_model_checkpoint') == state['best_model_checkpoint'] and
                  ts.get('max_steps') == state['max_steps'], 'trainer state fields', str(ts))
        losses = [(e['step'], e['loss']) for e in state['log_history'] if 'loss' in e]
        evals = [(e['step'], e['eval_loss']) for e in state['log_history'] if 'eval_loss' in e]
        shown_losses = [(e['step'], e['loss']) for e in ts.get('log_history', []) if 'loss' in e]
        shown_evals = [(e['step'], e['eval_loss']) for e in ts.get('log_history', []) if 'eval_loss' in e]
        res.check(shown_losses == losses and shown_evals == evals, 'log history by step',
                  '%s %s' % (shown_losses, shown_evals))
        res.check(ts.get('last_loss') == losses[-1][1] and ts.get('last_eval_loss') == evals[-1][1],
                  'last losses', str(ts))
        r = run(ckpt, 'info', folder)
        res.check(r.returncode == 0 and 'Folder:' in r.stdout and '(Hugging Face)' in r.stdout and
                  'optimizer.pt: optimizer state' in r.stdout, 'info text: Folder section', r.stdout + r.stderr)
        res.check('Training: step %d of %d' % (state['global_step'], state['max_steps']) in r.stdout and
                  'last loss %g' % losses[-1][1] in r.stdout and 'last eval loss %g' % evals[-1][1] in r.stdout
                  and 'best metric %g (%s)' % (state['best_metric'], state['best_model_checkpoint']) in r.stdout,
                  'info text: training line', r.stdout)
        # tensors --stats on the folder: the numbers of the safetensors file, as torch computes them.
        r = run(ckpt, 'tensors', folder, '--json', '--stats')
        try:
            rows = {t['name']: t for t in json.loads(r.stdout)['tensors']}
        except (ValueError, KeyError):
            rows = {}
        ok = rows and all(abs(rows[k]['stats']['mean'] - float(v.double().mean())) < 1e-6 for k, v in sd.items())
        res.check(bool(ok), 'tensors --stats on the folder match torch', r.stdout[:500] + r.stderr)
        # convert the folder: torch loads the output and finds the safetensors file's tensors.
        out = os.path.join(tmp, 'converted.pt')
        r = run(ckpt, 'convert', folder, '--to', 'state-dict', '-o', out)
        ok = r.returncode == 0 and os.path.exists(out)
        if ok:
            got = torch.load(out)
            got = got.get('state_dict', got) if isinstance(got, dict) else got
            ok = set(got) == set(sd) and all(torch.equal(got[k], sd[k]) for k in sd)
        res.check(ok, 'convert of the folder equals the safetensors weights in torch', r.stderr)
        # Named with a trailing slash and no output: the file goes beside the folder, named for it.
        before = sorted(os.listdir(folder))
        r = run(ckpt, 'convert', folder + '/', '--to', 'state-dict')
        beside = os.path.join(tmp, os.path.basename(folder) + '_state_dict.pth')
        res.check(r.returncode == 0 and os.path.exists(beside) and sorted(os.listdir(folder)) == before,
                  'convert DIR/ writes <folder>_state_dict.pth beside it, nothing into it',
                  r.stdout + r.stderr + repr(sorted(set(os.listdir(folder)) - set(before))))
        # Named as "." from inside it: the same, beside the folder.
        r2 = subprocess.run([ckpt, 'convert', '.', '--to', 'safetensors'], capture_output=True, text=True,
                            timeout=300, cwd=folder)
        dot_out = os.path.join(tmp, os.path.basename(folder) + '_safetensors.safetensors')
        res.check(r2.returncode == 0 and os.path.exists(dot_out) and sorted(os.listdir(folder)) == before,
                  'convert . from inside the folder writes beside it, nothing into it',
                  r2.stdout + r2.stderr + repr(sorted(set(os.listdir(folder)) - set(before))))
        if os.path.exists(dot_out):
            os.remove(dot_out)
        if os.path.exists(beside):
            got = torch.load(beside)
            got = got.get('state_dict', got) if isinstance(got, dict) else got
            res.check(set(got) == set(sd) and all(torch.equal(got[k], sd[k]) for k in sd),
                      'convert DIR/: the safetensors weights, in torch')
            os.remove(beside)
        r = run(ckpt, 'show', folder, 'head.weight')
        res.check(r.returncode == 0 and 'head.weight' in r.stdout, 'show on the folder', r.stderr)
        r = run(ckpt, 'scan', folder)
        res.check(r.returncode == 0, 'scan on the folder', r.stdout + r.stderr)
        r = run(ckpt, 'diff', folder, os.path.join(folder, 'model.safetensors'))
        res.check(r.returncode == 0, 'diff of the folder with its own model file: equal', r.stdout + r.stderr)

        # A pickled part that would run code when a resume loads it is said to, though the
        # weights (safetensors) hold none. Written here, never loaded in Python.
        torch.save(RunsCode(), os.path.join(folder, 'training_args.bin'))
        j = info_json(ckpt, folder)
        parts = {p['name']: p for p in j.get('folder', {}).get('parts', [])}
        summary = parts.get('training_args.bin', {}).get('summary', '')
        res.check('DANGEROUS' in summary and 'system' in summary, 'dangerous training_args.bin is said', summary)
        res.check(parts.get('training_args.bin', {}).get('dangerous_globals') == ['posix.system'] and
                  parts.get('pytorch_model.bin', {}).get('dangerous_globals') == [],
                  'info --json: each pickled part\'s dangerous globals (the unused .bin read for them too)',
                  str(parts))
        res.check('DANGEROUS' not in parts.get('optimizer.pt', {}).get('summary', 'DANGEROUS'),
                  'optimizer.pt is not called dangerous', str(parts.get('optimizer.pt')))
        # The text's Security lines give the folder's verdict, not the weights file's alone.
        r = run(ckpt, 'info', folder)
        lines = [l for l in r.stdout.splitlines() if l.startswith('Security:')]
        res.check(len(lines) == 2 and 'the folder is DANGEROUS' in lines[0] and 'training_args.bin' in lines[0] and
                  lines[1].startswith('Security: weights file model.safetensors:'),
                  'info text: the folder\'s verdict comes first', '\n'.join(lines) + r.stderr)
        # `ckpt scan` of the folder is a gate: it scans every pickle a resume loads, not only the
        # weights, and exits 3 for the dangerous training_args.bin.
        r = run(ckpt, 'scan', folder)
        res.check(r.returncode == 3 and 'training_args.bin: DANGEROUS' in r.stdout,
                  'scan of the folder: exit 3, training_args.bin named dangerous', r.stdout + r.stderr)
        r = run(ckpt, 'scan', '--json', folder)
        try:
            entries = json.loads(r.stdout)
        except ValueError:
            entries = []
        verdicts = {os.path.basename(e.get('file', '')): e.get('dangerous') for e in entries} \
            if isinstance(entries, list) else {}
        want = {'model.safetensors': False, 'pytorch_model.bin': False, 'optimizer.pt': False,
                'scheduler.pt': False, 'rng_state.pth': False, 'training_args.bin': True}
        res.check(r.returncode == 3 and verdicts == want,
                  'scan --json of the folder: one verdict per pickle (and the weights)', r.stdout[:3000] + r.stderr)

        # A dangerous pickle past the parts listed (the 72nd rng state), and one whose name no
        # framework writes: both are scanned, and the folder is not called clean.
        many = os.path.join(tmp, 'many_parts')
        os.makedirs(many)
        torch.save(sd, os.path.join(many, 'pytorch_model.bin'))
        for i in range(70):
            torch.save({'cpu': torch.get_rng_state()}, os.path.join(many, 'rng_state_%d.pth' % i))
        torch.save(RunsCode(), os.path.join(many, 'rng_state_99.pth'))
        r = run(ckpt, 'scan', many)
        res.check(r.returncode == 3 and 'rng_state_99.pth: DANGEROUS' in r.stdout,
                  'scan: a dangerous part past the listed ones is scanned', r.stdout[-2000:] + r.stderr)
        j = info_json(ckpt, many)
        parts = {p['name']: p for p in j.get('folder', {}).get('parts', [])}
        res.check(parts.get('rng_state_99.pth', {}).get('dangerous_globals') == ['posix.system'],
                  'info --json lists the dangerous part though it is past the listed ones', str(sorted(parts))[:500])
        odd = os.path.join(tmp, 'odd_pickle')
        os.makedirs(odd)
        write_safetensors(os.path.join(odd, 'model.safetensors'), sd, {'format': 'pt'})
        torch.save(RunsCode(), os.path.join(odd, 'custom_state.pt'))
        r = run(ckpt, 'scan', odd)
        res.check(r.returncode == 3 and 'custom_state.pt: DANGEROUS' in r.stdout,
                  'scan: a pickle of unknown role in the folder is scanned', r.stdout + r.stderr)

        # series over Trainer folders: ordered by trainer_state.json's global_step, whatever their
        # names and the order given (the later one named first alphabetically and on the line).
        run_root = os.path.join(tmp, 'series_run')
        os.makedirs(run_root)
        early = trainer_checkpoint(run_root, step=100)[0]
        late = trainer_checkpoint(run_root, step=200)[0]
        os.rename(early, os.path.join(run_root, 'z_early'))
        os.rename(late, os.path.join(run_root, 'a_late'))
        r = run(ckpt, 'series', '--json', os.path.join(run_root, 'a_late'), os.path.join(run_root, 'z_early'))
        try:
            points = json.loads(r.stdout)['checkpoints']
        except (ValueError, KeyError):
            points = []
        res.check(r.returncode == 0 and [p['step'] for p in points] == [100, 200] and
                  '/z_early/' in points[0]['file'], 'series orders Trainer folders by trainer_state.json\'s step',
                  r.stdout[:800] + r.stderr)
        # The weights files named by themselves order alike, by the trainer_state.json beside them;
        # a file given twice is said to be.
        late_file = os.path.join(run_root, 'a_late', 'model.safetensors')
        early_file = os.path.join(run_root, 'z_early', 'model.safetensors')
        r = run(ckpt, 'series', '--json', late_file, early_file, late_file)
        try:
            points = json.loads(r.stdout)['checkpoints']
        except (ValueError, KeyError):
            points = []
        res.check(r.returncode == 0 and [p['step'] for p in points] == [100, 200, 200] and
                  points[0]['file'] == early_file, 'series takes a file\'s step from trainer_state.json beside it',
                  r.stdout[:800] + r.stderr)
        res.check(sum(any('given again' in n for n in p.get('notes', [])) for p in points) == 1,
                  'series says a file given twice', str([p.get('notes') for p in points]))

        # --- save_pretrained with pytorch_model.bin only -------------------------------------------
        binonly = os.path.join(tmp, 'bin_only')
        os.makedirs(binonly)
        torch.save(sd, os.path.join(binonly, 'pytorch_model.bin'))
        with open(os.path.join(binonly, 'config.json'), 'w') as f:
            json.dump({'model_type': 'net'}, f)
        j = info_json(ckpt, binonly)
        fj = j.get('folder', {})
        res.check(fj.get('model_file', '').endswith('pytorch_model.bin') and
                  shown_listing(j) == listing(torch.load(os.path.join(binonly, 'pytorch_model.bin'))),
                  'pytorch_model.bin folder', str(j.get('error', fj)))
        res.check(j.get('sidecar', {}).get('file', '').endswith('config.json'), 'config.json is the sidecar',
                  str(j.get('sidecar')))

        # --- sharded safetensors (model.safetensors.index.json), as save_pretrained shards them --
        sharded = os.path.join(tmp, 'sharded')
        os.makedirs(sharded)
        names = list(sd)
        halves = [collections.OrderedDict((k, sd[k]) for k in names[:2]),
                  collections.OrderedDict((k, sd[k]) for k in names[2:])]
        weight_map = {}
        for i, half in enumerate(halves):
            shard = 'model-%05d-of-%05d.safetensors' % (i + 1, len(halves))
            write_safetensors(os.path.join(sharded, shard), half, {'format': 'pt'})
            weight_map.update({k: shard for k in half})
        with open(os.path.join(sharded, 'model.safetensors.index.json'), 'w') as f:
            json.dump({'metadata': {'total_size': sum(v.numel() * v.element_size() for v in sd.values())},
                       'weight_map': weight_map}, f, indent=2, sort_keys=True)
        j = info_json(ckpt, sharded)
        res.check(j.get('folder', {}).get('model_file', '').endswith('model.safetensors.index.json') and
                  shown_listing(j) == listing(sd), 'sharded folder reads its index', str(j.get('error', j.get('folder'))))

        # --- sharded .bin (pytorch_model.bin.index.json): the shards are read through the index, and
        # said so; beside safetensors shards of the same weights they are the other format, not read.
        binsharded = os.path.join(tmp, 'binsharded')
        os.makedirs(binsharded)
        bin_map = {}
        for i, half in enumerate(halves):
            shard = 'pytorch_model-%05d-of-%05d.bin' % (i + 1, len(halves))
            torch.save(half, os.path.join(binsharded, shard))
            bin_map.update({k: shard for k in half})
        with open(os.path.join(binsharded, 'pytorch_model.bin.index.json'), 'w') as f:
            json.dump({'metadata': {'total_size': 0}, 'weight_map': bin_map}, f)
        j = info_json(ckpt, binsharded)
        roles = {p['name']: p['role'] for p in j.get('folder', {}).get('parts', [])}
        res.check(shown_listing(j) == listing(sd) and sorted(roles) == sorted(set(bin_map.values())) and
                  all(r == 'shard of the model weights (read through the index)' for r in roles.values()),
                  'sharded .bin folder: its shards are said to be read through the index', str(j.get('error', roles)))
        # An index that leaves a tensor out, or names the wrong shard for one: transformers loads
        # each shard whole, so the model gets every tensor the shards hold; both are read and said.
        left_out, wrong = os.path.join(tmp, 'index_left_out'), os.path.join(tmp, 'index_wrong_shard')
        for folder_copy, edit in ((left_out, lambda m: m.pop(names[-1])),
                                  (wrong, lambda m: m.__setitem__(names[0], m[names[-1]]))):
            shutil.copytree(binsharded, folder_copy)
            edited = dict(bin_map)
            edit(edited)
            with open(os.path.join(folder_copy, 'pytorch_model.bin.index.json'), 'w') as f:
                json.dump({'metadata': {}, 'weight_map': edited}, f)
            j = info_json(ckpt, folder_copy)
            said = ' '.join(j.get('warnings', []))
            res.check(shown_listing(j) == listing(sd), 'index disagreeing with its shards: every tensor the shards hold (%s)'
                      % os.path.basename(folder_copy), str(j.get('error', shown_listing(j))))
            res.check(('does not name (%s)' % names[-1]) in said if folder_copy == left_out else
                      ("'%s' is in 'pytorch_model-00001-of-00002.bin'" % names[0]) in said,
                      'index disagreeing with its shards is said (%s)' % os.path.basename(folder_copy), said)
        for shard in set(bin_map.values()):
            shutil.copy(os.path.join(binsharded, shard), os.path.join(sharded, shard))
        j = info_json(ckpt, sharded)
        roles = {p['name']: p['role'] for p in j.get('folder', {}).get('parts', [])}
        res.check(all(roles.get(s) == 'shard of the model weights in another format (not read)' for s in set(bin_map.values())),
                  'safetensors-sharded folder: the .bin shards are the other format', str(roles))

        # --- a transformers model's own "model." (LlamaForCausalLM.model): not offered to strip ---
        hf = os.path.join(tmp, 'hf_model_prefix')
        os.makedirs(hf)
        prefixed = collections.OrderedDict(('model.' + k, v) for k, v in sd.items())
        write_safetensors(os.path.join(hf, 'model.safetensors'), prefixed, {'format': 'pt'})
        loose = os.path.join(tmp, 'loose_prefixed.safetensors')
        write_safetensors(loose, prefixed, {'format': 'pt'})
        with open(os.path.join(hf, 'config.json'), 'w') as f:
            json.dump({'model_type': 'llama', 'tie_word_embeddings': False}, f)
        for src, offered in ((hf, False), (loose, True)):
            r = run(ckpt, 'convert', src, '--to', 'state-dict', '--json', '-o',
                    os.path.join(tmp, os.path.basename(src) + '_sd.pth'))
            try:
                plan = json.loads(r.stdout)
                plan = plan[0] if isinstance(plan, list) else plan
            except ValueError:
                plan = {}
            got = 'model.' in (plan.get('plan', plan).get('detected_prefixes') or [])
            res.check(r.returncode == 0 and got == offered,
                      "'model.' offered to --strip-prefix only without a transformers config (%s)" % os.path.basename(src),
                      r.stdout[:1500] + r.stderr)

        # --- PEFT adapter ---------------------------------------------------------------------
        peft = os.path.join(tmp, 'adapter')
        os.makedirs(peft)
        lora = collections.OrderedDict([('base_model.model.embed.lora_A.weight', torch.randn(4, 6)),
                                        ('base_model.model.embed.lora_B.weight', torch.zeros(12, 4))])
        write_safetensors(os.path.join(peft, 'adapter_model.safetensors'), lora)
        with open(os.path.join(peft, 'adapter_config.json'), 'w') as f:
            json.dump({'peft_type': 'LORA', 'r': 4, 'target_modules': ['embed']}, f)
        j = info_json(ckpt, peft)
        fj = j.get('folder', {})
        res.check(fj.get('layout') == 'Hugging Face (PEFT adapter)' and shown_listing(j) == listing(lora),
                  'PEFT adapter folder', str(j.get('error', fj)))

        # --- DeepSpeed --------------------------------------------------------------------------
        deepspeed_layouts.install_stubs(os.path.join(tmp, 'stubs'))
        ds = os.path.join(tmp, 'ds_run')
        os.makedirs(ds)
        model_states, _, truth = deepspeed_layouts.write_zero2(ds)
        base = truth['state']
        module = torch.load(model_states)['module']
        for where, path in (('save folder', ds), ('tag folder', os.path.join(ds, 'global_step500'))):
            j = info_json(ckpt, path)
            fj = j.get('folder', {})
            res.check(fj.get('layout', '').startswith('DeepSpeed') and
                      fj.get('model_file', '').endswith(os.path.join('global_step500', 'mp_rank_00_model_states.pt')),
                      'DeepSpeed ' + where + ': model states chosen', str(j.get('error', fj)))
            res.check(shown_listing(j) == listing(module), 'DeepSpeed ' + where + ': module is the state dict',
                      '%s vs %s' % (shown_listing(j), listing(module)))
            names = [p['name'] for p in fj.get('parts', [])]
            res.check(any(n.endswith('zero_pp_rank_0_mp_rank_00_optim_states.pt') for n in names),
                      'DeepSpeed ' + where + ': optimizer partition listed', str(names))
            summary = ' '.join(p.get('summary', '') for p in fj.get('parts', []) if p['name'].endswith('optim_states.pt'))
            res.check('AdamW' in summary and '%d groups' % len(base['param_groups']) in summary and
                      'step %d' % max(int(s['step']) for s in base['state'].values()) in summary,
                      'DeepSpeed ' + where + ': the partition\'s torch optimizer summed up', summary)

        # --- one file -----------------------------------------------------------------------------
        single = os.path.join(tmp, 'single')
        os.makedirs(single)
        torch.save({'state_dict': sd, 'epoch': 3}, os.path.join(single, 'best.ckpt'))
        with open(os.path.join(single, 'notes.txt'), 'w') as f:
            f.write('not a checkpoint')
        j = info_json(ckpt, single)
        res.check(j.get('folder', {}).get('layout') == 'single checkpoint file' and shown_listing(j) == listing(sd),
                  'folder with one checkpoint file', str(j.get('error', j.get('folder'))))

        # --- hostile folders ----------------------------------------------------------------------
        def error_of(path):
            r = run(ckpt, 'info', path)
            return r.returncode, r.stderr

        outside = os.path.join(tmp, 'outside')
        os.makedirs(outside)
        torch.save(sd, os.path.join(outside, 'mp_rank_00_model_states.pt'))
        for name, tag in (('parent', '../outside'), ('absolute', outside), ('dotdot', '..')):
            bad = os.path.join(tmp, 'latest_' + name)
            os.makedirs(bad)
            with open(os.path.join(bad, 'latest'), 'w') as f:
                f.write(tag)
            rc, err = error_of(bad)
            res.check(rc != 0 and bad in err and 'not followed' in err, 'latest naming ' + name + ' is refused', err)
        linked = os.path.join(tmp, 'latest_link')
        os.makedirs(linked)
        os.symlink(outside, os.path.join(linked, 'global_step1'))
        with open(os.path.join(linked, 'latest'), 'w') as f:
            f.write('global_step1')
        rc, err = error_of(linked)
        res.check(rc != 0 and 'leads out of the folder' in err, 'tag folder linking outside is refused', err)
        pointer = os.path.join(tmp, 'latest_is_link')
        os.makedirs(os.path.join(pointer, 'global_step1'))
        torch.save(sd, os.path.join(pointer, 'global_step1', 'mp_rank_00_model_states.pt'))
        with open(os.path.join(outside, 'tag'), 'w') as f:
            f.write('global_step1')
        os.symlink(os.path.join(outside, 'tag'), os.path.join(pointer, 'latest'))
        rc, err = error_of(pointer)
        res.check(rc != 0 and 'global_step1' in err and 'open one of them' in err, 'latest that is a link is not followed',
                  err)
        missing = os.path.join(tmp, 'latest_missing')
        os.makedirs(missing)
        with open(os.path.join(missing, 'latest'), 'w') as f:
            f.write('global_step900')
        rc, err = error_of(missing)
        res.check(rc != 0 and missing in err and "'global_step900', which is not there" in err,
                  'latest naming a missing tag', err)
        many = os.path.join(tmp, 'many')
        os.makedirs(many)
        for i in range(50):
            torch.save({'w': torch.zeros(1)}, os.path.join(many, 'epoch_%02d.pt' % i))
        rc, err = error_of(many)
        res.check(rc != 0 and '50 checkpoint files' in err and 'and 40 more' in err and 'name the one' in err
                  and 'epoch_49' not in err, 'many .pt files: a bounded list and what to do', err)
        empty = os.path.join(tmp, 'empty')
        os.makedirs(empty)
        rc, err = error_of(empty)
        res.check(rc != 0 and empty in err and 'no checkpoint file' in err, 'empty folder', err)
        run_dir = os.path.join(tmp, 'run')
        for step in (100, 200):
            os.makedirs(os.path.join(run_dir, 'checkpoint-%d' % step))
        rc, err = error_of(run_dir)
        res.check(rc != 0 and 'checkpoint-100, checkpoint-200' in err and 'open one of them' in err,
                  'run folder of checkpoint folders', err)
        # A folder of more entries than are looked at: the known names are still found, by name.
        crowded = os.path.join(tmp, 'crowded')
        os.makedirs(crowded)
        for i in range(10050):
            open(os.path.join(crowded, 'tok_%05d.txt' % i), 'w').close()
        rc, err = error_of(crowded)
        res.check(rc != 0 and 'among the first 10000 entries' in err, 'crowded folder: the bound is said', err)
        torch.save(sd, os.path.join(crowded, 'pytorch_model.bin'))
        r = run(ckpt, 'info', crowded)
        res.check(r.returncode == 0 and 'more than 10000 entries' in r.stdout, 'crowded folder still opens by name',
                  r.stdout[-500:] + r.stderr)
        huge = os.path.join(tmp, 'huge_state')
        os.makedirs(huge)
        torch.save(sd, os.path.join(huge, 'pytorch_model.bin'))
        with open(os.path.join(huge, 'trainer_state.json'), 'w') as f:
            f.write('{"log_history": [' + ','.join(['{"loss": 1.0, "step": %d}' % i for i in range(800000)]) +
                    '], "global_step": 1}')
        r = run(ckpt, 'info', huge)
        res.check(os.path.getsize(os.path.join(huge, 'trainer_state.json')) > 20e6 and r.returncode == 0 and
                  'trainer_state.json' in r.stdout and 'not read' in r.stdout and 'Training:' not in r.stdout,
                  'a 20 MB trainer_state.json is not read, the folder still opens', r.stdout[-800:] + r.stderr)
    return res.finish()


if __name__ == '__main__':
    sys.exit(main())
