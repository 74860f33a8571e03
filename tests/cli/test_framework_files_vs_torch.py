#!/usr/bin/env python3
"""Training frameworks' files judged by PyTorch, on files torch 1.13 writes here as the frameworks
lay them out (Lightning's dump_checkpoint and callbacks' state_dict, PEFT's
get_peft_model_state_dict), without the frameworks installed:
- a GAN's optimizers, Lightning's optimizer_states list and a dict's optimizer_G / optimizer_D: info
  (text and JSON) names every optimizer with its class, groups, step and the weights it updates,
  where the shapes tell it, and says so where they cannot;
- Lightning's ModelCheckpoint and EarlyStopping states: the monitored metric, best score (a 0-d
  tensor, shown as its .item()) and best path in info's text and JSON;
- a LightningModule's attributes: the one prefix every key carries, offered to --strip-prefix, or
  the several it spreads over;
- a PEFT LoRA adapter: recognised, its rank and targets as its tensors give them, and said not to
  be the model, in info and in convert's plan."""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'fixtures'))
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import framework_stubs  # noqa: E402
from results import Results  # noqa: E402


def run(ckpt, *args):
    return subprocess.run([ckpt, *args], capture_output=True, text=True, timeout=120)


def info(ckpt, path):
    r = run(ckpt, 'info', path, '--json')
    return json.loads(r.stdout) if r.returncode == 0 else {'error': r.stderr}


def mlp(sizes):
    layers = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


class GAN(nn.Module):
    def __init__(self, g_sizes, d_sizes):
        super().__init__()
        self.generator = mlp(g_sizes)
        self.discriminator = mlp(d_sizes)


def trained_gan(g_sizes, d_sizes):
    torch.manual_seed(0)
    gan = GAN(g_sizes, d_sizes)
    opt_g = torch.optim.Adam(gan.generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.AdamW(gan.discriminator.parameters(), lr=1e-4, weight_decay=0.01)
    for _ in range(3):
        z = torch.randn(5, g_sizes[0])
        fake = gan.generator(z)
        opt_d.zero_grad()
        gan.discriminator(fake.detach()).mean().backward()
        opt_d.step()
        opt_g.zero_grad()
        (-gan.discriminator(fake).mean()).backward()
        opt_g.step()
    return gan, opt_g, opt_d


def step_of(sd):
    steps = [float(s['step']) for s in sd['state'].values() if 'step' in s]
    return int(max(steps)) if steps else None


def attribute_of(model, opt):
    """The attribute of `model` every parameter `opt` updates is under, as named_parameters() names them."""
    name_of = {id(p): n for n, p in model.named_parameters()}
    heads = {name_of[id(p)].split('.')[0] for g in opt.param_groups for p in g['params']}
    return heads.pop() + '.' if len(heads) == 1 else None


def check_optimizers(res, where, j, text, want):
    """`want`: (path, torch optimizer, expected `updates`: (known, words it names)) in file order."""
    got = j.get('optimizers', [])
    res.check(len(got) == len(want), '%s: one entry per optimizer' % where, str(got))
    by_path = {'/'.join(o['path']): o for o in got}
    for path, opt, (known, words) in want:
        o = by_path.get(path)
        if not res.check(o is not None, '%s: %s listed' % (where, path), str(list(by_path))):
            continue
        sd = opt.state_dict()
        res.check(o['type'] == type(opt).__name__, '%s: %s class' % (where, path), o['type'])
        res.check(o['param_groups'] == len(sd['param_groups']) and
                  o['parameters'] == sum(len(g['params']) for g in sd['param_groups']) and
                  o['states'] == len(sd['state']) and o['step'] == step_of(sd),
                  '%s: %s groups, parameters, states, step' % (where, path), str(o))
        u = o.get('updates', {})
        res.check(u.get('known') is known and all(w in u.get('note', '') for w in words),
                  '%s: %s updates %s' % (where, path, words), str(u))
        line = 'Optimizer: %s \u2014 %s, %d parameter states, step %d' % (path, type(opt).__name__, len(sd['state']),
                                                                          step_of(sd))
        res.check(line in text and (not words or all(w in text for w in words)),
                  '%s: text names %s' % (where, path), text)


def check_gans(ckpt, tmp, res):
    gan, opt_g, opt_d = trained_gan([6, 16, 4], [4, 12, 1])
    callbacks = {
        "ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min', 'every_n_train_steps': 0, 'every_n_epochs': 1, "
        "'train_time_interval': None}": {
            'monitor': 'val_loss', 'best_model_score': torch.tensor(0.23456), 'best_model_path':
            '/runs/gan/epoch=1-step=40.ckpt', 'current_score': torch.tensor(0.31), 'dirpath': '/runs/gan',
            'best_k_models': {'/runs/gan/epoch=1-step=40.ckpt': torch.tensor(0.23456)},
            'kth_best_model_path': '/runs/gan/epoch=1-step=40.ckpt', 'kth_value': torch.tensor(0.23456),
            'last_model_path': ''},
        "EarlyStopping{'monitor': 'val_loss', 'mode': 'min'}": {
            'wait_count': 2, 'stopped_epoch': 0, 'best_score': torch.tensor(0.23456), 'patience': 5},
    }
    from pytorch_lightning.utilities.parsing import AttributeDict
    path = os.path.join(tmp, 'gan_lightning.ckpt')
    torch.save({'epoch': 2, 'global_step': 40, 'pytorch-lightning_version': '2.1.0', 'state_dict': gan.state_dict(),
                'loops': {'fit_loop': {'epoch_progress': {'current': {'completed': 2}}}}, 'callbacks': callbacks,
                'optimizer_states': [opt_g.state_dict(), opt_d.state_dict()], 'lr_schedulers': [],
                'hyper_parameters': AttributeDict(lr=2e-4)}, path)
    j, text = info(ckpt, path), run(ckpt, 'info', path).stdout
    check_optimizers(res, 'lightning GAN', j, text, [
        ('optimizer_states/0', opt_g, (True, ["'%s'" % attribute_of(gan, opt_g)])),
        ('optimizer_states/1', opt_d, (True, ["'%s'" % attribute_of(gan, opt_d)]))])
    # Each updates its own part of the one state dict: both are the model's, none "paired by order".
    res.check('paired by order' not in text and not any('paired by order' in w for w in j.get('warnings', [])),
              'lightning GAN: no doubt about the pairing of optimizers that update different parts', text)

    # The callbacks' states, the 0-d tensors as Python's .item() gives them.
    (mc_key, mc), (es_key, es) = callbacks.items()
    got = {c['callback']: c for c in j.get('callbacks', [])}
    m = got.get('ModelCheckpoint', {}).get('state', {})
    res.check(m.get('monitor') == mc['monitor'] and m.get('best_model_score') == mc['best_model_score'].item() and
              m.get('best_model_path') == mc['best_model_path'] and
              m.get('current_score') == mc['current_score'].item(), 'callbacks JSON: ModelCheckpoint', str(got))
    e = got.get('EarlyStopping', {}).get('state', {})
    res.check(e.get('monitor') == 'val_loss' and e.get('wait_count') == es['wait_count'] and
              e.get('best_score') == es['best_score'].item() and e.get('patience') == es['patience'],
              'callbacks JSON: EarlyStopping', str(got))
    res.check("Callback: ModelCheckpoint: monitor %r, mode 'min', best_model_score %r, best_model_path %r" %
              (mc['monitor'], mc['best_model_score'].item(), mc['best_model_path']) in text,
              'callbacks text: ModelCheckpoint as Python prints its values', text)
    res.check('Callback: EarlyStopping: monitor %r, mode \'min\', wait_count %r, patience %r, best_score %r' %
              ('val_loss', es['wait_count'], es['patience'], es['best_score'].item()) in text,
              'callbacks text: EarlyStopping', text)

    # A dict with a network and an optimizer each, the discriminator's optimizer first.
    path = os.path.join(tmp, 'gan_dict.pt')
    torch.save({'generator': gan.generator.state_dict(), 'discriminator': gan.discriminator.state_dict(),
                'optimizer_D': opt_d.state_dict(), 'optimizer_G': opt_g.state_dict(), 'epoch': 5}, path)
    j, text = info(ckpt, path), run(ckpt, 'info', path).stdout
    check_optimizers(res, 'dict GAN', j, text, [
        ('optimizer_D', opt_d, (True, ["'discriminator'"])), ('optimizer_G', opt_g, (True, ["'generator'"]))])
    res.check([o['primary'] for o in j.get('optimizers', [])] == [False, True] and
              text.index('Optimizer: optimizer_G') < text.index('Optimizer: optimizer_D'),
              'dict GAN: the generator\'s optimizer (the model\'s) first in the text', text)

    # Two networks of the same shapes: shapes cannot tell which optimizer is whose, and info says so.
    twin, opt_a, opt_b = trained_gan([4, 8, 4], [4, 8, 4])
    path = os.path.join(tmp, 'gan_twins.pt')
    torch.save({'gen': twin.generator.state_dict(), 'disc': twin.discriminator.state_dict(),
                'gen_opt': opt_a.state_dict(), 'disc_opt': opt_b.state_dict()}, path)
    j, text = info(ckpt, path), run(ckpt, 'info', path).stdout
    check_optimizers(res, 'twin GAN', j, text, [
        ('gen_opt', opt_a, (False, ['cannot be told'])), ('disc_opt', opt_b, (False, ['cannot be told']))])

    # More optimizers than are read (a hostile or odd file: 20 distinct states in Lightning's list):
    # the first 16 are listed and info says the file holds more, rather than implying that is all.
    states = []
    for i in range(20):
        opt = torch.optim.SGD(gan.generator.parameters(), lr=0.01 * (i + 1))
        states.append(opt.state_dict())
    path = os.path.join(tmp, 'many_optimizers.ckpt')
    torch.save({'epoch': 1, 'state_dict': gan.state_dict(), 'optimizer_states': states}, path)
    j, text = info(ckpt, path), run(ckpt, 'info', path).stdout
    res.check(len(j.get('optimizers', [])) == 16 and j.get('optimizers_cut') is True,
              '20 optimizers: 16 listed, optimizers_cut in JSON', str(len(j.get('optimizers', []))) + str(j.get('error')))
    res.check('holds more than the 16 listed' in text, '20 optimizers: the text says more are not listed', text[-1500:])
    path = os.path.join(tmp, 'two_optimizers.ckpt')
    torch.save({'epoch': 1, 'state_dict': gan.state_dict(), 'optimizer_states': states[:2]}, path)
    j = info(ckpt, path)
    res.check(len(j.get('optimizers', [])) == 2 and 'optimizers_cut' not in j, '2 optimizers: not cut', str(j.get('optimizers')))


def check_prefixes(ckpt, tmp, res):
    class One(nn.Module):
        def __init__(self, attr):
            super().__init__()
            setattr(self, attr, mlp([4, 8, 2]))

    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = mlp([4, 8, 8])
            self.head = nn.Linear(8, 3)

    for attr in ('net', 'model'):
        sd = One(attr).state_dict()
        heads = {k.split('.')[0] for k in sd}
        path = os.path.join(tmp, 'lightning_%s.ckpt' % attr)
        torch.save({'pytorch-lightning_version': '2.1.0', 'state_dict': sd, 'epoch': 1}, path)
        text = run(ckpt, 'info', path).stdout
        prefix = heads.pop() + '.'
        res.check(len(heads) == 0 and "Convention: keys carry Lightning's '%s' prefix" % prefix in text and
                  '--strip-prefix %s removes it' % prefix in text,
                  'lightning %s.: the one prefix, offered to strip' % attr, text)
    sd = Two().state_dict()
    path = os.path.join(tmp, 'lightning_two.ckpt')
    torch.save({'pytorch-lightning_version': '2.1.0', 'state_dict': sd, 'epoch': 1}, path)
    text = run(ckpt, 'info', path).stdout
    counts = {}
    for k in sd:
        counts[k.split('.')[0] + '.'] = counts.get(k.split('.')[0] + '.', 0) + 1
    want = ', '.join("'%s' (%d keys)" % kv for kv in counts.items())
    res.check("keys start with the LightningModule's attributes %s: no one prefix covers every key" % want in text and
              '--strip-prefix' not in text, 'lightning backbone. + head.: both listed, none offered', text)


def check_lora(ckpt, tmp, res):
    torch.manual_seed(0)
    r = 8
    sd = {}
    # get_peft_model_state_dict: the adapter's name taken out of each key, the wrapper's kept.
    for layer in range(2):
        for proj, (n_in, n_out) in (('q_proj', (32, 32)), ('v_proj', (32, 16))):
            base = 'base_model.model.layers.%d.self_attn.%s' % (layer, proj)
            sd[base + '.lora_A.weight'] = nn.Linear(n_in, r, bias=False).weight.detach()
            sd[base + '.lora_B.weight'] = torch.zeros(n_out, r)
    sd['base_model.model.embed_tokens.lora_embedding_A'] = torch.randn(r, 100)
    sd['base_model.model.embed_tokens.lora_embedding_B'] = torch.zeros(32, r)
    classifier = nn.Linear(32, 5)  # modules_to_save: kept whole
    sd['base_model.model.classifier.weight'] = classifier.weight.detach()
    sd['base_model.model.classifier.bias'] = classifier.bias.detach()
    path = os.path.join(tmp, 'adapter_model.bin')
    torch.save(sd, path)

    ranks = {v.shape[0] for k, v in sd.items() if '.lora_A.' in k or k.endswith('lora_embedding_A')}
    modules = [k.rsplit('.lora_', 1)[0] for k in sd if '.lora_A.' in k or k.endswith('lora_embedding_A')]
    targets = list(dict.fromkeys(m.rsplit('.', 1)[1] for m in modules))
    whole = [k for k in sd if 'lora_' not in k]
    want = 'LoRA adapter (PEFT): rank %d on %d modules (targets: %s), with %d tensors of modules kept whole ' \
           '(modules_to_save: classifier). An adapter alone is not the model' % (
               ranks.pop(), len(modules), ', '.join(targets), len(whole))
    j = info(ckpt, path)
    res.check(any(c.startswith(want) for c in j.get('conventions', [])), 'LoRA: convention in JSON',
              '%s\nwant %s' % (j.get('conventions'), want))
    text = run(ckpt, 'info', path).stdout
    res.check('Convention: ' + want in text, 'LoRA: convention in the text', text)
    for target in ('inference', 'full-model'):
        out = os.path.join(tmp, 'adapter_%s.pt' % target)
        c = run(ckpt, 'convert', path, '--to', target, '-o', out)
        said = c.stdout + c.stderr
        res.check('is a LoRA adapter (rank %d on %d modules), not the model' % (r, len(modules)) in said,
                  'LoRA: convert --to %s says the output is no model' % target, said)
    # A PeftModel's whole state dict: the base layers' weights beside the adapter (older PEFT names them
    # q_proj.weight, PEFT >= 0.7 q_proj.base_layer.weight): the model, its adapter not merged.
    for base_layer in ('', '.base_layer'):
        whole_sd = dict(sd)
        for k in [k for k in sd if '.lora_A.' in k]:
            module = k.rsplit('.lora_A.', 1)[0]
            whole_sd[module + base_layer + '.weight'] = torch.randn(sd[module + '.lora_B.weight'].shape[0],
                                                                      sd[k].shape[1])
        whole_path = os.path.join(tmp, 'peft_model%s.pt' % base_layer.replace('.', '_'))
        torch.save(whole_sd, whole_path)
        conventions = info(ckpt, whole_path).get('conventions', [])
        res.check(any(c.startswith('model with a LoRA adapter (PEFT), not merged: rank %d on %d modules' %
                                   (r, len(modules))) for c in conventions) and
                  not any('not the model' in c for c in conventions),
                  'LoRA: the base weights%s beside the adapter are the model' % base_layer, str(conventions))
        c = run(ckpt, 'convert', whole_path, '--to', 'inference', '-o', os.path.join(tmp, 'peft_inference%s.pt' % base_layer.replace('.', '_')))
        res.check(c.returncode == 0 and 'not the model' not in c.stdout,
                  'LoRA: convert of the model with its adapter%s is not warned' % base_layer, c.stdout + c.stderr)
    c = run(ckpt, 'convert', path, '--to', 'safetensors', '-o', os.path.join(tmp, 'adapter_model.safetensors'))
    res.check(c.returncode == 0 and 'not the model' not in c.stdout,
              'LoRA: convert --to safetensors (an adapter file again) is not warned', c.stdout + c.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    ap.add_argument('--fixtures')
    a = ap.parse_args()
    res = Results()
    tmp = tempfile.mkdtemp(prefix='ckpt-framework-files-')
    framework_stubs.install(os.path.join(tmp, 'stubs'))
    check_gans(a.ckpt, tmp, res)
    check_prefixes(a.ckpt, tmp, res)
    check_lora(a.ckpt, tmp, res)
    return res.finish()


if __name__ == '__main__':
    sys.exit(main())
