#!/bin/sh
# make_corpus.sh OUT - the seed corpus of every fuzz target, OUT/fuzz_NAME/,
# from the fixtures in tests/fixtures (configs, tokenizer files, safetensors
# headers, PNGs, prompts) and the hand-written seeds in tests/fuzz/seeds.
# Rebuilt from scratch on every call (seconds); run from the repository root.
set -e
OUT=${1:-build/fuzz/seeds}
F=tests/fixtures
rm -rf "$OUT"
for t in safetensors json_config tokenizer_files tokenizer_text infotext png_text prompts lora single_file server; do
    mkdir -p "$OUT/fuzz_$t"
    if [ -d "tests/fuzz/seeds/fuzz_$t" ]; then cp tests/fuzz/seeds/fuzz_$t/* "$OUT/fuzz_$t/" 2>/dev/null || true; fi
done

# a safetensors file's header (the JSON after the 8-byte length)
header() {
    n=$(od -An -tu8 -N8 "$1" | tr -d ' ')
    tail -c +9 "$1" | head -c "$n"
}

# safetensors: the small fixture files whole, and the header of every other one
for f in $(find $F -name '*.safetensors' | sort); do
    b=$(echo "$f" | tr '/' '_')
    if [ "$(stat -c %s "$f")" -le 262144 ]; then cp "$f" "$OUT/fuzz_safetensors/$b"; fi
    header "$f" > "$OUT/fuzz_single_file/$b.json"
done
for f in $F/models/loras/*.safetensors; do header "$f" > "$OUT/fuzz_lora/$(basename "$f").json"; done
header $F/models/tiny-sd.safetensors > "$OUT/fuzz_lora/not-a-lora.json"

# JSON configs: selector byte (0 UNet, 1 VAE, 2 text encoder, 3 + 4k scheduler as class k) then the file
i=0
for m in $F/models/tiny-sd $F/models/tiny-sdxl; do
    i=$((i + 1))
    { printf '\000'; cat $m/unet/config.json; } > "$OUT/fuzz_json_config/unet-$i"
    { printf '\001'; cat $m/vae/config.json; } > "$OUT/fuzz_json_config/vae-$i"
    { printf '\002'; cat $m/text_encoder/config.json; } > "$OUT/fuzz_json_config/te-$i"
    for k in 3 7 11 15 19 23 27 31; do
        { printf "\\$(printf %03o $k)"; cat $m/scheduler/scheduler_config.json; } > "$OUT/fuzz_json_config/sched-$i-$k"
    done
done
[ -d ../shared/configs ] && for c in ../shared/configs/*/scheduler/scheduler_config.json; do
    [ -f "$c" ] || continue
    i=$((i + 1))
    { printf '\003'; cat "$c"; } > "$OUT/fuzz_json_config/shared-sched-$i"
done

# tokenizer folders: vocab.json, merges.txt, tokenizer_config.json, special_tokens_map.json
for d in $F/vocab-tiny $F/models/tiny-sd/tokenizer; do
    o="$OUT/fuzz_tokenizer_files/$(echo "$d" | tr '/' '_')"
    : > "$o"
    first=1
    for name in vocab.json merges.txt tokenizer_config.json special_tokens_map.json; do
        [ $first = 1 ] || printf '\n=====\n' >> "$o"
        first=0
        [ -f "$d/$name" ] && cat "$d/$name" >> "$o"
    done
done

# prompts of the golden cases (the line after "prompt": [) and the tokenizer goldens' texts
prompts() {
    grep -h -A1 '"prompt": \[' $F/cases/*.json | grep -v '"prompt"' | grep '"' | sed 's/^ *"//; s/",*$//' | sort -u
    grep -ho '"text": "[^"]*"' $F/units/tokenizer.json | sed 's/^"text": "//; s/"$//' | sort -u
}
{ printf '\000'; prompts; } > "$OUT/fuzz_prompts/cases.txt"
n=0
prompts | while IFS= read -r p; do
    n=$((n + 1))
    printf '%s' "$p" > "$OUT/fuzz_tokenizer_text/case-$n"
done

# PNGs with infotexts (the golden images), and png-info requests made of them
for f in $(ls $F/cases/*.png | head -4); do
    cp "$f" "$OUT/fuzz_png_text/"
    { printf '\001{"image": "'; base64 -w0 "$f"; printf '"}'; } > "$OUT/fuzz_server/png-info-$(basename "$f").json"
done
