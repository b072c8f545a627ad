#!/usr/bin/env python3
"""Peer baseline: Hugging Face transformers generate() on the same checkpoint, prompts and token budget.

Runs greedy decoding three ways on torch CPU (fp32, eager attention):
  plain      model.generate(do_sample=False)                        -- autoregressive baseline
  lookup     model.generate(prompt_lookup_num_tokens=K)             -- transformers' assisted generation
                                                                       without a draft model (prompt lookup)
  assisted   model.generate(assistant_model=A)                       -- only with --assistant DIR
and prints one JSON object: tokens/s per mode (new tokens over wall time, generation only, after a warm-up),
and the generated ids so callers can check that outputs match their own greedy decoding.

Usage:
  python3 tools/hf_compare.py --model models/default/target --prompts models/default/prompts.jsonl \
      --num-prompts 8 --max-new-tokens 64 [--threads 1] [--assistant DIR] [--modes plain,lookup]
  python3 tools/hf_compare.py --model ../shared/fixtures/stories260k --prompt-ids 1,400,300 --max-new-tokens 64

`deno task bench` calls this when python3 with torch and transformers is available.
"""

import argparse
import json
import os
import sys
import time


def read_prompts(path: str, n: int) -> list[str]:
    out: list[str] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            if line.startswith("{"):
                obj = json.loads(line)
                text = obj.get("prompt") or (obj.get("turns") or [None])[0]
                if text is None:
                    sys.exit(f"{path}: line has neither 'prompt' nor 'turns'")
                out.append(text)
            else:
                out.append(line)
            if len(out) >= n:
                break
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompts", help="JSONL {prompt}/MT-bench or text file (needs a tokenizer in --model)")
    ap.add_argument("--prompt-ids", help="comma-separated token ids (for checkpoints without a tokenizer)")
    ap.add_argument("--num-prompts", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1, like our CPU backend)")
    ap.add_argument("--modes", default="plain,lookup")
    ap.add_argument("--lookup-tokens", type=int, default=10)
    ap.add_argument("--assistant", help="assistant (draft) model directory for assisted generation")
    args = ap.parse_args()

    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as e:
        sys.exit(f"hf_compare.py needs torch and transformers ({e}); pip install -r train/requirements.txt")
    torch.set_num_threads(args.threads)
    if not os.path.isfile(os.path.join(args.model, "config.json")):
        sys.exit(f"{args.model}: no config.json")

    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    if args.prompt_ids:
        prompts = [[int(t) for t in args.prompt_ids.split(",")]]
    else:
        if not args.prompts:
            sys.exit("give --prompts FILE or --prompt-ids")
        tok = AutoTokenizer.from_pretrained(args.model)
        prompts = [tok(p)["input_ids"] for p in read_prompts(args.prompts, args.num_prompts)]
    assistant = None
    if args.assistant:
        assistant = AutoModelForCausalLM.from_pretrained(args.assistant, dtype=torch.float32,
                                                         attn_implementation="eager").eval()

    modes = [m for m in args.modes.split(",") if m]
    if assistant is not None and "assisted" not in modes:
        modes.append("assisted")
    eos = model.generation_config.eos_token_id

    def run(mode: str, ids: list[int]) -> tuple[list[int], float]:
        x = torch.tensor([ids])
        kw = dict(do_sample=False, max_new_tokens=args.max_new_tokens, pad_token_id=eos if isinstance(eos, int) else 0)
        if mode == "lookup":
            kw["prompt_lookup_num_tokens"] = args.lookup_tokens
        elif mode == "assisted":
            kw["assistant_model"] = assistant
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(x, **kw)
        dt = time.perf_counter() - t0
        return out[0, len(ids):].tolist(), dt

    result: dict = {"model": args.model, "threads": args.threads, "max_new_tokens": args.max_new_tokens,
                    "torch": torch.__version__, "modes": {}}
    run("plain", prompts[0][:8])  # warm-up
    for mode in modes:
        ids_out, secs, toks = [], 0.0, 0
        for p in prompts:
            gen, dt = run(mode, p)
            ids_out.append(gen)
            secs += dt
            toks += len(gen)
        result["modes"][mode] = {"tokens": toks, "seconds": secs, "tokens_per_second": toks / secs, "ids": ids_out}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
