#!/usr/bin/env python3
"""`ckpt convert BASE --merge-lora ADAPTER` judged by PyTorch: adapters laid out as PEFT's
save_pretrained writes them (adapter_config.json beside adapter_model.safetensors or .bin, keys as
get_peft_model_state_dict makes them, with and without the adapter name), merged into a base of
Linear layers, an Embedding, Conv2d 1x1 and 3x3 and GPT-2-style Conv1D weights (fan_in_fan_out).
The expected weights are computed here with torch, following PEFT's get_delta_weight and merge
(delta in float32, `W += delta` in W's dtype); `torch.load` of the output must give them, the
untouched tensors bit for bit. Refusals (DoRA, a shape that does not fit, a target the base lacks,
a rank that is not the config's) exit non-zero with the reason and write nothing."""
import argparse
import collections
import json
import math
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'fixtures'))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from generate_fixtures import write_safetensors  # noqa: E402
from results import Results  # noqa: E402

PREFIX = 'base_model.model.'


def run(ckpt, *args):
    p = subprocess.run([ckpt, *args], capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def base_state_dict(dtype=torch.float32):
    """A small model's weights: what torch.save(model.state_dict()) of such a model holds."""
    torch.manual_seed(0)
    sd = collections.OrderedDict()
    sd['embed.weight'] = torch.randn(20, 8)                 # nn.Embedding(20, 8)
    sd['q_proj.weight'] = torch.randn(12, 8)                # nn.Linear(8, 12)
    sd['q_proj.bias'] = torch.randn(12)
    sd['v_proj.weight'] = torch.randn(6, 8)                 # nn.Linear(8, 6)
    sd['v_proj.bias'] = torch.randn(6)
    sd['conv1.weight'] = torch.randn(5, 3, 1, 1)            # nn.Conv2d(3, 5, 1)
    sd['conv1.bias'] = torch.randn(5)
    sd['conv3.weight'] = torch.randn(5, 3, 3, 3)            # nn.Conv2d(3, 5, 3)
    sd['conv3.bias'] = torch.randn(5)
    sd['h.0.attn.c_attn.weight'] = torch.randn(8, 24)       # transformers' Conv1D(24, 8): [in, out]
    sd['h.0.attn.c_attn.bias'] = torch.randn(24)
    sd['h.0.attn.c_proj.weight'] = torch.randn(8, 8)        # a square Conv1D: the config says which way
    sd['h.0.attn.c_proj.bias'] = torch.randn(8)
    sd['classifier.weight'] = torch.randn(4, 8)
    sd['classifier.bias'] = torch.randn(4)
    sd['norm.weight'] = torch.ones(8)
    return collections.OrderedDict((k, v.to(dtype)) for k, v in sd.items())


def factors(sd, module, r, kind):
    """lora_A / lora_B for a module, random (B non-zero, as after training)."""
    w = sd[module + '.weight']
    if kind == 'embedding':
        return torch.randn(r, w.shape[0]), torch.randn(w.shape[1], r)
    if kind == 'conv':
        return torch.randn(r, w.shape[1], w.shape[2], w.shape[3]), torch.randn(w.shape[0], r, 1, 1)
    if kind == 'conv1d':
        return torch.randn(r, w.shape[0]), torch.randn(w.shape[1], r)
    return torch.randn(r, w.shape[1]), torch.randn(w.shape[0], r)


def delta(kind, a, b, scaling, fan_in_fan_out):
    """PEFT's get_delta_weight, in float32 (the factors' dtype as PEFT loads them)."""
    a, b = a.float(), b.float()
    if kind == 'embedding':
        return (b @ a).T * scaling
    if kind == 'conv':
        if a.shape[2:4] == (1, 1):
            return (b.squeeze(3).squeeze(2) @ a.squeeze(3).squeeze(2)).unsqueeze(2).unsqueeze(3) * scaling
        return F.conv2d(a.permute(1, 0, 2, 3), b).permute(1, 0, 2, 3) * scaling
    d = b @ a
    return (d.T if fan_in_fan_out else d) * scaling


def merged(w, d):
    """PEFT's merge: base_layer.weight.data += delta_weight (computed in the wider type, rounded once)."""
    out = w.clone()
    out += d
    return out


def write_adapter(folder, tensors, config, as_bin=False):
    os.makedirs(folder, exist_ok=True)
    if as_bin:
        torch.save(tensors, os.path.join(folder, 'adapter_model.bin'))
    else:
        write_safetensors(os.path.join(folder, 'adapter_model.safetensors'), tensors)
    with open(os.path.join(folder, 'adapter_config.json'), 'w') as f:
        json.dump(config, f)


def close(ours, want):
    if ours.dtype != want.dtype or ours.shape != want.shape:
        return False
    if want.dtype in (torch.float16, torch.bfloat16):
        # Elementwise the same arithmetic, rounded once: bit for bit (a delta rounded to the
        # weight's dtype before the sum, as older PEFT did with float16 factors, differs here).
        return torch.equal(ours, want)
    return torch.allclose(ours, want, rtol=1e-6, atol=1e-6)


def check_output(res, where, out, want, changed):
    try:
        got = torch.load(out)
    except Exception as e:  # noqa: BLE001
        res.check(False, where + ': torch.load of the output', str(e))
        return
    res.check(list(got.keys()) == list(want.keys()), where + ': the base\'s keys, in order', str(list(got.keys())))
    for k, v in want.items():
        if k not in got:
            continue
        if k in changed:
            res.check(close(got[k], v), where + ': %s merged as PEFT merges it' % k,
                      'max diff %s' % (got[k].double() - v.double()).abs().max().item() if got[k].shape == v.shape else
                      str(got[k].shape))
        else:
            res.check(got[k].dtype == v.dtype and torch.equal(got[k], v), where + ': %s untouched, bit for bit' % k)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    args = ap.parse_args()
    ckpt = args.ckpt
    res = Results()
    with tempfile.TemporaryDirectory() as tmp:
        # 1. float32 base, safetensors adapter without the adapter name (get_peft_model_state_dict),
        #    GPT-2's fan_in_fan_out, rank_pattern / alpha_pattern, a bias (lora_only) and modules_to_save.
        sd = base_state_dict()
        base = os.path.join(tmp, 'base.pth')
        torch.save(sd, base)
        torch.manual_seed(1)
        config = {'peft_type': 'LORA', 'r': 4, 'lora_alpha': 16, 'fan_in_fan_out': True, 'use_rslora': False,
                  'bias': 'lora_only', 'target_modules': ['embed', 'q_proj', 'v_proj', 'conv1', 'conv3', 'c_attn', 'c_proj'],
                  'rank_pattern': {'v_proj': 2, r'h\.\d+\.attn\.c_proj': 3}, 'alpha_pattern': {'conv3': 7},
                  'modules_to_save': ['classifier']}
        layout = [('embed', 'embedding', 4, 16), ('q_proj', 'linear', 4, 16), ('v_proj', 'linear', 2, 16),
                  ('conv1', 'conv', 4, 16), ('conv3', 'conv', 4, 7), ('h.0.attn.c_attn', 'conv1d', 4, 16),
                  ('h.0.attn.c_proj', 'conv1d', 3, 16)]
        adapter = collections.OrderedDict()
        want = collections.OrderedDict(sd)
        changed = set()
        for module, kind, r, alpha in layout:
            a, b = factors(sd, module, r, kind)
            if kind == 'embedding':
                adapter[PREFIX + module + '.lora_embedding_A'] = a
                adapter[PREFIX + module + '.lora_embedding_B'] = b
            else:
                adapter[PREFIX + module + '.lora_A.weight'] = a
                adapter[PREFIX + module + '.lora_B.weight'] = b
            want[module + '.weight'] = merged(sd[module + '.weight'], delta(kind, a, b, alpha / r, kind == 'conv1d'))
            changed.add(module + '.weight')
        adapter[PREFIX + 'q_proj.bias'] = torch.randn(12)          # bias="lora_only": the trained bias
        adapter[PREFIX + 'classifier.weight'] = torch.randn(4, 8)  # modules_to_save, as PEFT saves it
        adapter[PREFIX + 'classifier.bias'] = torch.randn(4)
        for k in ('q_proj.bias', 'classifier.weight', 'classifier.bias'):
            want[k] = adapter[PREFIX + k]
            changed.add(k)
        folder = os.path.join(tmp, 'adapter')
        write_adapter(folder, adapter, config)
        out = os.path.join(tmp, 'merged.pth')
        code, so, se = run(ckpt, 'convert', base, '--to', 'state-dict', '--merge-lora', folder, '-o', out)
        res.check(code == 0, 'fp32 folder: convert --merge-lora succeeds', so + se)
        check_output(res, 'fp32 folder', out, want, changed)
        res.check('merged LoRA adapter' in so and 'h.0.attn.c_proj.weight (conv1d, fan_in_fan_out' in so,
                  'fp32 folder: the plan says what was merged', so)
        code, so, se = run(ckpt, 'info', out, '--json')
        res.check(code == 0 and 'LoRA' not in so and 'adapter' not in so.lower(),
                  'info of the merged model: no adapter any more', so[:2000] + se)

        # The adapter file named directly, written --to safetensors: the same tensors.
        out_st = os.path.join(tmp, 'merged.safetensors')
        code, so, se = run(ckpt, 'convert', base, '--merge-lora', os.path.join(folder, 'adapter_model.safetensors'),
                           '--to', 'safetensors', '-o', out_st, '--json')
        res.check(code == 0 and len(json.loads(so).get('lora', {}).get('merged', [])) == len(layout),
                  'safetensors target from the adapter file: JSON lists the merged weights', so + se)
        back = os.path.join(tmp, 'back.pth')
        if code == 0:
            code, so, se = run(ckpt, 'convert', out_st, '--to', 'state-dict', '-o', back)
            res.check(code == 0, 'safetensors output converts back', so + se)
            check_output(res, 'safetensors target', back, want, changed)

        # 2. float16 and bfloat16 bases, a .bin adapter whose keys keep the adapter name ("default"),
        #    use_rslora, fan_in_fan_out false, factors saved in float16 / bfloat16 / float32; PEFT
        #    >= 0.4.0's .base_layer. keys in the base. PEFT loads the factors as float32
        #    (autocast_adapter_dtype) and adds the float32 delta to the weight: one rounding.
        for dtype in (torch.float16, torch.bfloat16):
            name = str(dtype).split('.')[-1]
            sd16 = base_state_dict(dtype)
            layered = collections.OrderedDict()
            for k, v in sd16.items():
                layered[k.replace('q_proj.', 'q_proj.base_layer.')] = v
            base16 = os.path.join(tmp, 'base_%s.pth' % name)
            torch.save(layered, base16)
            torch.manual_seed(2)
            cfg = {'peft_type': 'LORA', 'r': 8, 'lora_alpha': 5, 'use_rslora': True, 'fan_in_fan_out': False,
                   'target_modules': ['q_proj', 'embed', 'conv3']}
            ad = collections.OrderedDict()
            want16 = collections.OrderedDict(sd16)
            changed16 = set()
            for module, kind in (('q_proj', 'linear'), ('embed', 'embedding'), ('conv3', 'conv')):
                a, b = factors(sd16, module, 8, kind)
                a, b = a.to(dtype), b.to(dtype)
                if kind == 'embedding':
                    ad[PREFIX + module + '.lora_embedding_A.default'] = a
                    ad[PREFIX + module + '.lora_embedding_B.default'] = b
                else:
                    ad[PREFIX + module + '.lora_A.default.weight'] = a
                    ad[PREFIX + module + '.lora_B.default.weight'] = b
                want16[module + '.weight'] = merged(sd16[module + '.weight'], delta(kind, a, b, 5 / math.sqrt(8), False))
                changed16.add(module + '.weight')
            f16 = os.path.join(tmp, 'adapter_%s' % name)
            write_adapter(f16, ad, cfg, as_bin=True)
            out16 = os.path.join(tmp, 'merged_%s.pth' % name)
            code, so, se = run(ckpt, 'convert', base16, '--to', 'state-dict', '--merge-lora', f16, '-o', out16)
            res.check(code == 0, '%s: convert --merge-lora of a .bin adapter succeeds' % name, so + se)
            res.check('renamed q_proj.base_layer.weight -> q_proj.weight' in so, '%s: base_layer. renamed' % name, so)
            check_output(res, name, out16, want16, changed16)

        # 3. Refusals: non-zero exit, the reason, nothing written.
        def refused(where, tensors, cfg, needles):
            f = os.path.join(tmp, 'bad_' + where.replace(' ', '_'))
            write_adapter(f, tensors, cfg)
            o = os.path.join(tmp, 'bad_%s.pth' % where.replace(' ', '_'))
            code, so, se = run(ckpt, 'convert', base, '--to', 'state-dict', '--merge-lora', f, '-o', o)
            res.check(code != 0 and all(n in se for n in needles) and not os.path.exists(o),
                      'refused: ' + where, 'exit %d, stderr %r, written %s' % (code, se, os.path.exists(o)))

        a, b = factors(sd, 'q_proj', 4, 'linear')
        plain = {'peft_type': 'LORA', 'r': 4, 'lora_alpha': 8}
        dora = collections.OrderedDict([(PREFIX + 'q_proj.lora_A.weight', a), (PREFIX + 'q_proj.lora_B.weight', b),
                                        (PREFIX + 'q_proj.lora_magnitude_vector', torch.ones(12))])
        refused('dora config', dora, dict(plain, use_dora=True), ['DoRA', 'adapter_config.json'])
        refused('dora tensor', dora, plain, ['DoRA', 'q_proj.lora_magnitude_vector'])
        refused('shape mismatch', collections.OrderedDict([(PREFIX + 'q_proj.lora_A.weight', torch.randn(4, 9)),
                                                           (PREFIX + 'q_proj.lora_B.weight', b)]), plain,
                ['q_proj.weight', '[12, 9]', '[12, 8]'])
        refused('missing base key', collections.OrderedDict([(PREFIX + 'k_proj.lora_A.weight', a),
                                                             (PREFIX + 'k_proj.lora_B.weight', b)]), plain,
                ['k_proj.weight', 'does not have'])
        refused('rank not the config', collections.OrderedDict([(PREFIX + 'q_proj.lora_A.weight', a),
                                                                (PREFIX + 'q_proj.lora_B.weight', b)]),
                dict(plain, r=3), ['q_proj.lora_A.weight', 'expected rank', 'r = 3'])
        refused('1-d target', collections.OrderedDict([(PREFIX + 'norm.lora_A.weight', torch.randn(4, 8)),
                                                       (PREFIX + 'norm.lora_B.weight', torch.randn(8, 4))]), plain,
                ['norm.weight', 'Linear, Conv1D, Embedding and Conv2d'])
        nocfg = os.path.join(tmp, 'nocfg')
        os.makedirs(nocfg)
        write_safetensors(os.path.join(nocfg, 'adapter_model.safetensors'), {PREFIX + 'q_proj.lora_A.weight': a})
        code, so, se = run(ckpt, 'convert', base, '--to', 'state-dict', '--merge-lora', os.path.join(nocfg, 'adapter_model.safetensors'),
                           '-o', os.path.join(tmp, 'nocfg.pth'))
        res.check(code != 0 and 'adapter_config.json' in se and not os.path.exists(os.path.join(tmp, 'nocfg.pth')),
                  'refused: no adapter_config.json', se)

        # 4. A tied weight (embed.weight is lm_head.weight) whose head is in modules_to_save: PEFT's
        #    ModulesToSaveWrapper trains a deepcopy, so after merge_and_unload lm_head is the trained
        #    copy while the embedding keeps its own values (plus its LoRA delta, merged in place into
        #    the shared parameter). The tie is broken, and the plan says so.
        for embed_lora in (False, True):
            where = 'tied head in modules_to_save' + (', embedding adapted' if embed_lora else '')
            torch.manual_seed(4)
            e = torch.randn(10, 4)
            tied = collections.OrderedDict([('embed.weight', e), ('lm_head.weight', e), ('fc.weight', torch.randn(4, 4))])
            tbase = os.path.join(tmp, 'tied_%d.pth' % embed_lora)
            torch.save(tied, tbase)
            ad = collections.OrderedDict()
            a, b = torch.randn(2, 4), torch.randn(4, 2)
            ad[PREFIX + 'fc.lora_A.weight'], ad[PREFIX + 'fc.lora_B.weight'] = a, b
            want_t = collections.OrderedDict((k, v.clone()) for k, v in tied.items())
            want_t['fc.weight'] = merged(tied['fc.weight'], delta('linear', a, b, 1.0, False))
            if embed_lora:
                ea, eb = factors(tied, 'embed', 2, 'embedding')
                ad[PREFIX + 'embed.lora_embedding_A'], ad[PREFIX + 'embed.lora_embedding_B'] = ea, eb
                want_t['embed.weight'] = merged(e, delta('embedding', ea, eb, 1.0, False))
            ad[PREFIX + 'lm_head.weight'] = torch.randn(10, 4)  # the trained copy
            want_t['lm_head.weight'] = ad[PREFIX + 'lm_head.weight'].clone()
            tf = os.path.join(tmp, 'tied_adapter_%d' % embed_lora)
            write_adapter(tf, ad, {'peft_type': 'LORA', 'r': 2, 'lora_alpha': 2, 'modules_to_save': ['lm_head']})
            to = os.path.join(tmp, 'tied_merged_%d.pth' % embed_lora)
            code, so, se = run(ckpt, 'convert', tbase, '--to', 'state-dict', '--merge-lora', tf, '-o', to)
            res.check(code == 0, where + ': convert --merge-lora succeeds', so + se)
            check_output(res, where, to, want_t, set(want_t.keys()))
            res.check(any('lm_head.weight' in l and 'embed.weight' in l and 'tie' in l and 'broken' in l for l in so.splitlines()),
                      where + ': the plan says the tie is broken, naming both keys', so)

        # 5. rank_pattern keys and module names that would overflow std::regex's recursive compiler
        #    or executor: refused with a clear message (exit 1), never a signal.
        sd_fc = collections.OrderedDict([('fc.weight', torch.randn(4, 4))])
        fc_base = os.path.join(tmp, 'fc.pth')
        torch.save(sd_fc, fc_base)
        a, b = torch.randn(2, 4), torch.randn(4, 2)
        fc_ad = collections.OrderedDict([(PREFIX + 'fc.lora_A.weight', a), (PREFIX + 'fc.lora_B.weight', b)])
        deep = os.path.join(tmp, 'deep_pattern')
        write_adapter(deep, fc_ad, {'r': 2, 'lora_alpha': 2, 'rank_pattern': {'(' * 50000 + 'fc' + ')' * 50000: 2}})
        code, so, se = run(ckpt, 'convert', fc_base, '--to', 'state-dict', '--merge-lora', deep, '-o', os.path.join(tmp, 'deep.pth'))
        res.check(code == 1 and 'adapter_config.json' in se and 'rank_pattern' in se and len(se) < 2000,
                  'a 100,000-character rank_pattern key is refused (exit 1, the key shortened)', 'exit %d, %r' % (code, se[:500]))
        nested = os.path.join(tmp, 'nested_pattern')
        write_adapter(nested, fc_ad, {'r': 2, 'lora_alpha': 2, 'alpha_pattern': {'(' * 100 + 'fc' + ')' * 100: 2}})
        code, so, se = run(ckpt, 'convert', fc_base, '--to', 'state-dict', '--merge-lora', nested, '-o', os.path.join(tmp, 'nested.pth'))
        res.check(code == 1 and 'alpha_pattern' in se and 'nest' in se,
                  'an alpha_pattern key nested 100 deep is refused (exit 1)', 'exit %d, %r' % (code, se[:500]))
        long_name = 'm' * 60000
        long_base = os.path.join(tmp, 'long.pth')
        torch.save({long_name + '.weight': torch.randn(4, 4)}, long_base)
        longf = os.path.join(tmp, 'long_adapter')
        write_adapter(longf, collections.OrderedDict([(PREFIX + long_name + '.lora_A.weight', a),
                                                      (PREFIX + long_name + '.lora_B.weight', b)]),
                      {'r': 2, 'lora_alpha': 2, 'rank_pattern': {'q': 2}})
        code, so, se = run(ckpt, 'convert', long_base, '--to', 'state-dict', '--merge-lora', longf, '-o', os.path.join(tmp, 'long_out.pth'))
        res.check(code == 1 and 'mmmm' in se and '60000' in se and len(se) < 2000,
                  'a 60,000-character module name with a rank_pattern is refused (exit 1, named shortened)',
                  'exit %d, %r' % (code, se[:500]))

        # rank_pattern / alpha_pattern keys that overlap: PEFT's get_pattern_key takes the first key, in
        # the config's order, that re.match(rf"(.*\.)?({key})$", name) accepts (no exact-match step).
        def get_pattern_key(keys, name):
            return next((k for k in keys if re.match(r'(.*\.)?(%s)$' % k, name)), name)
        ov = collections.OrderedDict([('h.0.q_proj.weight', torch.randn(4, 4)), ('q_proj.weight', torch.randn(4, 4))])
        ov_base = os.path.join(tmp, 'overlap.pth')
        torch.save(ov, ov_base)
        alpha_pattern = collections.OrderedDict([('proj', 3), ('h.0.q_proj', 5), ('q_proj', 7)])
        ov_ad = collections.OrderedDict()
        want_ov = collections.OrderedDict()
        for m in ('h.0.q_proj', 'q_proj'):
            oa, ob = torch.randn(2, 4), torch.randn(4, 2)
            ov_ad[PREFIX + m + '.lora_A.weight'], ov_ad[PREFIX + m + '.lora_B.weight'] = oa, ob
            alpha = alpha_pattern.get(get_pattern_key(alpha_pattern.keys(), m), 2)
            want_ov[m + '.weight'] = merged(ov[m + '.weight'], delta('linear', oa, ob, alpha / 2, False))
        ovf = os.path.join(tmp, 'overlap_adapter')
        write_adapter(ovf, ov_ad, {'r': 2, 'lora_alpha': 2, 'alpha_pattern': alpha_pattern})
        ov_out = os.path.join(tmp, 'overlap_merged.pth')
        code, so, se = run(ckpt, 'convert', ov_base, '--to', 'state-dict', '--merge-lora', ovf, '-o', ov_out)
        res.check(code == 0, 'overlapping alpha_pattern keys: convert --merge-lora succeeds', so + se)
        check_output(res, 'overlapping alpha_pattern', ov_out, want_ov, set(want_ov.keys()))

        # 6. A DDP-saved base ('module.' keys) with --strip-prefix module.: the adapter's names are the
        #    bare model's, as they are after the prefix is stripped. Without it, the refusal says which
        #    --strip-prefix fits.
        ddp = collections.OrderedDict(('module.' + k, v) for k, v in sd_fc.items())
        ddp_base = os.path.join(tmp, 'ddp.pth')
        torch.save(ddp, ddp_base)
        fcf = os.path.join(tmp, 'fc_adapter')
        write_adapter(fcf, fc_ad, {'r': 2, 'lora_alpha': 4})
        ddp_out = os.path.join(tmp, 'ddp_merged.pth')
        code, so, se = run(ckpt, 'convert', ddp_base, '--to', 'state-dict', '--strip-prefix', 'module.', '--merge-lora', fcf,
                           '-o', ddp_out)
        res.check(code == 0, 'DDP base with --strip-prefix module.: convert --merge-lora succeeds', so + se)
        check_output(res, 'DDP base, --strip-prefix', ddp_out,
                     collections.OrderedDict([('fc.weight', merged(sd_fc['fc.weight'], delta('linear', a, b, 2.0, False)))]),
                     {'fc.weight'})
        code, so, se = run(ckpt, 'convert', ddp_base, '--to', 'state-dict', '--merge-lora', fcf, '-o', os.path.join(tmp, 'ddp2.pth'))
        res.check(code == 1 and '--strip-prefix module.' in se and 'module.fc.weight' in se,
                  'DDP base without --strip-prefix: the refusal names the prefix that fits', 'exit %d, %r' % (code, se))

        # 7. --dtype: the merged weights cast as torch casts PEFT's merged model (.half()), each made
        #    when it is written and let go: the plan does not hold them, nor warn that it does.
        out16 = os.path.join(tmp, 'merged16.pth')
        code, so, se = run(ckpt, 'convert', base, '--to', 'state-dict', '--merge-lora', folder, '--dtype', 'float16',
                           '-o', out16, '--json')
        warnings = json.loads(so).get('warnings', []) if code == 0 else []
        res.check(code == 0 and not any('held' in w or 'merge-lora' in w for w in warnings),
                  '--dtype: converts, no warning that the merged weights are held until written',
                  'exit %d, %r %r' % (code, warnings, se))
        if code == 0:
            check_output(res, '--dtype float16', out16,
                         collections.OrderedDict((k, v.half() if v.is_floating_point() else v) for k, v in want.items()),
                         changed)

    return res.finish()


if __name__ == '__main__':
    sys.exit(main())
