#!/usr/bin/env python3
"""The conversion pane's LoRA merge judged by PyTorch.
Usage: check_lora_merge.py make DIR      -- writes DIR/base.pth and DIR/adapter/ (as PEFT saves an adapter)
       check_lora_merge.py check OUTPUT DIR  -- torch.load(OUTPUT) must be the base with the adapter merged
                                               as PEFT's merge_and_unload merges it (computed here with torch)."""
import collections
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'cli'))
sys.path.insert(0, os.path.join(HERE, '..', 'fixtures'))
import torch  # noqa: E402
import test_lora_merge_vs_torch as lora  # noqa: E402


def main():
    if sys.argv[1] == 'make':
        d = sys.argv[2]
        sd = lora.base_state_dict()
        torch.save(sd, os.path.join(d, 'base.pth'))
        torch.manual_seed(3)
        adapter = collections.OrderedDict()
        for module, kind in (('q_proj', 'linear'), ('conv3', 'conv'), ('embed', 'embedding')):
            a, b = lora.factors(sd, module, 4, kind)
            part = ('lora_embedding_%s', '') if kind == 'embedding' else ('lora_%s', '.weight')
            adapter[lora.PREFIX + module + '.' + part[0] % 'A' + part[1]] = a
            adapter[lora.PREFIX + module + '.' + part[0] % 'B' + part[1]] = b
        lora.write_adapter(os.path.join(d, 'adapter'), adapter,
                           {'peft_type': 'LORA', 'r': 4, 'lora_alpha': 8, 'target_modules': ['q_proj', 'conv3', 'embed']})
        torch.save(adapter, os.path.join(d, 'factors.pth'))
        return 0
    out, d = sys.argv[2], sys.argv[3]
    sd = torch.load(os.path.join(d, 'base.pth'))
    adapter = torch.load(os.path.join(d, 'factors.pth'))
    want = collections.OrderedDict(sd)
    for module, kind in (('q_proj', 'linear'), ('conv3', 'conv'), ('embed', 'embedding')):
        part = ('lora_embedding_%s', '') if kind == 'embedding' else ('lora_%s', '.weight')
        a = adapter[lora.PREFIX + module + '.' + part[0] % 'A' + part[1]]
        b = adapter[lora.PREFIX + module + '.' + part[0] % 'B' + part[1]]
        want[module + '.weight'] = lora.merged(sd[module + '.weight'], lora.delta(kind, a, b, 8 / 4, False))
    got = torch.load(out)
    bad = [k for k in want if k not in got or not lora.close(got[k], want[k])]
    if list(got) != list(want) or bad:
        print('keys', list(got), 'not as PEFT merges them:', bad)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
