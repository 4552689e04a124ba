#!/usr/bin/env python3
"""Cross-check against Hugging Face transformers: load a moeforge-generated safetensors directory with
DeepseekV3ForCausalLM and compare its logits with the logits moeforge's runtime sampled from (greedy).

  hf_transformers_check.py MOEFORGE_BINARY MODEL_DIR [PROMPT]

Runs where torch and transformers are installed (the GPU device machine); needs nothing from moeforge but its
binary. Passes when every compared row has cosine similarity >= 0.99 and the greedy tokens agree on >= 90% of rows.
"""
import json, subprocess, sys, tempfile, os

import numpy as np
import torch
from transformers import AutoConfig, AutoModelForCausalLM


def main():
    binary, model_dir = sys.argv[1], sys.argv[2]
    prompt = sys.argv[3] if len(sys.argv) > 3 else "The capital of France is"
    n_gen = 12
    with tempfile.TemporaryDirectory() as tmp:
        npy = os.path.join(tmp, "logits.npy")
        subprocess.run([binary, "run", "--model", model_dir, "--prompt", prompt, "--max-tokens", str(n_gen),
                        "--temperature", "0", "--logits-out", npy, "--no-stats"], check=True, stdout=subprocess.DEVNULL)
        rows = np.load(npy)
    ids = json.loads(subprocess.run([binary, "tokenize", "--model", model_dir, "--chat", "--json", prompt],
                                    check=True, capture_output=True, text=True).stdout)["ids"]
    generated = [int(r.argmax()) for r in rows]
    seq = ids + generated[:-1]
    cfg = AutoConfig.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
    model.eval()
    with torch.no_grad():
        hf = model(torch.tensor([seq])).logits[0].float().numpy()
    hf_rows = hf[len(ids) - 1:]
    assert hf_rows.shape == rows.shape, (hf_rows.shape, rows.shape)
    cos = [float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))) for a, b in zip(hf_rows, rows)]
    agree = float(np.mean([int(a.argmax()) == int(b.argmax()) for a, b in zip(hf_rows, rows)]))
    print(f"transformers {__import__('transformers').__version__}, model_type {cfg.model_type}, "
          f"{len(ids)} prompt tokens, {len(rows)} rows: cosine min {min(cos):.5f} mean {np.mean(cos):.5f}, "
          f"greedy agreement {agree:.0%}")
    ok = min(cos) >= 0.99 and agree >= 0.9
    print("hf_transformers_check:", "PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
