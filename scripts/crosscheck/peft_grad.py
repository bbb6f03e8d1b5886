#!/usr/bin/env python3
# Cross-check of this engine against PyTorch + PEFT + transformers (float64 on the CPU), for a
# machine that has them (`pip install torch transformers peft safetensors`); `npm test` does not
# run it. For each case it makes a PEFT LoRA adapter with random A and B on all seven linears,
# saves it with save_pretrained, runs `qlora grad --quant none` (our WebGPU kernels) on a padded
# batch with ignored labels, and compares the loss and every LoRA gradient with PEFT's autograd.
# It also compares `qlora generate` greedy text from BOS with transformers' greedy generate.
# Cases: stories260K (alpha/r and rsLoRA), a tiny random Qwen2 (q/k/v bias, untied head, GQA),
# and a tiny random Llama 3 (llama3 RoPE scaling written as transformers 5's rope_parameters,
# head_dim 24 != hidden/heads, one kv head, tied head).
#   python3 scripts/crosscheck/peft_grad.py [--model ../shared/models/stories260K] [--out report.json]
# Exits 1 if a gradient differs by more than 1e-3 of its tensor's largest entry, the loss by more
# than 1e-5 relative, or the greedy texts differ.
import argparse, json, os, subprocess, sys, shutil, math, time, tempfile
import torch
import transformers
import peft
from safetensors.numpy import load_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ap = argparse.ArgumentParser(description="check qlora grad/generate against PyTorch + PEFT")
ap.add_argument("--model", default=os.path.join(ROOT, "..", "shared", "models", "stories260K"))
ap.add_argument("--out", default=None, help="write the report as JSON here")
args = ap.parse_args()
work = tempfile.mkdtemp(prefix="qlora-crosscheck-")
STORIES = os.path.abspath(args.model)
QLORA = ["node", os.path.join(ROOT, "bin", "qlora.js")]
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__, flush=True)
report = {"cases": []}


def load(dir):
    try:
        return transformers.AutoModelForCausalLM.from_pretrained(dir, dtype=torch.float32, attn_implementation="eager")
    except TypeError:
        return transformers.AutoModelForCausalLM.from_pretrained(dir, torch_dtype=torch.float32, attn_implementation="eager")


def random_model(name, cfg_cls, **kw):
    d = os.path.join(work, name)
    torch.manual_seed(1)
    cfg = cfg_cls(**kw)
    m = transformers.AutoModelForCausalLM.from_config(cfg)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.08)
        for n, p in m.named_parameters():
            if "norm" in n:
                p.uniform_(0.7, 1.3)
    m.save_pretrained(d, safe_serialization=True)
    shutil.copy(os.path.join(STORIES, "tokenizer.json"), d)
    shutil.copy(os.path.join(STORIES, "tokenizer_config.json"), d)
    return d


def case(name, model_dir, rslora, r, alpha):
    t0 = time.time()
    base = load(model_dir)
    cfg = peft.LoraConfig(r=r, lora_alpha=alpha, target_modules=TARGETS, lora_dropout=0.0, use_rslora=rslora,
                          task_type="CAUSAL_LM", bias="none")
    torch.manual_seed(2)
    pm = peft.get_peft_model(base, cfg)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_" in n:
                p.normal_(0, 0.15)
    adir = os.path.join(work, name + "-adapter")
    pm.save_pretrained(adir)
    V = base.config.vocab_size
    g = torch.Generator().manual_seed(3)
    B, S = 3, 37
    ids = torch.randint(3, V, (B, S), generator=g)
    mask = torch.ones(B, S, dtype=torch.long)
    mask[2, 29:] = 0  # right padding on row 2
    labels = ids.clone()
    labels[mask == 0] = -100
    labels[1, 5:11] = -100  # ignored labels mid-row
    ids[2, 29:] = 0
    batch = {"input_ids": ids.tolist(), "labels": labels.tolist(), "attention_mask": mask.tolist()}
    bpath = os.path.join(work, name + "-batch.json")
    json.dump(batch, open(bpath, "w"))
    gpath = os.path.join(work, name + "-grads.safetensors")
    t1 = time.time()
    r_ = subprocess.run([*QLORA, "grad", model_dir, "--adapter", adir, "--batch", bpath, "--out", gpath,
                         "--quant", "none"], capture_output=True, text=True, timeout=300)
    t_ours = time.time() - t1
    print(r_.stderr.strip()[-2000:], flush=True)
    if r_.returncode != 0:
        print("qlora grad FAILED", r_.returncode, r_.stdout[-2000:], flush=True)
        report["cases"].append({"name": name, "error": r_.stderr[-2000:]})
        return
    ours = load_file(gpath)
    # float64 reference
    pm = pm.double()
    pm.zero_grad()
    out = pm(input_ids=ids, attention_mask=mask, labels=labels)
    out.loss.backward()
    worst = 0.0
    rows = []
    n_t = 0
    for n, p in pm.named_parameters():
        if "lora_" not in n:
            continue
        key = n.replace(".default", "")
        ref = p.grad.detach().numpy()
        if key not in ours:
            print("MISSING in ours:", key, flush=True)
            worst = math.inf
            continue
        got = ours[key]
        if got.shape != ref.shape:
            print("SHAPE", key, got.shape, ref.shape, flush=True)
            worst = math.inf
            continue
        scale = max(abs(ref).max(), 1e-30)
        err = float(abs(got - ref).max() / scale)
        rows.append((key, err, float(scale)))
        worst = max(worst, err)
        n_t += 1
    extra = [k for k in ours if k != "loss" and k not in {n.replace(".default", "") for n, _ in pm.named_parameters()}]
    loss_ref = float(out.loss.detach())
    loss_ours = float(ours["loss"][0])
    rows.sort(key=lambda x: -x[1])
    print(f"[{name}] loss ours {loss_ours:.8f} ref {loss_ref:.8f} rel {abs(loss_ours-loss_ref)/abs(loss_ref):.2e}; "
          f"{n_t} tensors, worst max|diff|/max|ref| {worst:.2e} ({rows[0][0] if rows else '-'}); extra {extra}; "
          f"ours {t_ours:.1f}s total {time.time()-t0:.1f}s", flush=True)
    for k, e, s in rows[:3]:
        print(f"    {e:.2e}  scale {s:.3e}  {k}", flush=True)
    report["cases"].append({"name": name, "loss_ours": loss_ours, "loss_ref": loss_ref, "tensors": n_t,
                            "worst_rel": worst, "worst_tensor": rows[0][0] if rows else None, "extra": extra})


def greedy_check():
    tok = transformers.PreTrainedTokenizerFast(tokenizer_file=os.path.join(STORIES, "tokenizer.json"))
    m = load(STORIES)
    n = 120
    ids = torch.tensor([[1]])
    with torch.no_grad():
        o = m.generate(ids, max_new_tokens=n, do_sample=False, eos_token_id=2, pad_token_id=0)
    ref_ids = o[0, 1:].tolist()
    ref_text = tok.decode(ref_ids, skip_special_tokens=True)
    r_ = subprocess.run([*QLORA, "generate", STORIES, "--quant", "none", "--prompt", "",
                         "--max-new-tokens", str(n), "--temperature", "0"], capture_output=True, text=True, timeout=300)
    ours = r_.stdout
    same = ours.strip() == ref_text.strip()
    print("[greedy] transformers:", repr(ref_text[:300]), flush=True)
    print("[greedy] qlora       :", repr(ours[:300]), flush=True)
    print("[greedy] identical text:", same, "rc", r_.returncode, r_.stderr[-500:], flush=True)
    report["greedy"] = {"same": same, "ref": ref_text, "ours": ours}


greedy_check()
case("stories260K", STORIES, False, 8, 16)
case("stories260K-rslora", STORIES, True, 4, 16)
q = random_model("qwen2-tiny", transformers.Qwen2Config, vocab_size=512, hidden_size=64, intermediate_size=96,
                 num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                 tie_word_embeddings=False, rms_norm_eps=1e-6)
case("qwen2-tiny-untied", q, False, 4, 8)
rp = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
      "original_max_position_embeddings": 16}
kw = dict(vocab_size=512, hidden_size=64, intermediate_size=80, num_hidden_layers=2, num_attention_heads=4,
          num_key_value_heads=1, head_dim=24, max_position_embeddings=128, tie_word_embeddings=True, rms_norm_eps=1e-5)
try:
    ll = random_model("llama3-tiny", transformers.LlamaConfig, rope_parameters=rp, **kw)
except TypeError:
    ll = random_model("llama3-tiny", transformers.LlamaConfig, rope_scaling=rp, rope_theta=500000.0, **kw)
print("llama3-tiny config:", open(os.path.join(ll, "config.json")).read(), flush=True)
case("llama3-tiny-headdim24-gqa4", ll, False, 4, 8)
if args.out:
    json.dump(report, open(args.out, "w"), indent=1)
bad = [c["name"] for c in report["cases"] if "error" in c or c["worst_rel"] > 1e-3 or c["extra"]
       or abs(c["loss_ours"] - c["loss_ref"]) > 1e-5 * abs(c["loss_ref"])]
if not report.get("greedy", {}).get("same"):
    bad.append("greedy")
shutil.rmtree(work, ignore_errors=True)
print("cross-check:", "FAILED " + ", ".join(bad) if bad else "all cases within tolerance", flush=True)
sys.exit(1 if bad else 0)
