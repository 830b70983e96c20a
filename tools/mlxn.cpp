// mlxn: command-line tools of mlx-native. `mlxn help` lists the subcommands.
#include <cstdio>
#include <exception>
#include <string>

#include "commands.h"

namespace mlxn::cli {

int fail(const std::string& cmd, const std::string& message) {
  std::fprintf(stderr, "mlxn %s: %s\n", cmd.c_str(), message.c_str());
  return 1;
}

namespace {

struct Command {
  const char* name;
  const char* usage;
  int (*run)(const Args&);
};

const Command kCommands[] = {
    {"inspect",
     "inspect FILE|DIR [--json] [--dump NAME -o OUT.npy]   architecture, metadata, tensors of a GGUF "
     "file or safetensors checkpoint",
     cmd_inspect},
    {"quantize",
     "quantize IN OUT --type TYPE [--recipe pure|llama] [--threads N] [--allow-requantize] "
     "[--hf-names] [--dry-run]   quantize a float GGUF / safetensors model into a GGUF (Q4_K_M, Q8_0, ...)",
     cmd_quantize},
    {"bench-load",
     "bench-load FILE|DIR [--device cpu|cuda[:N]] [--runs N] | --synth GIB [--tmp DIR]   time loading "
     "every tensor onto a device (from page cache)",
     cmd_bench_load},
    {"generate",
     "generate [--model FILE.gguf|DIR] (--prompt TEXT | --prompt-ids \"1,2,3\") [-n 128] [--chat] "
     "[--temp T] [--top-k K] [--top-p P] [--min-p P] [--seed S] [--device cpu|cuda]   generate text "
     "(default model: Gemma 3 270M Q4_K_M, fetched on first use)",
     cmd_generate},
    {"synth",
     "synth --arch llama|qwen2|qwen3|gemma3 --preset NAME --type Q4_0|Q4_K_M|F16|... -o FILE.gguf   write a "
     "random-weight GGUF of a real architecture and size",
     cmd_synth},
    {"embed", "embed --model DIR|FILE.gguf --text A [--text B ...] [--tokenizer DIR] [--device cpu|cuda]   "
              "sentence embedding of A (or the cosine similarity of A and B) with a BERT encoder",
     cmd_embed},
    {"bench",
     "bench [--model FILE.gguf|DIR] [-p 512] [-n 128] [-r 3] [--device cpu|cuda]   prompt and generation "
     "tokens/s, generation against the bandwidth roofline, host time per token",
     cmd_bench},
    {"logits",
     "logits --model FILE.gguf|DIR --ids \"1,2,3\" --out F.f32 [--dtype f32|bf16] [--greedy N --greedy-out "
     "F]   last-position logits (raw f32) and greedy ids, for parity runs",
     cmd_logits},
};

int usage(FILE* out) {
  std::fprintf(out, "usage: mlxn COMMAND [ARGS]\n\ncommands:\n");
  for (const auto& c : kCommands) std::fprintf(out, "  mlxn %s\n", c.usage);
  return out == stderr ? 2 : 0;
}

}  // namespace
}  // namespace mlxn::cli

int main(int argc, char** argv) {
  using namespace mlxn::cli;
  if (argc < 2) return usage(stderr);
  const std::string cmd = argv[1];
  if (cmd == "help" || cmd == "--help" || cmd == "-h") return usage(stdout);
  Args args(argv + 2, argv + argc);
  for (const auto& c : kCommands) {
    if (cmd != c.name) continue;
    try {
      return c.run(args);
    } catch (const std::exception& e) {  // last resort: library calls return statuses, but allocation can throw
      return fail(cmd, std::string("internal error: ") + e.what());
    }
  }
  std::fprintf(stderr, "mlxn: unknown command '%s'\n", cmd.c_str());
  return usage(stderr);
}
