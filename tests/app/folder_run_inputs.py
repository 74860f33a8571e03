#!/usr/bin/env python3
"""Inputs for tst_folderrun, written by torch 1.13, with expected.json saying what torch and json say
of them:
- a Hugging Face Trainer checkpoint folder (checkpoint-500/, as tests/cli/test_folder_vs_torch.py
  writes it: model.safetensors beside optimizer.pt, an AdamW of two param groups that took 3 steps):
  the optimizer's param groups, each parameter's name (torch's own, by the parameter objects the
  optimizer holds), and the L2 norm of each state tensor;
- a Trainer output_dir (run/) of checkpoint-5, checkpoint-10 and checkpoint-100 (text order puts
  checkpoint-10 first), each with its trainer_state.json global_step;
- a file of 20 optimizers (more than the 16 read) beside one model;
- a PEFT LoRA adapter's weights, whose convention is said in a long sentence."""
import argparse
import collections
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'cli'))
sys.path.insert(0, os.path.join(HERE, '..', 'fixtures'))
import test_folder_vs_torch  # noqa: E402

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from generate_fixtures import write_safetensors  # noqa: E402


def trainer_optimizer(out):
    folder, sd, osd, _, state = test_folder_vs_torch.trainer_checkpoint(out)
    # Rebuild the same run to know each id's parameter by the objects themselves (not by shape).
    torch.manual_seed(1)
    net = test_folder_vs_torch.Net()
    groups = [[net.embed.weight, net.head.weight], [net.embed.bias, net.head.bias]]
    name_of = {id(p): n for n, p in net.named_parameters()}
    names = [name_of[id(p)] for g in groups for p in g]
    saved = torch.load(os.path.join(folder, 'optimizer.pt'))
    norms = {}
    for pid, st in saved['state'].items():
        for key, value in st.items():
            if torch.is_tensor(value) and value.dim() > 0:
                norms['%s/%s' % (names[pid], key)] = float(value.double().norm())
    return {
        'folder': folder,
        'parameter_names': names,  # by id
        'weight_decay': [g['weight_decay'] for g in saved['param_groups']],
        'group_sizes': [len(g['params']) for g in saved['param_groups']],
        'state_norms': norms,
        'states': len(saved['state']),
    }


def run_folder(out):
    run = os.path.join(out, 'run')
    os.makedirs(run)
    steps = [100, 5, 10]  # written out of order
    for step in steps:
        folder, sd, _, _, state = test_folder_vs_torch.trainer_checkpoint(run, step=step)
        write_safetensors(os.path.join(folder, 'model.safetensors'),
                          collections.OrderedDict((k, v + step / 100.0) for k, v in sd.items()), {'format': 'pt'})
    return {'run': run, 'run_order': ['checkpoint-%d' % s for s in sorted(steps)], 'run_steps': sorted(steps)}


def many_optimizers(out):
    torch.manual_seed(2)
    net = nn.Linear(3, 2)
    path = os.path.join(out, 'many_optimizers.pt')
    obj = {'model': net.state_dict()}
    for i in range(20):
        obj['optimizer_%02d' % i] = torch.optim.SGD(net.parameters(), lr=0.01 * (i + 1)).state_dict()
    torch.save(obj, path)
    two = os.path.join(out, 'two_optimizers.pt')
    torch.save({k: obj[k] for k in ('model', 'optimizer_00', 'optimizer_01')}, two)
    return {'many_optimizers': path, 'optimizer_count': 20, 'two_optimizers': two}


def long_conventions(out):
    """A PEFT LoRA adapter's weights (save_pretrained's adapter_model.bin keys): its convention is a
    long sentence."""
    torch.manual_seed(3)
    sd = collections.OrderedDict()
    for layer in range(2):
        for proj in ('q_proj', 'v_proj'):
            key = 'base_model.model.model.decoder.layers.%d.self_attn.%s' % (layer, proj)
            sd[key + '.lora_A.weight'] = torch.randn(8, 64)
            sd[key + '.lora_B.weight'] = torch.zeros(64, 8)
    path = os.path.join(out, 'adapter_model.bin')
    torch.save(sd, path)
    return {'lora': path, 'lora_rank': 8}


def output_dir(out):
    """A Trainer's output_dir after save_model(): the final model at its top, the run's checkpoint
    folders beside it (written out of order)."""
    root = os.path.join(out, 'output_dir')
    os.makedirs(root)
    for step in (30, 10, 20):
        folder, sd, _, _, _ = test_folder_vs_torch.trainer_checkpoint(root, step=step)
    write_safetensors(os.path.join(root, 'model.safetensors'), sd, {'format': 'pt'})
    return {'output_dir': root, 'output_dir_runs': ['checkpoint-10', 'checkpoint-20', 'checkpoint-30']}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', required=True)
    out = ap.parse_args().out
    expected = {}
    expected.update(trainer_optimizer(out))
    expected.update(run_folder(out))
    expected.update(many_optimizers(out))
    expected.update(long_conventions(out))
    expected.update(output_dir(out))
    with open(os.path.join(out, 'expected.json'), 'w') as f:
        json.dump(expected, f)


if __name__ == '__main__':
    main()
