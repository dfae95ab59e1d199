#!/usr/bin/env python3
"""Seeds tests/fuzz/corpus/fuzz_template/ with the templates of a few real models from
$QUARREL_SHARED/chat-templates (one file per template, named by slug).
Usage: extract_template_corpus.py SHARED_DIR OUT_DIR"""
import glob, json, os, sys

SLUGS = """tc-chatglm4 tc-google-gemma-7b-it meta-llama-llama-3-2-3b-instruct qwen-qwen3-0-6b
openai-gpt-oss-120b tc-mistralai-mistral-7b-instruct-v0-2-note-old-pre-v1-without-a-system-prompt
fireworks-ai-llama-3-firefunction-v2-b9553 kimi-k2-instruct deepseek-ai-deepseek-v3-2
ibm-granite-granite-4-0 tc-cohereforai-c4ai-command-r-plus lfm2-5-8b-a1b llama-cpp-deepseek-r1
google-gemma-2-2b-it microsoft-phi-3-5-mini-instruct nvidia-nemotron-nano-v2
meetkai-functionary-medium-v3-2 apertus-8b-instruct tc-phi-3-small llama-cpp-rwkv-world""".split()

shared, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
for slug in SLUGS:
    path = sorted(glob.glob(os.path.join(shared, "chat-templates", slug + "--*.json")))[0]
    tmpl = json.load(open(path, encoding="utf-8"))["template"]
    open(os.path.join(out, slug + ".jinja"), "w", encoding="utf-8", newline="").write(tmpl)
