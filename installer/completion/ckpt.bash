# bash completion for ckpt, the command-line twin of Checkpoint Studio.
# Installed as /usr/share/bash-completion/completions/ckpt (loaded on demand by bash-completion).
# Keep in step with app/cli/main.cpp: subcommands info, scan, tensors, show, export, convert, diff, series, predict and devices.

_ckpt()
{
    local cur prev words cword
    if declare -F _init_completion >/dev/null 2>&1; then
        _init_completion || return
    else
        # Without the bash-completion package: plain word splitting.
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD - 1]}
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    fi

    local subcommand="" i
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            info | scan | tensors | show | export | convert | diff | series | predict | devices)
                subcommand=${words[i]}
                break
                ;;
        esac
    done

    if [[ -z $subcommand ]]; then
        if [[ $cur == -* ]]; then
            mapfile -t COMPREPLY < <(compgen -W '--help --version' -- "$cur")
        else
            mapfile -t COMPREPLY < <(compgen -W 'info scan tensors show export convert diff series predict devices' -- "$cur")
        fi
        return
    fi

    if [[ $cur == -* ]]; then
        local options='--json --help'
        case $subcommand in
            info | series) options='--json --weights --help' ;;
            scan) options='--json --verbose --help' ;;
            tensors) options='--stats --filter --json --weights --help' ;;
            show) options='--limit --histogram --json --weights --help' ;;
            export) options='-o --output --force --weights --help' ;;
            convert) options='--to -o --output --out-dir --max-shard-size --dtype --strip-prefix --add-prefix --ema --weights --drop --drop-optimizer --keep-device --apply-pruning --merge-lora --config --class-names --preprocessing --epoch --train-loss --val-loss --metadata-json --arch --arch-spec --activation --force --json --help' ;;
            diff) options='--atol --rtol --map --json --weights --help' ;;
            predict) options='--arch --arch-spec --activation --input --input-file --input-shape --device --dtype --half --repeat --no-normalize --top --probabilities --json --show-arch --export-torchscript --force --weights --help' ;;
        esac
        mapfile -t COMPREPLY < <(compgen -W "$options" -- "$cur")
        return
    fi
    [[ $prev == --filter || $prev == --limit || $prev == --histogram || $prev == --atol || $prev == --rtol || $prev == --map || $prev == --input || $prev == --activation || $prev == --device || $prev == --top || $prev == --repeat || $prev == --arch-spec || $prev == --weights ]] && return
    if [[ $subcommand == predict && $prev == --probabilities ]]; then
        mapfile -t COMPREPLY < <(compgen -W 'auto softmax sigmoid none' -- "$cur")
        return
    fi
    if [[ $subcommand == predict && $prev == --dtype ]]; then
        mapfile -t COMPREPLY < <(compgen -W 'float32 float16 bfloat16' -- "$cur")
        return
    fi
    if [[ $subcommand == convert ]]; then
        case $prev in
            --to)
                mapfile -t COMPREPLY < <(compgen -W 'state-dict checkpoint inference full-model safetensors torchscript' -- "$cur")
                return
                ;;
            --dtype)
                mapfile -t COMPREPLY < <(compgen -W 'float16 bfloat16 float32' -- "$cur")
                return
                ;;
            --strip-prefix | --add-prefix)
                mapfile -t COMPREPLY < <(compgen -W 'module. model. _orig_mod.' -- "$cur")
                return
                ;;
            --out-dir)
                mapfile -t COMPREPLY < <(compgen -d -- "$cur")
                return
                ;;
            --drop | --config | --class-names | --preprocessing | --epoch | --train-loss | --val-loss | --arch-spec | --activation)
                return
                ;;
            --max-shard-size)
                mapfile -t COMPREPLY < <(compgen -W '5GB 2GB 1GB 500MB 2GiB' -- "$cur")
                return
                ;;
        esac
    fi

    # `info` and `tensors` take one file, `show` a file and a key: offer no file after the first.
    if [[ $subcommand == info || $subcommand == tensors || $subcommand == show ]]; then
        local j
        for ((j = i + 1; j < cword; j++)); do
            [[ ${words[j]} != -* ]] && return
        done
    fi

    # Checkpoints and folders; names are matched case-insensitively by extension.
    local pattern='@(pth|pt|ckpt|bin|tar|safetensors|json|pkl|pickle|csv|npy|PTH|PT|CKPT|BIN|TAR|SAFETENSORS|JSON|PKL|PICKLE|CSV|NPY)'
    if declare -F _filedir >/dev/null 2>&1; then
        _filedir "$pattern"
    else
        local IFS=$'\n'
        shopt -s extglob
        COMPREPLY=($(compgen -d -- "$cur") $(compgen -f -X "!*.$pattern" -- "$cur"))
    fi
} &&
    complete -F _ckpt ckpt

# ex: filetype=sh
