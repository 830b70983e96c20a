// Subcommands of the `mlxn` tool. Each takes the arguments after its name and returns the process exit status;
// errors are one line on stderr and a non-zero status.
#pragma once

#include <string>
#include <vector>

namespace mlxn::cli {

using Args = std::vector<std::string>;

int cmd_inspect(const Args& args);
int cmd_quantize(const Args& args);
int cmd_bench_load(const Args& args);
int cmd_generate(const Args& args);
int cmd_synth(const Args& args);
int cmd_embed(const Args& args);
int cmd_bench(const Args& args);   // model throughput (pp / tg tokens/s, roofline)
int cmd_logits(const Args& args);  // last-position logits for token ids (parity runs)
// Makes models::load_tokenizer use the tokenizer library (tools/tokenizer_adapter.cpp).
void install_tokenizer();

// "mlxn <cmd>: <message>" on stderr; returns 1.
int fail(const std::string& cmd, const std::string& message);

}  // namespace mlxn::cli
